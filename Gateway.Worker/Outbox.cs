using System.Collections.Frozen;
using System.Text.Json;
using MassTransit;
using Microsoft.Extensions.Options;
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
public sealed partial class Outbox(GatewayStore store, HubInstances hubInstances, HubSendQueues hubSends, TimeProvider time, IOptions<WorkerOptions> options, WorkerMetrics metrics, ILogger<Outbox> logger)
{
    private readonly TimeSpan _publishTimeout = options.Value.PublishTimeout;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private static readonly FrozenDictionary<string, Type> CommandTypes = new[]
    {
        typeof(SendToConnections), typeof(SendToGroup), typeof(SendToUser), typeof(SendToAll),
        typeof(AddToGroup), typeof(RemoveFromGroup), typeof(CloseConnection),
    }.ToFrozenDictionary(t => t.Name);

    /// <summary>A reply to send: from memory (<paramref name="Command"/>) or, for a group's, from its ordered flush.</summary>
    internal readonly record struct Outgoing(long Id, string? OrderKey, object? Command, Type? Type, string? TargetInstance);

    /// <summary>
    /// Sends the replies that some events just committed, event by event in the order given, each
    /// event's in the order it sent them, on a connection that is open and in no transaction: one
    /// for a connection, a user or everyone straight from memory; those for groups through one
    /// ordered flush of all their groups, which also sends what other events committed for the
    /// groups before them (a group's reply leaves once every earlier one of the group has). All of it
    /// within <c>Worker:PublishTimeout</c>, else <see cref="BrokerUnavailableException"/> (rolled back:
    /// the groups' locks are let go and what was not deleted is sent again).
    /// </summary>
    /// <param name="taken">The groups' flush as the events' commit took it (<see cref="GatewayStore.EnqueueAsync"/>):
    /// its locks held and its rows read; the flush goes on from there and lets the locks go.</param>
    internal Task SendCommittedAsync(Npgsql.NpgsqlConnection connection, IReadOnlyList<(IReadOnlyList<Outgoing> Replies, IPublishEndpoint Publisher)> events, CancellationToken cancellationToken, GatewayStore.TakenFlush? taken = null) =>
        BrokerUnavailableException.WithinAsync(_publishTimeout, bounded => SendCommittedNowAsync(connection, events, taken, bounded), cancellationToken);

    private async Task SendCommittedNowAsync(Npgsql.NpgsqlConnection connection, IReadOnlyList<(IReadOnlyList<Outgoing> Replies, IPublishEndpoint Publisher)> events, GatewayStore.TakenFlush? taken, CancellationToken cancellationToken)
    {
        var keys = events.SelectMany(e => e.Replies).Select(r => r.OrderKey).OfType<string>().ToHashSet(StringComparer.Ordinal);
        if (keys.Count == 0)
        {
            await GatewayStore.DeleteOutboxAsync(connection, [.. await SendInOrderAsync(events, 0, [], Lookup.Empty, cancellationToken)], cancellationToken);
            return;
        }
        var own = events.SelectMany(e => e.Replies).Where(r => r.OrderKey is not null).Select(r => r.Id).ToList();
        var started = time.GetTimestamp();
        long read = 0, sent = 0;
        var flushed = await GatewayStore.FlushOrderedAsync(connection, keys, own, async (flush, rows, members) =>
        {
            read = time.GetTimestamp();
            var ids = await SendInOrderAsync(events, flush, rows, members, cancellationToken);
            sent = time.GetTimestamp();
            return ids;
        }, cancellationToken, taken);
        // Taken with the commit, the locks' wait is the database's measure of it.
        var locked = taken?.LockWait;
        if (flushed)
        {
            metrics.Flushed(locked ?? time.GetElapsedTime(started, read), time.GetElapsedTime(read, sent), time.GetElapsedTime(sent));
            return;
        }
        // An earlier flush sent the groups' rows; the events' own replies without a key (a join's
        // snapshot to its connection) are this flush's to send, as when no group is involved.
        metrics.FlushedNothing(locked ?? time.GetElapsedTime(started));
        await GatewayStore.DeleteOutboxAsync(connection, [.. await SendInOrderAsync(events, 0, [], Lookup.Empty, cancellationToken)], cancellationToken);
    }

