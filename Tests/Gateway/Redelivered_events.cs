using MassTransit;
using SocketStarter.Messages;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Redelivered_events
{
    [Test]
    public async Task An_event_republished_with_the_same_seq_has_one_effect()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        // One at a time, so the marker below is processed after both copies.
        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Worker:ConcurrentMessageLimit"] = "1" });

        var ada = await system.ConnectAsAsync(hub, "Ada", "echo");
        var seq = await ada.SendAsync("say", new { room = "echo", text = "only once" });
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "only once");

        // The same upstream event again, as a broker redelivery or a hub retry would bring it.
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(system.BrokerUri));
        await bus.StartAsync();
        try
        {
            var endpoint = await bus.GetSendEndpoint(TestSystem.UpstreamAddress);
            var copy = new ClientMessage
            {
                ConnectionId = ada.ConnectionId,
                HubInstanceId = "test",
                Seq = seq,
                Type = "say",
                Payload = System.Text.Json.JsonSerializer.SerializeToElement(new { room = "echo", text = "only once" }),
                ReceivedAt = DateTimeOffset.UtcNow,
            };
            await endpoint.Send(copy, TestSystem.RoutedBy(ada.ConnectionId));
            await endpoint.Send(copy, TestSystem.RoutedBy(ada.ConnectionId));
        }
        finally
        {
            await bus.StopAsync();
        }

        await ada.SendAsync("say", new { room = "echo", text = "marker" });
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "marker");

        var cy = await system.ConnectAsync(hub);
        await cy.SignInAsync("Cy");
        var history = (await cy.JoinAsync("echo")).GetProperty("history").EnumerateArray()
            .Select(h => h.GetProperty("text").GetString()).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(history, Is.EqualTo(new[] { "only once", "marker" }), "stored once");
            Assert.That(ada.Messages("echo").Select(m => m.Text), Is.EqualTo(new[] { "only once", "marker" }), "delivered once");
        });
    }

    [Test]
    public async Task A_duplicate_needs_no_second_database_connection_while_it_holds_one()
    {
        // One connection in the worker's pool: the smallest case of a shard's redelivered prefetch
        // (16 duplicates at once after a handoff) meeting a pool of 20. A duplicate that kept its
        // connection while its unsent replies were looked up with another waited for itself: the
        // pool's 15 s, then again on every retry, with the connection's later events behind it.
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync(new Dictionary<string, string?>
        {
            ["ConnectionStrings:postgres"] = system.DatabaseConnectionString + ";Maximum Pool Size=1",
        });

        var ada = await system.ConnectAsAsync(hub, "Ada", "small-pool");
        var seq = await ada.SendAsync("say", new { room = "small-pool", text = "once" });
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "once");

        var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(system.BrokerUri));
        await bus.StartAsync();
        try
        {
            var endpoint = await bus.GetSendEndpoint(TestSystem.UpstreamAddress);
            var copy = new ClientMessage
            {
                ConnectionId = ada.ConnectionId,
                HubInstanceId = "test",
                Seq = seq,
                Type = "say",
                Payload = System.Text.Json.JsonSerializer.SerializeToElement(new { room = "small-pool", text = "once" }),
                ReceivedAt = DateTimeOffset.UtcNow,
            };
            await endpoint.Send(copy, TestSystem.RoutedBy(ada.ConnectionId));
        }
        finally
        {
            await bus.StopAsync();
        }

        // The next event of the connection waits for the duplicate ahead of it in the worker.
        await ada.SendAsync("say", new { room = "small-pool", text = "next" });
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "next");

        Assert.That(ada.Messages("small-pool").Select(m => m.Text), Is.EqualTo(new[] { "once", "next" }));
    }
}

