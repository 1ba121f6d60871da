using Microsoft.AspNetCore.SignalR;

namespace SocketStarter.HubFront;

/// <summary>Why the hub refused an event. The code starts the message the client sees.</summary>
public static class GatewayRejection
{
    public const string PayloadTooLarge = "payload_too_large";
    public const string InvalidType = "invalid_type";
    public const string BrokerUnavailable = "broker_unavailable";
    public const string NotConfirmed = "not_confirmed";
    public const string NotRouted = "not_routed";
    public const string UnknownConnection = "unknown_connection";

    public static HubException Create(string code, string message) => new($"{code}: {message}");
}
