using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using MassTransit;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using SocketStarter.Messages;

namespace SocketStarter.HubFront;

/// <summary>
/// Turns the life of each connection into upstream messages: ClientConnected (seq 1), one
/// ClientMessage per accepted event (2, 3, …), ClientDisconnected (last). Transport-neutral: the
/// hub calls it, and so can a test without a socket.
/// </summary>
/// <remarks>
/// A connection opens even while the broker is away: its ClientConnected is then sent before its
/// first event, and until the broker is back each Send fails with a clear error while the socket
/// stays up. A seq is never re-used. When a publish fails after it may have reached the broker, its
/// seq is "voided": the next message of the connection lists it, so workers do not wait for it
/// forever; the in-doubt copy, if it did land, is applied at most once.
/// </remarks>
public sealed partial class UpstreamGateway(
    UpstreamPublisher publisher,
    IOptions<GatewayOptions> options,
    GatewayMetrics metrics,
    TimeProvider time,
    ILogger<UpstreamGateway> logger)
{
    /// <summary>A connection whose sends keep failing is closed before its void list grows without bound.</summary>
    private const int MaxVoidedPerConnection = 256;

    private static readonly JsonElement JsonNull = JsonDocument.Parse("null").RootElement.Clone();

    private readonly ConcurrentDictionary<string, ConnectionState> _connections = new();
    private readonly GatewayOptions _options = options.Value;

    public int ConnectionCount => _connections.Count;

    public async Task ConnectedAsync(HubCallerContext context, CancellationToken cancellationToken)
    {
        var state = new ConnectionState(context);
        _connections[context.ConnectionId] = state;
        metrics.ConnectionOpened();

        // A fresh gate, so no wait; without a token, so an early abort cannot leave the state behind.
        await state.Gate.WaitAsync(CancellationToken.None);
        try
        {
            if (publisher.IsAvailable)
                await RegisterAsync(state, cancellationToken);
        }
        catch (Exception ex)
        {
            // Not a reason to refuse the socket: the next Send registers it, or fails clearly.
            LogRegisterDeferred(ex, context.ConnectionId);
        }
        finally
        {
            state.Gate.Release();
        }
    }

    public async Task<long> AcceptAsync(string connectionId, string type, JsonElement payload)
    {
        if (type is null || !TypePattern().IsMatch(type))
            throw Reject(GatewayRejection.InvalidType, "type must start with a letter and hold 1-64 letters, digits, '.', '_', ':' or '-'.");

        var raw = payload.ValueKind == JsonValueKind.Undefined ? "null" : payload.GetRawText();
        var size = Encoding.UTF8.GetByteCount(raw);
        if (size > _options.MaxPayloadBytes)
            throw Reject(GatewayRejection.PayloadTooLarge, $"payload is {size} bytes; the limit is {_options.MaxPayloadBytes}.");

        if (!_connections.TryGetValue(connectionId, out var state))
            throw Reject(GatewayRejection.UnknownConnection, "this connection is closing; reconnect.");

        await state.Gate.WaitAsync();
        try
        {
            if (state.Closed)
                throw Reject(GatewayRejection.UnknownConnection, "this connection is closing; reconnect.");

            // Known to be down: refuse without spending a seq.
            if (!publisher.IsAvailable)
                throw Reject(GatewayRejection.BrokerUnavailable, "the broker is not connected; the event was not accepted. Try again shortly.");

            if (!state.Registered)
            {
                try { await RegisterAsync(state, CancellationToken.None); }
                catch (Exception ex)
                {
                    // The event itself was never sent.
                    LogPublishFailed(ex, connectionId, 1);
                    throw Reject(GatewayRejection.BrokerUnavailable, "the broker did not take this connection's registration; the event was not sent. Try again shortly.");
                }
            }

            var seq = state.LastSeq + 1;
            var message = new ClientMessage
            {
                ConnectionId = connectionId,
                HubInstanceId = _options.InstanceId,
                Seq = seq,
                Type = type,
                Payload = payload.ValueKind == JsonValueKind.Undefined ? JsonNull : payload,
                UserId = state.Context.UserIdentifier,
                UserName = UserNameOf(state.Context),
                ReceivedAt = time.GetUtcNow(),
                VoidedSeqs = state.Voided.Count > 0 ? state.Voided.ToArray() : null,
            };

            var started = GatewayMetrics.Timestamp();
            try
            {
                await publisher.SendAsync(message, connectionId, CancellationToken.None);
            }
            catch (Exception ex)
            {
                state.LastSeq = seq;
                state.Voided.Add(seq);
                if (state.Voided.Count >= MaxVoidedPerConnection)
                    state.Context.Abort();
                throw Failed(ex, connectionId, seq);
            }

            state.LastSeq = seq;
            state.Voided.Clear();
            metrics.Accepted(System.Diagnostics.Stopwatch.GetElapsedTime(started));
            return seq;
        }
        finally
        {
            state.Gate.Release();
        }
    }

    public async Task DisconnectedAsync(string connectionId)
    {
        if (!_connections.TryRemove(connectionId, out var state))
            return;

        metrics.ConnectionClosed();
        await state.Gate.WaitAsync();
        try
        {
            // An invocation still waiting for the gate must not publish after the last seq.
            state.Closed = true;
            if (!state.RegistrationSent)
                return;

            if (!state.Registered)
            {
                // ClientConnected may or may not have landed: close it either way.
                state.LastSeq = 1;
                state.Voided.Add(1);
            }

            var seq = state.LastSeq + 1;
            state.LastSeq = seq;
            await publisher.SendAsync(new ClientDisconnected
            {
                ConnectionId = connectionId,
                HubInstanceId = _options.InstanceId,
                Seq = seq,
                UserId = state.Context.UserIdentifier,
                DisconnectedAt = time.GetUtcNow(),
                VoidedSeqs = state.Voided.Count > 0 ? state.Voided.ToArray() : null,
            }, connectionId, CancellationToken.None);
            LogDisconnected(connectionId, seq);
        }
        catch (Exception ex)
        {
            // Workers drop the connection once this instance's heartbeats stop.
            LogDisconnectNotPublished(ex, connectionId);
        }
        finally
        {
            state.Gate.Release();
        }
    }

    /// <summary>The connection's SignalR context, when this instance holds it.</summary>
    public HubCallerContext? Find(string connectionId) =>
        _connections.TryGetValue(connectionId, out var state) ? state.Context : null;

    /// <summary>The name claim of an authenticated connection (see Auth:NameClaim); null for anonymous ones.</summary>
    private static string? UserNameOf(HubCallerContext context) =>
        context.User?.Identity is { IsAuthenticated: true, Name: { } name } ? name : null;

    /// <summary>Sends ClientConnected, seq 1. Safe to repeat: workers apply seq 1 once.</summary>
    private async Task RegisterAsync(ConnectionState state, CancellationToken cancellationToken)
    {
        state.RegistrationSent = true;
        await publisher.SendAsync(new ClientConnected
        {
            ConnectionId = state.Context.ConnectionId,
            HubInstanceId = _options.InstanceId,
            Seq = 1,
            UserId = state.Context.UserIdentifier,
            UserName = UserNameOf(state.Context),
            ConnectedAt = time.GetUtcNow(),
        }, state.Context.ConnectionId, cancellationToken);
        state.Registered = true;
        state.LastSeq = 1;
        LogConnected(state.Context.ConnectionId, state.Context.UserIdentifier);
    }

    /// <summary>
    /// Only a return or a refusal from the broker proves the event is not in the queue; any other
    /// failure after sending (time-out, connection lost before the confirm) leaves it in doubt.
    /// </summary>
    private HubException Failed(Exception exception, string connectionId, long seq)
    {
        LogPublishFailed(exception, connectionId, seq);
        return exception switch
        {
            MessageReturnedException => Reject(GatewayRejection.NotRouted,
                $"no queue took the event: no worker has set up '{_options.UpstreamExchange}' yet. It was not accepted."),
            RabbitMQ.Client.Exceptions.PublishException => Reject(GatewayRejection.BrokerUnavailable,
                "the broker refused the event; it was not accepted. Try again shortly."),
            _ => Reject(GatewayRejection.NotConfirmed,
                "the broker did not confirm the event. It may still be applied; do not assume it was, nor that it was not."),
        };
    }

    private HubException Reject(string code, string message)
    {
        metrics.Rejected(code);
        return GatewayRejection.Create(code, message);
    }

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")]
    internal static partial Regex TypePattern();

    [LoggerMessage(LogLevel.Debug, "Connection {ConnectionId} registered for user {UserId}")]
    private partial void LogConnected(string connectionId, string? userId);

    [LoggerMessage(LogLevel.Debug, "Connection {ConnectionId} closed at seq {Seq}")]
    private partial void LogDisconnected(string connectionId, long seq);

    [LoggerMessage(LogLevel.Warning, "Connection {ConnectionId} opened while its ClientConnected could not be sent; it is sent with its first event")]
    private partial void LogRegisterDeferred(Exception exception, string connectionId);

    [LoggerMessage(LogLevel.Warning, "Event {Seq} of connection {ConnectionId} was not confirmed; voided")]
    private partial void LogPublishFailed(Exception exception, string connectionId, long seq);

    [LoggerMessage(LogLevel.Warning, "ClientDisconnected of {ConnectionId} was not confirmed; workers expire it by heartbeat")]
    private partial void LogDisconnectNotPublished(Exception exception, string connectionId);

    private sealed class ConnectionState(HubCallerContext context)
    {
        public HubCallerContext Context { get; } = context;
        public SemaphoreSlim Gate { get; } = new(1, 1);
        public bool RegistrationSent { get; set; }
        public bool Registered { get; set; }
        public bool Closed { get; set; }
        public long LastSeq { get; set; }
        public List<long> Voided { get; } = [];
    }
}
