using System.Diagnostics;
using System.Net;
using MassTransit;
using SocketStarter.GatewayWorker;
using SocketStarter.HubFront;
using SocketStarter.Messages;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Faults;

/// <summary>
/// Each row of the failure table in ARCHITECTURE.md, broken for real (processes killed, the broker
/// stopped) while clients chat without pause; each prints its tally. The short variants run in the
/// test command; the long ones are in the <c>LongFaults</c> category (<c>scripts/test-faults</c>).
/// </summary>
[Category("Faults")]
public sealed class Faults_under_load
{
    private const int Clients = 20;
    private const int Rooms = 5;
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan DrainLimit = TimeSpan.FromSeconds(120);

    [TestCase(6)]
    [TestCase(30, Category = "LongFaults")]
    public async Task Workers_killed_with_SIGKILL_and_restarted_at_random(int seconds)
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        var workers = new Workers(system);
        await using var _ = workers;
        await workers.StartAsync(3);
        await using var traffic = await ChatTraffic.StartAsync(system, _ => hub, Clients, Rooms, Pace);

        var seed = Environment.TickCount;
        var random = new Random(seed);
        var clock = Stopwatch.StartNew();
        var kills = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            // The schedule: a random pause, a random victim, a replacement.
            await Task.Delay(random.Next(300, 1500));
            await workers.KillAsync(random.Next(workers.Count));
            kills++;
            await workers.StartAsync(1);
        }

        var tally = await traffic.DrainAsync($"{kills} workers SIGKILLed at random (of 3) over {seconds} s, seed {seed}", DrainLimit);
        AssertNothingLostDoubledOrReordered(tally);
        Assert.That(tally.Refusals, Is.Empty, "the hub took every event: workers dying is invisible to it");
    }

    [TestCase(1)]
    [TestCase(3, Category = "LongFaults")]
    public async Task Every_worker_replaced_one_by_one_with_SIGTERM(int rounds)
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        var workers = new Workers(system);
        await using var _ = workers;
        await workers.StartAsync(3);
        await using var traffic = await ChatTraffic.StartAsync(system, _ => hub, Clients, Rooms, Pace);

        for (var round = 0; round < rounds; round++)
        {
            for (var i = 0; i < 3; i++)
            {
                // A rolling update: the new one is ready before the old one is told to stop.
                var step = Stopwatch.StartNew();
                await workers.StartAsync(1);
                var started = step.Elapsed;
                var exitCode = await workers.TerminateAsync(0);
                TestContext.Out.WriteLine($"replaced a worker: new one ready in {started.TotalSeconds:F1} s, old one gone {(step.Elapsed - started).TotalSeconds:F1} s after SIGTERM; {traffic.Count("so far").Delivered} delivered so far");
                Assert.That(exitCode, Is.Zero, "a worker stops cleanly on SIGTERM");
            }
        }

        var tally = await traffic.DrainAsync($"rolling replace of 3 workers × {rounds}", DrainLimit);
        AssertNothingLostDoubledOrReordered(tally);
        Assert.That(tally.Refusals, Is.Empty);
    }

    [TestCase(4)]
    [TestCase(10, Category = "LongFaults")]
    public async Task The_broker_stopped_and_started_again(int outageSeconds)
    {
        await using var broker = await ProductionBroker.StartAsync();
        await using var system = await TestSystem.CreateAsync();
        var onTheNode = new Dictionary<string, string?>
        {
            ["ConnectionStrings:rabbitmq"] = broker.Amqp.ToString(),
            ["Gateway:PublishTimeout"] = "00:00:02",
        };
        var hub = await system.StartHubAsync(onTheNode);
        await system.StartWorkerAsync(onTheNode);
        await system.StartWorkerAsync(onTheNode);
        await using var traffic = await ChatTraffic.StartAsync(system, _ => hub, Clients, Rooms, Pace);
        await Wait.UntilAsync(() => traffic.Count("warm-up").Delivered > 100, "the chat is flowing");

        await broker.StopNodeAsync();
        var outage = Stopwatch.StartNew();
        await Wait.UntilAsync(() => traffic.Count("outage").Refusals.Values.Sum() >= Clients, "sends during the outage are refused");
        // The outage itself: the broker stays down this long while clients keep sending.
        await Task.Delay(TimeSpan.FromSeconds(outageSeconds) - outage.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);
        await broker.StartNodeAsync();
        var acceptedBefore = traffic.Count("recovery").Accepted;
        await Wait.UntilAsync(() => traffic.Count("recovery").Accepted > acceptedBefore + 2 * Clients,
            "the hub accepts events again by itself", TimeSpan.FromSeconds(90));

        var tally = await traffic.DrainAsync($"broker stopped {outageSeconds} s and started again", DrainLimit);
        AssertNothingLostDoubledOrReordered(tally);
        Assert.That(tally.Refusals.Keys, Is.SubsetOf(new[] { "broker_unavailable", "not_confirmed" }),
            "a send during the outage fails with a clear error, none silently");
    }

    /// <summary>
    /// The broker's memory alarm, raised for real: it stops reading from every connection that
    /// publishes, and the connections stay open, so a publish waits with no error for as long as
    /// the alarm lasts. A reply flush holds its group's lock while it publishes: unbounded, every
    /// later reply of the group, on every worker, would wait behind it (and a publish that never
    /// completes, as one did after a broker restart, stops the group for good).
    /// </summary>
    [TestCase(10)]
    public async Task The_broker_blocking_publishers_for_a_while(int blockedSeconds)
    {
        var publishTimeout = TimeSpan.FromSeconds(2);
        await using var broker = await ProductionBroker.StartAsync();
        await using var system = await TestSystem.CreateAsync();
        var onTheNode = new Dictionary<string, string?>
        {
            ["ConnectionStrings:rabbitmq"] = broker.Amqp.ToString(),
            ["Gateway:PublishTimeout"] = "00:00:02",
            ["Worker:PublishTimeout"] = publishTimeout.ToString(),
        };
        var hub = await system.StartHubAsync(onTheNode);
        var workers = new[] { await system.StartWorkerAsync(onTheNode), await system.StartWorkerAsync(onTheNode) };
        await using var traffic = await ChatTraffic.StartAsync(system, _ => hub, Clients, Rooms, Pace);
        await Wait.UntilAsync(() => traffic.Count("warm-up").Delivered > 100, "the chat is flowing");

        // Events must reach the workers while the broker blocks (the hub's publishes wait too): held
        // back by the test holding every room's row, they pile up and commit once it lets go, and
        // then their replies meet the block.
        await using var database = await system.OpenDatabaseAsync();
        await using (var holder = await system.OpenDatabaseAsync())
        {
            await using var hold = await holder.BeginTransactionAsync();
            await using (var rooms = new Npgsql.NpgsqlCommand("SELECT 1 FROM chat_rooms FOR UPDATE", holder, hold))
                await rooms.ExecuteNonQueryAsync();
            await Wait.UntilAsync(async () => await database.SessionsWaitingForALockAsync() >= 2, "events wait for the rooms the test holds");
            await broker.BlockPublishersAsync();
            await hold.RollbackAsync();
        }
        var blocked = Stopwatch.StartNew();
        // For the whole block: how long any reply flush has held its group's lock (a transaction's age).
        var longestHold = TimeSpan.Zero;
        while (blocked.Elapsed < TimeSpan.FromSeconds(blockedSeconds))
        {
            if (await LongestAdvisoryLockAsync(database) is { } held && held > longestHold)
                longestHold = held;
            await Task.Delay(100);
        }
        var timedOut = await BrokerUnavailableAsync(workers);
        await broker.UnblockPublishersAsync();
        var acceptedBefore = traffic.Count("unblocked").Accepted;
        await Wait.UntilAsync(() => traffic.Count("unblocked").Accepted > acceptedBefore + 2 * Clients,
            "the hub accepts events again by itself", TimeSpan.FromSeconds(60));

        var tally = await traffic.DrainAsync($"broker blocked publishers {blockedSeconds} s (memory alarm)", DrainLimit);
        TestContext.Out.WriteLine($"longest hold of a group's flush lock during the block: {longestHold.TotalSeconds:F1} s (Worker:PublishTimeout {publishTimeout.TotalSeconds} s); events tried again for the broker: {timedOut}");
        AssertNothingLostDoubledOrReordered(tally);
        Assert.Multiple(() =>
        {
            Assert.That(timedOut, Is.GreaterThan(0), "replies the broker did not take were tried again (the block reached the workers)");
            Assert.That(longestHold, Is.LessThan(publishTimeout + TimeSpan.FromSeconds(3)), "no flush held its group's lock much past Worker:PublishTimeout");
            Assert.That(tally.Refusals.Keys, Is.SubsetOf(new[] { "broker_unavailable", "not_confirmed" }), "a send during the block fails with a clear error, none silently");
        });
    }

    /// <summary>
    /// How long the longest-holding flush of the test's database has held its group's advisory lock
    /// while publishing: a flush takes its lock (a session's, outside a transaction) and reads in one
    /// round trip, then waits for the broker with its session idle, so the hold is the time since
    /// that round trip ended. (Until the lock became the session's it was the transaction's, and the
    /// session waited "idle in transaction"; either state counts.) Null when no flush is publishing.
    /// </summary>
    private static async Task<TimeSpan?> LongestAdvisoryLockAsync(Npgsql.NpgsqlConnection connection)
    {
        await using var command = new Npgsql.NpgsqlCommand("""
            SELECT EXTRACT(EPOCH FROM max(clock_timestamp() - a.state_change))::float8
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() AND a.state IN ('idle', 'idle in transaction')
            """, connection);
        return await command.ExecuteScalarAsync() is double seconds ? TimeSpan.FromSeconds(seconds) : null;
    }


    /// <summary>worker_events_broker_unavailable_total summed over in-process workers.</summary>
    private static async Task<double> BrokerUnavailableAsync(IEnumerable<Microsoft.AspNetCore.Builder.WebApplication> workers)
    {
        using var http = new HttpClient();
        var total = 0.0;
        foreach (var worker in workers)
            total += Prometheus.Sample(await http.GetStringAsync(new Uri(new Uri(worker.Urls.First()), "metrics")), "worker_events_broker_unavailable_total", "");
        return total;
    }

    [TestCase(5)]
    [TestCase(15, Category = "LongFaults")]
    public async Task The_database_stopped_and_started_again(int outageSeconds)
    {
        await using var database = await Database.StartPrivateAsync();
        await using var system = await TestSystem.CreateAsync(database);
        var hub = await system.StartHubAsync();
        var workers = new Workers(system);
        await using var _ = workers;
        await workers.StartAsync(2);
        var pids = workers.Processes.Select(w => w.Id).ToList();
        await using var traffic = await ChatTraffic.StartAsync(system, _ => hub, Clients, Rooms, Pace);
        await Wait.UntilAsync(() => traffic.Count("warm-up").Delivered > 100, "the chat is flowing");

        await database.StopServerAsync();
        var outage = Stopwatch.StartNew();
        await Wait.UntilAsync(async () => (await workers.ReadinessAsync()).All(s => s == HttpStatusCode.ServiceUnavailable),
            "every worker reports not ready (503)", TimeSpan.FromSeconds(30));
        await Wait.UntilAsync(async () => await system.UpstreamDepthAsync() is var (ready, unacked) && ready + unacked > 0,
            "events wait in the queue, unacknowledged or ready");
        // The outage itself: the database stays down this long while clients keep sending.
        await Task.Delay(TimeSpan.FromSeconds(outageSeconds) - outage.Elapsed is { Ticks: > 0 } rest ? rest : TimeSpan.Zero);
        var depth = await system.UpstreamDepthAsync();
        await database.StartServerAsync();
        await Wait.UntilAsync(async () => (await workers.ReadinessAsync()).All(s => s == HttpStatusCode.OK),
            "every worker reports ready again", TimeSpan.FromSeconds(60));

        var tally = await traffic.DrainAsync($"database stopped {outageSeconds} s and started again ({depth.Ready} ready and {depth.Unacknowledged} unacknowledged events waited in the queue)", DrainLimit);
        AssertNothingLostDoubledOrReordered(tally);
        Assert.Multiple(() =>
        {
            Assert.That(tally.Refusals, Is.Empty, "the hub took every event: the database is the workers' business");
            Assert.That(workers.Processes.Select(w => w.HasExited), Is.All.False, "no worker exited");
            Assert.That(workers.Processes.Select(w => w.Id), Is.EqualTo(pids), "the same worker processes: none crashed or restarted");
        });
    }

    [TestCase(6)]
    [TestCase(30, Category = "LongFaults")]
    public async Task A_hub_instance_killed_with_SIGKILL(int seconds)
    {
        await using var system = await TestSystem.CreateAsync();
        await using var doomed = await ServiceProcess.StartAsync("Hub.Front.dll",
            system.Settings(new Dictionary<string, string?> { ["Gateway:InstanceId"] = "hub-doomed" }), system.Directory);
        var doomedHub = new Uri(doomed.BaseAddress, GatewayHub.Path);
        var survivor = await system.StartHubAsync(new Dictionary<string, string?> { ["Gateway:InstanceId"] = "hub-survivor" });
        await system.StartWorkerAsync();
        await system.StartWorkerAsync();
        // Half the clients on each instance; those of the killed one come back on the survivor and resume.
        await using var traffic = await ChatTraffic.StartAsync(system, i => i % 2 == 0 ? doomedHub : survivor, Clients, Rooms, Pace, () => survivor);

        await Task.Delay(TimeSpan.FromSeconds(seconds) / 2);
        doomed.Kill();
        await Wait.UntilAsync(() => traffic.Count("kill").Reconnects == Clients / 2, "every client of the killed instance resumed on the survivor");
        await Task.Delay(TimeSpan.FromSeconds(seconds) / 2);

        var tally = await traffic.DrainAsync($"1 of 2 hub instances SIGKILLed after {seconds / 2} s of {seconds}", DrainLimit);
        Assert.Multiple(() =>
        {
            Assert.That(tally.Lost, Is.Zero, "every accepted message reached every member, live or by resume");
            Assert.That(tally.Duplicated, Is.Zero);
            Assert.That(tally.Reordered, Is.Zero);
            Assert.That(tally.RefusedButDelivered, Is.Zero);
            Assert.That(tally.Dropped, Is.EqualTo(Clients / 2), "only the killed instance's clients dropped");
            Assert.That(tally.Reconnects, Is.EqualTo(Clients / 2));
        });
    }

    [Test]
    public async Task A_poison_message_among_the_traffic()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Worker:RetryLimit"] = "3" });
        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Worker:RetryLimit"] = "3" });
        await using var traffic = await ChatTraffic.StartAsync(system, _ => hub, Clients, Rooms, Pace);
        await Wait.UntilAsync(() => traffic.Count("warm-up").Delivered > 100, "the chat is flowing");

        // A buggy producer's event: no hub instance, so the worker can never record it (NOT NULL).
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(system.BrokerUri));
        await bus.StartAsync();
        try
        {
            // Where hubs publish: the consistent-hash exchange, keyed by connection id.
            var endpoint = await bus.GetSendEndpoint(new Uri("exchange:chat-worker?type=x-consistent-hash"));
            await endpoint.Send(new ClientMessage
            {
                ConnectionId = "poison",
                HubInstanceId = null!,
                Seq = 1,
                Type = "say",
                Payload = System.Text.Json.JsonSerializer.SerializeToElement(new { room = "room0", text = "poison" }),
                ReceivedAt = DateTimeOffset.UtcNow,
            }, TestSystem.RoutedBy("poison"));
        }
        finally
        {
            await bus.StopAsync();
        }

        // Its shard's error queue: chat-worker-NN_error.
        var errorQueues = Enumerable.Range(0, new WorkerOptions().Shards).Select(i => new WorkerOptions().ShardQueue(i) + "_error").ToList();
        var errorQueue = "";
        await Wait.UntilAsync(async () =>
        {
            foreach (var queue in errorQueues)
            {
                if ((await system.Broker.QueueDepthAsync(system.VirtualHost, queue)).Ready == 1)
                {
                    errorQueue = queue;
                    return true;
                }
            }
            return false;
        }, "the poison message is in its shard's error queue");
        var deliveredThen = traffic.Count("after").Delivered;
        await Wait.UntilAsync(() => traffic.Count("after").Delivered > deliveredThen + 100, "traffic keeps flowing after it");
        var parked = await system.Broker.PeekByConsumingAsync(system.VirtualHost, errorQueue);

        var tally = await traffic.DrainAsync("a poison message (retry limit 3)", DrainLimit);
        AssertNothingLostDoubledOrReordered(tally);
        Assert.Multiple(() =>
        {
            Assert.That(tally.Refusals, Is.Empty);
            Assert.That(parked.Headers["MT-Fault-RetryCount"], Is.EqualTo("3"), "retried before it was parked");
            Assert.That(parked.Headers["MT-Fault-Message"], Does.Contain("violates not-null constraint"), "the fault says why");
        });
    }

    [Test]
    public async Task One_client_flooding_oversized_and_malformed_events()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        await system.StartWorkerAsync();
        await using var traffic = await ChatTraffic.StartAsync(system, _ => hub, Clients, Rooms, Pace);
        await Wait.UntilAsync(() => traffic.Count("calm").Delivered > 200, "the chat is flowing");
        var calm = traffic.Count("calm");

        var abuser = await system.ConnectAsync(hub);
        await abuser.SignInAsync("Mallory");
        var refusals = new Dictionary<string, int>();
        var bad = new Func<Task>[]
        {
            () => abuser.SendAsync("say", new { room = "room0", text = new string('x', 70_000) }),
            () => abuser.SendAsync("no spaces allowed here", new { }),
            () => abuser.SendAsync(new string('t', 65), new { }),
        };
        var flood = Stopwatch.StartNew();
        for (var i = 0; abuser.State == Microsoft.AspNetCore.SignalR.Client.HubConnectionState.Connected && flood.Elapsed < TimeSpan.FromSeconds(10); i++)
        {
            try
            {
                await bad[i % bad.Length]();
                refusals["accepted"] = refusals.GetValueOrDefault("accepted") + 1;
            }
            catch (Microsoft.AspNetCore.SignalR.HubException ex)
            {
                var code = ex.Message[(ex.Message.IndexOf("HubException: ", StringComparison.Ordinal) + 14)..].Split(':')[0];
                refusals[code] = refusals.GetValueOrDefault(code) + 1;
            }
            catch (Exception ex) when (ex is not Microsoft.AspNetCore.SignalR.HubException)
            {
                // The hub closing the connection cancels the send in flight, a moment before the
                // client's state says so: anything else is an error the wait below names.
                await Wait.UntilAsync(() => abuser.TimesClosed > 0, $"the flooding client is closed after its send failed ({ex.GetType().Name}: {ex.Message})");
                break;
            }
        }
        await Wait.UntilAsync(() => abuser.TimesClosed > 0, "the flooding client is closed");

        var tally = await traffic.DrainAsync("one client flooding bad events", DrainLimit);
        TestContext.Out.WriteLine($"calm before the flood: p50 {calm.P50:F1} ms, p99 {calm.P99:F1} ms; the flooder's refusals: {string.Join(", ", refusals.Select(r => $"{r.Key} {r.Value}"))}; closed because: {abuser.ClosingReason}");
        AssertNothingLostDoubledOrReordered(tally);
        Assert.Multiple(() =>
        {
            Assert.That(tally.Refusals, Is.Empty, "nobody else was refused anything");
            Assert.That(refusals.Keys, Is.SubsetOf(new[] { "payload_too_large", "invalid_type", "rate_limited" }), "each bad event got a clear error");
            Assert.That(refusals.GetValueOrDefault("payload_too_large"), Is.GreaterThan(0));
            Assert.That(refusals.GetValueOrDefault("invalid_type"), Is.GreaterThan(0));
            Assert.That(abuser.ClosingReason, Is.Not.Null.And.Not.Empty, "told why before being closed");
        });
    }

    private static void AssertNothingLostDoubledOrReordered(ChatTraffic.Tally tally) =>
        Assert.Multiple(() =>
        {
            Assert.That(tally.Accepted, Is.GreaterThan(0));
            Assert.That(tally.Lost, Is.Zero, "every accepted message reached every member of its room");
            Assert.That(tally.Duplicated, Is.Zero, "no message was stored twice");
            Assert.That(tally.Reordered, Is.Zero, "each sender's messages in the order sent");
            Assert.That(tally.RefusedButDelivered, Is.Zero, "nothing refused was delivered");
            Assert.That(tally.Dropped, Is.Zero, "no client was disconnected");
        });

    /// <summary>Worker processes of one system, killed and replaced by the test.</summary>
    private sealed class Workers(TestSystem system) : IAsyncDisposable
    {
        private readonly List<ServiceProcess> _running = [];

        public int Count => _running.Count;
        public IReadOnlyList<ServiceProcess> Processes => _running;

        /// <summary>What each worker's /health/ready answers now.</summary>
        public async Task<IReadOnlyList<HttpStatusCode>> ReadinessAsync()
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var statuses = new List<HttpStatusCode>();
            foreach (var worker in _running)
            {
                try { statuses.Add((await http.GetAsync(new Uri(worker.BaseAddress, "health/ready"))).StatusCode); }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException) { statuses.Add(0); }
            }
            return statuses;
        }

        public async Task StartAsync(int count)
        {
            for (var i = 0; i < count; i++)
                _running.Add(await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory));
        }

        public async Task KillAsync(int index)
        {
            var victim = _running[index];
            _running.RemoveAt(index);
            victim.Kill();
            await victim.WaitForExitAsync(TimeSpan.FromSeconds(10));
            await victim.DisposeAsync();
        }

        public async Task<int> TerminateAsync(int index)
        {
            var worker = _running[index];
            _running.RemoveAt(index);
            worker.Terminate();
            await worker.WaitForExitAsync(TimeSpan.FromSeconds(40));
            var exitCode = worker.ExitCode;
            await worker.DisposeAsync();
            return exitCode;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var worker in _running)
                await worker.DisposeAsync();
            _running.Clear();
        }
    }
}
