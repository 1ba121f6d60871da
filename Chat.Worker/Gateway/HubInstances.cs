using SocketStarter.ChatWorker.Store;
using SocketStarter.Messages;

namespace SocketStarter.ChatWorker.Gateway;

/// <summary>The hub instances that said they are alive, and when; and the connections of those that went silent.</summary>
public sealed class HubInstances(SqliteStore store, StoreWriter writer, TimeProvider time)
{
    /// <summary>
    /// When the instance of connection <c>c</c> was last heard from: its latest heartbeat or the
    /// latest event applied for any of its connections, whichever is later (ISO-8601 UTC text).
    /// </summary>
    public const string LastHeardSql = """
        MAX(COALESCE((SELECT h.last_seen FROM gateway_hub_instances h WHERE h.hub_instance_id = c.hub_instance_id), ''),
            (SELECT MAX(o.updated_at) FROM gateway_connections o WHERE o.hub_instance_id = c.hub_instance_id))
        """;

    public Task RecordAsync(HubInstanceHeartbeat heartbeat, CancellationToken cancellationToken) =>
        writer.WriteAsync(async (connection, transaction, ct) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                INSERT INTO gateway_hub_instances (hub_instance_id, connection_count, interval_ms, last_seen)
                VALUES ($h, $n, $i, $at)
                ON CONFLICT (hub_instance_id) DO UPDATE SET connection_count = excluded.connection_count,
                    interval_ms = excluded.interval_ms, last_seen = excluded.last_seen
                WHERE excluded.last_seen > gateway_hub_instances.last_seen
                """;
            command.Parameters.AddWithValue("$h", heartbeat.HubInstanceId);
            command.Parameters.AddWithValue("$n", heartbeat.ConnectionCount);
            command.Parameters.AddWithValue("$i", (long)heartbeat.Interval.TotalMilliseconds);
            // When this worker heard it, not the hub's own clock: a hub whose clock runs late must not look dead.
            command.Parameters.AddWithValue("$at", time.GetUtcNow().ToString("O"));
            await command.ExecuteNonQueryAsync(ct);
        }, cancellationToken);

    /// <summary>
    /// Open connections whose hub instance has not been heard from since <paramref name="silentSince"/>:
    /// no heartbeat, and no event of any of its connections applied. Events of a dead instance still
    /// queued behind a backlog keep it "heard from" until the last of them is applied, so expiry
    /// does not overtake them.
    /// </summary>
    public async Task<IReadOnlyList<(string ConnectionId, string HubInstanceId)>> SilentConnectionsAsync(
        DateTimeOffset silentSince, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await store.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT c.connection_id, c.hub_instance_id
            FROM gateway_connections c
            WHERE c.closed_at IS NULL AND (
            """ + LastHeardSql + """
            ) <= $silentSince
            ORDER BY c.hub_instance_id, c.connection_id
            LIMIT $limit
            """;
        command.Parameters.AddWithValue("$silentSince", silentSince.ToUniversalTime().ToString("O"));
        command.Parameters.AddWithValue("$limit", limit);
        var found = new List<(string, string)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            found.Add((reader.GetString(0), reader.GetString(1)));
        return found;
    }

    /// <summary>Forgets instances silent since <paramref name="silentSince"/> that have no open connection left.</summary>
    public Task ForgetSilentAsync(DateTimeOffset silentSince, CancellationToken cancellationToken) =>
        writer.WriteAsync(async (connection, transaction, ct) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                DELETE FROM gateway_hub_instances
                WHERE last_seen <= $silentSince
                  AND NOT EXISTS (SELECT 1 FROM gateway_connections c
                                  WHERE c.hub_instance_id = gateway_hub_instances.hub_instance_id AND c.closed_at IS NULL)
                """;
            command.Parameters.AddWithValue("$silentSince", silentSince.ToUniversalTime().ToString("O"));
            await command.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
}
