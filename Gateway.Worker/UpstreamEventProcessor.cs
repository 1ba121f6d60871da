using MassTransit;
using Microsoft.Extensions.Options;
using Npgsql;
using SocketStarter.GatewayWorker.Store;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// Applies upstream events exactly once and in order per connection, whichever worker gets them.
/// The database keeps each connection's last applied seq, read under a row lock and updated in the
/// same transaction as the event's effect and replies:
/// seq ≤ last → a duplicate: skipped (its replies re-sent if they were never sent);
/// seq follows last directly → applied;
/// otherwise a predecessor is still in flight → <see cref="SequenceGapException"/>.
/// </summary>
public sealed partial class UpstreamEventProcessor
{
    private readonly Shards.WorkerIdentity identity;
    private readonly GatewayStore store;
    private readonly Outbox outbox;
    private readonly IGatewayApplication application;
    private readonly WorkerMetrics metrics;
    private readonly TimeProvider time;
    private readonly ILogger<UpstreamEventProcessor> logger;
    private readonly Batches _batches;

    public UpstreamEventProcessor(
        Shards.WorkerIdentity identity,
        GatewayStore store,
        Outbox outbox,
        IGatewayApplication application,
        WorkerMetrics metrics,
        IOptions<WorkerOptions> options,
        TimeProvider time,
        ILogger<UpstreamEventProcessor> logger)
    {
        this.identity = identity;
        this.store = store;
        this.outbox = outbox;
        this.application = application;
        this.metrics = metrics;
        this.time = time;
        this.logger = logger;
        _batches = new Batches(this, options.Value);
    }

    public enum Outcome { Applied, Duplicate }

