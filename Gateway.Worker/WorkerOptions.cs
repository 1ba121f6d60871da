using System.ComponentModel.DataAnnotations;

namespace SocketStarter.GatewayWorker;

/// <summary>The worker's settings, section <c>Worker</c>. Checked once at start-up.</summary>
public sealed class WorkerOptions
{
    public const string Section = "Worker";

    /// <summary>The durable quorum queue the hubs send every client event to.</summary>
    [Required(ErrorMessage = "Worker:Queue must name the queue to consume."), RegularExpression("^[A-Za-z0-9_.:-]{1,200}$", ErrorMessage = "Worker:Queue must be a queue name (letters, digits, '.', '_', ':' or '-').")]
    public string Queue { get; set; } = "chat-worker";

    /// <summary>Messages the broker hands this worker ahead of processing.</summary>
    [Range(1, 10_000, ErrorMessage = "Worker:PrefetchCount must be between 1 and 10000.")]
    public int PrefetchCount { get; set; } = 64;

    /// <summary>
    /// Messages in processing at once by this worker, waiting ones included. Keep it at least
    /// <see cref="PrefetchCount"/>: every prefetched event then has a slot, so one waiting for its
    /// predecessor never keeps that predecessor out. Store writes are one at a time (group commit)
    /// whatever this is.
    /// </summary>
    [Range(1, 1_000, ErrorMessage = "Worker:ConcurrentMessageLimit must be between 1 and 1000.")]
    public int ConcurrentMessageLimit { get; set; } = 64;

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
