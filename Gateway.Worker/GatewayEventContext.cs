using System.Text.Json;
using Dapper;
using MassTransit;
using Npgsql;
using SocketStarter.GatewayWorker.Store;
using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// One event being applied: its database transaction, and the replies it sends. The application
/// writes its own tables through <see cref="Connection"/> and <see cref="Transaction"/> (or the
/// Dapper shorthands below); replies go to the outbox in the same transaction and are published
/// after commit, so a crash between commit and publish loses no reply, and a rolled-back event
/// sends none.
/// <para>
/// The application's code for an event can run more than once: after a conflict or an outage, and
/// when the event took its turn with its commit and <see cref="AddToGroupAsync"/>,
/// <see cref="RollbackAsync"/> or <see cref="SaveAsync"/> needed it earlier (what ran so far is
/// rolled back and run again, turn first). Only what is written through this context is applied
/// once; keep side effects elsewhere out of the event, or idempotent.
/// </para>
/// </summary>
public sealed class GatewayEventContext
{
    private static readonly TimeSpan EagerPublishTimeout = TimeSpan.FromSeconds(2);

    private readonly UpstreamEvent _upstream;
    private readonly GatewayStore _store;
    private readonly IPublishEndpoint _publisher;

    internal GatewayEventContext(NpgsqlConnection connection, NpgsqlTransaction transaction, UpstreamEvent upstream,
        GatewayStore store, IPublishEndpoint publisher, TimeProvider time, CancellationToken cancellationToken, bool turnAtCommit = false)
    {
        TurnAtCommit = turnAtCommit;
        Connection = connection;
        Transaction = transaction;
        CancellationToken = cancellationToken;
        _upstream = upstream;
        _store = store;
        _publisher = publisher;
        // PostgreSQL keeps microseconds: a time sent live reads back the same from the database.
        var now = time.GetUtcNow();
        Now = now.AddTicks(-(now.Ticks % 10));
    }

    /// <summary>
    /// The event's turn is taken with its commit, after the application's work, rather than before
    /// it: for an event whose predecessor this process applied itself (see
    /// <see cref="UpstreamEventProcessor"/>). The application's statements then run before the
    /// event is known to be the connection's next, so whatever cannot wait for the commit to find
    /// out (a group add sent to the hub at once, a savepoint or a rollback, which need the turn's
    /// savepoint) gives up: <see cref="TurnNeededFirst"/>, and the runtime applies the event again
    /// the usual way, its turn first.
    /// </summary>
    internal bool TurnAtCommit { get; }

    /// <summary>Set when the application, in <see cref="TurnAtCommit"/> mode, did something that needs the turn first.</summary>
    internal bool TurnNeededFirst { get; private set; }

    /// <summary>Thrown into the application where <see cref="TurnAtCommit"/> cannot go on; the runtime runs the event again.</summary>
    internal sealed class TurnNeededFirstException(string what)
        : Exception($"{what} needs the event's turn first; the event is applied again, its turn taken first.");

    private void EnsureTurnTaken(string what)
    {
        if (!TurnAtCommit)
            return;
        TurnNeededFirst = true;
        throw new TurnNeededFirstException(what);
    }

    public string ConnectionId => _upstream.ConnectionId;
    public string HubInstanceId => _upstream.HubInstanceId;
    public long Seq => _upstream.Seq;
    public DateTimeOffset Now { get; }

    /// <summary>The event's connection to the database; use it with <see cref="Transaction"/>.</summary>
    public NpgsqlConnection Connection { get; }
    public NpgsqlTransaction Transaction { get; }
    public CancellationToken CancellationToken { get; }

    /// <summary>Dapper's <c>ExecuteAsync</c> in this event's transaction: rows affected.</summary>
    public Task<int> ExecuteAsync(string sql, object? parameters = null) =>
        Connection.ExecuteAsync(Define(sql, parameters));

    /// <summary>Dapper's <c>ExecuteScalarAsync</c> in this event's transaction.</summary>
    public Task<T?> ExecuteScalarAsync<T>(string sql, object? parameters = null) =>
        Connection.ExecuteScalarAsync<T>(Define(sql, parameters));

    /// <summary>Dapper's <c>QueryAsync</c> in this event's transaction.</summary>
    public async Task<IReadOnlyList<T>> QueryAsync<T>(string sql, object? parameters = null) =>
        (await Connection.QueryAsync<T>(Define(sql, parameters))).AsList();

    /// <summary>Dapper's <c>QuerySingleOrDefaultAsync</c> in this event's transaction.</summary>
    public Task<T?> QuerySingleOrDefaultAsync<T>(string sql, object? parameters = null) =>
        Connection.QuerySingleOrDefaultAsync<T>(Define(sql, parameters));

    public Task SendToConnectionAsync(string connectionId, string type, object? payload) =>
        EnqueueAsync(new SendToConnections { ConnectionIds = [connectionId], Type = type, Payload = ToElement(payload) }, targetConnection: connectionId);

