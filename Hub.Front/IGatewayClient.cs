using System.Text.Json;

namespace SocketStarter.HubFront;

/// <summary>The methods a client receives. The set is fixed: applications add event types, not methods.</summary>
public interface IGatewayClient
{
    /// <summary>An event from the application behind the gateway.</summary>
    Task Event(string type, JsonElement payload);

    /// <summary>The application closed this connection; the socket closes right after.</summary>
    Task Closing(string reason);
}
