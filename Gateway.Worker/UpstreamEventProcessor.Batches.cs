using System.Collections.Concurrent;
using MassTransit;
using Npgsql;

namespace SocketStarter.GatewayWorker;

public sealed partial class UpstreamEventProcessor
{
    /// <summary>An event on its way through a batch, and what became of it.</summary>
    private sealed class PendingEvent(UpstreamEvent upstream, Func<GatewayEventContext, Task> apply, IPublishEndpoint publisher, IReadOnlyCollection<long>? givenUp, long takenUp)
    {
        public UpstreamEvent Upstream => upstream;
        public Func<GatewayEventContext, Task> Apply => apply;
        public IPublishEndpoint Publisher => publisher;
        public IReadOnlyCollection<long>? GivenUp => givenUp;
        public long TakenUp => takenUp;

        public Outcome Outcome { get; set; }
        public IReadOnlyList<GatewayEventContext.Reply> Replies { get; set; } = [];
        public long[] ReplyIds { get; set; } = [];
        public DateTimeOffset Started { get; set; }
        public DateTimeOffset Committed { get; set; }
        public long CommittedAt { get; set; }

        /// <summary>Its turn is taken before the application's work: set when taking it with the commit failed.</summary>
        public bool TurnFirst { get; set; }

        /// <summary>Its groups' flush, taken in its commit's round trip: the locks are held until the flush lets them go.</summary>
        public Store.GatewayStore.TakenFlush? Taken { get; set; }

        public TaskCompletionSource<Outcome> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// Group commit: events that are ready at the same time (of different connections: a
    /// connection's next event waits for its last) share one transaction, one commit and one
    /// flush of their replies. At most <see cref="WorkerOptions.Writers"/> transactions run at
    /// once (and no more than the connection pool's Maximum Pool Size); each takes every event
    /// waiting, up to <see cref="WorkerOptions.BatchSize"/> (1 by default: off, each event its own
    /// transaction, as before). Under a light load each event gets a transaction of its own at
    /// once anyway: nothing waits to fill a batch.
    /// <para>
    /// Each event after the first runs under a savepoint: one that fails (not its turn, the
    /// application throws) is rolled back alone and the others commit. Those later events wait at
    /// most <see cref="WorkerOptions.BatchLockTimeout"/> for a lock (a room's row another
    /// transaction holds): a batch that holds one room and waits for a second could otherwise wait
    /// in a circle with one holding them the other way round. One that times out is taken back
    /// out and applied after, first in a transaction of its own, where it waits as long as it takes
    /// (holding nothing else, as when every event had its own).
    /// </para>
    /// </summary>
    private sealed class Batches(UpstreamEventProcessor processor, WorkerOptions options)
    {
        private const string EventInBatch = "gateway_batch_event";
        private const string LockNotAvailable = "55P03";

        private readonly ConcurrentQueue<PendingEvent> _waiting = new();
        private int _writers;
        // No more than the pool holds: a writer never waits for a connection another writer has.
        private readonly int _maxWriters = Math.Max(1, Math.Min(options.Writers, new NpgsqlConnectionStringBuilder(processor.store.DataSource.ConnectionString).MaxPoolSize));

        public Task<Outcome> ApplyAsync(PendingEvent pending)
        {
            _waiting.Enqueue(pending);
            EnsureWriter();
            return pending.Done.Task;
        }

        /// <summary>
        /// Starts a writer when events wait and fewer than the most run. When the most run, each of
        /// them looks at the queue again after it stops counting itself, so none is left waiting.
        /// (Counted only by compare-and-swap: a count raised for a moment by someone who then backs
        /// off would let a stopping writer and that one both leave an event behind.)
        /// </summary>
        private void EnsureWriter()
        {
            while (!_waiting.IsEmpty)
            {
                var running = Volatile.Read(ref _writers);
                if (running >= _maxWriters)
                    return;
                if (Interlocked.CompareExchange(ref _writers, running + 1, running) == running)
                {
                    _ = Task.Run(WriteAsync);
                    return;
                }
            }
        }

        /// <summary>Takes batches until nothing waits, then stops (one is started again when an event comes).</summary>
        private async Task WriteAsync()
        {
            var batch = new List<PendingEvent>(options.BatchSize);
            while (_waiting.TryDequeue(out var first))
            {
                batch.Clear();
                batch.Add(first);
                while (batch.Count < options.BatchSize && _waiting.TryDequeue(out var next))
                    batch.Add(next);
                // Those taken out go again at once, each first in a transaction of its own, side by side.
                var deferred = await RunAsync(batch);
                if (deferred.Count > 0)
                    await Task.WhenAll(deferred.Select(alone => RunAsync([alone])));
            }
            // An event that came in while this writer still counted, when the most ran, is taken now.
            Interlocked.Decrement(ref _writers);
            EnsureWriter();
        }

