using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// Group commit: events that wait for the database at the same time share one transaction. The
/// worker runs one transaction at a time here (Worker:Writers=1), and the test holds a chat room's
/// row locked, so the worker's first event waits while the others queue up behind it.
/// </summary>
public sealed class Committing_events_together
{
    private static readonly Dictionary<string, string?> OneWriter = new()
    {
        ["Worker:Writers"] = "1",
        ["Worker:BatchSize"] = "16",
        ["Worker:BatchLockTimeout"] = "00:00:00.050",
    };

    [Test]
    public async Task Events_that_wait_together_commit_together_each_once_and_a_refused_one_is_undone_alone()
    {
        const int Senders = 8;
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        // A process of its own, so that its metrics are its alone.
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(OneWriter), system.Directory);

        var staller = await system.ConnectAsAsync(hub, "Staller", "stall");
        var senders = new List<ChatClient>();
        for (var i = 0; i < Senders; i++)
            senders.Add(await system.ConnectAsAsync(hub, $"Sender{i}", $"room{i}"));

        await using var database = await system.OpenDatabaseAsync();
        await using (var hold = await database.BeginTransactionAsync())
        {
            await LockRoomAsync(database, hold, "stall");
            var takenUp = await TakenUpAsync(worker);

            // The worker's only writer takes this one and waits for the room.
            await staller.SendAsync("say", new { room = "stall", text = "held" });
            // These queue behind it; the fourth asks for a room its sender is not in: refused.
            var refusedSeq = 0L;
            for (var i = 0; i < Senders; i++)
            {
                var seq = await senders[i].SendAsync("say", new { room = i == 3 ? "room0" : $"room{i}", text = $"m{i}" });
                if (i == 3)
                    refusedSeq = seq;
            }
            await Wait.UntilAsync(async () => await TakenUpAsync(worker) >= takenUp + 1 + Senders,
                "the worker took up every event (they wait for the database behind the first)");
            Assert.That(staller.Messages("stall"), Is.Empty, "nothing applied while the room is locked");
            await hold.CommitAsync();

            await Wait.UntilAsync(() => Enumerable.Range(0, Senders).Where(i => i != 3).All(i => senders[i].Messages($"room{i}").Count == 1)
                && staller.Messages("stall").Count == 1 && senders[3].Events("error").Count == 1,
                "every sender got its message back, and the refused one its error");

            // Every event of the test once committed: the 27 of connecting, signing in and joining, and the 9 above.
            var metrics = "";
            await Wait.UntilAsync(async () => Prometheus.Sample(metrics = await MetricsAsync(worker), "worker_batch_events_sum", "") >= 27 + 1 + Senders,
                "the worker's metrics count every event committed");
            var batches = Prometheus.Sample(metrics, "worker_batch_events_count", "");
            var events = Prometheus.Sample(metrics, "worker_batch_events_sum", "");
            var upToFour = Prometheus.Sample(metrics, "worker_batch_events_bucket", "le=\"4\"");
            TestContext.Out.WriteLine($"{events} events committed in {batches} transactions; {batches - upToFour} of them held more than 4");

            var error = senders[3].Events("error").Single();
            Assert.Multiple(() =>
            {
                Assert.That(batches - upToFour, Is.GreaterThanOrEqualTo(1), "the events queued behind the first shared a transaction");
                Assert.That(staller.Messages("stall").Select(m => m.Text), Is.EqualTo(new[] { "held" }));
                for (var i = 0; i < Senders; i++)
                {
                    if (i != 3)
                        Assert.That(senders[i].Messages($"room{i}").Select(m => m.Text), Is.EqualTo(new[] { $"m{i}" }), $"sender {i}: its message once");
                }
                Assert.That(senders[0].Messages("room0").Select(m => m.Text), Is.EqualTo(new[] { "m0" }), "the refused message was not sent to room0");
                Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("not_in_room"));
                Assert.That(error.GetProperty("seq").GetInt64(), Is.EqualTo(refusedSeq));
            });
        }

        // What is stored: every message once, the refused one nowhere.
        await using var count = new Npgsql.NpgsqlCommand("SELECT room, text FROM chat_messages ORDER BY room", database);
        var stored = new List<string>();
        await using (var reader = await count.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
                stored.Add($"{reader.GetString(0)}:{reader.GetString(1)}");
        }
        Assert.That(stored, Is.EquivalentTo(new[] { "stall:held" }.Concat(Enumerable.Range(0, Senders).Where(i => i != 3).Select(i => $"room{i}:m{i}"))));
    }

    [Test]
    public async Task An_event_that_finds_its_room_locked_is_taken_out_of_its_batch_and_the_others_commit_without_it()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(OneWriter), system.Directory);

        var staller = await system.ConnectAsAsync(hub, "Staller", "stall");
        var first = await system.ConnectAsAsync(hub, "First", "free1");
        var blocked = await system.ConnectAsAsync(hub, "Blocked", "busy");
        var last = await system.ConnectAsAsync(hub, "Last", "free2");

        await using var database = await system.OpenDatabaseAsync();
        await using var other = await system.OpenDatabaseAsync();
        await using var holdBusy = await other.BeginTransactionAsync();
        await LockRoomAsync(other, holdBusy, "busy");
        await using (var holdStall = await database.BeginTransactionAsync())
        {
            await LockRoomAsync(database, holdStall, "stall");
            // The writer waits on "stall"; behind it, one at a time so that their order is known:
            // first (a free room), blocked (the room another transaction holds), last (a free room).
            var takenUp = await TakenUpAsync(worker);
            await staller.SendAsync("say", new { room = "stall", text = "held" });
            // Only once the writer waits for the room are the others sent: one that came before the
            // writer took its batch would join the staller's, and "blocked" would then lead a batch
            // of its own, where it waits for its room without a timeout and holds up "last".
            await using (var probe = await system.OpenDatabaseAsync())
                await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= 1, "the worker's writer waits for the stall room");
            var n = 1;
            foreach (var (client, room) in new[] { (first, "free1"), (blocked, "busy"), (last, "free2") })
            {
                await client.SendAsync("say", new { room, text = $"to {room}" });
                var expected = takenUp + ++n;
                await Wait.UntilAsync(async () => await TakenUpAsync(worker) >= expected, $"the worker took up the message to {room}");
            }
            await holdStall.CommitAsync();
        }

        // In one batch: "first" leads; "blocked" waits Worker:BatchLockTimeout for "busy", is taken
        // out, and the batch commits "first" and "last" while "busy" is still locked.
        await Wait.UntilAsync(() => first.Messages("free1").Count == 1 && last.Messages("free2").Count == 1,
            "the messages to the free rooms arrived while the busy room is still locked");
        Assert.That(blocked.Messages("busy"), Is.Empty, "the blocked message waits for its room");

        await holdBusy.CommitAsync();
        await Wait.UntilAsync(() => blocked.Messages("busy").Count == 1, "the blocked message arrived once its room was free");

        var metrics = "";
        await Wait.UntilAsync(async () => Prometheus.Sample(metrics = await MetricsAsync(worker), "worker_batch_events_sum", "") >= 12 + 4,
            "the worker's metrics count every event committed");
        Assert.Multiple(() =>
        {
            Assert.That(Prometheus.Sample(metrics, "worker_batch_lock_waits_deferred_total", ""), Is.EqualTo(1), "one event taken out of its batch");
            Assert.That(blocked.Messages("busy").Select(m => m.Text), Is.EqualTo(new[] { "to busy" }));
            Assert.That(first.Messages("free1").Select(m => m.Text), Is.EqualTo(new[] { "to free1" }));
            Assert.That(last.Messages("free2").Select(m => m.Text), Is.EqualTo(new[] { "to free2" }));
            Assert.That(staller.Messages("stall").Select(m => m.Text), Is.EqualTo(new[] { "held" }));
        });
    }

    private static async Task LockRoomAsync(Npgsql.NpgsqlConnection connection, Npgsql.NpgsqlTransaction transaction, string room)
    {
        await using var command = new Npgsql.NpgsqlCommand("SELECT 1 FROM chat_rooms WHERE room = $1 FOR UPDATE", connection, transaction)
        {
            Parameters = { new() { Value = room } },
        };
        Assert.That(await command.ExecuteScalarAsync(), Is.EqualTo(1), $"room {room} exists");
    }


    /// <summary>Events the worker has taken up off its queues (each is handed to a writer at once).</summary>
    private static async Task<double> TakenUpAsync(ServiceProcess worker) =>
        Prometheus.Sample(await MetricsAsync(worker), "worker_event_queued_milliseconds_count", "");

    private static async Task<string> MetricsAsync(ServiceProcess worker)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri(worker.BaseAddress, "metrics"));
    }
}
