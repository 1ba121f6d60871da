using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// A room's replies leave through the room's ordered flush, one flush at a time under the room's
/// lock. The test takes that lock itself, so that the flushes of several committed messages queue
/// behind it; once it lets go, the first flush sends every message, and the others find theirs
/// sent and let the lock go at once instead of taking their turn at it.
/// </summary>
public sealed class Flushing_a_rooms_replies
{
    [Test]
    public async Task Flushes_queued_behind_the_rooms_lock_find_their_messages_sent_by_the_first_and_send_nothing()
    {
        const int Talkers = 3;
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        // A process of its own, so that its metrics are its alone.
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);

        var talkers = new List<ChatClient>();
        for (var i = 0; i < Talkers; i++)
            talkers.Add(await system.ConnectAsAsync(hub, $"Talker{i}", "busy"));
        var before = await MetricsAsync(worker);

        await using var database = await system.OpenDatabaseAsync();
        await LockRoomAsync(database, "busy");
        for (var i = 0; i < Talkers; i++)
            await talkers[i].SendAsync("say", new { room = "busy", text = $"m{i}" });
        // Each message committed, then its flush asked for the room's lock: three wait behind the test.
        await using (var probe = await system.OpenDatabaseAsync())
            await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= Talkers, "the three messages' flushes wait for the room's lock");
        Assert.That(talkers.SelectMany(t => t.Messages("busy")), Is.Empty, "nothing of the room leaves while its lock is held");
        await UnlockRoomAsync(database, "busy");

        await Wait.UntilAsync(() => talkers.All(t => t.Messages("busy").Count == Talkers), "every talker heard the three messages");
        var after = "";
        await Wait.UntilAsync(async () => Flushes(after = await MetricsAsync(worker)) - Flushes(before) >= Talkers, "the worker counted the three flushes");
        Assert.Multiple(() =>
        {
            foreach (var talker in talkers)
            {
                var seqs = talker.Messages("busy").Select(m => m.Seq).ToList();
                Assert.That(seqs, Is.Ordered.Ascending.And.Unique, "in the room's order, each once");
                Assert.That(talker.Messages("busy").Select(m => m.Text), Is.EquivalentTo(new[] { "m0", "m1", "m2" }));
            }
            // The first flush to get the lock found all three committed and sent them; the two after it
            // found their rows gone.
            Assert.That(Sample(after, "sent") - Sample(before, "sent"), Is.EqualTo(1), "flushes that sent");
            Assert.That(Sample(after, "already_sent") - Sample(before, "already_sent"), Is.EqualTo(Talkers - 1), "flushes that found their messages sent");
        });
    }

    [Test]
    public async Task A_messages_wait_for_its_rooms_lock_counts_as_its_flushs_not_as_its_apply()
    {
        // A message alone in its transaction asks for its room's lock in its commit's round trip
        // (one round trip fewer per message). The hops must still tell the two apart: the apply
        // ends at the commit, and the wait for the lock is the flush's first step.
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        var talker = await system.ConnectAsAsync(hub, "Talker", "busy");
        var before = await MetricsAsync(worker);

        await using var database = await system.OpenDatabaseAsync();
        await LockRoomAsync(database, "busy");
        await talker.SendAsync("say", new { room = "busy", text = "held" });
        await using (var probe = await system.OpenDatabaseAsync())
            await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= 1, "the message's flush waits for the room's lock");
        // The stimulus, not a wait for something to happen: the room's lock stays held this long.
        var held = TimeSpan.FromSeconds(1);
        await Task.Delay(held);
        await UnlockRoomAsync(database, "busy");

        await Wait.UntilAsync(() => talker.Messages("busy").Count == 1, "the talker heard its message");
        var after = "";
        await Wait.UntilAsync(async () => Flushes(after = await MetricsAsync(worker)) - Flushes(before) >= 1, "the worker counted the flush");
        Assert.Multiple(() =>
        {
            Assert.That(Delta("worker_event_applied_milliseconds_count"), Is.EqualTo(1), "one event applied");
            Assert.That(Delta("worker_event_applied_milliseconds_sum"), Is.LessThan(held.TotalMilliseconds), "the apply ends at the commit");
            Assert.That(Delta("worker_flush_locked_milliseconds_sum"), Is.GreaterThanOrEqualTo(held.TotalMilliseconds), "the flush waited for the lock");
        });

        double Delta(string metric) => Prometheus.Sample(after, metric, "") - Prometheus.Sample(before, metric, "");
    }

    [Test]
    public async Task A_join_whose_room_replies_an_earlier_flush_sent_still_sends_its_own_snapshot()
    {
        // A join writes replies of the room (its member list's change, its place in the group) and
        // one of its own connection (the joined snapshot). The second of two joins held behind the
        // room's lock finds its room replies sent by the first's flush; its snapshot is still its own
        // to send, at once, not left in the outbox for the sweep.
        const int Joiners = 2;
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);

        var joiners = new List<ChatClient>();
        for (var i = 0; i < Joiners; i++)
            joiners.Add(await system.ConnectAsAsync(hub, $"Joiner{i}", $"elsewhere{i}"));
        var before = await MetricsAsync(worker);

        await using var database = await system.OpenDatabaseAsync();
        await LockRoomAsync(database, "busy");
        foreach (var joiner in joiners)
            await joiner.SendAsync("join", new { room = "busy" });
        await using (var probe = await system.OpenDatabaseAsync())
            await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= Joiners, "both joins' flushes wait for the room's lock");
        await UnlockRoomAsync(database, "busy");

        var after = "";
        await Wait.UntilAsync(async () => Flushes(after = await MetricsAsync(worker)) - Flushes(before) >= Joiners, "the worker counted both flushes");
        await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM gateway_outbox", database);
        var left = (long)(await count.ExecuteScalarAsync())!;
        Assert.Multiple(() =>
        {
            Assert.That(Sample(after, "already_sent") - Sample(before, "already_sent"), Is.EqualTo(1), "the second join's flush found its room replies sent");
            Assert.That(left, Is.Zero, "no reply is left in the outbox once both flushes are done");
        });
        await Wait.UntilAsync(() => joiners.All(j => j.Events("joined").Any(e => e.GetProperty("room").GetString() == "busy")), "both joiners got their snapshot of the room");
    }

    [Test]
    public async Task A_flush_sends_its_commands_for_one_hub_instance_as_one_batch_that_the_hub_applies_in_order()
    {
        // The three messages of the first test, but counted at the hub: one flush sends all three,
        // and a hub whose heartbeat says it takes batches gets them in one message.
        const int Talkers = 3;
        await using var system = await TestSystem.CreateAsync();
        await using var hubProcess = await ServiceProcess.StartAsync("Hub.Front.dll", system.Settings(new Dictionary<string, string?>
        {
            ["Gateway:InstanceId"] = "hub-batches",
            ["Gateway:HeartbeatInterval"] = "00:00:01",
        }), system.Directory);
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        using var http = new HttpClient();
        // The worker started after the hub's first heartbeat; it batches once it heard the next.
        await Wait.UntilAsync(async () => Prometheus.Sample(await MetricsAsync(worker), "worker_hub_instances_taking_batches", "") >= 1,
            "the worker heard that the hub takes batches");

        var talkers = new List<ChatClient>();
        for (var i = 0; i < Talkers; i++)
            talkers.Add(await system.ConnectAsAsync(new Uri(hubProcess.BaseAddress, "hub"), $"Talker{i}", "busy"));
        // The last join's memberJoined is a group send too, to be applied before the count starts.
        foreach (var listener in talkers.SkipLast(1))
            await listener.WaitForAsync("memberJoined", p => p.GetProperty("name").GetString() == $"Talker{Talkers - 1}");
        var before = await http.GetStringAsync(new Uri(hubProcess.BaseAddress, "metrics"));

        await using var database = await system.OpenDatabaseAsync();
        await LockRoomAsync(database, "busy");
        for (var i = 0; i < Talkers; i++)
            await talkers[i].SendAsync("say", new { room = "busy", text = $"m{i}" });
        await using (var probe = await system.OpenDatabaseAsync())
            await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= Talkers, "the three messages' flushes wait for the room's lock");
        await UnlockRoomAsync(database, "busy");

        await Wait.UntilAsync(() => talkers.All(t => t.Messages("busy").Count == Talkers), "every talker heard the three messages");
        var after = "";
        await Wait.UntilAsync(async () => Applied(after = await http.GetStringAsync(new Uri(hubProcess.BaseAddress, "metrics"))) - Applied(before) >= Talkers,
            "the hub counted the three messages applied");
        Assert.Multiple(() =>
        {
            foreach (var talker in talkers)
            {
                Assert.That(talker.Messages("busy").Select(m => m.Seq), Is.Ordered.Ascending.And.Unique, "in the room's order, each once");
                Assert.That(talker.Messages("busy").Select(m => m.Text), Is.EquivalentTo(new[] { "m0", "m1", "m2" }), "all three");
            }
            Assert.That(Applied(after) - Applied(before), Is.EqualTo(Talkers), "each message applied once");
            Assert.That(Batch(after, "count") - Batch(before, "count"), Is.EqualTo(1), "one batch");
            Assert.That(Batch(after, "sum") - Batch(before, "sum"), Is.EqualTo(Talkers), "of the three messages");
        });

        static double Applied(string metrics) => Prometheus.Sample(metrics, "gateway_commands_applied_total", "command=\"SendToGroup\"");
        static double Batch(string metrics, string part) => Prometheus.Sample(metrics, $"gateway_command_batch_commands_{part}", "hub_instance=\"hub-batches\"");
    }

    [Test]
    public async Task A_hub_not_heard_to_take_batches_gets_the_same_commands_one_by_one_beside_one_that_does()
    {
        // Hub "new" heartbeats every second; hub "quiet" only once, before the worker started, so the
        // worker never hears that it takes batches (as with a hub older than batches). One flush
        // sends three messages to a room with members on both: "new" gets one batch, "quiet" three
        // commands alone, and every member hears the three in the room's order.
        await using var system = await TestSystem.CreateAsync();
        await using var batching = await ServiceProcess.StartAsync("Hub.Front.dll", system.Settings(new Dictionary<string, string?>
        {
            ["Gateway:InstanceId"] = "hub-new",
            ["Gateway:HeartbeatInterval"] = "00:00:01",
        }), system.Directory);
        await using var quiet = await ServiceProcess.StartAsync("Hub.Front.dll", system.Settings(new Dictionary<string, string?>
        {
            ["Gateway:InstanceId"] = "hub-quiet",
            ["Gateway:HeartbeatInterval"] = "00:10:00",
        }), system.Directory);
        // Its connections' events keep "hub-quiet" heard from; the timeout only makes sure of it.
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(new Dictionary<string, string?>
        {
            ["Worker:HubInstanceTimeout"] = "00:10:00",
        }), system.Directory);
        using var http = new HttpClient();
        await Wait.UntilAsync(async () => Prometheus.Sample(await MetricsAsync(worker), "worker_hub_instances_taking_batches", "") >= 1,
            "the worker heard that hub-new takes batches");

        var talkers = new List<ChatClient>
        {
            await system.ConnectAsAsync(new Uri(batching.BaseAddress, "hub"), "New0", "busy"),
            await system.ConnectAsAsync(new Uri(batching.BaseAddress, "hub"), "New1", "busy"),
            await system.ConnectAsAsync(new Uri(quiet.BaseAddress, "hub"), "Quiet0", "busy"),
        };
        // The joins' memberJoined are group sends too: the last (Quiet0's) goes to both hubs, and must
        // be applied before the count starts. It is hub-quiet's only group send so far.
        foreach (var listener in talkers.Take(2))
            await listener.WaitForAsync("memberJoined", p => p.GetProperty("name").GetString() == "Quiet0");
        await Wait.UntilAsync(async () => Applied(await http.GetStringAsync(new Uri(quiet.BaseAddress, "metrics"))) >= 1, "hub-quiet applied Quiet0's memberJoined");
        var before = new[] { await http.GetStringAsync(new Uri(batching.BaseAddress, "metrics")), await http.GetStringAsync(new Uri(quiet.BaseAddress, "metrics")) };

        await using var database = await system.OpenDatabaseAsync();
        await LockRoomAsync(database, "busy");
        for (var i = 0; i < talkers.Count; i++)
            await talkers[i].SendAsync("say", new { room = "busy", text = $"m{i}" });
        await using (var probe = await system.OpenDatabaseAsync())
            await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= talkers.Count, "the three messages' flushes wait for the room's lock");
        await UnlockRoomAsync(database, "busy");

        await Wait.UntilAsync(() => talkers.All(t => t.Messages("busy").Count == talkers.Count), "every talker heard the three messages");
        var after = new string[2];
        await Wait.UntilAsync(async () =>
        {
            after[0] = await http.GetStringAsync(new Uri(batching.BaseAddress, "metrics"));
            after[1] = await http.GetStringAsync(new Uri(quiet.BaseAddress, "metrics"));
            return Applied(after[0]) - Applied(before[0]) >= 3 && Applied(after[1]) - Applied(before[1]) >= 3;
        }, "both hubs counted the three messages applied");
        Assert.Multiple(() =>
        {
            foreach (var talker in talkers)
                Assert.That(talker.Messages("busy").Select(m => m.Seq), Is.Ordered.Ascending.And.Unique, "in the room's order, each once");
            Assert.That(talkers[2].Messages("busy").Select(m => m.Seq), Is.EqualTo(talkers[0].Messages("busy").Select(m => m.Seq)), "the same messages on both hubs");
            Assert.That(Applied(after[0]) - Applied(before[0]), Is.EqualTo(3), "hub-new applied each message once");
            Assert.That(Applied(after[1]) - Applied(before[1]), Is.EqualTo(3), "hub-quiet applied each message once");
            Assert.That(Batches(after[0], "hub-new") - Batches(before[0], "hub-new"), Is.EqualTo(1), "hub-new got them in one batch");
            Assert.That(Batches(after[1], "hub-quiet") - Batches(before[1], "hub-quiet"), Is.Zero, "hub-quiet got no batch");
        });

        static double Applied(string metrics) => Prometheus.Sample(metrics, "gateway_commands_applied_total", "command=\"SendToGroup\"");
        static double Batches(string metrics, string hub) => Prometheus.Sample(metrics, "gateway_command_batch_commands_count", $"hub_instance=\"{hub}\"");
    }

    [Test]
    public async Task Commands_for_a_hub_that_come_while_its_sends_wait_for_their_confirms_go_together_in_the_next()
    {
        // Rooms' flushes, each with one message for the same hub. The first ones' sends, as many as
        // a worker keeps in flight to one instance, are held by a broker that blocks publishers (a
        // memory alarm, on a node of the test's own); two more come meanwhile, wait, and go as one
        // batch once a send before them is confirmed.
        var inFlight = SocketStarter.GatewayWorker.HubSendQueues.MaxInFlight;
        await using var broker = await ProductionBroker.StartAsync();
        await using var system = await TestSystem.CreateAsync();
        var onTheNode = new Dictionary<string, string?>
        {
            ["ConnectionStrings:rabbitmq"] = broker.Amqp.ToString(),
            ["Gateway:InstanceId"] = "hub-queued",
            ["Gateway:HeartbeatInterval"] = "00:00:01",
            ["Worker:PublishTimeout"] = "00:01:00",
        };
        await using var hubProcess = await ServiceProcess.StartAsync("Hub.Front.dll", system.Settings(onTheNode), system.Directory);
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(onTheNode), system.Directory);
        using var http = new HttpClient();
        await Wait.UntilAsync(async () => Prometheus.Sample(await MetricsAsync(worker), "worker_hub_instances_taking_batches", "") >= 1,
            "the worker heard that the hub takes batches");
        var rooms = Enumerable.Range(0, inFlight + 2).Select(i => $"r{i}").ToArray();
        var talkers = new List<ChatClient>();
        foreach (var room in rooms)
            talkers.Add(await system.ConnectAsAsync(new Uri(hubProcess.BaseAddress, "hub"), $"Talker-{room}", room));
        var before = await http.GetStringAsync(new Uri(hubProcess.BaseAddress, "metrics"));

        await using var database = await system.OpenDatabaseAsync();
        foreach (var room in rooms)
            await LockRoomAsync(database, room);
        for (var i = 0; i < rooms.Length; i++)
            await talkers[i].SendAsync("say", new { room = rooms[i], text = $"in {rooms[i]}" });
        await using var probe = await system.OpenDatabaseAsync();
        await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() >= rooms.Length, "every room's flush waits for its lock");

        await broker.BlockPublishersAsync();
        try
        {
            for (var i = 0; i < inFlight; i++)
            {
                await UnlockRoomAsync(database, rooms[i]);
                // Its flush took the lock and is publishing into the block: it holds the lock until confirmed.
                await Wait.UntilAsync(async () => await probe.SessionsWaitingForALockAsync() == rooms.Length - i - 1, $"room {rooms[i]}'s flush holds its lock");
            }
            await UnlockRoomAsync(database, rooms[^2]);
            await UnlockRoomAsync(database, rooms[^1]);
            await Wait.UntilAsync(async () => Prometheus.Sample(await MetricsAsync(worker), "worker_hub_send_waiting", "") >= 2,
                "two rooms' commands wait behind the sends in flight to the hub");
            Assert.That(talkers.SelectMany((t, i) => t.Messages(rooms[i])), Is.Empty, "nothing reached the hub while the broker blocked");
        }
        finally
        {
            await broker.UnblockPublishersAsync();
        }

        await Wait.UntilAsync(() => talkers.Select((t, i) => t.Messages(rooms[i]).Count).All(n => n == 1), "every talker heard its message");
        var after = "";
        await Wait.UntilAsync(async () => Applied(after = await http.GetStringAsync(new Uri(hubProcess.BaseAddress, "metrics"))) - Applied(before) >= rooms.Length,
            "the hub counted every message applied");
        Assert.Multiple(() =>
        {
            Assert.That(Applied(after) - Applied(before), Is.EqualTo(rooms.Length), "each message applied once");
            Assert.That(Batch(after, "count") - Batch(before, "count"), Is.EqualTo(1), "one batch");
            Assert.That(Batch(after, "sum") - Batch(before, "sum"), Is.EqualTo(2), "of the two messages that waited");
        });

        static double Applied(string metrics) => Prometheus.Sample(metrics, "gateway_commands_applied_total", "command=\"SendToGroup\"");
        static double Batch(string metrics, string part) => Prometheus.Sample(metrics, $"gateway_command_batch_commands_{part}", "hub_instance=\"hub-queued\"");
    }

    /// <summary>Takes the room's flush lock (the test's session's), so that the room's flushes queue behind it.</summary>
    private static async Task LockRoomAsync(Npgsql.NpgsqlConnection database, string room)
    {
        await using var take = new Npgsql.NpgsqlCommand("SELECT pg_advisory_lock(hashtextextended('group:room:' || $1, 0))", database) { Parameters = { new() { Value = room } } };
        await take.ExecuteNonQueryAsync();
    }

    private static async Task UnlockRoomAsync(Npgsql.NpgsqlConnection database, string room)
    {
        await using var release = new Npgsql.NpgsqlCommand("SELECT pg_advisory_unlock(hashtextextended('group:room:' || $1, 0))", database) { Parameters = { new() { Value = room } } };
        Assert.That(await release.ExecuteScalarAsync(), Is.True, $"the test held room {room}'s lock");
    }

    private static double Sample(string metrics, string outcome) =>
        Prometheus.Sample(metrics, "worker_flushes_total", $"outcome=\"{outcome}\"");

    private static double Flushes(string metrics) => Sample(metrics, "sent") + Sample(metrics, "already_sent");

    private static async Task<string> MetricsAsync(ServiceProcess worker)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri(worker.BaseAddress, "metrics"));
    }
}
