using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker;

/// <summary>The place of one upstream message in its connection's sequence.</summary>
public readonly record struct UpstreamEvent(
    string ConnectionId,
    string HubInstanceId,
    long Seq,
    IReadOnlyList<long>? VoidedSeqs,
    bool IsLast)
{
    public static UpstreamEvent Of(ClientConnected m) => new(m.ConnectionId, m.HubInstanceId, m.Seq, null, false);
    public static UpstreamEvent Of(ClientMessage m) => new(m.ConnectionId, m.HubInstanceId, m.Seq, m.VoidedSeqs, false);
    public static UpstreamEvent Of(ClientDisconnected m) => new(m.ConnectionId, m.HubInstanceId, m.Seq, m.VoidedSeqs, true);

    /// <summary>
    /// The lowest last applied seq this event may follow: seq - 1, or lower where the hub voided
    /// the seqs right before it (they will never come).
    /// </summary>
    public long EarliestPredecessor
    {
        get
        {
            var earliest = Seq - 1;
            while (earliest > 0 && VoidedSeqs is not null && VoidedSeqs.Contains(earliest))
                earliest--;
            return earliest;
        }
    }

    /// <summary>
    /// True when every seq between the last applied one and this one was voided by the hub, so
    /// nothing can still come before this event.
    /// </summary>
    public bool FollowsDirectly(long lastApplied)
    {
        for (var missing = lastApplied + 1; missing < Seq; missing++)
        {
            if (VoidedSeqs is null || !VoidedSeqs.Contains(missing))
                return false;
        }
        return true;
    }
}
