using System.ComponentModel.DataAnnotations;

namespace SocketStarter.HubFront.Limits;

/// <summary>Abuse limits of the hub, section <c>Limits</c>. Checked once at start-up.</summary>
public sealed class LimitsOptions
{
    public const string Section = "Limits";

    /// <summary>Events a connection may send per second, sustained (token bucket refill).</summary>
    [Range(1, 100_000, ErrorMessage = "Limits:EventsPerSecond must be between 1 and 100000.")]
    public int EventsPerSecond { get; set; } = 50;

    /// <summary>Events a connection may send at once before the sustained rate applies (bucket size).</summary>
    [Range(1, 1_000_000, ErrorMessage = "Limits:EventBurst must be between 1 and 1000000.")]
    public int EventBurst { get; set; } = 250;

    /// <summary>Refused events in a row (over the rate, too large, malformed) after which the connection is closed.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Limits:ViolationsBeforeClose must be between 1 and 1000000.")]
    public int ViolationsBeforeClose { get; set; } = 20;

    /// <summary>Open connections from one client address on this instance (IPv6: /64 prefix; behind a load balancer, its address unless listed in ForwardedHeaders).</summary>
    [Range(1, 1_000_000, ErrorMessage = "Limits:MaxConnectionsPerAddress must be between 1 and 1000000.")]
    public int MaxConnectionsPerAddress { get; set; } = 100;
}
