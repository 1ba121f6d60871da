namespace SocketStarter.GatewayWorker;

/// <summary>
/// An event arrived before its predecessor was applied (or before the predecessor's replies left
/// the outbox). It must wait, without holding a consumer slot.
/// </summary>
public sealed class SequenceGapException(string connectionId, long lastApplied, long seq, bool outboxPending)
    : Exception(outboxPending
        ? $"Connection {connectionId}: seq {seq} waits for the replies of seq {lastApplied} to be sent."
        : $"Connection {connectionId}: seq {seq} waits for seq {lastApplied + 1}.")
{
    public string ConnectionId { get; } = connectionId;
    public long LastApplied { get; } = lastApplied;
    public long Seq { get; } = seq;
}
