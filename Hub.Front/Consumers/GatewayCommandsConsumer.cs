using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using MassTransit;
using Microsoft.AspNetCore.SignalR;
using SocketStarter.Messages;

namespace SocketStarter.HubFront.Consumers;

/// <summary>
/// Applies downstream commands to the connections this instance holds. Workers send commands about
/// connections and groups only to the instances that hold them; broadcasts and pushes come to every
/// instance (fanout), and a command about a connection held elsewhere is a no-op here. One command
/// at a time, in queue order; a send is handed to SignalR and not waited for (<see cref="ClientSends"/>),
/// so a client that stops reading holds up no one else's deliveries. A late copy of a group's
/// command from an older flush is dropped first (<see cref="OrderFence"/>).
/// </summary>
public sealed class GatewayCommandsConsumer(
    IHubContext<GatewayHub, IGatewayClient> hub,
    UpstreamGateway gateway,
    ConnectionCloser closer,
    ClientSends sends,
    OrderFence fence,
    GatewayMetrics metrics) :
    IConsumer<SendToConnections>,
    IConsumer<SendToGroup>,
    IConsumer<SendToUser>,
    IConsumer<SendToAll>,
    IConsumer<AddToGroup>,
    IConsumer<RemoveFromGroup>,
    IConsumer<CloseConnection>
{
    public async Task Consume(ConsumeContext<SendToConnections> context)
    {
        if (!Admitted(context, nameof(SendToConnections)))
            return;
        var m = context.Message;
        await sends.StartAsync(() => hub.Clients.Clients(m.ConnectionIds).Event(m.Type, m.Payload), nameof(SendToConnections), SizeOf(m.Type, m.Payload), context.CancellationToken);
        metrics.CommandApplied(nameof(SendToConnections), context.SentTime);
    }

    public async Task Consume(ConsumeContext<SendToGroup> context)
    {
        if (!Admitted(context, nameof(SendToGroup)))
            return;
        var m = context.Message;
        await sends.StartAsync(() => hub.Clients.GroupExcept(m.Group, m.ExceptConnectionIds ?? []).Event(m.Type, m.Payload), nameof(SendToGroup), SizeOf(m.Type, m.Payload), context.CancellationToken);
        metrics.CommandApplied(nameof(SendToGroup), context.SentTime);
    }

    public async Task Consume(ConsumeContext<SendToUser> context)
    {
        if (!Admitted(context, nameof(SendToUser)))
            return;
        var m = context.Message;
        await sends.StartAsync(() => hub.Clients.User(m.UserId).Event(m.Type, m.Payload), nameof(SendToUser), SizeOf(m.Type, m.Payload), context.CancellationToken);
        metrics.CommandApplied(nameof(SendToUser), context.SentTime);
    }

    public async Task Consume(ConsumeContext<SendToAll> context)
    {
        if (!Admitted(context, nameof(SendToAll)))
            return;
        var m = context.Message;
        await sends.StartAsync(() => hub.Clients.AllExcept(m.ExceptConnectionIds ?? []).Event(m.Type, m.Payload), nameof(SendToAll), SizeOf(m.Type, m.Payload), context.CancellationToken);
        metrics.CommandApplied(nameof(SendToAll), context.SentTime);
    }

    public async Task Consume(ConsumeContext<AddToGroup> context)
    {
        if (!Admitted(context, nameof(AddToGroup)))
            return;
        if (gateway.Find(context.Message.ConnectionId) is null)
            return;
        await hub.Groups.AddToGroupAsync(context.Message.ConnectionId, context.Message.Group, context.CancellationToken);
        metrics.CommandApplied(nameof(AddToGroup), context.SentTime);
    }

    public async Task Consume(ConsumeContext<RemoveFromGroup> context)
    {
        if (!Admitted(context, nameof(RemoveFromGroup)))
            return;
        if (gateway.Find(context.Message.ConnectionId) is null)
            return;
        await hub.Groups.RemoveFromGroupAsync(context.Message.ConnectionId, context.Message.Group, context.CancellationToken);
        metrics.CommandApplied(nameof(RemoveFromGroup), context.SentTime);
    }

    private bool Admitted(ConsumeContext context, string command)
    {
        if (fence.Admit(context))
            return true;
        metrics.CommandFenced(command);
        return false;
    }

    /// <summary>
    /// What a send is counted as while it waits: its payload's and type's UTF-8 bytes. What it holds
    /// is more: the payload and the frame SignalR serialized from it, about twice that.
    /// </summary>
    private static long SizeOf(string type, JsonElement payload) =>
        (payload.ValueKind == JsonValueKind.Undefined ? 0 : JsonMarshal.GetRawUtf8Value(payload).Length) + Encoding.UTF8.GetByteCount(type);

    public Task Consume(ConsumeContext<CloseConnection> context)
    {
        if (!Admitted(context, nameof(CloseConnection)))
            return Task.CompletedTask;
        if (gateway.Find(context.Message.ConnectionId) is { } connection)
        {
            // Not awaited: this consumer applies one command at a time for the whole instance, and the
            // grace before the abort would hold up every other command. CloseAsync never throws.
            _ = closer.CloseAsync(connection, context.Message.Reason);
            metrics.CommandApplied(nameof(CloseConnection), context.SentTime);
        }
        return Task.CompletedTask;
    }
}
