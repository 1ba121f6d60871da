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

    private static readonly TimeSpan TurnPollInterval = TimeSpan.FromMilliseconds(5);

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
    /// Waits, up to <paramref name="limit"/>, until the event's turn comes (its predecessor applied,
    /// on any worker, and its replies sent), reading the store now and then. True when it came.
    /// </summary>
    public async Task<bool> WaitForTurnAsync(UpstreamEvent upstream, TimeSpan limit, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        await using var connection = await store.OpenAsync(cancellationToken);
        while (true)
        {
            var (last, pending) = await ProgressAsync(connection, null, upstream.ConnectionId, cancellationToken);
            if (upstream.Seq <= last || (upstream.FollowsDirectly(last) && !pending))
                return true;
            if (time.GetElapsedTime(started) >= limit)
                return false;
            await Task.Delay(TurnPollInterval, time, cancellationToken);
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
