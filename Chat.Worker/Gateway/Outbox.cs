using System.Collections.Frozen;
using System.Text.Json;
using MassTransit;
using Microsoft.Data.Sqlite;
using SocketStarter.ChatWorker.Store;
using SocketStarter.Messages;

namespace SocketStarter.ChatWorker.Gateway;

/// <summary>
/// Publishes the replies that applied events left in <c>gateway_outbox</c>, in the order they were
/// written, then deletes them. Delivery downstream is at least once: a worker killed between
/// publish and delete publishes them again when its event is redelivered; clients drop repeats by
/// the sequence numbers the application puts in its payloads.
/// </summary>
public sealed partial class Outbox(SqliteStore store, StoreWriter writer, TimeProvider time, ILogger<Outbox> logger)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static readonly FrozenDictionary<string, Type> CommandTypes = new[]
    {
        typeof(SendToConnections), typeof(SendToGroup), typeof(SendToUser), typeof(SendToAll),
        typeof(AddToGroup), typeof(RemoveFromGroup), typeof(CloseConnection),
    }.ToFrozenDictionary(t => t.Name);

    /// <summary>Sends every reply waiting for one connection.</summary>
    public async Task FlushAsync(string connectionId, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        await using var connection = await store.OpenAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT id, message_type, body FROM gateway_outbox WHERE connection_id = $c ORDER BY id";
        select.Parameters.AddWithValue("$c", connectionId);
        await PublishAndDeleteAsync(select, publisher, cancellationToken);
    }

    /// <summary>
    /// Sends replies left behind longer than <paramref name="age"/>: those of an event whose
    /// processing failed after commit and that no redelivery will flush.
    /// </summary>
    public async Task<int> SweepAsync(TimeSpan age, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        await using var connection = await store.OpenAsync(cancellationToken);
        await using var select = connection.CreateCommand();
        select.CommandText = "SELECT id, message_type, body FROM gateway_outbox WHERE created_at < $before ORDER BY id LIMIT 1000";
        select.Parameters.AddWithValue("$before", (time.GetUtcNow() - age).ToString("O"));
        var count = await PublishAndDeleteAsync(select, publisher, cancellationToken);
        if (count > 0)
            LogSwept(count);
        return count;
    }

    private async Task<int> PublishAndDeleteAsync(SqliteCommand select, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        var rows = new List<(long Id, string Type, string Body)>();
        await using (var reader = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
                rows.Add((reader.GetInt64(0), reader.GetString(1), reader.GetString(2)));
        }

        if (rows.Count == 0)
            return 0;

        foreach (var (_, typeName, body) in rows)
        {
            var type = CommandTypes[typeName];
            var command = JsonSerializer.Deserialize(body, type, Json)!;
            await publisher.Publish(command, type, cancellationToken);
        }

        var ids = string.Join(',', rows.Select(r => r.Id));
        await writer.WriteAsync(async (c, transaction, ct) =>
        {
            await using var delete = c.CreateCommand();
            delete.Transaction = transaction;
            delete.CommandText = $"DELETE FROM gateway_outbox WHERE id IN ({ids})";
            await delete.ExecuteNonQueryAsync(ct);
        }, cancellationToken);
        return rows.Count;
    }

    [LoggerMessage(LogLevel.Information, "Sent {Count} replies left in the outbox")]
    private partial void LogSwept(int count);
}
