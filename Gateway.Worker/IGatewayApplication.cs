using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// The application behind the gateway. Each call runs inside the store transaction that also
/// records the event as applied: write state and replies through <see cref="GatewayEventContext"/>,
/// and they commit, or roll back, together.
/// </summary>
public interface IGatewayApplication
{
    Task OnConnectedAsync(GatewayEventContext context, ClientConnected message);

    Task OnMessageAsync(GatewayEventContext context, ClientMessage message);

    Task OnDisconnectedAsync(GatewayEventContext context, ClientDisconnected message);

    /// <summary>The event could not be applied after every retry; tell the client, change nothing else.</summary>
    Task OnFailedAsync(GatewayEventContext context, Exception exception);
}
