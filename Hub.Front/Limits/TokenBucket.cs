namespace SocketStarter.HubFront.Limits;

/// <summary>
/// One connection's event budget: holds up to <c>capacity</c> tokens and refills continuously.
/// Refilled on each take from the injected clock rather than by a timer, so there is no timer per
/// connection, nothing to evict when it closes, and the rate can be tested without waiting
/// (System.Threading.RateLimiting's buckets read the real clock only).
/// </summary>
public sealed class TokenBucket(int capacity, double tokensPerSecond, TimeProvider time)
{
    private readonly Lock _lock = new();
    private double _tokens = capacity;
    private long _refilledAt = time.GetTimestamp();

    public bool TryTake()
    {
        lock (_lock)
        {
            var now = time.GetTimestamp();
            _tokens = Math.Min(capacity, _tokens + time.GetElapsedTime(_refilledAt, now).TotalSeconds * tokensPerSecond);
            _refilledAt = now;
            if (_tokens < 1)
                return false;
            _tokens--;
            return true;
        }
    }
}
