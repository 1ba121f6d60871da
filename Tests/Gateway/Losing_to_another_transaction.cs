using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// An event whose transaction PostgreSQL picks as a deadlock's victim is run again: it is
/// nobody's fault and the database is there, so it is neither an outage nor a failure.
/// </summary>
public sealed class Losing_to_another_transaction
{
    [Test]
    public async Task An_event_chosen_as_a_deadlock_victim_is_run_again_and_applied_once()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        // A process of its own, so that its metrics are its alone.
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        var ada = await system.ConnectAsAsync(hub, "Ada", "crossing");

        await using var database = await system.OpenDatabaseAsync();
        await using (var other = await database.BeginTransactionAsync())
        {
            // Ada's say follows her join, which the same worker applied: it takes the room's row
            // first (the chat's statement), and her connection's row with its commit. The test holds
            // the connection's row, so the say takes the room, then waits for the row.
            await using (var connectionRow = new Npgsql.NpgsqlCommand("SELECT 1 FROM gateway_connections WHERE connection_id = $1 FOR UPDATE", database, other)
                { Parameters = { new() { Value = ada.ConnectionId } } })
                Assert.That(await connectionRow.ExecuteScalarAsync(), Is.EqualTo(1), "the connection's row exists");
            await ada.SendAsync("say", new { room = "crossing", text = "through a deadlock" });
            await Wait.UntilAsync(async () => await WaitingForALockAsync(system.DatabaseConnectionString) >= 1,
                "the worker's transaction waits for the connection's row");

            // Now the test asks for the room: a circle. The worker started waiting first, so its
            // deadlock check (deadlock_timeout, 1 s) runs first and picks it as the victim. Run
            // again, the say takes its turn first, then waits for the room until the test lets go.
            await using (var room = new Npgsql.NpgsqlCommand("SELECT 1 FROM chat_rooms WHERE room = 'crossing' FOR UPDATE", database, other))
                Assert.That(await room.ExecuteScalarAsync(), Is.EqualTo(1), "the test got the room once the worker's transaction was rolled back");
            await other.RollbackAsync();
        }

        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "through a deadlock");
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(new Uri(worker.BaseAddress, "metrics"));
        Assert.Multiple(() =>
        {
            Assert.That(ada.Messages("crossing").Select(m => m.Text), Is.EqualTo(new[] { "through a deadlock" }), "applied once");
            Assert.That(ada.Events("error"), Is.Empty, "the client heard of no failure");
            Assert.That(Prometheus.Sample(metrics, "worker_events_conflicts_total", ""), Is.GreaterThanOrEqualTo(1), "counted as a conflict");
            Assert.That(Prometheus.Sample(metrics, "worker_events_database_unavailable_total", ""), Is.Zero, "not counted as the database being away");
            Assert.That(worker.Output, Does.Contain("lost to another transaction"), "the worker said why it ran the event again");
        });
    }

    private static async Task<long> WaitingForALockAsync(string connectionString)
    {
        await using var look = new Npgsql.NpgsqlConnection(connectionString);
        await look.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()", look);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
