using Dapper;
using Npgsql;

namespace SocketStarter.GatewayWorker.Store;

/// <summary>
/// Every SQL statement of the gateway runtime: per-connection progress, the outbox, given-up seqs,
/// hub instances. The application's own tables are its business (see <see cref="GatewayEventContext"/>).
/// </summary>
public sealed class GatewayStore(NpgsqlDataSource dataSource)
{
    public NpgsqlDataSource DataSource => dataSource;

    /// <summary>A connection's progress: its last applied seq, and whether replies of it still wait in the outbox.</summary>
    public readonly record struct Progress(long LastSeq, bool RepliesPending);

    /// <param name="TargetInstance">The hub instance of the reply's target connection; null: every instance (or, for a group, its members').</param>
    public sealed record OutboxRow(long Id, string MessageType, string Body, string? TargetInstance, string? OrderKey);

    /// <summary>
    /// Locks the connection's progress row until the transaction ends (creating it when this is its
    /// first event), so two events of one connection never apply at once, on any worker; returns it.
    /// One round trip.
    /// </summary>
    public async Task<Progress> LockProgressAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, UpstreamEvent upstream, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("""
                    INSERT INTO gateway_connections (connection_id, hub_instance_id, last_seq, closed_at, updated_at)
                    VALUES ($1, $2, 0, NULL, $3) ON CONFLICT (connection_id) DO NOTHING
                    """) { Parameters = { Text(upstream.ConnectionId), Text(upstream.HubInstanceId), new() { Value = now } } },
                new NpgsqlBatchCommand("""
                    SELECT c.last_seq, EXISTS (SELECT 1 FROM gateway_outbox o WHERE o.connection_id = c.connection_id)
                    FROM gateway_connections c WHERE c.connection_id = $1 FOR UPDATE
                    """) { Parameters = { Text(upstream.ConnectionId) } },
            },
        };
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return new Progress(reader.GetInt64(0), reader.GetBoolean(1));
    }

    // Typed, so that a malformed event's null reaches the database (and fails there, by name) rather than the driver.
    private static NpgsqlParameter Text(string? value) => new() { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text, Value = (object?)value ?? DBNull.Value };

    /// <summary>
    /// The usual case in one round trip: when <paramref name="upstream"/> is the connection's next
    /// event (its last applied seq is <paramref name="earliestPredecessor"/> or later but below
    /// this one), records it as applied, holding the connection's row locked until the transaction
    /// ends. A concurrent event of the same connection is waited for (row lock), then re-checked.
    /// Returns whether it went ahead, and whether replies of its predecessors still wait in the
    /// outbox (then the caller must roll back and wait).
    /// </summary>
    /// <param name="earliestPredecessor">The lowest last seq this event may follow: seq - 1, or lower where the hub voided the seqs in between.</param>
    /// <param name="before">Statements without parameters sent first in the same round trip (a batch's savepoint for this event).</param>
    public async Task<(bool Advanced, bool RepliesPending)> TryAdvanceAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, UpstreamEvent upstream, long earliestPredecessor, DateTimeOffset now, CancellationToken cancellationToken, IReadOnlyList<string>? before = null)
    {
        await using var batch = new NpgsqlBatch(connection, transaction);
        foreach (var statement in before ?? [])
            batch.BatchCommands.Add(new NpgsqlBatchCommand(statement));
        foreach (var command in new[]
            {
                Command($"{AdvanceCte} SELECT {Advance}", AdvanceParameters(upstream, earliestPredecessor, now)),
                // A statement of its own, so it sees what committed while the first waited for the
                // row: the predecessor's replies, written in the transaction that released it.
                new NpgsqlBatchCommand("SELECT EXISTS (SELECT 1 FROM gateway_outbox WHERE connection_id = $1)") { Parameters = { Text(upstream.ConnectionId) } },
                // After the progress: GatewayEventContext.RollbackAsync undoes the application's work, not the turn.
                new NpgsqlBatchCommand($"SAVEPOINT {EventSavepoint}"),
            })
        {
            batch.BatchCommands.Add(command);
        }
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        // The statements before return no rows; the first result with a column is the turn's.
        while (reader.FieldCount == 0 && await reader.NextResultAsync(cancellationToken))
        {
        }
        await reader.ReadAsync(cancellationToken);
        var advanced = reader.GetBoolean(0);
        await reader.NextResultAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (advanced, reader.GetBoolean(0));
    }

    // The first event of a connection inserts its row; any later one moves it on. A duplicate, or
    // an event ahead of a missing predecessor, changes nothing. True when it went ahead; its
    // parameters are AdvanceParameters'.
    private const string Advance = """
        EXISTS (SELECT 1 FROM moved) OR EXISTS (SELECT 1 FROM inserted)
        """;

    private const string AdvanceCte = """
        WITH moved AS (
            UPDATE gateway_connections c SET last_seq = $3, closed_at = $4, updated_at = $5
            WHERE c.connection_id = $1 AND c.last_seq >= $6 AND c.last_seq < $3
            RETURNING 1
        ), inserted AS (
            INSERT INTO gateway_connections (connection_id, hub_instance_id, last_seq, closed_at, updated_at)
            SELECT $1, $2, $3, $4, $5 WHERE $6 <= 0 AND NOT EXISTS (SELECT 1 FROM moved)
            ON CONFLICT (connection_id) DO NOTHING
            RETURNING 1
        )
        """;

    private static NpgsqlParameter[] AdvanceParameters(UpstreamEvent upstream, long earliestPredecessor, DateTimeOffset now) =>
    [
        Text(upstream.ConnectionId), Text(upstream.HubInstanceId), new() { Value = upstream.Seq },
        new() { NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz, Value = upstream.IsLast ? now : DBNull.Value },
        new() { Value = now }, new() { Value = earliestPredecessor },
    ];

    private static NpgsqlBatchCommand Command(string sql, NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddRange(parameters);
        return command;
    }

    /// <summary>The SQLSTATE of <c>gateway_require_turn</c>: a turn taken with the commit was not the event's.</summary>
    internal const string TurnNotNext = "GW001";

    /// <summary>
    /// The turn, taken in the commit's round trip after the application's work, for an event whose
    /// predecessor this process applied itself (<see cref="UpstreamEventProcessor"/>): the same
    /// advance as <see cref="TryAdvanceAsync"/>, then, in a statement of its own (so that it sees what
    /// committed while the first waited for the row), that no reply of the connection waits in the
    /// outbox. Either failing raises <see cref="TurnNotNext"/>, so the commit after them does not run.
    /// </summary>
    private static IEnumerable<NpgsqlBatchCommand> TurnAtCommitCommands(UpstreamEvent upstream, DateTimeOffset now)
    {
        yield return Command($"{AdvanceCte} SELECT gateway_require_turn({Advance}, $1, $3)", AdvanceParameters(upstream, upstream.EarliestPredecessor, now));
        yield return new NpgsqlBatchCommand(
            "SELECT gateway_require_turn(NOT EXISTS (SELECT 1 FROM gateway_outbox WHERE connection_id = $1), $1, $2)")
            { Parameters = { Text(upstream.ConnectionId), new() { Value = upstream.Seq } } };
    }

    /// <summary>The savepoint after an event's turn is taken, before the application's work.</summary>
    internal const string EventSavepoint = "gateway_event";

    /// <summary>Sets <see cref="EventSavepoint"/> where the turn was taken some other way.</summary>
    internal static async Task SetEventSavepointAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SAVEPOINT {EventSavepoint}", connection);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Records <paramref name="seq"/> as the connection's last (for its last event, the connection as closed).</summary>
    public Task MarkAppliedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, UpstreamEvent upstream, long seq, DateTimeOffset now, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO gateway_connections (connection_id, hub_instance_id, last_seq, closed_at, updated_at)
            VALUES (@connectionId, @hubInstanceId, @seq, @closedAt, @now)
            ON CONFLICT (connection_id) DO UPDATE SET last_seq = excluded.last_seq, closed_at = excluded.closed_at, updated_at = excluded.updated_at
            """,
            new
            {
                connectionId = upstream.ConnectionId,
                hubInstanceId = upstream.HubInstanceId,
                seq,
                closedAt = upstream.IsLast ? now : (DateTimeOffset?)null,
                now,
            }, transaction, cancellationToken: cancellationToken));

    /// <summary>Remembers predecessors an event stopped waiting for: should one still come, its client is told.</summary>
    public Task RememberGivenUpAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string connectionId, IReadOnlyCollection<long> seqs, DateTimeOffset now, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO gateway_given_up (connection_id, seq, given_up_at)
            SELECT @connectionId, s, @now FROM unnest(@seqs) AS s ON CONFLICT DO NOTHING
            """, new { connectionId, seqs = seqs.ToArray(), now }, transaction, cancellationToken: cancellationToken));

    /// <summary>True when <paramref name="seq"/> had been given up (and now no longer is).</summary>
    public async Task<bool> ForgetGivenUpAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string connectionId, long seq, CancellationToken cancellationToken) =>
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM gateway_given_up WHERE connection_id = @connectionId AND seq = @seq",
            new { connectionId, seq }, transaction, cancellationToken: cancellationToken)) > 0;

    /// <summary>A change to a group's members: <paramref name="Joined"/> true adds the connection, false removes it.</summary>
    public readonly record struct MemberChange(string Group, string ConnectionId, bool Joined);

    /// <summary>
    /// Writes an event's replies and its changes to group members (for its last event: the
    /// connection out of every group) in one round trip; returns the replies' ids, in order, each
    /// with the hub instance of its target connection (null: none, or not known).
    /// </summary>
    /// <param name="commit">Also commits the transaction, in the same round trip (the statements
    /// after a failing one are not run, so a failed write is never committed). <paramref name="transaction"/>
    /// is then completed: it must not be committed again.</param>
    /// <param name="flushKeys">With <paramref name="commit"/>: the order keys of the replies, whose
    /// ordered flush (<see cref="FlushOrderedAsync"/>) takes its locks and reads its rows in the
    /// same round trip, after the commit, saving the flush one; what it read is returned, and the
    /// locks are held until that flush lets them go. The flush's own rows are this event's
    /// (<paramref name="connectionId"/>, <paramref name="seq"/>).</param>
    /// <param name="turnAtCommit">With <paramref name="commit"/>: the event's turn, not taken yet,
    /// is taken first in the same round trip; when it is not the event's, this throws a
    /// <see cref="PostgresException"/> with <see cref="TurnNotNext"/> and nothing is committed.</param>
    public async Task<(IReadOnlyList<(long Id, string? TargetInstance)> Written, TakenFlush? Taken)> EnqueueAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string connectionId, long seq,
        IReadOnlyList<(string MessageType, string Body, string? OrderKey, string? TargetConnection)> replies,
        IReadOnlyCollection<MemberChange> members, bool connectionClosed, DateTimeOffset now, CancellationToken cancellationToken, bool commit = false,
        IReadOnlyCollection<string>? flushKeys = null, UpstreamEvent? turnAtCommit = null)
    {
        await using var batch = new NpgsqlBatch(connection, transaction);
        if (turnAtCommit is { } turn)
        {
            if (!commit)
                throw new ArgumentException("A turn is taken with the commit only.", nameof(turnAtCommit));
            foreach (var command in TurnAtCommitCommands(turn, now))
                batch.BatchCommands.Add(command);
        }
        if (members.Count > 0)
        {
            var joined = members.Where(m => m.Joined).ToList();
            var left = members.Where(m => !m.Joined).ToList();
            if (joined.Count > 0)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                    INSERT INTO gateway_group_members (group_name, connection_id, hub_instance_id)
                    SELECT m.group_name, m.connection_id, (SELECT c.hub_instance_id FROM gateway_connections c WHERE c.connection_id = m.connection_id)
                    FROM unnest($1::text[], $2::text[]) AS m (group_name, connection_id)
                    ON CONFLICT (group_name, connection_id) DO UPDATE SET hub_instance_id = excluded.hub_instance_id
                    """) { Parameters = { new() { Value = joined.Select(m => m.Group).ToArray() }, new() { Value = joined.Select(m => m.ConnectionId).ToArray() } } });
            }
            if (left.Count > 0)
            {
                batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                    DELETE FROM gateway_group_members g USING unnest($1::text[], $2::text[]) AS m (group_name, connection_id)
                    WHERE g.group_name = m.group_name AND g.connection_id = m.connection_id
                    """) { Parameters = { new() { Value = left.Select(m => m.Group).ToArray() }, new() { Value = left.Select(m => m.ConnectionId).ToArray() } } });
            }
        }
        if (connectionClosed)
            batch.BatchCommands.Add(new NpgsqlBatchCommand("DELETE FROM gateway_group_members WHERE connection_id = $1") { Parameters = { Text(connectionId) } });
        if (replies.Count > 0)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("""
                INSERT INTO gateway_outbox (connection_id, seq, message_type, body, order_key, target_instance, created_at)
                SELECT $1, $2, r.message_type, r.body, r.order_key,
                       (SELECT c.hub_instance_id FROM gateway_connections c WHERE c.connection_id = r.target_connection), $3
                FROM unnest($4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY AS r (message_type, body, order_key, target_connection, n)
                ORDER BY r.n
                RETURNING id, target_instance
                """)
            {
                Parameters =
                {
                    Text(connectionId), new() { Value = seq }, new() { Value = now },
                    new() { Value = replies.Select(r => r.MessageType).ToArray() },
                    new() { Value = replies.Select(r => r.Body).ToArray() },
                    new() { Value = replies.Select(r => r.OrderKey).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text },
                    new() { Value = replies.Select(r => r.TargetConnection).ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text },
                },
            });
        }
        if (commit)
            batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        var taken = commit && flushKeys is { Count: > 0 } ? new TakenFlush() : null;
        var lockAt = -1;
        if (taken is not null)
        {
            // The commit's time by the same clock as the flush's number: the lock's wait is the difference.
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS committed"));
            lockAt = batch.BatchCommands.Count;
            foreach (var command in TakeCommands(flushKeys!.Distinct(StringComparer.Ordinal).ToArray(),
                "EXISTS (SELECT 1 FROM gateway_outbox WHERE connection_id = $1 AND seq = $2 AND order_key IS NOT NULL)",
                Text(connectionId), new NpgsqlParameter { Value = seq }))
            {
                batch.BatchCommands.Add(command);
            }
        }
        if (batch.BatchCommands.Count == 0)
            return ([], null);

        var written = new List<(long Id, string? TargetInstance)>(replies.Count);
        try
        {
            await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
            do
            {
                // The outbox insert returns an id and a target instance; the rest are the flush's.
                if (reader.FieldCount == 2 && reader.GetName(0) == "id")
                {
                    while (await reader.ReadAsync(cancellationToken))
                        written.Add((reader.GetInt64(0), reader.IsDBNull(1) ? null : reader.GetString(1)));
                }
                else if (taken is not null)
                {
                    await taken.ReadAsync(reader, cancellationToken);
                }
            }
            while (await reader.NextResultAsync(cancellationToken));
        }
        catch (Exception ex) when (taken is not null && (ex is not PostgresException { BatchCommand: { } failed } || batch.BatchCommands.IndexOf(failed) >= lockAt))
        {
            // Past the commit: the locks may be held (a failure before it ran nothing after it).
            await ReleaseQuietlyAsync(connection);
            throw;
        }
        return (written.OrderBy(r => r.Id).ToList(), taken);
    }

    /// <summary>
    /// Publishes every committed reply of some order keys (groups), oldest first, then deletes them,
    /// holding the keys' advisory locks throughout: the flushes of one key, on any worker, take
    /// turns, and each finds all that committed before it. So a group's replies leave in the
    /// order their events committed (for a chat room: in seq order). The locks are taken in one
    /// order (by their hash) whatever the order of the keys, so flushes of several keys never wait
    /// for each other in a circle.
    /// <para>
    /// A flush whose own rows (<paramref name="own"/>) are gone once it holds the locks lets them
    /// go in the same round trip and sends nothing: the flush before it sent them (a group's rows
    /// are deleted only by the flush that sent them), and every row still there has a flush of its
    /// own still to come (its event's, or the redelivery's, or the sweep's). Such a flush holds the
    /// locks only while the server runs its statements, not across a round trip to this process.
    /// Under load, when several events of a group commit while one flush publishes, the next flush
    /// sends all their rows and the others find theirs gone: they no longer each take the group's
    /// lock through two round trips, which is what made the group's flushes queue. The locks are
    /// the session's (not the transaction's) so that they can be let go early; every way out lets
    /// them go (the last round trip, or <see cref="ReleaseQuietlyAsync"/>), and a session that dies
    /// takes them with it.
    /// </para>
    /// Returns false when it found its own rows sent and sent nothing (the caller still sends its
    /// replies without a key, which no other flush sends); true when it sent the keys' rows.
    /// </summary>
    /// <param name="own">The caller's rows of these keys: when none of them is left, the flush sends nothing.</param>
    /// <param name="publish">Sends the rows (of every key, in the order they were written), given
    /// the flush's number (the database's clock in microseconds, read under the locks, so at least
    /// that of every earlier flush of the same keys) and the hub instances that hold members of each group; returns the ids of the rows it sent and
    /// of any other outbox row sent meanwhile, all deleted in the commit.</param>
    public static async Task<bool> FlushOrderedAsync(NpgsqlConnection connection, IReadOnlyCollection<string> orderKeys, IReadOnlyCollection<long> own, Func<long, IReadOnlyList<OutboxRow>, ILookup<string, string?>, Task<IReadOnlyCollection<long>>> publish, CancellationToken cancellationToken, TakenFlush? taken = null)
    {
        // Two round trips: the locks, the rows and the members at once (outside a transaction: each
        // statement sees what committed before it), unless the commit's round trip took them
        // already (EnqueueAsync); then the delete, its commit and the release.
        try
        {
            if (taken is null)
            {
                var keys = orderKeys.Distinct(StringComparer.Ordinal).ToArray();
                taken = new TakenFlush();
                await using var take = new NpgsqlBatch(connection);
                foreach (var command in TakeCommands(keys, "EXISTS (SELECT 1 FROM gateway_outbox WHERE id = ANY($1))",
                    new NpgsqlParameter { Value = own.ToArray(), NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Bigint }))
                {
                    take.BatchCommands.Add(command);
                }
                await using var reader = await take.ExecuteReaderAsync(cancellationToken);
                do
                {
                    await taken.ReadAsync(reader, cancellationToken);
                }
                while (await reader.NextResultAsync(cancellationToken));
            }
            if (taken.Released)
                return false;
            if (taken.Flush <= 0)
                throw new InvalidOperationException("The ordered flush read no number of its own.");
            var sent = await publish(taken.Flush, taken.Rows, taken.Members.ToLookup(m => m.Group, m => m.Instance, StringComparer.Ordinal));
            await using var finish = new NpgsqlBatch(connection)
            {
                BatchCommands =
                {
                    new NpgsqlBatchCommand("BEGIN"),
                    // Losing this delete to a crash only sends the replies again.
                    new NpgsqlBatchCommand("SET LOCAL synchronous_commit TO OFF"),
                    new NpgsqlBatchCommand("DELETE FROM gateway_outbox WHERE id = ANY($1)") { Parameters = { new() { Value = sent.ToArray() } } },
                    new NpgsqlBatchCommand("COMMIT"),
                    // After the commit: the next flush of the keys finds the rows gone.
                    new NpgsqlBatchCommand("SELECT pg_advisory_unlock_all()"),
                },
            };
            await finish.ExecuteNonQueryAsync(cancellationToken);
        }
        catch
        {
            await ReleaseQuietlyAsync(connection);
            throw;
        }
        return true;
    }

    /// <summary>
    /// What a group's flush reads under its keys' locks: its number, the keys' rows and the
    /// groups' member instances, and whether it let the locks go at once (its own rows were sent
    /// by an earlier flush). Read from the flush's first round trip, or from the commit's where
    /// that took the locks too (<see cref="EnqueueAsync"/>).
    /// </summary>
    public sealed class TakenFlush
    {
        public long Flush { get; private set; }
        public List<OutboxRow> Rows { get; } = [];
        public List<(string Group, string? Instance)> Members { get; } = [];
        public bool Released { get; private set; }

        /// <summary>How long the locks were waited for, by the database's clock: known where the commit's round trip took them.</summary>
        public TimeSpan LockWait { get; private set; }

        private long _committed;

        /// <summary>Reads the current result when it is one of the take's; told apart by their columns.</summary>
        internal async Task<bool> ReadAsync(NpgsqlDataReader reader, CancellationToken cancellationToken)
        {
            // The number's, the commit's time and the release's one column by its name; the rows'
            // five, the members' two (named apart from the outbox insert's id); the locks' one is skipped.
            var first = reader.FieldCount > 0 ? reader.GetName(0) : "";
            switch (reader.FieldCount, first)
            {
                case (1, "committed"):
                    if (await reader.ReadAsync(cancellationToken))
                        _committed = reader.GetInt64(0);
                    return true;
                case (1, "flush"):
                    if (await reader.ReadAsync(cancellationToken))
                        Flush = reader.GetInt64(0);
                    if (_committed > 0 && Flush > _committed)
                        LockWait = TimeSpan.FromMicroseconds(Flush - _committed);
                    return true;
                case (1, "released"):
                    if (await reader.ReadAsync(cancellationToken))
                        Released = reader.GetBoolean(0);
                    return true;
                case (5, _):
                    while (await reader.ReadAsync(cancellationToken))
                        Rows.Add(new OutboxRow(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetString(4)));
                    return true;
                case (2, "group_name"):
                    while (await reader.ReadAsync(cancellationToken))
                        Members.Add((reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1)));
                    return true;
                case (1, "locked"):
                    return true;
                default:
                    return false;
            }
        }
    }

    /// <summary>
    /// The statements of a flush's first round trip, for <paramref name="keys"/>: their locks, the
    /// flush's number, the rows, the members, and the release when <paramref name="ownLeft"/> (a
    /// boolean expression: whether any of the flush's own rows is still there) says none is.
    /// </summary>
    private static IEnumerable<NpgsqlBatchCommand> TakeCommands(string[] keys, string ownLeft, params NpgsqlParameter[] ownLeftParameters)
    {
        var groups = keys.Select(GatewayEventContext.GroupOf).OfType<string>().ToArray();
        // One key (the usual case: an event writes to one group) by plain equality, the
        // statements the flush always had; several through arrays.
        var single = keys.Length == 1;
        NpgsqlParameter Keys(string[] values) => single
            ? new() { Value = values.Length > 0 ? values[0] : DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text }
            : new() { Value = values, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Text };
        yield return new NpgsqlBatchCommand(single
            ? "SELECT pg_advisory_lock(hashtextextended($1, 0)) AS locked"
            : """
                SELECT pg_advisory_lock(h) AS locked
                FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k ORDER BY h) AS keys
                """) { Parameters = { Keys(keys) } };
        // The flush's number, read under the locks, so one key's flushes are numbered in the order
        // they hold its lock: the database server's clock in microseconds. Not a sequence: a
        // sequence can go back (its last values lost in a crash with commits not yet on disk, a
        // restore from a backup, a failover to a replica that lagged), and a hub would then drop
        // a key's new commands as late copies; the clock carries on through all of those.
        yield return new NpgsqlBatchCommand("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint AS flush");
        // A statement after the locks: it sees every row committed by the flushes and events before.
        yield return new NpgsqlBatchCommand(single
            ? "SELECT id, message_type, body, target_instance, order_key FROM gateway_outbox WHERE order_key = $1 ORDER BY id"
            : "SELECT id, message_type, body, target_instance, order_key FROM gateway_outbox WHERE order_key = ANY($1) ORDER BY id") { Parameters = { Keys(keys) } };
        // A statement after the rows: it sees every join committed before any of them.
        yield return new NpgsqlBatchCommand(single
            ? "SELECT DISTINCT group_name, hub_instance_id AS member_instance FROM gateway_group_members WHERE group_name = $1"
            : "SELECT DISTINCT group_name, hub_instance_id AS member_instance FROM gateway_group_members WHERE group_name = ANY($1)") { Parameters = { Keys(groups) } };
        // Its own rows already sent: the locks go at once (a CASE runs only the branch it takes).
        var release = new NpgsqlBatchCommand($"""
            SELECT CASE WHEN {ownLeft} THEN false
                        ELSE (SELECT count(*) FROM (SELECT pg_advisory_unlock_all()) AS unlocked) >= 0 END AS released
            """);
        release.Parameters.AddRange(ownLeftParameters);
        yield return release;
    }

    /// <summary>
    /// After a flush failed: ends its transaction, if one is open, and lets its locks go, so that
    /// the connection goes back to the pool holding nothing (on a broken connection the server ends
    /// the session, and the locks go with it).
    /// </summary>
    internal static async Task ReleaseQuietlyAsync(NpgsqlConnection connection)
    {
        try
        {
            await using var release = new NpgsqlBatch(connection)
            {
                BatchCommands = { new NpgsqlBatchCommand("ROLLBACK"), new NpgsqlBatchCommand("SELECT pg_advisory_unlock_all()") },
            };
            await release.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
        {
            // A broken connection is dropped by the pool anyway, and its session's locks with it.
        }
    }

    /// <summary>
    /// Deletes sent replies on a connection already open. Without waiting for the disk: should the
    /// delete be lost, the replies are sent again, which delivery at least once allows.
    /// </summary>
    public static async Task DeleteOutboxAsync(NpgsqlConnection connection, long[] ids, CancellationToken cancellationToken)
    {
        if (ids.Length == 0)
            return;
        // In a transaction of its own: SET LOCAL outside one is ignored (with a warning in the
        // server's log), and the DELETE would wait for its own WAL flush. Plain BEGIN and COMMIT,
        // so that it stays one round trip.
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("BEGIN"),
                new NpgsqlBatchCommand("SET LOCAL synchronous_commit TO OFF"),
                new NpgsqlBatchCommand("DELETE FROM gateway_outbox WHERE id = ANY($1)") { Parameters = { new() { Value = ids } } },
                new NpgsqlBatchCommand("COMMIT"),
            },
        };
        try
        {
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }
        catch
        {
            await RollbackQuietlyAsync(connection);
            throw;
        }
    }

    /// <summary>Never hand a connection back to the pool inside a transaction begun with a plain BEGIN.</summary>
    private static async Task RollbackQuietlyAsync(NpgsqlConnection connection)
    {
        try
        {
            await using var rollback = new NpgsqlCommand("ROLLBACK", connection);
            await rollback.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (NpgsqlException)
        {
            // A broken connection is dropped by the pool anyway.
        }
    }

    /// <summary>The replies waiting for one connection, in the order they were written.</summary>
    public async Task<IReadOnlyList<OutboxRow>> OutboxOfAsync(string connectionId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<OutboxRow>(new CommandDefinition(
            "SELECT id, message_type AS MessageType, body, target_instance AS TargetInstance, order_key AS OrderKey FROM gateway_outbox WHERE connection_id = @connectionId ORDER BY id",
            new { connectionId }, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>Replies written before <paramref name="before"/> and still there, oldest first.</summary>
    public async Task<IReadOnlyList<OutboxRow>> OutboxOlderThanAsync(DateTimeOffset before, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<OutboxRow>(new CommandDefinition(
            "SELECT id, message_type AS MessageType, body, target_instance AS TargetInstance, order_key AS OrderKey FROM gateway_outbox WHERE created_at < @before ORDER BY id LIMIT @limit",
            new { before, limit }, cancellationToken: cancellationToken))).AsList();
    }

    public async Task DeleteOutboxAsync(IEnumerable<long> ids, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "DELETE FROM gateway_outbox WHERE id = ANY(@ids)", new { ids = ids.ToArray() }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// When the instance of connection <c>c</c> was last heard from: its latest heartbeat or the
    /// latest event applied for any of its connections, whichever is later.
    /// </summary>
    private const string LastHeardSql = """
        GREATEST((SELECT h.last_seen FROM gateway_hub_instances h WHERE h.hub_instance_id = c.hub_instance_id),
                 (SELECT MAX(o.updated_at) FROM gateway_connections o WHERE o.hub_instance_id = c.hub_instance_id))
        """;

    /// <param name="heardAt">When this worker heard it, not the hub's own clock: a hub whose clock runs late must not look dead.</param>
    public async Task RecordHeartbeatAsync(string hubInstanceId, int connectionCount, TimeSpan interval, DateTimeOffset heardAt, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            INSERT INTO gateway_hub_instances (hub_instance_id, connection_count, interval_ms, last_seen)
            VALUES (@hubInstanceId, @connectionCount, @intervalMs, @heardAt)
            ON CONFLICT (hub_instance_id) DO UPDATE SET connection_count = excluded.connection_count,
                interval_ms = excluded.interval_ms, last_seen = excluded.last_seen
            WHERE excluded.last_seen > gateway_hub_instances.last_seen
            """, new { hubInstanceId, connectionCount, intervalMs = (long)interval.TotalMilliseconds, heardAt }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Open connections whose hub instance has not been heard from since <paramref name="silentSince"/>:
    /// no heartbeat, and no event of any of its connections applied. Events of a dead instance still
    /// queued behind a backlog keep it "heard from" until the last of them is applied, so expiry
    /// does not overtake them.
    /// </summary>
    public async Task<IReadOnlyList<(string ConnectionId, string HubInstanceId)>> SilentConnectionsAsync(DateTimeOffset silentSince, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return (await connection.QueryAsync<(string, string)>(new CommandDefinition($"""
            SELECT c.connection_id, c.hub_instance_id FROM gateway_connections c
            WHERE c.closed_at IS NULL AND {LastHeardSql} <= @silentSince
            ORDER BY c.hub_instance_id, c.connection_id
            LIMIT @limit
            """, new { silentSince, limit }, cancellationToken: cancellationToken))).AsList();
    }

    /// <summary>In a transaction that holds the connection's row: still open, and its instance still silent?</summary>
    public async Task<bool> IsOpenAndSilentAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, string connectionId, DateTimeOffset silentSince, CancellationToken cancellationToken) =>
        await connection.ExecuteScalarAsync<bool?>(new CommandDefinition($"""
            SELECT c.closed_at IS NULL AND {LastHeardSql} <= @silentSince
            FROM gateway_connections c WHERE c.connection_id = @connectionId
            """, new { connectionId, silentSince }, transaction, cancellationToken: cancellationToken)) == true;

    /// <summary>Forgets instances silent since <paramref name="silentSince"/> that have no open connection left.</summary>
    public async Task ForgetSilentInstancesAsync(DateTimeOffset silentSince, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            DELETE FROM gateway_hub_instances h
            WHERE h.last_seen <= @silentSince
              AND NOT EXISTS (SELECT 1 FROM gateway_connections c WHERE c.hub_instance_id = h.hub_instance_id AND c.closed_at IS NULL)
            """, new { silentSince }, cancellationToken: cancellationToken));
    }

    /// <summary>Forgets connections closed, and seqs given up, before <paramref name="before"/>.</summary>
    public async Task ForgetClosedAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition("""
            DELETE FROM gateway_connections WHERE closed_at IS NOT NULL AND closed_at < @before;
            DELETE FROM gateway_given_up WHERE given_up_at < @before;
            """, new { before }, cancellationToken: cancellationToken));
    }

    public async Task PingAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("SELECT 1");
        await command.ExecuteScalarAsync(cancellationToken);
    }
}
