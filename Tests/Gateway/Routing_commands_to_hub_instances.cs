using System.Collections.Concurrent;
using MassTransit;
using SocketStarter.Messages;
using SocketStarter.ServiceDefaults;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// Three hub instances: a worker's command about connections goes only to the instances that hold
/// them, and a room's messages only to the instances that hold its members; pushes and sends to
/// everyone still reach every instance. Each instance counts the commands it applied
/// (<c>gateway.commands.applied</c>, tagged with the instance).
/// </summary>
public sealed class Routing_commands_to_hub_instances
{
    private const string PushKey = "push-key-for-tests-0123456789";
    private static readonly string[] Instances = ["hub-a", "hub-b", "hub-c"];

    private TestSystem _system = null!;
    private Dictionary<string, Uri> _hubs = null!;
    private HttpClient _http = null!;

    [SetUp]
    public async Task StartAsync()
    {
        _http = new HttpClient();
        _hubs = [];
        _system = await TestSystem.CreateAsync();
        foreach (var instance in Instances)
            _hubs[instance] = await _system.StartHubAsync(new Dictionary<string, string?> { ["Gateway:InstanceId"] = instance, ["PushApi:ApiKey"] = PushKey });
    }

    [TearDown]
    public async Task StopAsync()
    {
        _http.Dispose();
        await _system.DisposeAsync();
    }

    [Test]
    public async Task A_room_message_reaches_only_the_instances_of_its_members()
    {
        await _system.StartWorkerAsync();
        var ada = await _system.ConnectAsAsync(_hubs["hub-a"], "Ada", "lounge");
        var bob = await _system.ConnectAsAsync(_hubs["hub-b"], "Bob", "lounge");
        var cy = await _system.ConnectAsync(_hubs["hub-c"]);
        await cy.SignInAsync("Cy");

        const int Count = 20;
        for (var i = 1; i <= Count; i++)
            await ada.SendAsync("say", new { room = "lounge", text = $"message {i}" });
        await Wait.UntilAsync(() => ada.Messages("lounge").Count == Count && bob.Messages("lounge").Count == Count, "Ada and Bob have every message");
        var applied = await AfterEverythingAsync(ada, bob, cy);

        Assert.Multiple(() =>
        {
            Assert.That(applied["hub-a"].Command("SendToGroup"), Is.GreaterThanOrEqualTo(Count));
            Assert.That(applied["hub-b"].Command("SendToGroup"), Is.GreaterThanOrEqualTo(Count));
            // Cy never joined a room: with every command to every instance, hub-c would have applied them all.
            Assert.That(applied["hub-c"].Command("SendToGroup"), Is.Zero, "no room message reached hub-c");
            Assert.That(applied["hub-c"].Command("AddToGroup"), Is.Zero, "no join reached hub-c");
            Assert.That(cy.Messages("lounge"), Is.Empty);
        });
    }

