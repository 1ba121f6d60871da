using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using SocketStarter.GatewayWorker.Shards;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Faults;

/// <summary>
/// One worker's link to the broker stalls one way (what it sends stops reaching the broker; the
/// connection stays open), so its reply flush for a room times out at <c>Worker:PublishTimeout</c>
/// and lets its send go. Another worker then flushes the room: the same reply and a newer one. When
/// the link comes back, the let-go send reaches the broker, late, after the newer flush. The hub
/// must drop it: without the flush numbers, every member would get the older message again after
/// the newer one (and a late <c>memberLeft</c> or <c>RemoveFromGroup</c> would undo a newer state).
/// </summary>
[Category("Faults")]
public sealed class A_reply_send_let_go_at_the_publish_timeout
{
    private const string Room = "late";
    private const int Clients = 12;

    [Test]
    public async Task Arrives_after_a_newer_flush_of_its_room_and_is_dropped_by_the_hub()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync(new Dictionary<string, string?> { ["Gateway:InstanceId"] = "hub-late" });
        await using var link = new TcpProxy(system.BrokerUri);
        // A stalled worker's heartbeats stall too: the peers must not take its shards meanwhile.
        var stalled = await system.StartWorkerAsync(new Dictionary<string, string?>
        {
            ["ConnectionStrings:rabbitmq"] = link.Address.ToString(),
            ["Worker:PublishTimeout"] = "00:00:01",
            ["Worker:PeerTimeout"] = "00:01:00",
        });
        var other = await system.StartWorkerAsync(new Dictionary<string, string?> { ["Worker:PeerTimeout"] = "00:01:00" });
        await SettledAsync(system, stalled, other);

        var clients = new List<ChatClient>();
        for (var i = 0; i < Clients; i++)
            clients.Add(await system.ConnectAsAsync(hub, $"user{i}", Room));

        // Which worker applies whose events: with the link held, a client whose reply comes back is
        // on the other worker; one whose reply stays in the outbox is on the stalled one (the other
        // worker's rows leave it within moments, so only rows a second old count).
        link.Hold();
        var probes = new Dictionary<ChatClient, long>();
        foreach (var client in clients)
            probes[client] = await client.SendAsync("whereAmI", null);
        await using var database = await system.OpenDatabaseAsync();
        List<ChatClient> onStalled = [], onOther = [];
        await Wait.UntilAsync(async () =>
        {
            var waiting = await OutboxConnectionsAsync(database, olderThan: TimeSpan.FromSeconds(1));
            onOther = [.. clients.Where(c => c.Events("error").Any(e => e.GetProperty("seq").GetInt64() == probes[c]))];
            onStalled = [.. clients.Where(c => waiting.Contains(c.ConnectionId)).Except(onOther)];
            return onStalled.Count + onOther.Count == Clients;
        }, "every probe answered, or waiting in the stalled worker's outbox");
        link.Resume();
        // 12 connections on 16 shards held 8 and 8: all on one worker 1 time in 2,048.
        Assert.That(onStalled, Is.Not.Empty, "some clients' events are applied by the stalled worker");
        Assert.That(onOther, Is.Not.Empty, "some by the other worker");
        await Wait.UntilAsync(async () => (await OutboxConnectionsAsync(database, TimeSpan.Zero)).Count == 0, "the stalled worker's replies left once the link came back");

        // The fault: a room message on the stalled worker, its flush let go; then one on the other.
        var timedOutBefore = await MetricAsync(stalled, "worker_events_broker_unavailable_total");
        link.Hold();
        await onStalled[0].SendAsync("say", new { room = Room, text = "from the stalled worker" });
        await Wait.UntilAsync(async () => await MetricAsync(stalled, "worker_events_broker_unavailable_total") > timedOutBefore,
            "the stalled worker's flush timed out and let its send go");
        await onOther[0].SendAsync("say", new { room = Room, text = "from the other worker" });
        await Wait.UntilAsync(() => clients.All(c => c.Messages(Room).Count == 2), "the other worker's flush sent both messages to everyone");
        link.Resume();

