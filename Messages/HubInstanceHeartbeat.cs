namespace SocketStarter.Messages;

/// <summary>
/// A hub instance is alive. Sent every <see cref="Interval"/>; workers expire the connections of an
/// instance whose heartbeats stop.
/// </summary>
public record HubInstanceHeartbeat
{
    public required string HubInstanceId { get; init; }
    public required int ConnectionCount { get; init; }
    public required TimeSpan Interval { get; init; }
    public required DateTimeOffset SentAt { get; init; }

    /// <summary>
    /// The instance applies a <see cref="CommandBatch"/>. False from a hub older than batches (the field
    /// is missing): workers send it commands one at a time.
    /// </summary>
    public bool TakesCommandBatches { get; init; }
}