public sealed class Events_out_of_order
{
    [Test]
    public async Task Queued_in_reverse_are_applied_in_seq_order_by_a_worker_that_prefetches_more_than_it_runs()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        // One at a time with 16 prefetched: the predecessors sit in the same worker's buffer behind
        // the event waiting for them, the trap that in-place retries fall into.
        var worker = await system.StartWorkerAsync(new Dictionary<string, string?> { ["Worker:PrefetchCount"] = "16", ["Worker:ConcurrentMessageLimit"] = "1" });
        var ada = await system.ConnectAsAsync(hub, "Ada", "reverse");
        var next = await ada.SendAsync("say", new { room = "reverse", text = "r0" }) + 1;
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "r0");

        // Park the next five events in the queue newest first, while no worker takes them.
        await system.StopAsync(worker);
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(system.BrokerUri));
        await bus.StartAsync();
        try
        {
            var endpoint = await bus.GetSendEndpoint(TestSystem.UpstreamAddress);
            for (var i = 5; i >= 1; i--)
            {
                await endpoint.Send(new ClientMessage
                {
                    ConnectionId = ada.ConnectionId,
                    HubInstanceId = "test",
                    Seq = next + i - 1,
                    Type = "say",
                    Payload = System.Text.Json.JsonSerializer.SerializeToElement(new { room = "reverse", text = $"r{i}" }),
                    ReceivedAt = DateTimeOffset.UtcNow,
                }, TestSystem.RoutedBy(ada.ConnectionId));
            }
        }
        finally
        {
            await bus.StopAsync();
        }

        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Worker:PrefetchCount"] = "16", ["Worker:ConcurrentMessageLimit"] = "1" });
        await Wait.UntilAsync(() => ada.Messages("reverse").Count >= 6, "all six messages arrived");
        await Wait.UntilAsync(async () => await system.UpstreamDepthAsync() == (0, 0),
            "no copy is left waiting in the queue");

        Assert.That(ada.Messages("reverse").Select(m => m.Text), Is.EqualTo(new[] { "r0", "r1", "r2", "r3", "r4", "r5" }));
    }

    [Test]
    public async Task A_predecessor_queued_behind_more_events_than_the_worker_holds_is_reached_and_all_arrive_in_order()
    {
        // What a handoff can leave: the event the old owner had taken and not finished goes back
        // to the shard queue behind its successors (seen after SIGTERM: seq 47-51 delivered to the
        // next owner before 46). With 16 in flight, the first 16 successors wait for an event they
        // hold the slots of; they must give the slots up and go round, or the shard stands still.
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        var worker = await system.StartWorkerAsync();
        var ada = await system.ConnectAsAsync(hub, "Ada", "behind");
        var next = await ada.SendAsync("say", new { room = "behind", text = "m0" }) + 1;
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "m0");

        const int count = 100;
        await system.StopAsync(worker);
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(system.BrokerUri));
        await bus.StartAsync();
        try
        {
            var endpoint = await bus.GetSendEndpoint(TestSystem.UpstreamAddress);
            // m2 … m100 first, then m1, their predecessor.
            foreach (var i in Enumerable.Range(2, count - 1).Append(1))
            {
                await endpoint.Send(new ClientMessage
                {
                    ConnectionId = ada.ConnectionId,
                    HubInstanceId = "test",
                    Seq = next + i - 1,
                    Type = "say",
                    Payload = System.Text.Json.JsonSerializer.SerializeToElement(new { room = "behind", text = $"m{i}" }),
                    ReceivedAt = DateTimeOffset.UtcNow,
                }, TestSystem.RoutedBy(ada.ConnectionId));
            }
        }
        finally
        {
            await bus.StopAsync();
        }

        await system.StartWorkerAsync();
        await Wait.UntilAsync(() => ada.Messages("behind").Count >= count + 1, $"all {count + 1} messages arrived (has {ada.Messages("behind").Count})");
        await Wait.UntilAsync(async () => await system.UpstreamDepthAsync() == (0, 0), "no copy is left waiting in the queue");

        Assert.That(ada.Messages("behind").Select(m => m.Text), Is.EqualTo(Enumerable.Range(0, count + 1).Select(i => $"m{i}")));
    }

    [Test]
    public async Task An_event_whose_predecessor_committed_but_died_before_its_replies_left_waits_for_them()
    {
        // A worker killed between an event's commit and its replies' publish leaves the replies in
        // the outbox, and the event goes back to its shard queue, possibly behind what came after
        // it. The next event must not go first: its replies would overtake its predecessor's
        // (here: a room's message before the "joined" that opens the room on the client).
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        var doomed = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        ServiceProcess? replacement = null;
        try
        {
            var ada = await system.ConnectAsAsync(hub, "Ada", "lobby");
            var arrived = new System.Collections.Concurrent.ConcurrentQueue<string>();
            ada.Received += (type, payload) =>
            {
                if (payload.ValueKind == System.Text.Json.JsonValueKind.Object && payload.TryGetProperty("room", out var room) && room.GetString() == "next")
                    arrived.Enqueue(type);
            };

            await using var database = await system.OpenDatabaseAsync();
            long join;
            await using (var hold = await database.BeginTransactionAsync())
            {
                // The room's replies leave through its ordered flush; holding the flush's lock holds
                // them after the join commits, where a kill then leaves them.
                await using (var lockRoom = new Npgsql.NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('group:room:next', 0))", database, hold))
                    await lockRoom.ExecuteNonQueryAsync();
                join = await ada.SendAsync("join", new { room = "next" });
                await Wait.UntilAsync(async () => await CommittedWithRepliesWaitingAsync(system.DatabaseConnectionString, ada.ConnectionId, join),
                    "the join committed and its replies wait in the outbox");
                doomed.Kill();
                await doomed.WaitForExitAsync(TimeSpan.FromSeconds(30));
                await hold.RollbackAsync();
            }
            Assert.That(arrived, Is.Empty, "nothing of the room reached the client before the kill");

            // The join went back to its queue; put it behind its successor, as a handoff can.
            foreach (var queue in TestSystem.ShardQueues)
                await system.Broker.PurgeQueueAsync(system.VirtualHost, queue);
            var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(system.BrokerUri));
            await bus.StartAsync();
            try
            {
                var endpoint = await bus.GetSendEndpoint(TestSystem.UpstreamAddress);
                ClientMessage Event(long seq, string type, object payload) => new()
                {
                    ConnectionId = ada.ConnectionId,
                    HubInstanceId = "test",
                    Seq = seq,
                    Type = type,
                    Payload = System.Text.Json.JsonSerializer.SerializeToElement(payload),
                    ReceivedAt = DateTimeOffset.UtcNow,
                };
                await endpoint.Send(Event(join + 1, "say", new { room = "next", text = "first words" }), TestSystem.RoutedBy(ada.ConnectionId));
                await endpoint.Send(Event(join, "join", new { room = "next" }), TestSystem.RoutedBy(ada.ConnectionId));
            }
            finally
            {
                await bus.StopAsync();
            }

            // One event at a time, so that the say is tried first and alone.
            replacement = await ServiceProcess.StartAsync("Chat.Worker.dll",
                system.Settings(new Dictionary<string, string?> { ["Worker:PrefetchCount"] = "1", ["Worker:ConcurrentMessageLimit"] = "1" }), system.Directory);
            await Wait.UntilAsync(() => ada.Messages("next").Count >= 1 && ada.Events("joined").Any(j => j.GetProperty("room").GetString() == "next"),
                "the join's reply and the message arrived");
            await Wait.UntilAsync(async () => await system.UpstreamDepthAsync() == (0, 0), "the queue is empty");

            Assert.Multiple(() =>
            {
                Assert.That(arrived.Where(t => t is "joined" or "message"), Is.EqualTo(new[] { "joined", "message" }), "the join's reply first, then the message");
                Assert.That(ada.Messages("next").Select(m => m.Text), Is.EqualTo(new[] { "first words" }));
            });
        }
        finally
        {
            await doomed.DisposeAsync();
            if (replacement is not null)
                await replacement.DisposeAsync();
        }
    }

    private static async Task<bool> CommittedWithRepliesWaitingAsync(string connectionString, string connectionId, long seq)
    {
        // Outside the test's transaction: a connection of its own.
        await using var look = new Npgsql.NpgsqlConnection(connectionString);
        await look.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand("""
            SELECT EXISTS (SELECT 1 FROM gateway_connections WHERE connection_id = $1 AND last_seq >= $2)
               AND EXISTS (SELECT 1 FROM gateway_outbox WHERE connection_id = $1 AND seq = $2)
            """, look) { Parameters = { new() { Value = connectionId }, new() { Value = seq } } };
        return (bool)(await command.ExecuteScalarAsync())!;
    }

    [Test]
    public async Task A_predecessor_missing_past_the_wait_limit_is_given_up_and_reported_when_it_turns_up()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Worker:GapWaitLimit"] = "00:00:01" });
        var ada = await system.ConnectAsAsync(hub, "Ada", "late");
        var last = await ada.SendAsync("say", new { room = "late", text = "before" });
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "before");

        var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(system.BrokerUri));
        await bus.StartAsync();
        try
        {
            var endpoint = await bus.GetSendEndpoint(TestSystem.UpstreamAddress);
            ClientMessage Say(long seq, string text) => new()
            {
                ConnectionId = ada.ConnectionId,
                HubInstanceId = "test",
                Seq = seq,
                Type = "say",
                Payload = System.Text.Json.JsonSerializer.SerializeToElement(new { room = "late", text }),
                ReceivedAt = DateTimeOffset.UtcNow,
            };

            // Seq last+1 goes missing; last+2 waits for it, then gives it up and goes on.
            await endpoint.Send(Say(last + 2, "after the gap"), TestSystem.RoutedBy(ada.ConnectionId));
            await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "after the gap");

            // The missing one turns up after all: not applied out of order, and its client is told.
            await endpoint.Send(Say(last + 1, "too late"), TestSystem.RoutedBy(ada.ConnectionId));
            var error = await ada.WaitForErrorAsync(last + 1);

            Assert.Multiple(() =>
            {
                Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("internal_error"));
                Assert.That(ada.Messages("late").Select(m => m.Text), Is.EqualTo(new[] { "before", "after the gap" }));
            });
        }
        finally
        {
            await bus.StopAsync();
        }
    }
}
