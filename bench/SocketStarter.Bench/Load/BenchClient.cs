using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;

namespace SocketStarter.Bench.Load;

/// <summary>
/// One simulated user: a real SignalR connection over a WebSocket speaking the chat protocol.
/// Its <c>say</c> texts carry the send time, read back from every <c>message</c> it receives.
/// Delivery is at least once: repeats are dropped by (room, seq).
/// </summary>
public sealed class BenchClient : IAsyncDisposable
{
    public const string Marker = "bench";

    private readonly HubConnection _connection;
    private readonly Stats _stats;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonElement>> _waiting = new();
    private readonly HashSet<(string Room, long Seq)> _seen = [];
    // Sends waiting for their own message to come back, by the timestamp their text carries.
    private readonly ConcurrentDictionary<long, TaskCompletionSource> _own = new();
    private int _closed;

    private BenchClient(HubConnection connection, Stats stats)
    {
        _connection = connection;
        _stats = stats;
        _connection.On<string, JsonElement>("Event", OnEvent);
        _connection.Closed += _ =>
        {
            Interlocked.Exchange(ref _closed, 1);
            return Task.CompletedTask;
        };
    }

    public bool IsOpen => Volatile.Read(ref _closed) == 0 && _connection.State == HubConnectionState.Connected;

    /// <summary>Receivers of what this client says: the members of its room.</summary>
    public int RoomSize { get; set; }

    public string? Room { get; private set; }

    public static async Task<BenchClient> ConnectAsync(Uri hubUrl, Stats stats, CancellationToken cancellationToken)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(hubUrl, o =>
            {
                // As the web client connects: straight to the WebSocket, no negotiate request, so
                // each user is one TCP connection to the hub (a negotiate request leaves a second,
                // kept-alive HTTP connection open per user, which the idle figures would count).
                o.Transports = HttpTransportType.WebSockets;
                o.SkipNegotiation = true;
            })
            .Build();
        connection.ServerTimeout = TimeSpan.FromSeconds(120);
        connection.HandshakeTimeout = TimeSpan.FromSeconds(60);
        var client = new BenchClient(connection, stats);
        var started = Stopwatch.GetTimestamp();
        await connection.StartAsync(cancellationToken);
        stats.Connected(Stopwatch.GetElapsedTime(started));
        return client;
    }

    public async Task SignInAndJoinAsync(string name, string room, int roomSize, CancellationToken cancellationToken)
    {
        await RequestAsync("signIn", new { name }, "signedIn", cancellationToken);
        await RequestAsync("join", new { room }, "joined", cancellationToken);
        Room = room;
        RoomSize = roomSize;
    }

    /// <summary>Says something in the client's room; the send time rides in the text.</summary>
    /// <summary>
    /// Says one message in the client's room. With <paramref name="untilDelivered"/>, returns only
    /// once the message came back to this client (it is a member of its own room), or after that
    /// long (counted as an error): a closed loop, so that no backlog builds.
    /// </summary>
    public async Task SayAsync(CancellationToken cancellationToken, TimeSpan? untilDelivered = null)
    {
        var sentAt = Stopwatch.GetTimestamp();
        TaskCompletionSource? back = null;
        if (untilDelivered is not null)
        {
            back = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            while (!_own.TryAdd(sentAt, back))
                sentAt++; // two sends of this client in one tick: a tick later is the same moment
        }
        var accepted = false;
        _stats.Sending();
        try
        {
            await _connection.InvokeAsync<long>("Send", "say",
                new { room = Room, text = string.Create(CultureInfo.InvariantCulture, $"{Marker} {sentAt}") }, cancellationToken);
            _stats.RecordAccepted(RoomSize, sentAt);
            accepted = true;
        }
        catch (HubException ex)
        {
            // The gateway's refusals start with a code ("broker_unavailable: ..."); keep the code.
            var message = ex.Message;
            var at = message.IndexOf("HubException: ", StringComparison.Ordinal);
            var code = (at >= 0 ? message[(at + 14)..] : message).Split(':', 2)[0];
            _stats.Error("send:" + code);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _stats.Error("send:cancelled");
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException)
        {
            _stats.Error("send:connection_lost");
        }

        if (back is null)
            return;
        try
        {
            if (accepted)
                await back.Task.WaitAsync(untilDelivered!.Value, cancellationToken);
        }
        catch (TimeoutException)
        {
            _stats.Error("delivery:not_back_in_time");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        finally
        {
            _own.TryRemove(sentAt, out _);
        }
    }

    private async Task<JsonElement> RequestAsync(string type, object payload, string replyType, CancellationToken cancellationToken)
    {
        var reply = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting[replyType] = reply;
        _waiting["error"] = reply;
        await _connection.InvokeAsync<long>("Send", type, payload, cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(120));
        var result = await reply.Task.WaitAsync(timeout.Token);
        if (result.TryGetProperty("code", out var code))
            throw new InvalidOperationException($"'{type}' was refused: {code.GetString()} {result}");
        return result;
    }

    private void OnEvent(string type, JsonElement payload)
    {
        if (type == "message")
        {
            OnMessage(payload);
            return;
        }
        if (type == "error")
            _stats.Error("reply:" + (payload.TryGetProperty("code", out var code) ? code.GetString() : "unknown"));
        if (_waiting.TryRemove(type, out var waiter))
        {
            _waiting.TryRemove("error", out _);
            waiter.TrySetResult(payload.Clone());
        }
    }

    private void OnMessage(JsonElement payload)
    {
        var room = payload.GetProperty("room").GetString()!;
        var seq = payload.GetProperty("seq").GetInt64();
        bool first;
        lock (_seen)
            first = _seen.Add((room, seq));
        if (!first)
        {
            _stats.Duplicate();
            return;
        }
        var text = payload.GetProperty("text").GetString();
        if (text is not null && text.StartsWith(Marker + " ", StringComparison.Ordinal)
            && long.TryParse(text.AsSpan(Marker.Length + 1), NumberStyles.Integer, CultureInfo.InvariantCulture, out var sentAt))
        {
            _stats.RecordDelivered(sentAt);
            if (_own.TryRemove(sentAt, out var back))
                back.TrySetResult();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _connection.DisposeAsync();
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or OperationCanceledException)
        {
            // Already gone with the target.
        }
    }
}
