using System.Text.Json;
using Microsoft.AspNetCore.SignalR;
using SocketStarter.HubFront.Limits;

namespace SocketStarter.HubFront;

/// <summary>
/// The transport adapter: SignalR in, <see cref="UpstreamGateway"/> out. It knows no event type;
/// everything a client may do is <see cref="Send"/>.
/// </summary>
public sealed class GatewayHub(UpstreamGateway gateway, ConnectionLimits limits) : Hub<IGatewayClient>
{
    public const string Path = "/hub";

    public override async Task OnConnectedAsync()
    {
        try
        {
            limits.Open(Context);
        }
        catch (HubException rejection)
        {
            // SignalR closes the connection with the exception's message and tells the client not to reconnect.
            await Clients.Caller.Closing(rejection.Message);
            throw;
        }
        await gateway.ConnectedAsync(Context, Context.ConnectionAborted);
    }

    /// <summary>
    /// Hands one event to the workers. Returns the event's sequence number on this connection once
    /// the broker has confirmed it; throws <see cref="HubException"/> when it was not accepted.
    /// </summary>
    public async Task<long> Send(string type, JsonElement payload)
    {
        await limits.AdmitAsync(Context);
        try
        {
            var seq = await gateway.AcceptAsync(Context.ConnectionId, type, payload);
            limits.Accepted(Context);
            return seq;
        }
        catch (HubException rejection) when (GatewayRejection.IsClientFault(GatewayRejection.CodeOf(rejection)))
        {
            await limits.ViolatedAsync(Context, GatewayRejection.CodeOf(rejection)!);
            throw;
        }
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        limits.Close(Context);
        await gateway.DisconnectedAsync(Context.ConnectionId);
    }
}
