using Dapper;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Faults;

/// <summary>A worker SIGKILLed inside an event's transaction leaves nothing of it; the next worker applies it once.</summary>
[Category("Faults")]
public sealed class Killing_a_worker_mid_transaction
{
    [Test]
    public async Task Leaves_nothing_half_applied_and_the_event_is_applied_once_by_the_next_worker()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        var ada = await system.ConnectAsAsync(hub, "Ada", "lobby");
        await using var database = await system.OpenDatabaseAsync();
        var before = await database.QuerySingleAsync<(string ConnectionId, long LastSeq)>(
            "SELECT connection_id, last_seq FROM gateway_connections WHERE closed_at IS NULL");

        // Hold the room's row: the next 'say' stops inside its transaction, before it took the
        // room's seq (and, as it takes its turn with its commit, before it recorded its progress).
        await using var holder = await system.OpenDatabaseAsync();
        await using var hold = await holder.BeginTransactionAsync();
        await holder.ExecuteAsync("SELECT 1 FROM chat_rooms WHERE room = 'lobby' FOR UPDATE", transaction: hold);
        var seq = await ada.SendAsync("say", new { room = "lobby", text = "exactly once" });
        await Wait.UntilAsync(async () => await database.ExecuteScalarAsync<long>("""
            SELECT COUNT(*) FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'socketstarter-worker' AND wait_event_type = 'Lock'
            """) == 1, "the worker's transaction waits inside the event");

        worker.Kill();
        await worker.WaitForExitAsync(TimeSpan.FromSeconds(10));
        await worker.DisposeAsync();
        await hold.RollbackAsync();
        // The server ends the dead worker's session, rolling its transaction back.
        await Wait.UntilAsync(async () => await database.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'socketstarter-worker'") == 0,
            "the killed worker's sessions are gone");

        var after = await database.QuerySingleAsync<long>("SELECT last_seq FROM gateway_connections WHERE connection_id = @id", new { id = before.ConnectionId });
        Assert.Multiple(async () =>
        {
            Assert.That(seq, Is.EqualTo(before.LastSeq + 1), "the say is the event after the last applied one");
            Assert.That(after, Is.EqualTo(before.LastSeq), "its progress is not recorded");
            Assert.That(await database.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM chat_messages"), Is.Zero, "no message stored");
            Assert.That(await database.ExecuteScalarAsync<long>("SELECT last_seq FROM chat_rooms WHERE room = 'lobby'"), Is.Zero, "no room seq taken");
            Assert.That(await database.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM gateway_outbox WHERE seq = @seq", new { seq }), Is.Zero, "no reply left");
        });

        await using var next = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        var message = await ada.WaitForAsync("message", m => m.GetProperty("text").GetString() == "exactly once");
        // One more event behind it: once it is answered, nothing of the first can still come.
        await ada.JoinAsync("after");
        Assert.Multiple(async () =>
        {
            Assert.That(message.GetProperty("seq").GetInt64(), Is.EqualTo(1));
            Assert.That(ada.Messages("lobby"), Has.Count.EqualTo(1), "delivered once");
            Assert.That(await database.QueryAsync<string>("SELECT text FROM chat_messages"), Is.EqualTo(new[] { "exactly once" }), "stored once");
            Assert.That(await database.ExecuteScalarAsync<long>("SELECT last_seq FROM gateway_connections WHERE connection_id = @id", new { id = before.ConnectionId }),
                Is.EqualTo(seq + 1));
        });
    }
}
