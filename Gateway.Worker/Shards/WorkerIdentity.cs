namespace SocketStarter.GatewayWorker.Shards;

/// <summary>
/// This worker's id among the workers: host, process and a random part, unique per start. Also the
/// name of its broker connection, so the management UI shows which worker consumes which shard.
/// </summary>
public sealed class WorkerIdentity
{
    public string WorkerId { get; } = $"{Environment.MachineName}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
}