    /// <summary>
    /// A room's messages are sent by its ordered flushes, each stamped with the room's key and the
    /// flush's number, which rises from flush to flush: what lets a hub drop a late copy of an older
    /// flush (Commands_from_behind_the_gateway has the hub's side). Seen by a queue of the test's own
    /// bound beside hub-a's under the instances' exchange.
    /// </summary>
    [Test]
    public async Task A_rooms_messages_carry_their_flushs_key_and_a_rising_number()
    {
        var seen = new ConcurrentQueue<(string Type, string? Key, long? Flush)>();
        var spy = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(_system.BrokerUri);
            cfg.ReceiveEndpoint("spy-on-hub-a", e =>
            {
                e.ConfigureConsumeTopology = false;
                // In arrival order.
                e.ConcurrentMessageLimit = 1;
                e.AutoDelete = true;
                e.Durable = false;
                e.Bind(CommandRouting.InstancesExchange, b =>
                {
                    b.ExchangeType = RabbitMQ.Client.ExchangeType.Direct;
                    b.RoutingKey = "hub-a";
                });
                e.Handler<SendToGroup>(context =>
                {
                    seen.Enqueue((context.Message.Type, context.Headers.Get<string>(CommandRouting.OrderKeyHeader), context.Headers.Get<long>(CommandRouting.OrderFlushHeader)));
                    return Task.CompletedTask;
                });
            });
        });
        await spy.StartAsync();
        try
        {
            await _system.StartWorkerAsync();
            var ada = await _system.ConnectAsAsync(_hubs["hub-a"], "Ada", "lounge");
            const int Count = 10;
            for (var i = 1; i <= Count; i++)
            {
                await ada.SendAsync("say", new { room = "lounge", text = $"message {i}" });
                await Wait.UntilAsync(() => ada.Messages("lounge").Count == i, $"Ada has message {i}");
            }
            await Wait.UntilAsync(() => seen.Count(s => s.Type == "message") == Count, "the spy saw every message");

            var messages = seen.Where(s => s.Type == "message").ToList();
            Assert.Multiple(() =>
            {
                Assert.That(messages.Select(m => m.Key), Is.All.EqualTo("group:room:lounge"));
                Assert.That(messages.Select(m => m.Flush), Is.All.Not.Null);
                // One message at a time, each committed before the next was said: each in a flush of its own.
                Assert.That(messages.Select(m => m.Flush), Is.Ordered.Ascending.And.Unique);
                Assert.That(seen.Where(s => s.Type != "message").Select(s => s.Key), Is.All.EqualTo("group:room:lounge"), "the room's other events too");
            });
            var applied = await AfterEverythingAsync(ada);
            Assert.That(applied["hub-a"].Fenced, Is.Zero, "no command dropped in normal running");
        }
        finally
        {
            await spy.StopAsync();
        }
    }

    [Test]
    public async Task A_send_to_one_connection_reaches_only_its_instance()
    {
        await _system.StartWorkerAsync();
        var clients = new Dictionary<string, ChatClient>();
        foreach (var instance in Instances)
        {
            clients[instance] = await _system.ConnectAsync(_hubs[instance]);
            await clients[instance].SignInAsync("user-on-" + instance);
        }
        // An error reply for each client, and one more for hub-a's.
        foreach (var client in clients.Values.Append(clients["hub-a"]))
        {
            var seq = await client.SendAsync("say", new { room = "nowhere", text = "hello?" });
            await client.WaitForErrorAsync(seq);
        }
        var applied = await AfterEverythingAsync([.. clients.Values]);

        Assert.Multiple(() =>
        {
            // Signed in, then the errors: each instance applied its own client's replies only.
            Assert.That(applied["hub-a"].Command("SendToConnections"), Is.EqualTo(3));
            Assert.That(applied["hub-b"].Command("SendToConnections"), Is.EqualTo(2));
            Assert.That(applied["hub-c"].Command("SendToConnections"), Is.EqualTo(2));
        });
    }

    [Test]
    public async Task Pushes_and_sends_to_everyone_reach_every_instance()
    {
        await _system.StartWorkerAsync();
        var ada = await _system.ConnectAsAsync(_hubs["hub-a"], "Ada", "lobby");
        var bob = await _system.ConnectAsAsync(_hubs["hub-b"], "Bob", "lobby");
        var cy = await _system.ConnectAsync(_hubs["hub-c"]);

        using var api = new PushClient(_hubs["hub-c"], PushKey);
        // The push API does not know where connections live: a room push goes to every instance.
        await api.AcceptedAsync(api.PostEventAsync($"/groups/{PushClient.Segment("room:lobby")}/:send", "notice", new { text = "deploy at six" }));
        await api.AcceptedAsync(api.PostEventAsync("/:send", "done", null));
        foreach (var client in new[] { ada, bob, cy })
            await client.WaitForAsync("done");

        Assert.Multiple(() =>
        {
            Assert.That(ada.Events("notice"), Has.Count.EqualTo(1));
            Assert.That(bob.Events("notice"), Has.Count.EqualTo(1));
            Assert.That(cy.Events("notice"), Is.Empty, "not in the room");
        });
        // hub-c holds no member of any room: only the push can have brought it a group command.
        await Wait.UntilAsync(async () => (await AppliedAsync()).Values.All(c => c.Command("SendToGroup") >= 1 && c.Command("SendToAll") >= 1),
            "every instance applied the room push and the push to everyone");
    }

    [Test]
    public async Task Members_joining_on_two_instances_while_messages_flow_miss_nothing_after_their_snapshot()
    {
        await _system.StartWorkerAsync();
        await _system.StartWorkerAsync();
        var ada = await _system.ConnectAsAsync(_hubs["hub-a"], "Ada", "race");

        const int Count = 80;
        var sending = Task.Run(async () =>
        {
            for (var i = 1; i <= Count; i++)
                await ada.SendAsync("say", new { room = "race", text = $"message {i}" });
        });
        var joiners = new List<(ChatClient Client, long LastSeq)>();
        for (var j = 0; j < 6; j++)
        {
            var client = await _system.ConnectAsync(_hubs[j % 2 == 0 ? "hub-b" : "hub-a"]);
            await client.SignInAsync($"joiner-{j}");
            var joined = await client.JoinAsync("race");
            joiners.Add((client, joined.GetProperty("lastSeq").GetInt64()));
        }
        await sending;
        await Wait.UntilAsync(() => ada.Messages("race").Count == Count, "Ada has every message");
        var last = ada.Messages("race").Max(m => m.Seq);

        Assert.That(joiners.Select(j => j.LastSeq), Has.Some.LessThan(last), "some joined while messages still flowed");
        foreach (var (client, lastSeq) in joiners)
        {
            var expected = Enumerable.Range((int)lastSeq + 1, (int)(last - lastSeq)).Select(s => (long)s).ToList();
            await Wait.UntilAsync(() => expected.All(s => client.Messages("race").Any(m => m.Seq == s)),
                $"a member who joined at seq {lastSeq} gets every message after it, up to {last}");
        }
    }

    /// <summary>
    /// Commands each instance applied, once it applied a push to everyone sent after all else: what
    /// anything sent before reached, each instance has applied by then (one queue, in order).
    /// </summary>
    private async Task<Dictionary<string, Applied>> AfterEverythingAsync(params ChatClient[] clients)
    {
        using var api = new PushClient(_hubs["hub-a"], PushKey);
        await api.AcceptedAsync(api.PostEventAsync("/:send", "barrier", null));
        foreach (var client in clients)
            await client.WaitForAsync("barrier");
        Dictionary<string, Applied> applied = [];
        await Wait.UntilAsync(async () => (applied = await AppliedAsync()).Values.All(c => c.Command("SendToAll") >= 1),
            "every instance counted the push to everyone");
        return applied;
    }

    /// <summary>Commands each instance applied, by command, from its own metrics page.</summary>
    private async Task<Dictionary<string, Applied>> AppliedAsync()
    {
        var counts = new Dictionary<string, Applied>();
        foreach (var (instance, hub) in _hubs)
        {
            var page = await _http.GetStringAsync(new Uri(hub, "/metrics"));
            // Only this instance's series (a page may show those of other hosts in this process too).
            counts[instance] = new Applied(string.Join('\n', page.Split('\n').Where(line => line.Contains($"hub_instance=\"{instance}\"", StringComparison.Ordinal))));
        }
        return counts;
    }

    private sealed record Applied(string Series)
    {
        public double Command(string name) => Prometheus.Sample(Series, "gateway_commands_applied_total", $"command=\"{name}\"");

        public double Fenced => Prometheus.Sample(Series, "gateway_commands_fenced_total", "");
    }
}
