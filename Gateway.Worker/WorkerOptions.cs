using System.ComponentModel.DataAnnotations;

namespace SocketStarter.GatewayWorker;

/// <summary>The worker's settings, section <c>Worker</c>. Checked once at start-up.</summary>
public sealed class WorkerOptions
{
    public const string Section = "Worker";

    /// <summary>
    /// The name of the application's upstream: the consistent-hash exchange the hubs publish every
    /// client event to (routing key: its connection id) and the prefix of its shard queues
    /// (<c>chat-worker-00</c> … ), quorum queues with a single active consumer each.
    /// </summary>
    [Required(ErrorMessage = "Worker:Queue must name the queue to consume."), RegularExpression("^[A-Za-z0-9_.:-]{1,200}$", ErrorMessage = "Worker:Queue must be a queue name (letters, digits, '.', '_', ':' or '-').")]
    public string Queue { get; set; } = "chat-worker";

    /// <summary>
    /// Shard queues the upstream is split into. A connection's events all land in one shard, and
    /// one worker at a time consumes a shard, so workers never wait for each other; more workers
    /// than shards have nothing to do. Every worker of an application must use the same number.
    /// </summary>
    [Range(1, 256, ErrorMessage = "Worker:Shards must be between 1 and 256.")]
    public int Shards { get; set; } = 16;

    /// <summary>Messages the broker hands this worker ahead of processing, per shard it holds.</summary>
    [Range(1, 10_000, ErrorMessage = "Worker:PrefetchCount must be between 1 and 10000.")]
    public int PrefetchCount { get; set; } = 16;

    /// <summary>
    /// Messages in processing at once per shard this worker holds, waiting ones included. Keep it
    /// at least <see cref="PrefetchCount"/>: every prefetched event then has a slot, so one waiting
    /// for its predecessor never keeps that predecessor out. A connection's events are applied one
    /// at a time, in order, whatever this is.
    /// </summary>
    [Range(1, 1_000, ErrorMessage = "Worker:ConcurrentMessageLimit must be between 1 and 1000.")]
    public int ConcurrentMessageLimit { get; set; } = 16;

    /// <summary>
    /// Most events applied in one transaction. Events that are ready at the same time (under load:
    /// many connections' events waiting for a database connection) share a transaction, one
    /// commit and one flush of their replies; under a light load each has its own at once. 1: every
    /// event its own transaction. Each event in a batch is a savepoint (a subtransaction): past
    /// about 30, PostgreSQL's per-session cache of them overflows and every session slows down.
    /// </summary>
    /// <remarks>
    /// Off (1) unless set: measured on 2 cores (bench/RESULTS.md, 2026-12-06, third session), it
    /// bought no throughput where every tier shares the CPU, and where events of one room meet in
    /// concurrent batches their locks are held longer, which under a slowed host turned into a
    /// convoy (rooms at 200 msgs/s: p99 3.9 s against 0.1 s). Worth trying where the database is
    /// the bottleneck and events seldom touch the same rows.
    /// </remarks>
    [Range(1, 30, ErrorMessage = "Worker:BatchSize must be between 1 and 30.")]
    public int BatchSize { get; set; } = 1;

    /// <summary>
    /// Transactions this worker runs at once, each over a batch of events; at most the pool's
    /// Maximum Pool Size are open (every other need of a connection waits meanwhile).
    /// </summary>
    [Range(1, 1_000, ErrorMessage = "Worker:Writers must be between 1 and 1000.")]
    public int Writers { get; set; } = Store.GatewayDatabase.DefaultMaxPoolSize;

    /// <summary>
    /// How long an event that is not first in its batch waits for a lock another transaction holds
    /// (a chat room's row) before it is taken out of the batch and applied after, alone: two
    /// batches holding locks the other wants never wait for each other longer than this, and a
    /// batch holds its earlier events' locks no longer than this for a later one.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:00:10", ErrorMessage = "Worker:BatchLockTimeout must be between 00:00:00.001 and 00:00:10.")]
    public TimeSpan BatchLockTimeout { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>How often a worker tells the others which shards it holds.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00", ErrorMessage = "Worker:PeerHeartbeatInterval must be between 00:00:00.100 and 00:01:00.")]
    public TimeSpan PeerHeartbeatInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A worker not heard from for this long is dead (killed, cut off): its shards go to the others.
    /// Keep it a few <see cref="PeerHeartbeatInterval"/>s.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.300", "00:10:00", ErrorMessage = "Worker:PeerTimeout must be between 00:00:00.300 and 00:10:00.")]
    public TimeSpan PeerTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>The shard queue of number <paramref name="shard"/>: <c>chat-worker-07</c>.</summary>
    public string ShardQueue(int shard) => $"{Queue}-{shard.ToString(Shards > 100 ? "000" : "00", System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>
    /// How long an event's replies may take to reach the broker (its confirms) before the event is
    /// tried again: while the broker is away, replies wait in the outbox and no group's flush holds
    /// its lock longer than this.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00", ErrorMessage = "Worker:PublishTimeout must be between 00:00:00.100 and 00:10:00.")]
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Retries of a failing event before it is skipped and parked in the error queue.</summary>
    [Range(0, 100, ErrorMessage = "Worker:RetryLimit must be between 0 and 100.")]
    public int RetryLimit { get; set; } = 5;

    /// <summary>How long an event may wait for its predecessor without progress before the missing seqs are given up.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ErrorMessage = "Worker:GapWaitLimit must be between 00:00:01 and 1.00:00:00.")]
    public TimeSpan GapWaitLimit { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a hub instance may go without a heartbeat before its connections are expired:
    /// presence drops them and rooms are told. Keep it a few times the hubs' Gateway:HeartbeatInterval.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Worker:HubInstanceTimeout must be between 00:00:01 and 01:00:00.")]
    public TimeSpan HubInstanceTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
