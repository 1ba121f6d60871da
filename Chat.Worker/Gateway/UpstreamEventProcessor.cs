using MassTransit;
using Microsoft.Data.Sqlite;
using SocketStarter.ChatWorker.Store;

namespace SocketStarter.ChatWorker.Gateway;

/// <summary>
/// Applies upstream events exactly once and in order per connection, whichever worker gets them.
/// The store keeps each connection's last applied seq, updated in the same transaction as the
/// event's effect and replies:
/// seq ≤ last → a duplicate: skipped (its replies re-sent if they were never sent);
/// seq follows last directly → applied;
/// otherwise a predecessor is still in flight → <see cref="SequenceGapException"/>.
/// </summary>
public sealed partial class UpstreamEventProcessor(
    SqliteStore store,
    StoreWriter writer,
    Outbox outbox,
    IGatewayApplication application,
    TimeProvider time,
    ILogger<UpstreamEventProcessor> logger)
{
    public enum Outcome { Applied, Duplicate }

    // How often an event whose predecessor is not in this process looks for progress made elsewhere.
    private static readonly TimeSpan TurnPollInterval = TimeSpan.FromMilliseconds(20);

    /// <param name="givenUp">Predecessors this event no longer waits for; remembered, so that one
    /// arriving later is reported rather than dropped in silence.</param>
    public async Task<Outcome> ProcessAsync(
        UpstreamEvent upstream,
        Func<GatewayEventContext, Task> apply,
        IPublishEndpoint publisher,
        CancellationToken cancellationToken,
        IReadOnlyCollection<long>? givenUp = null)
    {
        // A cheap look first, outside the writer: most events that cannot go yet are turned away here.
        await using (var reader = await store.OpenAsync(cancellationToken))
        {
            var (seen, pendingSeen) = await ProgressAsync(reader, null, upstream.ConnectionId, cancellationToken);
            if (upstream.Seq > seen)
                EnsureNext(upstream, seen, pendingSeen);
        }

        var outcome = await writer.WriteAsync((connection, transaction, ct) =>
            ApplyAsync(connection, transaction, upstream, apply, publisher, givenUp, ct), cancellationToken);

        await outbox.FlushAsync(upstream.ConnectionId, publisher, cancellationToken);
        return outcome;
    }

    private async Task<Outcome> ApplyAsync(
        SqliteConnection connection,
        SqliteTransaction transaction,
        UpstreamEvent upstream,
        Func<GatewayEventContext, Task> apply,
        IPublishEndpoint publisher,
        IReadOnlyCollection<long>? givenUp,
        CancellationToken cancellationToken)
    {
        var (last, pending) = await ProgressAsync(connection, transaction, upstream.ConnectionId, cancellationToken);
        if (upstream.Seq <= last)
        {
            if (await ForgetGivenUpAsync(connection, transaction, upstream, cancellationToken))
            {
                // It was accepted, then given up while it was missing: the client hears of it.
                LogArrivedAfterGivenUp(upstream.ConnectionId, upstream.Seq);
                await application.OnFailedAsync(
                    new GatewayEventContext(connection, transaction, upstream, publisher, time, cancellationToken),
                    new InvalidOperationException($"Event {upstream.Seq} arrived after Worker:GapWaitLimit gave it up."));
            }
            else if (last == ExpiredSeq)
            {
                // Its hub instance went silent and the connection was let go; this one came later still.
                LogSkippedAfterExpiry(upstream.ConnectionId, upstream.Seq, upstream.HubInstanceId);
            }
            else
            {
                LogDuplicate(upstream.ConnectionId, upstream.Seq, last);
            }
            // Its replies are re-sent by the flush if they were never sent.
            return Outcome.Duplicate;
        }

        EnsureNext(upstream, last, pending);

        var context = new GatewayEventContext(connection, transaction, upstream, publisher, time, cancellationToken);
        await apply(context);
        await MarkAppliedAsync(context, upstream, cancellationToken);
        foreach (var seq in givenUp ?? [])
        {
            await using var remember = context.Command(
                "INSERT OR IGNORE INTO gateway_given_up (connection_id, seq, given_up_at) VALUES ($c, $s, $at)",
                ("$c", upstream.ConnectionId), ("$s", seq), ("$at", context.Now.ToString("O")));
            await remember.ExecuteNonQueryAsync(cancellationToken);
        }
        return Outcome.Applied;
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
        var expired = await writer.WriteAsync(async (connection, transaction, ct) =>
        {
            var (last, _) = await ProgressAsync(connection, transaction, connectionId, ct);
            await using (var check = connection.CreateCommand())
            {
                check.Transaction = transaction;
                check.CommandText = """
                    SELECT c.closed_at IS NULL AND (
                    """ + HubInstances.LastHeardSql + """
                    ) <= $silentSince
                    FROM gateway_connections c WHERE c.connection_id = $c
                    """;
                check.Parameters.AddWithValue("$c", connectionId);
                check.Parameters.AddWithValue("$silentSince", silentSince.ToUniversalTime().ToString("O"));
                if (await check.ExecuteScalarAsync(ct) is not long stillOpenAndSilent || stillOpenAndSilent == 0)
                    return false;
            }

            var upstream = new UpstreamEvent(connectionId, hubInstanceId, last + 1, null, IsLast: true);
            var context = new GatewayEventContext(connection, transaction, upstream, publisher, time, ct);
            await application.OnDisconnectedAsync(context, new Messages.ClientDisconnected
            {
                ConnectionId = connectionId,
                HubInstanceId = hubInstanceId,
                Seq = upstream.Seq,
                DisconnectedAt = context.Now,
            });
            await context.CloseAsync(connectionId, "Your hub instance stopped answering; connect again and resume.");
            await MarkAppliedAsync(context, upstream with { Seq = ExpiredSeq }, ct);
            return true;
        }, cancellationToken);

        if (expired)
            await outbox.FlushAsync(connectionId, publisher, cancellationToken);
        return expired;
    }

    /// <summary>The last seq of an expired connection: every event of it that still comes is skipped.</summary>
    public const long ExpiredSeq = long.MaxValue;

    /// <summary>
    /// Marks the event as being in this process until the returned turn is disposed (after its
    /// processing, replies included), so that a later event of the same connection here can wait
    /// for it rather than for the store (see <see cref="WaitForTurnAsync"/>).
    /// </summary>
    public IDisposable Enter(UpstreamEvent upstream)
    {
        var turn = new Turn(this, upstream.ConnectionId, upstream.Seq);
        lock (_inProcess)
        {
            if (!_inProcess.TryGetValue(upstream.ConnectionId, out var turns))
                _inProcess[upstream.ConnectionId] = turns = [];
            turns.Add(turn);
        }
        return turn;
    }

    /// <summary>
    /// Waits until the event's turn may have come: its predecessor applied (on any worker) and its
    /// replies sent. When an earlier event of the same connection is in this process (the usual
    /// case: it was right ahead of this one in the queue), this waits for that event to finish, for
    /// as long as it takes: that event's own wait is bounded. Otherwise it reads the store now and
    /// then, for progress made by another worker, until the connection has not moved for
    /// <paramref name="limit"/>. True when the caller should try the event again; false when it
    /// stopped moving.
    /// </summary>
    public async Task<bool> WaitForTurnAsync(UpstreamEvent upstream, TimeSpan limit, CancellationToken cancellationToken)
    {
        if (EarlierInProcess(upstream) is { } earlier)
        {
            await earlier.WaitAsync(cancellationToken);
            return true;
        }

        var started = time.GetTimestamp();
        long? seen = null;
        await using var connection = await store.OpenAsync(cancellationToken);
        while (true)
        {
            var (last, pending) = await ProgressAsync(connection, null, upstream.ConnectionId, cancellationToken);
            if (upstream.Seq <= last || (upstream.FollowsDirectly(last) && !pending))
                return true;
            if (last > seen)
                started = time.GetTimestamp(); // the connection moves: keep waiting
            seen = last;
            if (time.GetElapsedTime(started) >= limit)
                return false;
            await Task.Delay(TurnPollInterval, time, cancellationToken);
            if (EarlierInProcess(upstream) is not null)
                return true; // an earlier event arrived here meanwhile: wait for it instead
        }
    }

    // The events of each connection being processed in this process, in no particular order.
    private readonly Dictionary<string, List<Turn>> _inProcess = [];

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

    private static void EnsureNext(UpstreamEvent upstream, long last, bool repliesPending)
    {
        if (!upstream.FollowsDirectly(last))
            throw new SequenceGapException(upstream.ConnectionId, last, upstream.Seq, outboxPending: false);

        // Replies of the previous event not sent yet: wait, so replies leave in event order.
        if (repliesPending)
            throw new SequenceGapException(upstream.ConnectionId, last, upstream.Seq, outboxPending: true);
    }

    /// <summary>The connection's last applied seq, and whether replies of it still wait in the outbox.</summary>
    private static async Task<(long LastSeq, bool RepliesPending)> ProgressAsync(
        SqliteConnection connection, SqliteTransaction? transaction, string connectionId, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            SELECT (SELECT last_seq FROM gateway_connections WHERE connection_id = $c),
                   EXISTS (SELECT 1 FROM gateway_outbox WHERE connection_id = $c)
            """;
        command.Parameters.AddWithValue("$c", connectionId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (reader.IsDBNull(0) ? 0 : reader.GetInt64(0), reader.GetInt64(1) != 0);
    }

    private static async Task<bool> ForgetGivenUpAsync(SqliteConnection connection, SqliteTransaction transaction, UpstreamEvent upstream, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "DELETE FROM gateway_given_up WHERE connection_id = $c AND seq = $s";
        command.Parameters.AddWithValue("$c", upstream.ConnectionId);
        command.Parameters.AddWithValue("$s", upstream.Seq);
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    private static async Task MarkAppliedAsync(GatewayEventContext context, UpstreamEvent upstream, CancellationToken cancellationToken)
    {
        await using var command = context.Command("""
            INSERT INTO gateway_connections (connection_id, hub_instance_id, last_seq, closed_at, updated_at)
            VALUES ($c, $h, $s, $closed, $now)
            ON CONFLICT (connection_id) DO UPDATE SET last_seq = excluded.last_seq, closed_at = excluded.closed_at, updated_at = excluded.updated_at
            """,
            ("$c", upstream.ConnectionId), ("$h", upstream.HubInstanceId), ("$s", upstream.Seq),
            ("$closed", upstream.IsLast ? context.Now.ToString("O") : null), ("$now", context.Now.ToString("O")));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    [LoggerMessage(LogLevel.Error, "Connection {ConnectionId}: seq {Seq} arrived after it was given up; not applied, the client is told")]
    private partial void LogArrivedAfterGivenUp(string connectionId, long seq);

    [LoggerMessage(LogLevel.Warning, "Connection {ConnectionId}: seq {Seq} arrived after its hub instance {HubInstanceId} was declared dead and the connection expired; skipped")]
    private partial void LogSkippedAfterExpiry(string connectionId, long seq, string hubInstanceId);

    [LoggerMessage(LogLevel.Debug, "Connection {ConnectionId}: seq {Seq} already applied (last {LastSeq}); skipped")]
    private partial void LogDuplicate(string connectionId, long seq, long lastSeq);
}