        /// <summary>
        /// Applies the batch and sends its replies; completes each event's task. Returns the events
        /// that lost a lock wait, to be applied again, each first in its own transaction. Never throws.
        /// </summary>
        private async Task<IReadOnlyList<PendingEvent>> RunAsync(IReadOnlyList<PendingEvent> batch)
        {
            var deferred = new List<PendingEvent>();
            var committed = new List<PendingEvent>(batch.Count);
            try
            {
                await using var connection = await processor.store.DataSource.OpenConnectionAsync();
                try
                {
                    var next = 0;
                    while (next < batch.Count)
                        next = await RunTransactionAsync(connection, batch, next, committed, deferred);

                    var applied = committed.Where(p => p.Outcome == Outcome.Applied).ToList();
                    if (applied.Count > 0)
                    {
                        foreach (var pending in applied)
                        {
                            processor.metrics.Applied(processor.time.GetElapsedTime(pending.TakenUp, pending.CommittedAt));
                            if (processor.logger.IsEnabled(LogLevel.Debug))
                                processor.LogApplied(pending.Upstream.ConnectionId, pending.Upstream.Seq, processor.identity.WorkerId, Microseconds(pending.Started), Microseconds(pending.Committed));
                        }
                        // Only an event alone in its transaction takes its flush with its commit, so
                        // the flush taken is for exactly the replies sent here.
                        var taken = applied is [{ Taken: { } alone }] ? alone : null;
                        if (taken is null && batch.Any(p => p.Taken is not null))
                            await Store.GatewayStore.ReleaseQuietlyAsync(connection);
                        await processor.outbox.SendCommittedAsync(connection,
                            [.. applied.Select(p => (Outbox.FromReplies(p.Replies, p.ReplyIds), p.Publisher))], CancellationToken.None, taken);
                        foreach (var pending in applied)
                        {
                            processor.metrics.Replied(processor.time.GetElapsedTime(pending.CommittedAt));
                            processor.RememberApplied(pending.Upstream);
                        }
                    }
                    foreach (var pending in committed.Where(p => p.Outcome != Outcome.Applied))
                        processor.ForgetApplied(pending.Upstream);
                }
                catch when (batch.Any(p => p.Taken is { Released: false }))
                {
                    // Whatever failed, the connection goes back to the pool holding no group's lock.
                    await Store.GatewayStore.ReleaseQuietlyAsync(connection);
                    throw;
                }
                processor.metrics.Batched(committed.Count);
                foreach (var pending in committed)
                    pending.Done.TrySetResult(pending.Outcome);
            }
            catch (Exception ex)
            {
                // The connection failed, a commit, or the replies' send: whatever has no outcome yet
                // fails with it and is tried again by its consumer (as a duplicate where it committed).
                foreach (var pending in batch)
                {
                    processor.ForgetApplied(pending.Upstream);
                    pending.Done.TrySetException(ex);
                }
                return [];
            }
            if (deferred.Count > 0)
                processor.metrics.LockWaitsDeferred(deferred.Count);
            return deferred;
        }

        /// <summary>
        /// One transaction over the batch from <paramref name="next"/> on; returns where the next
        /// transaction starts (after a first event that failed, which rolls back alone).
        /// </summary>
        private async Task<int> RunTransactionAsync(NpgsqlConnection connection, IReadOnlyList<PendingEvent> batch, int next, List<PendingEvent> committed, List<PendingEvent> deferred)
        {
            var started = processor.time.GetUtcNow();
            var inTransaction = new List<PendingEvent>();
            var commitSent = false;
            await using (var transaction = await connection.BeginTransactionAsync())
            {
                for (; next < batch.Count; next++)
                {
                    var pending = batch[next];
                    if (inTransaction.Count == 0)
                    {
                        try
                        {
                            // Alone in its transaction (the usual case): the commit travels with its replies.
                            commitSent = await processor.ApplyInTransactionAsync(connection, transaction, pending, before: null, commit: next == batch.Count - 1);
                            inTransaction.Add(pending);
                        }
                        catch (TurnAtCommitLostException)
                        {
                            // Its turn taken with the commit was not to be had: this transaction rolls
                            // back, and the event runs again in the next, its turn taken first.
                            pending.TurnFirst = true;
                            return next;
                        }
                        catch (Exception ex)
                        {
                            // Nothing else is in this transaction yet: it rolls back; the rest go on in a new one.
                            pending.Done.TrySetException(ex);
                            return next + 1;
                        }
                        continue;
                    }

                    try
                    {
                        // The timeout before the savepoint, so that rolling one event back keeps it for the next.
                        await processor.ApplyInTransactionAsync(connection, transaction, pending,
                            before: inTransaction.Count == 1 ? [LockTimeoutStatement, $"SAVEPOINT {EventInBatch}"] : [$"SAVEPOINT {EventInBatch}"]);
                        inTransaction.Add(pending);
                    }
                    // An outage fails the whole batch; anything else (a conflict included) this event alone.
                    catch (Exception ex) when (!Store.GatewayDatabase.IsUnavailable(ex))
                    {
                        await using (var rollback = new NpgsqlCommand($"ROLLBACK TO SAVEPOINT {EventInBatch}", connection, transaction))
                            await rollback.ExecuteNonQueryAsync();
                        if (ex is PostgresException { SqlState: LockNotAvailable })
                            deferred.Add(pending);
                        else
                            pending.Done.TrySetException(ex);
                    }
                }
                if (!commitSent)
                    await transaction.CommitAsync();
            }
            var committedAt = processor.time.GetTimestamp();
            var now = processor.time.GetUtcNow();
            foreach (var pending in inTransaction)
            {
                // Where the commit's round trip also waited for its groups' locks, that wait is the flush's, not the apply's.
                var lockWait = pending.Taken?.LockWait ?? TimeSpan.Zero;
                pending.Started = started;
                pending.Committed = now - lockWait;
                pending.CommittedAt = committedAt - (long)(lockWait.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
            }
            committed.AddRange(inTransaction);
            return next;
        }

        private string LockTimeoutStatement => $"SET LOCAL lock_timeout = {(int)options.BatchLockTimeout.TotalMilliseconds}";

        private static long Microseconds(DateTimeOffset time) => time.ToUnixTimeMilliseconds() * 1000 + time.Microsecond;
    }
}
