using System.Diagnostics.Metrics;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// How often an event arrives before its predecessor, and how that ends: waited for in place (the
/// cheap way), sent to the back of the queue (costly under a backlog: all the connection's later
/// events wait behind it), or its missing predecessors given up.
/// </summary>
public sealed class WorkerMetrics
{
    public const string MeterName = "SocketStarter.Worker";

    private readonly Counter<long> _outOfTurn;
    private readonly Counter<long> _databaseUnavailable;

    public WorkerMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _outOfTurn = meter.CreateCounter<long>("worker.events.out_of_turn",
            description: "Events that arrived before their predecessor was applied, by how the wait ended: in_process (the predecessor was in this worker, right behind), in_place (applied elsewhere meanwhile), requeued, given_up.");
        _databaseUnavailable = meter.CreateCounter<long>("worker.events.database_unavailable",
            description: "Attempts to apply an event that found the database unavailable; the event stays in the queue and is tried again.");
    }

    public void WaitedInPlace() => _outOfTurn.Add(1, new KeyValuePair<string, object?>("resolved", "in_place"));

    /// <summary>Overtook its predecessor inside this worker (both delivered to it, dispatched concurrently) and waited for it in process.</summary>
    public void OvertookInProcess() => _outOfTurn.Add(1, new KeyValuePair<string, object?>("resolved", "in_process"));
    public void Requeued() => _outOfTurn.Add(1, new KeyValuePair<string, object?>("resolved", "requeued"));
    public void DatabaseUnavailable() => _databaseUnavailable.Add(1);
    public void GaveUp() => _outOfTurn.Add(1, new KeyValuePair<string, object?>("resolved", "given_up"));
}
