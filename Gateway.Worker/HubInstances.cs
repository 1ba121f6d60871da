using System.Collections.Concurrent;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// What this worker heard from each hub instance's heartbeat that changes how it sends: whether the
/// instance takes a <see cref="Messages.CommandBatch"/>. An instance not heard from yet (this worker
/// started after its last heartbeat, or the instance is older than batches) gets its commands one
/// at a time, which every hub applies; each heartbeat sets the answer again, so a hub rolled back
/// to a version without batches is sent none after its first heartbeat. An instance not heard from
/// for <see cref="Retention"/> is forgotten.
/// </summary>
public sealed class HubInstances(TimeProvider time)
{
    public static readonly TimeSpan Retention = TimeSpan.FromHours(1);

    private readonly ConcurrentDictionary<string, (bool TakesBatches, DateTimeOffset Heard)> _instances = new(StringComparer.Ordinal);
    private DateTimeOffset _nextSweep = DateTimeOffset.MinValue;

    public void Heard(string hubInstanceId, bool takesCommandBatches)
    {
        var now = time.GetUtcNow();
        _instances[hubInstanceId] = (takesCommandBatches, now);
        if (now < _nextSweep)
            return;
        _nextSweep = now + Retention / 4;
        foreach (var (id, instance) in _instances)
        {
            if (now - instance.Heard > Retention)
                _instances.TryRemove(id, out _);
        }
    }

    public bool TakesBatches(string hubInstanceId) => _instances.TryGetValue(hubInstanceId, out var instance) && instance.TakesBatches;

    /// <summary>Instances heard to take batches (for the metric).</summary>
    public int TakingBatches => _instances.Count(i => i.Value.TakesBatches);
}
