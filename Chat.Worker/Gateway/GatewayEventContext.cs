using System.Text.Json;
using Microsoft.Data.Sqlite;
using MassTransit;
using SocketStarter.Messages;

namespace SocketStarter.ChatWorker.Gateway;

/// <summary>
/// One event being applied: its store transaction, and the replies it sends. Replies are written
/// to the outbox in the same transaction and published after commit, so a crash between commit
/// and publish loses no reply.
/// </summary>
public sealed class GatewayEventContext(
    SqliteConnection connection,
    SqliteTransaction transaction,
    UpstreamEvent upstream,
    IPublishEndpoint publisher,
    TimeProvider time,
    CancellationToken cancellationToken)
{
    private static readonly TimeSpan EagerPublishTimeout = TimeSpan.FromSeconds(2);

    public string ConnectionId => upstream.ConnectionId;
    public string HubInstanceId => upstream.HubInstanceId;
    public long Seq => upstream.Seq;
    public DateTimeOffset Now { get; } = time.GetUtcNow();

    /// <summary>A command in this event's transaction.</summary>
    public SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        return command;
    }

    public Task SendToConnectionAsync(string connectionId, string type, object payload) =>
        EnqueueAsync(new SendToConnections { ConnectionIds = [connectionId], Type = type, Payload = ToElement(payload) });

    public Task SendToGroupAsync(string group, string type, object payload, params string[] exceptConnectionIds) =>
        EnqueueAsync(new SendToGroup
        {
            Group = group,
            ExceptConnectionIds = exceptConnectionIds.Length > 0 ? exceptConnectionIds : null,
            Type = type,
            Payload = ToElement(payload),
        });

    /// <summary>
    /// Adds the connection to the group at once, before this event commits: every reply another
    /// event commits after this one is published later, so it finds the connection in the group.
    /// (Through the outbox, a reply of a later event, flushed by another worker, could overtake
    /// it.) Should this event roll back, the connection is in a group early, which the retry needs
    /// anyway. The store's write lock is held meanwhile, so the wait for the broker is kept short:
    /// past it the event rolls back and is retried.
    /// </summary>
    public async Task AddToGroupAsync(string connectionId, string group)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(EagerPublishTimeout);
        await publisher.Publish(new AddToGroup { ConnectionId = connectionId, Group = group }, timeout.Token);
    }

    public Task RemoveFromGroupAsync(string connectionId, string group) =>
        EnqueueAsync(new RemoveFromGroup { ConnectionId = connectionId, Group = group });

    public Task CloseAsync(string connectionId, string reason) =>
        EnqueueAsync(new CloseConnection { ConnectionId = connectionId, Reason = reason });

    private async Task EnqueueAsync<T>(T command) where T : class
    {
        await using var insert = Command(
            "INSERT INTO gateway_outbox (connection_id, seq, message_type, body, created_at) VALUES ($c, $s, $t, $b, $at)",
            ("$c", upstream.ConnectionId), ("$s", upstream.Seq), ("$t", typeof(T).Name),
            ("$b", JsonSerializer.Serialize(command, Outbox.Json)), ("$at", Now.ToString("O")));
        await insert.ExecuteNonQueryAsync(cancellationToken);
    }

    private static JsonElement ToElement(object payload) => JsonSerializer.SerializeToElement(payload, Outbox.Json);
}