    /// <summary>
    /// An event to every connection in the group. A group's events leave in the order their events
    /// committed, whichever worker applied them: what the application writes under one row lock
    /// (a chat room's seq) reaches the group's members in that order.
    /// </summary>
    public Task SendToGroupAsync(string group, string type, object? payload, params string[] exceptConnectionIds) =>
        EnqueueAsync(new SendToGroup
        {
            Group = group,
            ExceptConnectionIds = exceptConnectionIds.Length > 0 ? exceptConnectionIds : null,
            Type = type,
            Payload = ToElement(payload),
        }, OrderKeyOf(group));

    /// <summary>Group order keys apart from any other kind of key a later version may add.</summary>
    internal static string OrderKeyOf(string group) => GroupKeyPrefix + group;

    /// <summary>The group of an order key; null for a key of another kind.</summary>
    internal static string? GroupOf(string orderKey) => orderKey.StartsWith(GroupKeyPrefix, StringComparison.Ordinal) ? orderKey[GroupKeyPrefix.Length..] : null;

    private const string GroupKeyPrefix = "group:";

    public Task SendToUserAsync(string userId, string type, object? payload) =>
        EnqueueAsync(new SendToUser { UserId = userId, Type = type, Payload = ToElement(payload) });

    public Task SendToAllAsync(string type, object? payload) =>
        EnqueueAsync(new SendToAll { Type = type, Payload = ToElement(payload) });

    /// <summary>
    /// Adds the connection to the group at once, before this event commits: every reply another
    /// event commits after this one is published later, so it finds the connection in the group.
    /// (Through the outbox only, a reply of a later event, flushed by another worker, could overtake
    /// it.) It is also sent again in the group's order, like <see cref="RemoveFromGroupAsync"/>:
    /// a removal of the connection that another event committed earlier but that has not left yet
    /// (its flush is behind, or timed out) is sent before that copy, so the group ends as the
    /// commits say, with the connection in it. Should this event roll back, the connection is in a
    /// group early, which the retry needs anyway. A row lock is held meanwhile, so the wait for the
    /// broker is kept short: past it the event rolls back and is retried. The connection's hub
    /// instance is recorded as holding a member of the group in this transaction: every reply to the
    /// group committed after this event goes to that instance.
    /// </summary>
    public async Task AddToGroupAsync(string connectionId, string group)
    {
        EnsureTurnTaken(nameof(AddToGroupAsync));
        // Before the first await: the chat app adds one connection to several groups at once.
        _members.Add(new GatewayStore.MemberChange(group, connectionId, Joined: true));
        Enqueue(new AddToGroup { ConnectionId = connectionId, Group = group }, OrderKeyOf(group), targetConnection: connectionId);
        // The event's own connection's instance is known here; another connection's, only to the
        // database, which this event's transaction may be busy with: that one goes to every instance.
        var instance = connectionId == _upstream.ConnectionId ? _upstream.HubInstanceId : null;
        await BrokerUnavailableException.WithinAsync(EagerPublishTimeout,
            bounded => HubRouting.SendAsync(_publisher, new AddToGroup { ConnectionId = connectionId, Group = group }, typeof(AddToGroup), instance, null, bounded), CancellationToken);
    }

    /// <summary>Takes the connection out of the group, in the group's order: what the group is sent after this, it does not get.</summary>
    public Task RemoveFromGroupAsync(string connectionId, string group)
    {
        _members.Add(new GatewayStore.MemberChange(group, connectionId, Joined: false));
        return EnqueueAsync(new RemoveFromGroup { ConnectionId = connectionId, Group = group }, OrderKeyOf(group), targetConnection: connectionId);
    }

    public Task CloseAsync(string connectionId, string reason) =>
        EnqueueAsync(new CloseConnection { ConnectionId = connectionId, Reason = reason }, targetConnection: connectionId);

    /// <summary>
    /// Undoes everything this event did so far, in the database and in its replies (a request the
    /// application refuses: it then sends the error). The event still counts as applied; what it
    /// writes and sends after this is kept. Costs one round trip, and nothing unless called: the
    /// runtime sets its savepoint in the same round trip that takes the event's turn.
    /// (A connection added to a group is not taken out again: its <c>AddToGroup</c> went to the hub
    /// at once, see <see cref="AddToGroupAsync"/>; so the runtime keeps it a member, and sends the
    /// add again in the group's order. A removal is undone like everything else.)
    /// </summary>
    public async Task RollbackAsync()
    {
        EnsureTurnTaken(nameof(RollbackAsync));
        await Connection.ExecuteAsync(Define($"ROLLBACK TO SAVEPOINT {GatewayStore.EventSavepoint}", null));
        UndoSince(0, 0);
        _savepoints.Clear(); // set after the event's own, so gone with it
    }

