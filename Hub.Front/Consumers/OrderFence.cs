using MassTransit;
using Microsoft.Extensions.Options;
using SocketStarter.ServiceDefaults;

namespace SocketStarter.HubFront.Consumers;

/// <summary>
/// Drops a late copy of a group's command. Workers send a group's replies through an ordered
/// flush that holds the group's lock and numbers itself (<see cref="CommandRouting.OrderFlushHeader"/>),
/// so the flushes of one group reach an instance in the order of their numbers, except for a send
/// a worker let go when its publish timed out on a broker that blocked it: that one may arrive
/// after a newer flush of the group has already been applied here, and would undo it (a
/// <c>RemoveFromGroup</c> of a member who has since rejoined, a <c>memberLeft</c> after a
/// <c>memberJoined</c>). A command from a flush older than the newest seen for its key is dropped;
/// its content was sent again by that newer flush. Commands without the headers (from the push
/// API, any other publisher, a worker's unkeyed replies) always pass. A key not seen for
/// <c>Gateway:OrderFenceRetention</c> is forgotten.
/// </summary>
public sealed class OrderFence(IOptions<GatewayOptions> options, TimeProvider time)
{
    private readonly TimeSpan _retention = options.Value.OrderFenceRetention;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (long Flush, DateTimeOffset Seen)> _newest = new(StringComparer.Ordinal);
    private DateTimeOffset _nextSweep = DateTimeOffset.MinValue;

    /// <summary>
    /// False when <paramref name="context"/> is from a flush older than one already applied for its
    /// key. A command without both headers, or with ones that are not a key and a number (another
    /// publisher's), is not fenced.
    /// </summary>
    public bool Admit(ConsumeContext context)
    {
        if (!context.Headers.TryGetHeader(CommandRouting.OrderKeyHeader, out var keyValue) || Text(keyValue) is not { Length: > 0 } key
            || !context.Headers.TryGetHeader(CommandRouting.OrderFlushHeader, out var flushValue) || Number(flushValue) is not { } flush)
            return true;
        return Admit(key, flush);
    }

    private static string? Text(object? value) => value switch
    {
        string s => s,
        System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.String } e => e.GetString(),
        _ => null,
    };

    /// <summary>The flush number as the transport or the envelope gives it back (a long, usually).</summary>
    private static long? Number(object? value) => value switch
    {
        long l => l,
        int i => i,
        decimal m when m == decimal.Truncate(m) && m is >= long.MinValue and <= long.MaxValue => (long)m,
        double d when d == Math.Floor(d) && Math.Abs(d) < 9.2e18 => (long)d,
        string s when long.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var parsed) => parsed,
        System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.Number } e when e.TryGetInt64(out var n) => n,
        System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.String } e => Number(e.GetString()),
        _ => null,
    };

    public bool Admit(string key, long flush)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (now >= _nextSweep)
                Sweep(now);
            if (_newest.TryGetValue(key, out var newest) && flush < newest.Flush)
                return false;
            _newest[key] = (flush, now);
            return true;
        }
    }

    private void Sweep(DateTimeOffset now)
    {
        _nextSweep = now + _retention / 4;
        foreach (var (key, entry) in _newest)
        {
            if (now - entry.Seen > _retention)
                _newest.Remove(key);
        }
    }
}
