using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;

namespace SocketStarter.HubFront.Limits;

/// <summary>
/// Per-connection abuse limits: a token bucket on events, connections per client address, and
/// closing a connection that keeps sending what the hub refuses. Only the offending connection is
/// affected.
/// </summary>
public sealed partial class ConnectionLimits(
    IOptions<LimitsOptions> options,
    GatewayMetrics metrics,
    ConnectionCloser closer,
    TimeProvider time,
    ILogger<ConnectionLimits> logger)
{
    private readonly LimitsOptions _options = options.Value;
    private readonly Dictionary<string, int> _perAddress = [];

    /// <summary>Admits a new connection or refuses it with <c>too_many_connections</c>.</summary>
    public void Open(HubCallerContext context)
    {
        var address = AddressOf(context);
        lock (_perAddress)
        {
            var open = _perAddress.GetValueOrDefault(address);
            if (open >= _options.MaxConnectionsPerAddress)
            {
                metrics.ClosedByLimits(GatewayRejection.TooManyConnections);
                LogTooManyConnections(address, open);
                throw GatewayRejection.Create(GatewayRejection.TooManyConnections,
                    $"this address already holds {open} connections; the limit is {_options.MaxConnectionsPerAddress}.");
            }
            _perAddress[address] = open + 1;
        }

        context.Items[typeof(Budget)] = new Budget(address, new TokenBucket(_options.EventBurst, _options.EventsPerSecond, time));
    }

    public void Close(HubCallerContext context)
    {
        if (!context.Items.TryGetValue(typeof(Budget), out var item) || item is not Budget budget || !budget.TryRelease())
            return;
        lock (_perAddress)
        {
            if (--_perAddress[budget.Address] <= 0)
                _perAddress.Remove(budget.Address);
        }
    }

    /// <summary>Takes one token for an event, or refuses it with <c>rate_limited</c>.</summary>
    public async Task AdmitAsync(HubCallerContext context)
    {
        if (BudgetOf(context).Events.TryTake())
            return;

        metrics.Rejected(GatewayRejection.RateLimited);
        var rejection = GatewayRejection.Create(GatewayRejection.RateLimited,
            $"more than {_options.EventsPerSecond} events per second (bursts up to {_options.EventBurst}); the event was not accepted. Slow down.");
        await ViolatedAsync(context, GatewayRejection.RateLimited);
        throw rejection;
    }

    /// <summary>An event was accepted: the run of refusals is over.</summary>
    public void Accepted(HubCallerContext context) => Volatile.Write(ref BudgetOf(context).Violations, 0);

    /// <summary>Counts a refusal the client caused; closes the connection when they keep coming.</summary>
    public async Task ViolatedAsync(HubCallerContext context, string code)
    {
        var budget = BudgetOf(context);
        if (Interlocked.Increment(ref budget.Violations) != _options.ViolationsBeforeClose)
            return;

        metrics.ClosedByLimits(code);
        LogClosed(context.ConnectionId, _options.ViolationsBeforeClose, code);
        await closer.CloseAsync(context, $"{GatewayRejection.TooManyViolations}: {_options.ViolationsBeforeClose} refused events in a row (last: {code}).");
    }

    private static Budget BudgetOf(HubCallerContext context) =>
        context.Items.TryGetValue(typeof(Budget), out var item) && item is Budget budget ? budget : throw new InvalidOperationException("The connection was not opened through ConnectionLimits.");

    private static string AddressOf(HubCallerContext context) =>
        AddressKey(context.GetHttpContext()?.Connection.RemoteIpAddress);

    /// <summary>
    /// Whom a connection is counted against: an IPv4 address, or an IPv6 /64 prefix, since one host
    /// or network is usually handed a whole /64 and could otherwise open connections from every address in it.
    /// </summary>
    public static string AddressKey(IPAddress? address)
    {
        if (address is null)
            return "unknown";
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            return address.ToString();

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return $"{new IPAddress(bytes)}/64";
    }

    // Debug: an attacker could otherwise fill the logs one refused attempt at a time; the metric counts them.
    [LoggerMessage(LogLevel.Debug, "Refused a connection from {Address}: it already holds {Open} connections")]
    private partial void LogTooManyConnections(string address, int open);

    [LoggerMessage(LogLevel.Warning, "Closed connection {ConnectionId} after {Violations} refused events in a row (last: {Reason})")]
    private partial void LogClosed(string connectionId, int violations, string reason);

    private sealed class Budget(string address, TokenBucket events)
    {
        private int _released;
        public int Violations;
        public string Address { get; } = address;
        public TokenBucket Events { get; } = events;
        public bool TryRelease() => Interlocked.Exchange(ref _released, 1) == 0;
    }
}