    /// <summary>
    /// A savepoint of the application's own in this event's transaction. Use these rather than SQL
    /// <c>SAVEPOINT</c>: rolling back to one also takes back the replies sent since. Each costs a
    /// round trip; to undo the whole event, <see cref="RollbackAsync"/> costs none until used.
    /// </summary>
    public async Task SaveAsync(string savepoint)
    {
        EnsureTurnTaken(nameof(SaveAsync));
        await Transaction.SaveAsync(savepoint, CancellationToken);
        _savepoints[savepoint] = (_replies.Count, _members.Count);
    }

    /// <summary>
    /// Undoes everything since <see cref="SaveAsync"/>, replies included, except that a connection
    /// added to a group meanwhile stays in it (as with <see cref="RollbackAsync"/>); the savepoint stays.
    /// </summary>
    public async Task RollbackToAsync(string savepoint)
    {
        await Transaction.RollbackAsync(savepoint, CancellationToken);
        var (replies, members) = _savepoints[savepoint];
        UndoSince(replies, members);
    }

    /// <summary>
    /// Takes back the replies and group changes from the given positions on, but for additions to
    /// groups: those reached the hub already, so their membership and their copy in the group's
    /// order stay, and the database, the hub and later flushes agree on who is in the group.
    /// </summary>
    private void UndoSince(int replies, int members)
    {
        var keptReplies = _replies.Skip(replies).Where(r => r.Type == typeof(AddToGroup)).ToList();
        _replies.RemoveRange(replies, _replies.Count - replies);
        _replies.AddRange(keptReplies);
        var keptMembers = _members.Skip(members).Where(m => m.Joined).ToList();
        _members.RemoveRange(members, _members.Count - members);
        _members.AddRange(keptMembers);
    }

    public async Task ReleaseAsync(string savepoint)
    {
        await Transaction.ReleaseAsync(savepoint, CancellationToken);
        _savepoints.Remove(savepoint);
    }

    // Replies wait here until the event's work is done, then go to the outbox in one statement.
    private readonly List<Reply> _replies = [];
    private readonly Dictionary<string, (int Replies, int Members)> _savepoints = [];
    // Changes to groups' members, with the replies; written with them.
    private readonly List<GatewayStore.MemberChange> _members = [];

    /// <param name="OrderKey">Replies with a key (a group) leave in the order their events committed, across workers.</param>
    /// <param name="TargetConnection">The connection the reply is about: it goes to that connection's hub instance only.</param>
    /// <param name="TargetInstance">That instance, once the reply is written; null: every instance (or, for a group, its members').</param>
    internal sealed record Reply(object Command, Type Type, string Body, string? OrderKey, string? TargetConnection = null, string? TargetInstance = null);

    /// <summary>
    /// Writes the replies to the outbox, and the changes to groups' members, (before commit); the
    /// caller publishes the replies after. The last event of a connection takes it out of every group.
    /// </summary>
    /// <param name="commit">Commits the transaction in the same round trip.</param>
    /// <param name="takeFlush">With <paramref name="commit"/>: the same round trip also takes the
    /// locks of the replies' groups and reads what their ordered flush sends (<see cref="GatewayStore.EnqueueAsync"/>);
    /// returned as <c>Taken</c>, whose locks the caller's flush must let go.</param>
    internal async Task<(IReadOnlyList<Reply> Replies, long[] Ids, GatewayStore.TakenFlush? Taken)> WriteRepliesAsync(bool commit = false, bool takeFlush = false)
    {
        // The last change of each membership wins.
        var members = _members.GroupBy(m => (m.Group, m.ConnectionId)).Select(g => g.Last()).ToList();
        var flushKeys = commit && takeFlush ? _replies.Select(r => r.OrderKey).OfType<string>().ToList() : null;
        var (written, taken) = await _store.EnqueueAsync(Connection, Transaction, _upstream.ConnectionId, _upstream.Seq,
            _replies.Select(r => (r.Type.Name, r.Body, r.OrderKey, r.TargetConnection)).ToList(), members, _upstream.IsLast, Now, CancellationToken, commit, flushKeys,
            TurnAtCommit ? _upstream : null);
        return (_replies.Select((r, i) => r with { TargetInstance = written[i].TargetInstance }).ToList(), written.Select(w => w.Id).ToArray(), taken);
    }

    private Task EnqueueAsync<T>(T command, string? orderKey = null, string? targetConnection = null) where T : class
    {
        Enqueue(command, orderKey, targetConnection);
        return Task.CompletedTask;
    }

    private void Enqueue<T>(T command, string? orderKey, string? targetConnection) where T : class =>
        _replies.Add(new Reply(command, typeof(T), JsonSerializer.Serialize(command, Outbox.Json), orderKey, targetConnection));

    private CommandDefinition Define(string sql, object? parameters) =>
        new(sql, parameters, Transaction, cancellationToken: CancellationToken);

    private static JsonElement ToElement(object? payload) => JsonSerializer.SerializeToElement(payload, Outbox.Json);
}
