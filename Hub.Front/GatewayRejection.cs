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
    public const string RateLimited = "rate_limited";
    public const string TooManyConnections = "too_many_connections";
    public const string TooManyViolations = "too_many_violations";

    // A plain HubException: clients see "HubException: code: message"; a subclass would change that name.
    public static HubException Create(string code, string message) => new($"{code}: {message}") { Data = { [nameof(GatewayRejection)] = code } };

    /// <summary>The code a refusal was created with, or null for any other exception.</summary>
    public static string? CodeOf(Exception exception) => exception.Data[nameof(GatewayRejection)] as string;

    /// <summary>Refusals caused by what the client sent, as opposed to the broker's state: they count as abuse when repeated.</summary>
    public static bool IsClientFault(string? code) => code is PayloadTooLarge or InvalidType or RateLimited;
}
