namespace SocketStarter.Baseline;

/// <summary>
/// Bounds the events processed at once, as Worker:ConcurrentMessageLimit bounds a worker's. SQLite
/// calls block their thread (its async API is synchronous underneath) and writers wait for one
/// lock, so without a bound a thousand connections sending at once starve the thread pool, and the
/// hub stops answering pings and drops clients. A monolith worth comparing with has this bound.
/// </summary>
public sealed class EventGate(int limit)
{
    /// <summary>The workers' default concurrency, so the baseline does the work as one worker would.</summary>
    public const int DefaultLimit = 8;

    private readonly SemaphoreSlim _slots = new(limit, limit);

    public async Task<IDisposable> EnterAsync()
    {
        await _slots.WaitAsync();
        return new Slot(_slots);
    }

    private sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                slots.Release();
        }
    }
}
