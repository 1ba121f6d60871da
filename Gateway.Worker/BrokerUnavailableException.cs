namespace SocketStarter.GatewayWorker;

/// <summary>
/// The broker did not take an event's replies (or an eager group change) within
/// <c>Worker:PublishTimeout</c>: it is away, or its connection is being restored. Nobody's fault,
/// like the database being away: the event is tried again with growing pauses without using up
/// its retries, and a committed event's replies stay in the outbox until they are sent. Without
/// the bound, a send that waits for ever would hold its group's flush lock, and every later reply
/// of the group, on every worker, would wait behind it.
/// </summary>
public sealed class BrokerUnavailableException(TimeSpan timeout, Exception inner)
    : Exception($"The broker did not confirm within {timeout}; the event is tried again.", inner)
{
    /// <summary>Runs <paramref name="publish"/> with at most <paramref name="timeout"/> to complete; a timeout throws this exception.</summary>
    public static async Task WithinAsync(TimeSpan timeout, Func<CancellationToken, Task> publish, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        try
        {
            await publish(bounded.Token);
        }
        catch (OperationCanceledException ex) when (bounded.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new BrokerUnavailableException(timeout, ex);
        }
    }
}
