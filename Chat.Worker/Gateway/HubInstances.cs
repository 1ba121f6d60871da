using SocketStarter.ChatWorker.Store;
using SocketStarter.Messages;

namespace SocketStarter.ChatWorker.Gateway;

/// <summary>The hub instances that said they are alive, and when.</summary>
public sealed class HubInstances(StoreWriter writer)
{
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
            command.Parameters.AddWithValue("$at", heartbeat.SentAt.ToUniversalTime().ToString("O"));
            await command.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
}
