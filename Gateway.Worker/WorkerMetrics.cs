using System.Diagnostics.Metrics;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// The worker's own measures: how often an event arrives before its predecessor and how that ends
/// (waited for in this worker, sent to the back of its queue, or its missing predecessors given up),
/// conflicts and outages of the database, an event's hops through the worker, group commit.
/// </summary>
public sealed class WorkerMetrics
{
    public const string MeterName = "SocketStarter.Worker";

    private readonly Counter<long> _outOfTurn;
    private readonly Counter<long> _databaseUnavailable;
    private readonly Counter<long> _brokerUnavailable;
    private readonly Histogram<double> _queued;
    private readonly Histogram<double> _applied;
    private readonly Histogram<double> _replied;
    private readonly Histogram<int> _batch;
    private readonly Histogram<int> _hubSend;
    private readonly Meter _meter;
    private readonly Histogram<double> _flushLocked;
    private readonly Histogram<double> _flushPublished;
    private readonly Histogram<double> _flushCommitted;
    private readonly Counter<long> _flushes;
    private readonly Counter<long> _lockWaitsDeferred;
    private readonly Counter<long> _conflicts;
    private readonly Counter<long> _turnsAtCommit;

    // Fine enough for the hops of one event (a fraction of a millisecond to seconds).
    private static readonly InstrumentAdvice<double> HopBuckets = new()
    {
        HistogramBucketBoundaries = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 75, 100, 250, 500, 1000, 2500, 5000, 10000],
    };

    public WorkerMetrics(IMeterFactory meterFactory, HubInstances hubInstances)
    {
        var meter = _meter = meterFactory.Create(MeterName);
        meter.CreateObservableGauge("worker.hub_instances.taking_batches", () => hubInstances.TakingBatches, unit: "{instance}",
            description: "Hub instances whose heartbeat this worker heard say they take command batches.");
        _outOfTurn = meter.CreateCounter<long>("worker.events.out_of_turn",
            description: "Events that arrived before their predecessor was applied, by how the wait ended: in_process (the predecessor was in this worker, right behind), requeued (went to the back of its queue: the predecessor was behind it there), given_up.");
        _conflicts = meter.CreateCounter<long>("worker.events.conflicts",
            description: "Attempts to apply an event that lost to another transaction (a deadlock's victim, a serialization failure, a lock timeout) and were run again.");
        _turnsAtCommit = meter.CreateCounter<long>("worker.events.turn_at_commit",
            description: "Events whose predecessor this worker applied, which took their turn in their commit's round trip, by outcome: taken (one round trip saved), lost (the turn was not theirs after all, or the application needed it first: applied again, turn first).");
        _databaseUnavailable = meter.CreateCounter<long>("worker.events.database_unavailable",
            description: "Attempts to apply an event that found the database unavailable; the event stays in the queue and is tried again.");
        _brokerUnavailable = meter.CreateCounter<long>("worker.events.broker_unavailable",
            description: "Attempts to apply an event whose replies the broker did not confirm within Worker:PublishTimeout; the event stays in the queue and is tried again.");
        // The hops of an event through a worker (bench/RESULTS.md has the table of them).
        _queued = meter.CreateHistogram("worker.event.queued", unit: "ms",
            description: "From the hub's publish of an event to this worker taking it up.", advice: HopBuckets);
        _applied = meter.CreateHistogram("worker.event.applied", unit: "ms",
            description: "From taking an event up to the commit of its effect, progress and replies (waits for the connection's earlier events included).", advice: HopBuckets);
        _replied = meter.CreateHistogram("worker.event.replied", unit: "ms",
            description: "From an event's commit until its replies are published and confirmed by the broker (ordered group flush included).", advice: HopBuckets);
        // The three steps of a group's ordered flush, the part of worker.event.replied that takes the
        // group's lock: a flush holds it from the end of the first until the end of the last.
        _flushLocked = meter.CreateHistogram("worker.flush.locked", unit: "ms",
            description: "An ordered flush's first round trip: waiting for its groups' locks (held by other flushes of the groups, on any worker, while they publish), then reading their rows.", advice: HopBuckets);
        _flushPublished = meter.CreateHistogram("worker.flush.published", unit: "ms",
            description: "An ordered flush's publish, from its rows read to the broker's confirm of the last command, the groups' locks held.", advice: HopBuckets);
        _flushCommitted = meter.CreateHistogram("worker.flush.committed", unit: "ms",
            description: "An ordered flush's last round trip: deleting the rows it sent and committing, which releases the groups' locks.", advice: HopBuckets);
        _flushes = meter.CreateCounter<long>("worker.flushes",
            description: "Ordered flushes of groups, by outcome: sent (it held the groups' locks and published), or already_sent (its own rows were gone when it got the locks: an earlier flush had sent them, so it let the locks go at once).");
        _batch = meter.CreateHistogram("worker.batch.events", unit: "{event}",
            description: "Events committed together (Worker:BatchSize at most): how much the group commit shares.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64] });
        _hubSend = meter.CreateHistogram("worker.hub_send.commands", unit: "{command}",
            description: "Commands in each send of replies to one hub instance: more than one goes as a command batch (one publish, one confirm).",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 3, 4, 6, 8, 16, 32, 64] });
        _lockWaitsDeferred = meter.CreateCounter<long>("worker.batch.lock_waits_deferred",
            description: "Events taken back out of a batch after waiting Worker:BatchLockTimeout for a lock another transaction held, then applied in a transaction of their own.");

        // Every series at 0 from the start: a dashboard or an alert sees "none yet" rather than no
        // series (issue 14 asks for the waits in normal running to show 0 on /metrics).
        foreach (var resolved in new[] { "in_process", "requeued", "given_up" })
            _outOfTurn.Add(0, new KeyValuePair<string, object?>("resolved", resolved));
        _conflicts.Add(0);
        foreach (var outcome in new[] { "taken", "lost" })
            _turnsAtCommit.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
        _databaseUnavailable.Add(0);
        _brokerUnavailable.Add(0);
        _lockWaitsDeferred.Add(0);
        foreach (var outcome in new[] { "sent", "already_sent" })
            _flushes.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
    }

    public void SentToHub(int commands) => _hubSend.Record(commands);

    /// <summary>Reports the commands waiting behind a send in flight to their hub instance (<see cref="HubSendQueues"/>).</summary>
    public void ObserveHubSendsWaiting(Func<long> waiting) =>
        _meter.CreateObservableGauge("worker.hub_send.waiting", waiting, unit: "{command}",
            description: "Commands waiting for the send in flight to their hub instance to be confirmed; they go together in the next send.");

    public void Batched(int events)
    {
        if (events > 0)
            _batch.Record(events);
    }

    public void LockWaitsDeferred(int events) => _lockWaitsDeferred.Add(events);

    public void Queued(TimeSpan time) => _queued.Record(time.TotalMilliseconds);
    public void Applied(TimeSpan time) => _applied.Record(time.TotalMilliseconds);
    public void Replied(TimeSpan time) => _replied.Record(time.TotalMilliseconds);

    /// <summary>An ordered flush's three steps: its locks and rows, its publish, its delete and commit.</summary>
    public void Flushed(TimeSpan locked, TimeSpan published, TimeSpan committed)
    {
        _flushLocked.Record(locked.TotalMilliseconds);
        _flushPublished.Record(published.TotalMilliseconds);
        _flushCommitted.Record(committed.TotalMilliseconds);
        _flushes.Add(1, new KeyValuePair<string, object?>("outcome", "sent"));
    }

    /// <summary>An ordered flush that found its rows sent by an earlier one: its one round trip.</summary>
    public void FlushedNothing(TimeSpan locked)
    {
        _flushLocked.Record(locked.TotalMilliseconds);
        _flushes.Add(1, new KeyValuePair<string, object?>("outcome", "already_sent"));
    }

    /// <summary>Overtook its predecessor inside this worker (both delivered to it, dispatched concurrently) and waited for it in process.</summary>
    public void OvertookInProcess() => _outOfTurn.Add(1, new KeyValuePair<string, object?>("resolved", "in_process"));
    public void Requeued() => _outOfTurn.Add(1, new KeyValuePair<string, object?>("resolved", "requeued"));
    public void DatabaseUnavailable() => _databaseUnavailable.Add(1);
    public void BrokerUnavailable() => _brokerUnavailable.Add(1);

    /// <summary>An attempt that lost to another transaction (deadlock victim, serialization failure, lock timeout) and runs again.</summary>
    public void Conflict() => _conflicts.Add(1);
    public void TurnAtCommit(bool taken) => _turnsAtCommit.Add(1, new KeyValuePair<string, object?>("outcome", taken ? "taken" : "lost"));
    public void GaveUp() => _outOfTurn.Add(1, new KeyValuePair<string, object?>("resolved", "given_up"));
}
