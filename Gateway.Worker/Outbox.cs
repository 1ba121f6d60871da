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
/// the sequence numbers the application puts in its payloads. A reply about a connection goes to
/// the connection's hub instance only, and one to a group to the instances that hold its members
/// (<see cref="HubRouting"/>); the rest, and any whose instances are not known, to every instance.
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
                await HubRouting.SendAsync(publisher, reply.Command, reply.Type, reply.TargetInstance, cancellationToken);
                direct.Add(ids[i]);
            }
            else if (flushed.Add(reply.OrderKey))
            {
                await GatewayStore.FlushOrderedAsync(connection, reply.OrderKey, GatewayEventContext.GroupOf(reply.OrderKey),
                    (rows, members) => SendOrderedAsync(rows, members, publisher, cancellationToken), cancellationToken);
            }
        }
        await GatewayStore.DeleteOutboxAsync(connection, [.. direct], cancellationToken);
    }

    /// <summary>
    /// One flush of a group, in order: a message to the instances that hold members, a removal to
    /// the member's instance. Those who leave in this flush still get what was sent before they left.
    /// </summary>
    private static async Task SendOrderedAsync(IReadOnlyList<GatewayStore.OutboxRow> rows, IReadOnlyList<string?> memberInstances, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        var instances = memberInstances
            .Concat(rows.Where(r => r.MessageType == nameof(RemoveFromGroup)).Select(r => r.TargetInstance))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        foreach (var row in rows)
        {
            var type = CommandTypes[row.MessageType];
            var command = JsonSerializer.Deserialize(row.Body, type, Json)!;
            if (type == typeof(SendToGroup))
                await HubRouting.SendToEachAsync(publisher, command, type, instances, cancellationToken);
            else
                await HubRouting.SendAsync(publisher, command, type, row.TargetInstance, cancellationToken);
        }
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

    /// <summary>
    /// Sends rows found outside an event (a redelivery, the sweep) in the order they were written:
    /// a row without a key as it is; one of a group through the group's ordered flush, under its
    /// lock like every other send of the group, so that no reply of a group ever overtakes an
    /// earlier one, even when a flush after a broker outage races an event's own.
    /// </summary>
    private async Task<int> PublishAndDeleteAsync(IReadOnlyList<GatewayStore.OutboxRow> rows, IPublishEndpoint publisher, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
            return 0;

        await using var connection = await store.DataSource.OpenConnectionAsync(cancellationToken);
        var direct = new List<long>();
        var flushed = new HashSet<string>(StringComparer.Ordinal);
        var sent = 0;
        foreach (var row in rows)
        {
            if (row.OrderKey is null)
            {
                var type = CommandTypes[row.MessageType];
                var command = JsonSerializer.Deserialize(row.Body, type, Json)!;
                await HubRouting.SendAsync(publisher, command, type, row.TargetInstance, cancellationToken);
                direct.Add(row.Id);
                sent++;
            }
            else if (flushed.Add(row.OrderKey))
            {
                sent += await GatewayStore.FlushOrderedAsync(connection, row.OrderKey, GatewayEventContext.GroupOf(row.OrderKey),
                    (ordered, members) => SendOrderedAsync(ordered, members, publisher, cancellationToken), cancellationToken);
            }
        }

        await GatewayStore.DeleteOutboxAsync(connection, [.. direct], cancellationToken);
        return sent;
    }

    [LoggerMessage(LogLevel.Information, "Sent {Count} replies left in the outbox")]
    private partial void LogSwept(int count);
}
