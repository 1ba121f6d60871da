using System.Runtime.CompilerServices;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using SocketStarter.GatewayWorker;
using SocketStarter.Messages;

namespace SocketStarter.Baseline;

/// <summary>
/// The same client protocol as Hub.Front (<c>Send(type, payload)</c> returns the event's seq;
/// events arrive as <c>Event(type, payload)</c>), but the chat runs here, in the hub's process.
/// Each event goes through the workers' own processor: one PostgreSQL transaction records the effect,
/// the connection's seq and the replies (outbox), then the replies are sent.
/// </summary>
public sealed class MonolithHub(
    UpstreamEventProcessor processor,
    IGatewayApplication application,
    SignalRDispatcher dispatcher,
    EventGate gate,
    TimeProvider time) : Hub
{
    public const string Path = "/hub";

    private const string InstanceId = "monolith";
    private static readonly object SeqKey = new();

    public override async Task OnConnectedAsync()
    {
        dispatcher.Track(Context);
        Context.Items[SeqKey] = new StrongBox<long>(1);
        var message = new ClientConnected { ConnectionId = Context.ConnectionId, HubInstanceId = InstanceId, Seq = 1, ConnectedAt = time.GetUtcNow() };
        using var slot = await gate.EnterAsync();
        await processor.ProcessAsync(UpstreamEvent.Of(message), c => application.OnConnectedAsync(c, message), dispatcher, Context.ConnectionAborted);
    }

    /// <summary>
    /// SignalR runs one invocation of a connection at a time, in arrival order, so numbering here
    /// keeps each connection's events in order as the gateway does.
    /// </summary>
    public async Task<long> Send(string type, JsonElement payload)
    {
        var seq = ++((StrongBox<long>)Context.Items[SeqKey]!).Value;
        var message = new ClientMessage
        {
            ConnectionId = Context.ConnectionId,
            HubInstanceId = InstanceId,
            Seq = seq,
            Type = type,
            Payload = payload.Clone(),
            ReceivedAt = time.GetUtcNow(),
        };
        using var slot = await gate.EnterAsync();
        await processor.ProcessAsync(UpstreamEvent.Of(message), c => application.OnMessageAsync(c, message), dispatcher, CancellationToken.None);
        return seq;
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        dispatcher.Forget(Context.ConnectionId);
        var seq = ++((StrongBox<long>)Context.Items[SeqKey]!).Value;
        var message = new ClientDisconnected { ConnectionId = Context.ConnectionId, HubInstanceId = InstanceId, Seq = seq, DisconnectedAt = time.GetUtcNow() };
        using var slot = await gate.EnterAsync();
        await processor.ProcessAsync(UpstreamEvent.Of(message), c => application.OnDisconnectedAsync(c, message), dispatcher, CancellationToken.None);
    }
}
