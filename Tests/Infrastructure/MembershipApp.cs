using SocketStarter.GatewayWorker;
using SocketStarter.Messages;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// An application of the specs' own on the runtime, for what the chat does not do: any connection
/// can take another out of a group, and a request can change a group and then be undone.
/// <c>join {group}</c> (the sender), <c>remove {connection, group}</c>, <c>say {group, text}</c>;
/// <c>removeThenRefuse {connection, group}</c> removes, then <see cref="GatewayEventContext.RollbackAsync"/>;
/// <c>joinThenUndo {group}</c> joins inside a savepoint, then <see cref="GatewayEventContext.RollbackToAsync"/>.
/// Each answers the sender (<c>joined</c>, <c>removed</c>, <c>refused</c>, <c>undone</c>, with the
/// event's seq); anything else is answered <c>error</c>.
/// </summary>
public sealed class MembershipApp : IGatewayApplication
{
    public async Task OnMessageAsync(GatewayEventContext context, ClientMessage message)
    {
        var p = message.Payload;
        switch (message.Type)
        {
            case "join":
                await context.AddToGroupAsync(context.ConnectionId, p.GetProperty("group").GetString()!);
                await context.SendToConnectionAsync(context.ConnectionId, "joined", new { seq = message.Seq });
                break;
            case "remove":
                await context.RemoveFromGroupAsync(p.GetProperty("connection").GetString()!, p.GetProperty("group").GetString()!);
                await context.SendToConnectionAsync(context.ConnectionId, "removed", new { seq = message.Seq });
                break;
            case "say":
                await context.SendToGroupAsync(p.GetProperty("group").GetString()!, "said", new { text = p.GetProperty("text").GetString() });
                break;
            case "removeThenRefuse":
                await context.RemoveFromGroupAsync(p.GetProperty("connection").GetString()!, p.GetProperty("group").GetString()!);
                await context.RollbackAsync();
                await context.SendToConnectionAsync(context.ConnectionId, "refused", new { seq = message.Seq });
                break;
            case "joinThenUndo":
                await context.SaveAsync("before_join");
                await context.AddToGroupAsync(context.ConnectionId, p.GetProperty("group").GetString()!);
                await context.RollbackToAsync("before_join");
                await context.SendToConnectionAsync(context.ConnectionId, "undone", new { seq = message.Seq });
                break;
            default:
                await context.SendToConnectionAsync(context.ConnectionId, "error", new { seq = message.Seq });
                break;
        }
    }

    public Task OnConnectedAsync(GatewayEventContext context, ClientConnected message) => Task.CompletedTask;
    public Task OnDisconnectedAsync(GatewayEventContext context, ClientDisconnected message) => Task.CompletedTask;
    public Task OnFailedAsync(GatewayEventContext context, Exception exception) =>
        context.SendToConnectionAsync(context.ConnectionId, "error", new { seq = context.Seq });
}
