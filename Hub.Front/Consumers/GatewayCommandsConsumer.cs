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
/// command from an older flush is dropped first (<see cref="OrderFence"/>). A worker's
/// <see cref="CommandBatch"/> is applied command by command, in its order, as if each had come alone.
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
    IConsumer<CloseConnection>,
    IConsumer<CommandBatch>
{
    public Task Consume(ConsumeContext<SendToConnections> context) =>
        Admitted(context, nameof(SendToConnections)) ? ApplyAsync(context.Message, context.SentTime, context.CancellationToken) : Task.CompletedTask;

    public Task Consume(ConsumeContext<SendToGroup> context) =>
        Admitted(context, nameof(SendToGroup)) ? ApplyAsync(context.Message, context.SentTime, context.CancellationToken) : Task.CompletedTask;

    public Task Consume(ConsumeContext<SendToUser> context) =>
        Admitted(context, nameof(SendToUser)) ? ApplyAsync(context.Message, context.SentTime, context.CancellationToken) : Task.CompletedTask;

    public Task Consume(ConsumeContext<SendToAll> context) =>
        Admitted(context, nameof(SendToAll)) ? ApplyAsync(context.Message, context.SentTime, context.CancellationToken) : Task.CompletedTask;

    public Task Consume(ConsumeContext<AddToGroup> context) =>
        Admitted(context, nameof(AddToGroup)) ? ApplyAsync(context.Message, context.SentTime, context.CancellationToken) : Task.CompletedTask;

    public Task Consume(ConsumeContext<RemoveFromGroup> context) =>
        Admitted(context, nameof(RemoveFromGroup)) ? ApplyAsync(context.Message, context.SentTime, context.CancellationToken) : Task.CompletedTask;

    public Task Consume(ConsumeContext<CloseConnection> context) =>
        Admitted(context, nameof(CloseConnection)) ? Apply(context.Message, context.SentTime) : Task.CompletedTask;

    /// <summary>
    /// A worker's commands for this instance in one message: applied one after the other in the
    /// order listed, each fenced and counted as if it had come alone.
    /// </summary>
    public async Task Consume(ConsumeContext<CommandBatch> context)
    {
        // A command this version does not know (from a newer worker) fails the whole batch before any
        // of it is applied: to the error queue, visible, rather than half applied in silence.
        if (context.Message.Commands.FirstOrDefault(c => NameOf(c) is null) is not null)
            throw new InvalidOperationException("A CommandBatch held a command this hub does not know; none of it was applied.");
        metrics.BatchReceived(context.Message.Commands.Count);
        foreach (var item in context.Message.Commands)
        {
            var name = NameOf(item)!;
            if (item.OrderKey is { Length: > 0 } key && item.OrderFlush is { } flush && !fence.Admit(key, flush))
            {
                metrics.CommandFenced(name);
                continue;
            }
            await (item switch
            {
                { SendToConnections: { } m } => ApplyAsync(m, context.SentTime, context.CancellationToken),
                { SendToGroup: { } m } => ApplyAsync(m, context.SentTime, context.CancellationToken),
                { SendToUser: { } m } => ApplyAsync(m, context.SentTime, context.CancellationToken),
                { SendToAll: { } m } => ApplyAsync(m, context.SentTime, context.CancellationToken),
                { AddToGroup: { } m } => ApplyAsync(m, context.SentTime, context.CancellationToken),
                { RemoveFromGroup: { } m } => ApplyAsync(m, context.SentTime, context.CancellationToken),
                _ => Apply(item.CloseConnection!, context.SentTime),
            });
        }
    }

    private static string? NameOf(BatchedCommand item) => item switch
    {
        { SendToConnections: not null } => nameof(SendToConnections),
        { SendToGroup: not null } => nameof(SendToGroup),
        { SendToUser: not null } => nameof(SendToUser),
        { SendToAll: not null } => nameof(SendToAll),
        { AddToGroup: not null } => nameof(AddToGroup),
        { RemoveFromGroup: not null } => nameof(RemoveFromGroup),
        { CloseConnection: not null } => nameof(CloseConnection),
        _ => null,
    };

    private async Task ApplyAsync(SendToConnections m, DateTime? sentTime, CancellationToken cancellationToken)
    {
        await sends.StartAsync(() => hub.Clients.Clients(m.ConnectionIds).Event(m.Type, m.Payload), nameof(SendToConnections), SizeOf(m.Type, m.Payload), cancellationToken);
        metrics.CommandApplied(nameof(SendToConnections), sentTime);
    }

    private async Task ApplyAsync(SendToGroup m, DateTime? sentTime, CancellationToken cancellationToken)
    {
        await sends.StartAsync(() => hub.Clients.GroupExcept(m.Group, m.ExceptConnectionIds ?? []).Event(m.Type, m.Payload), nameof(SendToGroup), SizeOf(m.Type, m.Payload), cancellationToken);
        metrics.CommandApplied(nameof(SendToGroup), sentTime);
    }

    private async Task ApplyAsync(SendToUser m, DateTime? sentTime, CancellationToken cancellationToken)
    {
        await sends.StartAsync(() => hub.Clients.User(m.UserId).Event(m.Type, m.Payload), nameof(SendToUser), SizeOf(m.Type, m.Payload), cancellationToken);
        metrics.CommandApplied(nameof(SendToUser), sentTime);
    }

    private async Task ApplyAsync(SendToAll m, DateTime? sentTime, CancellationToken cancellationToken)
    {
        await sends.StartAsync(() => hub.Clients.AllExcept(m.ExceptConnectionIds ?? []).Event(m.Type, m.Payload), nameof(SendToAll), SizeOf(m.Type, m.Payload), cancellationToken);
        metrics.CommandApplied(nameof(SendToAll), sentTime);
    }

    private async Task ApplyAsync(AddToGroup m, DateTime? sentTime, CancellationToken cancellationToken)
    {
        if (gateway.Find(m.ConnectionId) is null)
            return;
        await hub.Groups.AddToGroupAsync(m.ConnectionId, m.Group, cancellationToken);
        metrics.CommandApplied(nameof(AddToGroup), sentTime);
    }

    private async Task ApplyAsync(RemoveFromGroup m, DateTime? sentTime, CancellationToken cancellationToken)
    {
        if (gateway.Find(m.ConnectionId) is null)
            return;
        await hub.Groups.RemoveFromGroupAsync(m.ConnectionId, m.Group, cancellationToken);
        metrics.CommandApplied(nameof(RemoveFromGroup), sentTime);
    }

    private Task Apply(CloseConnection m, DateTime? sentTime)
    {
        if (gateway.Find(m.ConnectionId) is { } connection)
        {
            // Not awaited: this consumer applies one command at a time for the whole instance, and the
            // grace before the abort would hold up every other command. CloseAsync never throws.
            _ = closer.CloseAsync(connection, m.Reason);
            metrics.CommandApplied(nameof(CloseConnection), sentTime);
        }
        return Task.CompletedTask;
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
}