    internal static IReadOnlyList<Outgoing> FromReplies(IReadOnlyList<GatewayEventContext.Reply> replies, long[] ids) =>
        [.. replies.Select((r, i) => new Outgoing(ids[i], r.OrderKey, r.Command, r.Type, r.TargetInstance))];

    private static IReadOnlyList<Outgoing> FromRows(IReadOnlyList<GatewayStore.OutboxRow> rows) =>
        [.. rows.Select(r => r.OrderKey is null
            ? new Outgoing(r.Id, null, JsonSerializer.Deserialize(r.Body, CommandTypes[r.MessageType], Json)!, CommandTypes[r.MessageType], r.TargetInstance)
            : new Outgoing(r.Id, r.OrderKey, null, null, null))];

    /// <summary>
    /// Walks the events' replies in order: a reply of its own is sent as it comes; a group's sends
    /// the group's flushed rows up to and including it. What is left of the flushed rows
    /// (committed by others) goes last. A group's message goes to the instances that hold members,
    /// a removal to the member's instance; those who leave in this flush still get what was sent
    /// before they left. Each flushed row carries its key and the flush's number, so that a hub can
    /// drop a late copy of it once a newer flush of the key has reached it. What the walk has for one
    /// hub instance goes as one message where the instance takes batches (<see cref="HubRouting.Batcher"/>),
    /// in the walk's order. Returns the ids sent.
    /// </summary>
    private async Task<IReadOnlyCollection<long>> SendInOrderAsync(
        IReadOnlyList<(IReadOnlyList<Outgoing> Replies, IPublishEndpoint Publisher)> events, long flush,
        IReadOnlyList<GatewayStore.OutboxRow> flushed, ILookup<string, string?> members, CancellationToken cancellationToken)
    {
        var byKey = flushed.GroupBy(r => r.OrderKey!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => new Queue<GatewayStore.OutboxRow>(g), StringComparer.Ordinal);
        var instances = byKey.ToDictionary(k => k.Key, k => (IReadOnlyCollection<string?>)
            [.. (GatewayEventContext.GroupOf(k.Key) is { } group ? members[group] : [])
                .Concat(k.Value.Where(r => r.MessageType == nameof(RemoveFromGroup)).Select(r => r.TargetInstance))
                .Distinct(StringComparer.Ordinal)], StringComparer.Ordinal);
        var sent = new List<long>();
        if (events.Count == 0)
            return sent;
        // Each instance's commands of the whole walk in one message where it takes batches.
        var sends = new HubRouting.Batcher(events[0].Publisher, hubInstances, hubSends, metrics, cancellationToken);

        async Task SendRowsUpToAsync(string key, long id)
        {
            if (!byKey.TryGetValue(key, out var queue))
                return;
            while (queue.TryPeek(out var row) && row.Id <= id)
            {
                queue.Dequeue();
                var type = CommandTypes[row.MessageType];
                var command = JsonSerializer.Deserialize(row.Body, type, Json)!;
                var order = new HubRouting.Order(key, flush);
                await sends.AddAsync(command, type, type == typeof(SendToGroup) ? instances[key] : [row.TargetInstance], order);
                sent.Add(row.Id);
            }
        }

        foreach (var (replies, _) in events)
        {
            foreach (var reply in replies)
            {
                if (reply.OrderKey is null)
                {
                    await sends.AddAsync(reply.Command!, reply.Type!, [reply.TargetInstance], null);
                    sent.Add(reply.Id);
                }
                else
                {
                    // Sent already when another flush took it first (in order, too).
                    await SendRowsUpToAsync(reply.OrderKey, reply.Id);
                }
            }
        }
        foreach (var key in byKey.Keys)
            await SendRowsUpToAsync(key, long.MaxValue);
        // What waits for its instance's batch: every id above counts as sent only once this returns.
        await sends.SendAsync();
        return sent;
    }

    private static class Lookup
    {
        public static readonly ILookup<string, string?> Empty = Array.Empty<(string, string?)>().ToLookup(m => m.Item1, m => m.Item2);
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
        await SendCommittedAsync(connection, [(FromRows(rows), publisher)], cancellationToken);
        return rows.Count;
    }

    [LoggerMessage(LogLevel.Information, "Sent {Count} replies left in the outbox")]
    private partial void LogSwept(int count);
}
