using System.Text.Json;
using Microsoft.AspNetCore.SignalR;

namespace SocketStarter.HubFront;

/// <summary>
/// The transport adapter: SignalR in, <see cref="UpstreamGateway"/> out. It knows no event type;
/// everything a client may do is <see cref="Send"/>.
/// </summary>
public sealed class GatewayHub(UpstreamGateway gateway) : Hub<IGatewayClient>
{
    public const string Path = "/hub";

    public override Task OnConnectedAsync() =>
        gateway.ConnectedAsync(Context, Context.ConnectionAborted);

    /// <summary>
    /// Hands one event to the workers. Returns the event's sequence number on this connection once
    /// the broker has confirmed it; throws <see cref="HubException"/> when it was not accepted.
    /// </summary>
    public Task<long> Send(string type, JsonElement payload) =>
        gateway.AcceptAsync(Context.ConnectionId, type, payload);

    public override Task OnDisconnectedAsync(Exception? exception) =>
        gateway.DisconnectedAsync(Context.ConnectionId);
}