    /// <param name="givenUp">Predecessors this event no longer waits for; remembered, so that one
    /// arriving later is reported rather than dropped in silence.</param>
    /// <param name="takenUp">When the event was taken up (<see cref="TimeProvider.GetTimestamp"/>), for the apply hop's metric; now when not given.</param>
    /// <remarks>
    /// Events that are ready at the same time share a transaction (see <see cref="WorkerOptions.BatchSize"/>);
    /// this returns once the event's transaction committed and its replies were sent.
    /// </remarks>
    public async Task<Outcome> ProcessAsync(
        UpstreamEvent upstream,
        Func<GatewayEventContext, Task> apply,
        IPublishEndpoint publisher,
        CancellationToken cancellationToken,
        IReadOnlyCollection<long>? givenUp = null,
        long? takenUp = null)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var pending = new PendingEvent(upstream, apply, publisher, givenUp, takenUp ?? time.GetTimestamp());
        var outcome = await _batches.ApplyAsync(pending);
        if (outcome == Outcome.Duplicate)
        {
            // Replies of a duplicate that were never sent. The flush takes connections of its own,
            // after the batch gave its connection back, so that events holding every connection
            // of a small pool never wait for one another's second connection.
            await outbox.FlushAsync(upstream.ConnectionId, publisher, cancellationToken);
        }
        return outcome;
    }

    /// <summary>
    /// One event's part of a transaction: takes its turn, applies it (or finds it a duplicate) and
    /// writes its replies to the outbox. Throws <see cref="SequenceGapException"/> when it is not
    /// its turn; the caller rolls its part back.
    /// </summary>
    /// <param name="before">Statements sent with the turn's (the batch's savepoint for this event).</param>
    /// <param name="commit">Commits the transaction with the event's replies, in one round trip: for
    /// an event alone in its transaction. Returns whether it committed.</param>
    private async Task<bool> ApplyInTransactionAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, PendingEvent pending, IReadOnlyList<string>? before, bool commit = false)
    {
        var upstream = pending.Upstream;
        if (commit && before is null && !pending.TurnFirst && pending.GivenUp is not { Count: > 0 } && AppliedHereLast(upstream))
            return await ApplyTakingTurnAtCommitAsync(connection, transaction, pending);
        var context = new GatewayEventContext(connection, transaction, upstream, store, pending.Publisher, time, CancellationToken.None);
        var (advanced, repliesPending) = await store.TryAdvanceAsync(connection, transaction, upstream, upstream.EarliestPredecessor, context.Now, CancellationToken.None, before);
        if (!advanced && await TurnCameAsync(connection, transaction, context, upstream, pending))
        {
            // Its predecessor committed between the two looks (it was a moment ahead of this one in
            // this worker); the row is locked by this transaction now, so the turn is this event's.
            (advanced, repliesPending) = await store.TryAdvanceAsync(connection, transaction, upstream, upstream.EarliestPredecessor, context.Now, CancellationToken.None);
            if (!advanced)
                throw new SequenceGapException(upstream.ConnectionId, upstream.Seq - 1, upstream.Seq, outboxPending: false);
        }
        if (advanced && repliesPending)
        {
            // Replies of the previous event not sent yet: wait (rolled back), so replies leave in event order.
            throw new SequenceGapException(upstream.ConnectionId, upstream.Seq - 1, upstream.Seq, outboxPending: true);
        }
        if (advanced)
        {
            // Its turn: the connection's row is locked and the event recorded as applied; the
            // application's effect and replies join that transaction.
            await pending.Apply(context);
            if (pending.GivenUp is { Count: > 0 })
                await store.RememberGivenUpAsync(connection, transaction, upstream.ConnectionId, pending.GivenUp, context.Now, CancellationToken.None);
            pending.Outcome = Outcome.Applied;
        }
        // An event applied alone takes its groups' flush in its commit's round trip; a duplicate's
        // replies go through the connection's own flush after (ProcessAsync).
        (pending.Replies, pending.ReplyIds, pending.Taken) = await context.WriteRepliesAsync(commit, takeFlush: advanced);
        return commit;
    }

    /// <summary>
    /// The event's turn taken in its commit's round trip, after the application's work: one round
    /// trip fewer than taking it first. Only for an event whose predecessor this process applied
    /// itself (<see cref="AppliedHereLast"/>): the application then reads a state with every
    /// earlier event of the connection in it, as when the turn is taken first. What it cannot
    /// know before the commit is that no one else applied this event meanwhile (a redelivery, a
    /// handoff of its shard, the connection expired): then the commit's round trip fails before
    /// the commit, and so does an application that needs its turn earlier (<see cref="GatewayEventContext.TurnAtCommit"/>);
    /// both throw <see cref="TurnAtCommitLostException"/>, and the caller rolls back and applies
    /// the event again the usual way.
    /// </summary>
    private async Task<bool> ApplyTakingTurnAtCommitAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, PendingEvent pending)
    {
        var upstream = pending.Upstream;
        var context = new GatewayEventContext(connection, transaction, upstream, store, pending.Publisher, time, CancellationToken.None, turnAtCommit: true);
        try
        {
            await pending.Apply(context);
            if (context.TurnNeededFirst)
                throw new GatewayEventContext.TurnNeededFirstException("The application");
            (pending.Replies, pending.ReplyIds, pending.Taken) = await context.WriteRepliesAsync(commit: true, takeFlush: true);
        }
        catch (Exception ex)
        {
            // Whatever failed, the event's next run takes its turn first: a conflict (a deadlock
            // with a transaction that took the connection's row before the application's rows)
            // is then not met again the same way.
            ForgetApplied(upstream);
            if (!context.TurnNeededFirst && ex is not PostgresException { SqlState: GatewayStore.TurnNotNext })
                throw;
            metrics.TurnAtCommit(taken: false);
            throw new TurnAtCommitLostException(ex);
        }
        metrics.TurnAtCommit(taken: true);
        pending.Outcome = Outcome.Applied;
        return true;
    }

    /// <summary>An event's turn, taken with its commit, was not to be had: roll back and apply it again, its turn first.</summary>
    private sealed class TurnAtCommitLostException(Exception inner) : Exception(inner.Message, inner);

    /// <summary>
    /// Per connection, the last seq this process applied and sent the replies of, while it applies
    /// the connection's events: what lets the next take its turn with its commit. Set only after a
    /// commit this process saw succeed; let go when the connection closes, or when an event of it
    /// fails. An entry that is out of date costs the event a second run, never its order.
    /// </summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _appliedHereLast = new(StringComparer.Ordinal);

    // Many more connections than any one worker serves at once; past it the table starts again empty.
    private const int AppliedHereLastLimit = 100_000;

    private bool AppliedHereLast(UpstreamEvent upstream) =>
        _appliedHereLast.TryGetValue(upstream.ConnectionId, out var last) && last < upstream.Seq && upstream.FollowsDirectly(last);

    private void RememberApplied(UpstreamEvent upstream)
    {
        if (upstream.IsLast)
        {
            _appliedHereLast.TryRemove(upstream.ConnectionId, out _);
            return;
        }
        if (_appliedHereLast.Count >= AppliedHereLastLimit)
            _appliedHereLast.Clear();
        _appliedHereLast.AddOrUpdate(upstream.ConnectionId, upstream.Seq, (_, last) => Math.Max(last, upstream.Seq));
    }

    private void ForgetApplied(UpstreamEvent upstream) => _appliedHereLast.TryRemove(upstream.ConnectionId, out _);

    /// <summary>
    /// The event did not go ahead at the first look. Locks the connection's row and looks again: true
    /// when it is its turn now; a duplicate is settled (skipped; <see cref="PendingEvent.Outcome"/>
    /// set) and false returned; ahead of a missing predecessor, or of its replies, it throws
    /// <see cref="SequenceGapException"/>.
    /// </summary>
    private async Task<bool> TurnCameAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, GatewayEventContext context, UpstreamEvent upstream, PendingEvent pending)
    {
        var cancellationToken = CancellationToken.None;
        var progress = await store.LockProgressAsync(connection, transaction, upstream, context.Now, cancellationToken);
        if (upstream.Seq > progress.LastSeq)
        {
            EnsureNext(upstream, progress); // throws: a predecessor, or its replies, still missing
            return true;
        }
        pending.Outcome = Outcome.Duplicate;

        if (await store.ForgetGivenUpAsync(connection, transaction, upstream.ConnectionId, upstream.Seq, cancellationToken))
        {
            // It was accepted, then given up while it was missing: the client hears of it.
            LogArrivedAfterGivenUp(upstream.ConnectionId, upstream.Seq);
            await application.OnFailedAsync(context,
                new InvalidOperationException($"Event {upstream.Seq} arrived after Worker:GapWaitLimit gave it up."));
        }
        else if (progress.LastSeq == ExpiredSeq)
        {
            // Its hub instance went silent and the connection was let go; this one came later still.
            LogSkippedAfterExpiry(upstream.ConnectionId, upstream.Seq, upstream.HubInstanceId);
        }
        else
        {
            LogDuplicate(upstream.ConnectionId, upstream.Seq, progress.LastSeq);
        }
        return false;
    }

    /// <summary>
    /// Closes a connection whose hub instance went silent, as if its <c>ClientDisconnected</c> had
    /// come: the application lets it go (presence, rooms) in one transaction with marking it
    /// closed for good, so any event of it still on its way is skipped as already applied. The
    /// connection is also told to close, in case its hub is alive after all. False when the
    /// connection was closed meanwhile or its instance spoke again.
    /// </summary>
    public async Task<bool> ExpireAsync(string connectionId, string hubInstanceId, DateTimeOffset silentSince, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        await using (var connection = await store.DataSource.OpenConnectionAsync(cancellationToken))
        await using (var transaction = await connection.BeginTransactionAsync(cancellationToken))
        {
            var probe = new UpstreamEvent(connectionId, hubInstanceId, 0, null, IsLast: true);
            var progress = await store.LockProgressAsync(connection, transaction, probe, time.GetUtcNow(), cancellationToken);
            if (!await store.IsOpenAndSilentAsync(connection, transaction, connectionId, silentSince, cancellationToken))
                return false;

            var upstream = probe with { Seq = progress.LastSeq + 1 };
            await GatewayStore.SetEventSavepointAsync(connection, cancellationToken);
            var context = new GatewayEventContext(connection, transaction, upstream, store, publisher, time, cancellationToken);
            await application.OnDisconnectedAsync(context, new Messages.ClientDisconnected
            {
                ConnectionId = connectionId,
                HubInstanceId = hubInstanceId,
                Seq = upstream.Seq,
                DisconnectedAt = context.Now,
            });
            await context.CloseAsync(connectionId, "Your hub instance stopped answering; connect again and resume.");
            await store.MarkAppliedAsync(connection, transaction, upstream, ExpiredSeq, context.Now, cancellationToken);
            await context.WriteRepliesAsync();
            await transaction.CommitAsync(cancellationToken);
        }

        await outbox.FlushAsync(connectionId, publisher, cancellationToken);
        return true;
    }

    /// <summary>The last seq of an expired connection: every event of it that still comes is skipped.</summary>
    public const long ExpiredSeq = long.MaxValue;

    /// <summary>
    /// Marks the event as being in this process until the returned turn is disposed (after its
    /// processing, replies included), so that a later event of the same connection here waits for
    /// it (see <see cref="WaitForEarlierAsync"/>).
    /// </summary>
    public IDisposable Enter(UpstreamEvent upstream)
    {
        var turn = new Turn(this, upstream.ConnectionId, upstream.Seq);
        lock (_inProcess)
        {
            if (!_inProcess.TryGetValue(upstream.ConnectionId, out var turns))
                _inProcess[upstream.ConnectionId] = turns = [];
            turns.Add(turn);
            if (_arrivals.Remove(upstream.ConnectionId, out var arrival))
                arrival.TrySetResult();
        }
        return turn;
    }

    /// <summary>
    /// Waits until another event of the same connection enters this process, or for
    /// <paramref name="limit"/>. For an event that found its turn not come and no earlier event
    /// here: its predecessor may have been delivered to this worker with it and not have entered
    /// yet (deliveries are dispatched concurrently, and the two looks at the database can be
    /// quicker than the predecessor's way in).
    /// </summary>
    public async Task WaitForArrivalAsync(UpstreamEvent upstream, TimeSpan limit, CancellationToken cancellationToken)
    {
        TaskCompletionSource arrival;
        lock (_inProcess)
        {
            if (!_arrivals.TryGetValue(upstream.ConnectionId, out arrival!))
                _arrivals[upstream.ConnectionId] = arrival = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        try
        {
            await arrival.Task.WaitAsync(limit, time, cancellationToken);
        }
        catch (TimeoutException)
        {
            lock (_inProcess)
            {
                if (_arrivals.TryGetValue(upstream.ConnectionId, out var still) && still == arrival)
                    _arrivals.Remove(upstream.ConnectionId);
            }
        }
    }

    /// <summary>
    /// Waits until no earlier event of the same connection is being processed here: what keeps a
    /// connection's events in order within a worker, with no database look. A shard's prefetched
    /// deliveries are dispatched concurrently, so now and then an event overtakes its predecessor
    /// on the way in and finds its turn not come; it waits here for the predecessor once that has
    /// entered. True when it waited for one.
    /// </summary>
    public async Task<bool> WaitForEarlierAsync(UpstreamEvent upstream, CancellationToken cancellationToken)
    {
        var waited = false;
        while (EarlierInProcess(upstream) is { } earlier)
        {
            await earlier.WaitAsync(cancellationToken);
            waited = true;
        }
        return waited;
    }

    // The events of each connection being processed in this process, in no particular order.
    private readonly Dictionary<string, List<Turn>> _inProcess = [];

    // Per connection, what events waiting for another of it to enter (WaitForArrivalAsync) wait on; under the same lock.
    private readonly Dictionary<string, TaskCompletionSource> _arrivals = [];

    /// <summary>The latest event of the same connection before this one that is in this process, if any.</summary>
    private Task? EarlierInProcess(UpstreamEvent upstream)
    {
        lock (_inProcess)
        {
            Turn? latest = null;
            if (_inProcess.TryGetValue(upstream.ConnectionId, out var turns))
            {
                foreach (var turn in turns)
                {
                    if (turn.Seq < upstream.Seq && (latest is null || turn.Seq > latest.Seq))
                        latest = turn;
                }
            }
            return latest?.Done;
        }
    }

    private sealed class Turn(UpstreamEventProcessor processor, string connectionId, long seq) : IDisposable
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Seq => seq;
        public Task Done => _done.Task;

        public void Dispose()
        {
            lock (processor._inProcess)
            {
                if (processor._inProcess.TryGetValue(connectionId, out var turns) && turns.Remove(this) && turns.Count == 0)
                    processor._inProcess.Remove(connectionId);
            }
            _done.TrySetResult();
        }
    }

    private static void EnsureNext(UpstreamEvent upstream, GatewayStore.Progress progress)
    {
        if (!upstream.FollowsDirectly(progress.LastSeq))
            throw new SequenceGapException(upstream.ConnectionId, progress.LastSeq, upstream.Seq, outboxPending: false);

        // Replies of the previous event not sent yet: wait, so replies leave in event order.
        if (progress.RepliesPending)
            throw new SequenceGapException(upstream.ConnectionId, progress.LastSeq, upstream.Seq, outboxPending: true);
    }

    [LoggerMessage(LogLevel.Error, "Connection {ConnectionId}: seq {Seq} arrived after it was given up; not applied, the client is told")]
    private partial void LogArrivedAfterGivenUp(string connectionId, long seq);

    [LoggerMessage(LogLevel.Warning, "Connection {ConnectionId}: seq {Seq} arrived after its hub instance {HubInstanceId} was declared dead and the connection expired; skipped")]
    private partial void LogSkippedAfterExpiry(string connectionId, long seq, string hubInstanceId);

    /// <summary>Who applied what, and when (µs since 1970): what shows that two workers never applied one connection's events at once.</summary>
    [LoggerMessage(LogLevel.Debug, "Connection {ConnectionId}: seq {Seq} applied by {WorkerId}, from {StartedUs} to {CommittedUs}")]
    private partial void LogApplied(string connectionId, long seq, string workerId, long startedUs, long committedUs);

    [LoggerMessage(LogLevel.Debug, "Connection {ConnectionId}: seq {Seq} already applied (last {LastSeq}); skipped")]
    private partial void LogDuplicate(string connectionId, long seq, long lastSeq);
}