        // The let-go send arrives now: dropped by the hub (and counted), or delivered to the clients.
        await Wait.UntilAsync(async () => await MetricAsync(hub, "gateway_commands_fenced_total") >= 1 || clients.Any(c => c.Events("message").Count > 2),
            "the late copy reached the hub");
        await onStalled[0].SendAsync("say", new { room = Room, text = "after the link came back" });
        await Wait.UntilAsync(() => clients.All(c => c.Messages(Room).Any(m => m.Text == "after the link came back")), "everyone has the message sent after");

        var fenced = await MetricAsync(hub, "gateway_commands_fenced_total");
        TestContext.Out.WriteLine($"late copies dropped by the hub: {fenced}");
        Assert.Multiple(() =>
        {
            foreach (var client in clients)
            {
                var arrived = client.Events("message").Select(m => m.GetProperty("seq").GetInt64()).ToList();
                Assert.That(arrived, Is.Ordered.Ascending.And.Unique, $"{client.ConnectionId}: room messages as they arrived, no older one after a newer one");
            }
            Assert.That(fenced, Is.GreaterThanOrEqualTo(1), "the late copy was dropped at the hub");
        });
        await system.StopAsync(stalled);
    }

    /// <summary>
    /// The let-go send is a removal from a group that one connection made of another, and the removed
    /// connection joins again while it is in the outbox: the join goes to the hub at once, before the
    /// removal, which committed earlier, is sent again by the join's own flush. The group must end as
    /// the commits say (the connection in it). Without the join sent again in the group's order, the
    /// removal's copy took the connection out after its join and it heard nothing more of the group.
    /// </summary>
    [Test]
    public async Task A_removal_that_committed_before_a_join_but_left_after_it_does_not_undo_the_join()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync(new Dictionary<string, string?> { ["Gateway:InstanceId"] = "hub-late" });
        await using var link = new TcpProxy(system.BrokerUri);
        var stalled = await system.StartWorkerAsync<MembershipApp>(new Dictionary<string, string?>
        {
            ["ConnectionStrings:rabbitmq"] = link.Address.ToString(),
            ["Worker:PublishTimeout"] = "00:00:01",
            ["Worker:PeerTimeout"] = "00:01:00",
        });
        var other = await system.StartWorkerAsync<MembershipApp>(new Dictionary<string, string?> { ["Worker:PeerTimeout"] = "00:01:00" });
        await SettledAsync(system, stalled, other);

        // 16 connections on 16 shards held 8 and 8: fewer than 2 on the stalled worker 17 times in 65,536.
        const int Connected = 16;
        var clients = new List<ChatClient>();
        for (var i = 0; i < Connected; i++)
            clients.Add(await system.ConnectAsync(hub));
        link.Hold();
        var probes = new Dictionary<ChatClient, long>();
        foreach (var client in clients)
            probes[client] = await client.SendAsync("whereAmI", null);
        await using var database = await system.OpenDatabaseAsync();
        List<ChatClient> onStalled = [], onOther = [];
        await Wait.UntilAsync(async () =>
        {
            var waiting = await OutboxConnectionsAsync(database, olderThan: TimeSpan.FromSeconds(1));
            onOther = [.. clients.Where(c => c.Events("error").Any(e => e.GetProperty("seq").GetInt64() == probes[c]))];
            onStalled = [.. clients.Where(c => waiting.Contains(c.ConnectionId)).Except(onOther)];
            return onStalled.Count + onOther.Count == Connected;
        }, "every probe answered, or waiting in the stalled worker's outbox");
        link.Resume();
        Assert.That(onStalled, Has.Count.GreaterThanOrEqualTo(2), "two clients' events are applied by the stalled worker");
        Assert.That(onOther, Is.Not.Empty, "some by the other worker");
        await Wait.UntilAsync(async () => (await OutboxConnectionsAsync(database, TimeSpan.Zero)).Count == 0, "the stalled worker's replies left once the link came back");

        var (member, remover, witness) = (onOther[0], onStalled[0], onStalled[1]);
        foreach (var client in new[] { member, witness })
        {
            var join = await client.SendAsync("join", new { group = "g" });
            await client.WaitForAsync("joined", j => j.GetProperty("seq").GetInt64() == join);
        }

        // The fault: the removal commits on the stalled worker, and its flush lets its send go.
        var timedOutBefore = await MetricAsync(stalled, "worker_events_broker_unavailable_total");
        link.Hold();
        await remover.SendAsync("remove", new { connection = member.ConnectionId, group = "g" });
        await Wait.UntilAsync(async () => await MetricAsync(stalled, "worker_events_broker_unavailable_total") > timedOutBefore,
            "the stalled worker's flush timed out and let the removal go");
        await using (var waiting = new Npgsql.NpgsqlCommand("SELECT count(*) FROM gateway_outbox WHERE message_type = 'RemoveFromGroup'", database))
            Assert.That(await waiting.ExecuteScalarAsync(), Is.EqualTo(1L), "the removal waits in the outbox as the member joins again");
        // The member joins again on the other worker: at once at the hub, then the group's flush
        // sends the removal (committed before) and, with it, the join again.
        var rejoin = await member.SendAsync("join", new { group = "g" });
        await member.WaitForAsync("joined", j => j.GetProperty("seq").GetInt64() == rejoin);
        // What the timed-out flush had written to its socket reaches the broker now (a send cancelled
        // before that never does), older than the join's flush: dropped by the hub, as the first
        // spec shows. The remover's reply comes after it.
        link.Resume();
        await remover.WaitForAsync("removed");

        await member.SendAsync("say", new { group = "g", text = "after the join" });
        await witness.WaitForAsync("said", m => m.GetProperty("text").GetString() == "after the join");
        await Wait.UntilAsync(() => member.Events("said").Any(m => m.GetProperty("text").GetString() == "after the join"),
            "the member, in the group as its last committed change says, hears what is said after");

        // And a removal that commits after the join still takes the member out.
        var removal = await remover.SendAsync("remove", new { connection = member.ConnectionId, group = "g" });
        await remover.WaitForAsync("removed", r => r.GetProperty("seq").GetInt64() == removal);
        await witness.SendAsync("say", new { group = "g", text = "after the removal" });
        await witness.WaitForAsync("said", m => m.GetProperty("text").GetString() == "after the removal");
        // The member's instance applies its commands in order: what it sent the member before its
        // own next reply has been delivered by the time that reply is.
        var last = await member.SendAsync("whereAmI", null);
        await member.WaitForAsync("error", e => e.GetProperty("seq").GetInt64() == last);
        Assert.That(member.Events("said").Select(m => m.GetProperty("text").GetString()), Has.No.Member("after the removal"));
        await system.StopAsync(stalled);
    }

    /// <summary>Both workers hold a fair share of the shards, no one else.</summary>
    private static async Task SettledAsync(TestSystem system, params WebApplication[] workers)
    {
        var ids = workers.Select(w => w.Services.GetRequiredService<WorkerIdentity>().WorkerId).ToList();
        await Wait.UntilAsync(async () =>
        {
            var active = await system.Broker.ActiveConsumersAsync(system.VirtualHost);
            var holders = TestSystem.ShardQueues.Select(q => active.GetValueOrDefault(q)).ToList();
            if (holders.Any(h => h is null || !ids.Contains(h)))
                return false;
            var counts = ids.Select(id => holders.Count(h => h == id)).ToList();
            return counts.Min() > 0 && counts.Max() - counts.Min() <= 1;
        }, "two workers share the shards", TimeSpan.FromSeconds(40));
    }

    private static async Task<HashSet<string>> OutboxConnectionsAsync(Npgsql.NpgsqlConnection database, TimeSpan olderThan)
    {
        await using var command = new Npgsql.NpgsqlCommand("SELECT DISTINCT connection_id FROM gateway_outbox WHERE created_at <= now() - $1", database)
        {
            Parameters = { new() { Value = olderThan } },
        };
        await using var reader = await command.ExecuteReaderAsync();
        var found = new HashSet<string>(StringComparer.Ordinal);
        while (await reader.ReadAsync())
            found.Add(reader.GetString(0));
        return found;
    }

    private static Task<double> MetricAsync(WebApplication worker, string metric) =>
        MetricAsync(new Uri(worker.Urls.First()), metric);

    private static async Task<double> MetricAsync(Uri service, string metric)
    {
        using var http = new HttpClient();
        return Prometheus.Sample(await http.GetStringAsync(new Uri(service, "/metrics")), metric, "");
    }
}
