using System.Collections.Frozen;
using System.Text.Json;
using MassTransit;
using SocketStarter.GatewayWorker.Store;
using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// Publishes the replies that applied events left in <c>gateway_outbox</c>, in the order they were
/// written, then deletes them. Delivery downstream is at least once: a worker killed between
/// publish and delete publishes them again when its event is redelivered; clients drop repeats by
/// the sequence numbers the application puts in its payloads.
/// </summary>
public sealed partial class Outbox(GatewayStore store, TimeProvider time, ILogger<Outbox> logger)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static readonly FrozenDictionary<string, Type> CommandTypes = new[]
    {
        typeof(SendToConnections), typeof(SendToGroup), typeof(SendToUser), typeof(SendToAll),
        typeof(AddToGroup), typeof(RemoveFromGroup), typeof(CloseConnection),
    }.ToFrozenDictionary(t => t.Name);

    /// <summary>
    /// Sends the replies an event just committed, in the order it sent them, on the event's own
    /// connection (still open): one for a connection, a user or everyone straight from memory, then
    /// deleted; one for a group through the group's ordered flush, which also sends what other
    /// events committed for the group before it.
    /// </summary>
    internal async Task SendCommittedAsync(Npgsql.NpgsqlConnection connection, IReadOnlyList<GatewayEventContext.Reply> replies, long[] ids, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        var direct = new List<long>();
        var flushed = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < replies.Count; i++)
        {
            var reply = replies[i];
            if (reply.OrderKey is null)
            {
                await publisher.Publish(reply.Command, reply.Type, cancellationToken);
                direct.Add(ids[i]);
            }
            else if (flushed.Add(reply.OrderKey))
            {
                await GatewayStore.FlushOrderedAsync(connection, reply.OrderKey, row => PublishAsync(row, publisher, cancellationToken), cancellationToken);
            }
        }
        await GatewayStore.DeleteOutboxAsync(connection, [.. direct], cancellationToken);
    }

    private static Task PublishAsync(GatewayStore.OutboxRow row, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        var type = CommandTypes[row.MessageType];
        return publisher.Publish(JsonSerializer.Deserialize(row.Body, type, Json)!, type, cancellationToken);
    }

    /// <summary>Sends every reply waiting for one connection.</summary>
    public async Task FlushAsync(string connectionId, IPublishEndpoint publisher, CancellationToken cancellationToken) =>
        await PublishAndDeleteAsync(await store.OutboxOfAsync(connectionId, cancellationToken), publisher, cancellationToken);

    /// <summary>
    /// Sends replies left behind longer than <paramref name="age"/>: those of an event whose
    /// processing failed after commit and that no redelivery will flush.
    /// </summary>
    public async Task<int> SweepAsync(TimeSpan age, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        var count = await PublishAndDeleteAsync(await store.OutboxOlderThanAsync(time.GetUtcNow() - age, 1000, cancellationToken), publisher, cancellationToken);
        if (count > 0)
            LogSwept(count);
        return count;
    }

    private async Task<int> PublishAndDeleteAsync(IReadOnlyList<GatewayStore.OutboxRow> rows, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
            return 0;

        foreach (var row in rows)
        {
            var type = CommandTypes[row.MessageType];
            var command = JsonSerializer.Deserialize(row.Body, type, Json)!;
            await publisher.Publish(command, type, cancellationToken);
        }

        await store.DeleteOutboxAsync(rows.Select(r => r.Id), cancellationToken);
        return rows.Count;
    }

    [LoggerMessage(LogLevel.Information, "Sent {Count} replies left in the outbox")]
    private partial void LogSwept(int count);
}
