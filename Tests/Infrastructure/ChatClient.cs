using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>A real SignalR client over a real WebSocket, recording every event it receives.</summary>
public sealed class ChatClient : IAsyncDisposable
{
    private readonly HubConnection _connection;
    private readonly List<(string Type, JsonElement Payload)> _events = [];
    private int _closed;

    private ChatClient(HubConnection connection)
    {
        _connection = connection;
        _connection.On<string, JsonElement>("Event", (type, payload) =>
        {
            var copy = payload.Clone();
            lock (_events)
                _events.Add((type, copy));
            Received?.Invoke(type, copy);
        });
        _connection.On<string>("Closing", reason => ClosingReason = reason);
        _connection.Closed += error =>
        {
            CloseError = error;
            Interlocked.Increment(ref _closed);
            return Task.CompletedTask;
        };
    }

    /// <summary>Every event as it arrives, on the connection's thread.</summary>
    public event Action<string, JsonElement>? Received;

    /// <summary>How often this client's connection closed; stays 0 when nothing dropped it.</summary>
    public int TimesClosed => Volatile.Read(ref _closed);

    public string ConnectionId => _connection.ConnectionId ?? throw new InvalidOperationException("Not connected.");

    /// <summary>The reason the application gave when it closed this connection.</summary>
    public string? ClosingReason { get; private set; }

    /// <summary>The error the server closed the connection with, if any.</summary>
    public Exception? CloseError { get; private set; }

    public HubConnectionState State => _connection.State;

    /// <param name="accessToken">A JWT, sent as browsers must: in the <c>access_token</c> query string of the WebSocket.</param>
    /// <param name="statefulReconnect">Negotiate SignalR's stateful reconnect: a dropped transport is re-established on the same connection, and what was sent meanwhile is replayed.</param>
    public static async Task<ChatClient> ConnectAsync(Uri hubUrl, string? accessToken = null, IReadOnlyDictionary<string, string>? headers = null, bool statefulReconnect = false)
    {
        // The .NET client would send a header; browsers cannot on a WebSocket, so test their way.
        var url = accessToken is null ? hubUrl : new Uri($"{hubUrl}?access_token={Uri.EscapeDataString(accessToken)}");
        var builder = new HubConnectionBuilder()
            // Negotiation gives the client its connection id, which tests address commands to.
            .WithUrl(url, o =>
            {
                o.Transports = HttpTransportType.WebSockets;
                foreach (var (name, value) in headers ?? new Dictionary<string, string>())
                    o.Headers[name] = value;
            });
        if (statefulReconnect)
            builder.WithStatefulReconnect();
        var connection = builder.Build();
        var client = new ChatClient(connection);
        await connection.StartAsync();
        return client;
    }

    /// <summary>The gateway's one method: resolves to the event's seq once the broker confirmed it.</summary>
    public Task<long> SendAsync(string type, object? payload) => _connection.InvokeAsync<long>("Send", type, payload);

    public IReadOnlyList<JsonElement> Events(string type)
    {
        lock (_events)
            return _events.Where(e => e.Type == type).Select(e => e.Payload).ToList();
    }

    public async Task<JsonElement> WaitForAsync(string type, Func<JsonElement, bool>? match = null, TimeSpan? timeout = null)
    {
        JsonElement found = default;
        await Wait.UntilAsync(() =>
        {
            var hit = Events(type).Where(p => match?.Invoke(p) ?? true).Take(1).ToList();
            if (hit.Count > 0)
                found = hit[0];
            return hit.Count > 0;
        }, $"a '{type}' event arrives", timeout);
        return found;
    }

    public async Task<JsonElement> SignInAsync(string name)
    {
        await SendAsync("signIn", new { name });
        return await WaitForAsync("signedIn");
    }

    public async Task<JsonElement> JoinAsync(string room)
    {
        await SendAsync("join", new { room });
        return await WaitForAsync("joined", p => p.GetProperty("room").GetString() == room);
    }

    /// <summary>The <c>error</c> event caused by the event with this seq.</summary>
    public Task<JsonElement> WaitForErrorAsync(long seq) =>
        WaitForAsync("error", p => p.TryGetProperty("seq", out var s) && s.GetInt64() == seq);

    /// <summary>Texts of the room's <c>message</c> events, ordered by the room's seq.</summary>
    public List<(long Seq, string From, string Text)> Messages(string room) =>
        Events("message")
            .Where(p => p.GetProperty("room").GetString() == room)
            .Select(p => (p.GetProperty("seq").GetInt64(), p.GetProperty("from").GetString()!, p.GetProperty("text").GetString()!))
            .OrderBy(m => m.Item1)
            .ToList();

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
