namespace SocketStarter.GatewayWorker.Shards;

/// <summary>
/// A worker tells the others it is alive and which shards it holds (consumes now). Published to
/// every worker's own heartbeat queue. <see cref="Stopping"/>: it is handing its shards over and
/// takes no new ones; the others take each once it no longer lists it.
/// </summary>
public record WorkerHeartbeat
{
    public required string WorkerId { get; init; }
    public required IReadOnlyList<int> Shards { get; init; }
    public bool Stopping { get; init; }
    public required DateTimeOffset SentAt { get; init; }
}
