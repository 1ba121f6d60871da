using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// A client whose socket stops taking data (a stuck tab, a dead mobile link that still answers
/// TCP) must not hold up anyone else's deliveries on its hub instance. Before, the instance sent
/// its commands one at a time and waited for each to be written to every target: one full socket
/// stopped every room of the instance until SignalR gave up on it, 10 s later.
/// </summary>
public sealed class A_client_that_stops_reading
{
    [Test]
    public async Task Holds_up_no_one_else_in_its_room_while_its_socket_is_full()
    {
        await using var system = await TestSystem.CreateAsync();
        // The talker sends as fast as it is answered.
        var hub = await system.StartHubAsync(new Dictionary<string, string?>
        {
            ["Limits:EventsPerSecond"] = "100000",
            ["Limits:EventBurst"] = "1000000",
        });
        await system.StartWorkerAsync();
        await using var stuck = await StuckClient.JoinAsync(hub, "Stuck", "slow");
        var live = await system.ConnectAsAsync(hub, "Live", "slow");
        var talker = await system.ConnectAsAsync(hub, "Talker", "slow");
        using var http = new HttpClient { BaseAddress = hub };

        var (filled, slowestCatchUp) = await FillAsync(talker, live, http);

        // At once, with the stuck client's socket still full: the live client hears each message without waiting.
        var delays = new List<TimeSpan>();
        for (var i = 0; i < 10; i++)
        {
            var clock = Stopwatch.StartNew();
            var marker = $"marker {i}";
            await talker.SendAsync("say", new { room = "slow", text = marker });
            await live.WaitForAsync("message", p => p.GetProperty("text").GetString() == marker, TimeSpan.FromSeconds(30));
            delays.Add(clock.Elapsed);
        }
        var stillPending = Prometheus.Sample(await http.GetStringAsync("/metrics"), "gateway_sends_pending", "");
        TestContext.Out.WriteLine($"{filled} messages of 3,900 characters filled the stuck client's socket (the live client had each batch of 20 within {slowestCatchUp.TotalMilliseconds:F0} ms); the live client's 10 markers took {string.Join(", ", delays.Select(d => $"{d.TotalMilliseconds:F0}"))} ms; {stillPending} sends still pending");

        Assert.Multiple(() =>
        {
            // The instance used to wait for the stuck client until SignalR gave up on it (10 s).
            Assert.That(slowestCatchUp, Is.LessThan(TimeSpan.FromSeconds(3)), "the live client never waited for the stuck client while it filled up");
            Assert.That(delays.Max(), Is.LessThan(TimeSpan.FromSeconds(3)), "no marker waited for the stuck client");
            Assert.That(stillPending, Is.GreaterThanOrEqualTo(1), "the stuck client was still stuck while the markers went through");
            Assert.That(live.Messages("slow"), Has.Count.EqualTo(filled + 10), "the live client has every message");
            Assert.That(live.Events("message").Select(p => p.GetProperty("seq").GetInt64()), Is.Ordered.Ascending, "the live client's messages arrived in room order");
        });
    }

    [Test]
    public async Task Is_closed_after_Gateway_SlowClientTimeout_and_its_room_is_told_it_left()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync(new Dictionary<string, string?>
        {
            ["Limits:EventsPerSecond"] = "100000",
            ["Limits:EventBurst"] = "1000000",
            ["Gateway:SlowClientTimeout"] = "00:00:02",
        });
        await system.StartWorkerAsync();
        await using var stuck = await StuckClient.JoinAsync(hub, "Stuck", "slow");
        var live = await system.ConnectAsAsync(hub, "Live", "slow");
        var talker = await system.ConnectAsAsync(hub, "Talker", "slow");
        using var http = new HttpClient { BaseAddress = hub };

        await FillAsync(talker, live, http);
        var waiting = Stopwatch.StartNew();
        // Well before SignalR's default of 10 s.
        await live.WaitForAsync("memberLeft", p => p.GetProperty("name").GetString() == "Stuck", TimeSpan.FromSeconds(8));
        TestContext.Out.WriteLine($"the stuck client's room heard it left {waiting.Elapsed.TotalSeconds:F1} s after a send to it began to wait");
        await Wait.UntilAsync(async () => Prometheus.Sample(await http.GetStringAsync("/metrics"), "gateway_sends_pending", "") == 0,
            "no send waits any more: the stuck client's went with it");
    }

    [Test]
    public async Task Holds_no_more_than_Gateway_MaxPendingSendBytes_for_it_and_loses_nothing()
    {
        const long budget = 40_000;
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync(new Dictionary<string, string?>
        {
            ["Limits:EventsPerSecond"] = "100000",
            ["Limits:EventBurst"] = "1000000",
            ["Gateway:MaxPendingSendBytes"] = budget.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Gateway:SlowClientTimeout"] = "00:00:05",
        });
        await system.StartWorkerAsync();
        await using var stuck = await StuckClient.JoinAsync(hub, "Stuck", "slow");
        var live = await system.ConnectAsAsync(hub, "Live", "slow");
        var talker = await system.ConnectAsAsync(hub, "Talker", "slow");
        using var http = new HttpClient { BaseAddress = hub };
        var highest = 0.0;
        async Task SampleAsync() =>
            highest = Math.Max(highest, Prometheus.Sample(await http.GetStringAsync("/metrics"), "gateway_sends_pending_bytes", ""));

        // Five at a time (20 KB, under the budget) until a send to the stuck client waits: a batch
        // over the budget could fill it, stall the instance until the stuck client is closed, and
        // nothing would wait any more.
        var text = new string('y', 3900);
        var filled = 0;
        await Wait.UntilAsync(async () =>
        {
            for (var i = 0; i < 5; i++, filled++)
                await talker.SendAsync("say", new { room = "slow", text });
            return Prometheus.Sample(await http.GetStringAsync("/metrics"), "gateway_sends_pending", "") >= 1;
        }, "a send waits for the stuck client", TimeSpan.FromSeconds(120));
        // 30 more of about 4 KB each, three times the budget, while a send to the stuck client waits.
        for (var i = 0; i < 30; i++)
        {
            await talker.SendAsync("say", new { room = "slow", text });
            await SampleAsync();
        }
        // The instance takes no more commands until the stuck client is closed (Gateway:SlowClientTimeout); then all of them.
        await Wait.UntilAsync(async () =>
        {
            await SampleAsync();
            return live.Messages("slow").Count == filled + 30;
        }, "the live client gets every message once the stuck client is let go", TimeSpan.FromSeconds(60));
        await Wait.UntilAsync(async () => Prometheus.Sample(await http.GetStringAsync("/metrics"), "gateway_sends_pending", "") == 0,
            "no send waits any more");
        TestContext.Out.WriteLine($"{filled} messages filled the stuck client's socket; with 30 more, the waiting sends held at most {highest:N0} bytes (budget {budget:N0})");

        Assert.Multiple(() =>
        {
            Assert.That(highest, Is.LessThanOrEqualTo(budget), "the waiting sends never held more than the budget");
            Assert.That(highest, Is.GreaterThan(budget / 2), "the sends did wait for the budget (the bound was reached, not just respected)");
            Assert.That(live.Events("message").Select(p => p.GetProperty("seq").GetInt64()), Is.Ordered.Ascending, "the live client's messages arrived in room order");
            Assert.That(live.Messages("slow").Select(m => m.Seq), Is.Unique, "none twice");
            Assert.That(live.Messages("slow"), Has.Count.EqualTo(filled + 30), "the live client has every message");
        });
    }

    /// <summary>
    /// Large messages, a few at a time, each time until the live client has them all, until the
    /// stuck client's socket buffers are full and a send to it waits (the hub's gauge).
    /// </summary>
    private static async Task<(int Filled, TimeSpan SlowestCatchUp)> FillAsync(ChatClient talker, ChatClient live, HttpClient hub)
    {
        var text = new string('x', 3900);
        var filled = 0;
        var slowestCatchUp = TimeSpan.Zero;
        await Wait.UntilAsync(async () =>
        {
            for (var i = 0; i < 20; i++, filled++)
                await talker.SendAsync("say", new { room = "slow", text });
            var catchUp = Stopwatch.StartNew();
            await Wait.UntilAsync(() => live.Events("message").Count >= filled, "the live client has every message sent so far");
            if (catchUp.Elapsed > slowestCatchUp)
                slowestCatchUp = catchUp.Elapsed;
            return Prometheus.Sample(await hub.GetStringAsync("/metrics"), "gateway_sends_pending", "") >= 1;
        }, "a send waits for the stuck client", TimeSpan.FromSeconds(120));
        return (filled, slowestCatchUp);
    }

    /// <summary>
    /// A raw WebSocket speaking SignalR's JSON protocol: signs in, joins, reads until it has joined,
    /// then never reads again, but pings, so the hub does not time it out as silent. (A cancelled
    /// ReceiveAsync would abort the socket; it simply is never called.)
    /// </summary>
    private sealed class StuckClient : IAsyncDisposable
    {
        private readonly ClientWebSocket _socket;
        private readonly CancellationTokenSource _stop = new();
        private Task _pinging = Task.CompletedTask;

        private StuckClient(ClientWebSocket socket) => _socket = socket;

        public static async Task<StuckClient> JoinAsync(Uri hub, string name, string room)
        {
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(new UriBuilder(hub) { Scheme = "ws" }.Uri, CancellationToken.None);
            var client = new StuckClient(socket);
            await client.SendAsync("{\"protocol\":\"json\",\"version\":1}");
            await client.SendAsync($"{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Send\",\"arguments\":[\"signIn\",{{\"name\":\"{name}\"}}]}}");
            await client.SendAsync($"{{\"type\":1,\"invocationId\":\"2\",\"target\":\"Send\",\"arguments\":[\"join\",{{\"room\":\"{room}\"}}]}}");
            var seen = new StringBuilder();
            var buffer = new byte[65536];
            var reading = Task.Run(async () =>
            {
                while (!seen.ToString().Contains("\"joined\"", StringComparison.Ordinal))
                {
                    var result = await socket.ReceiveAsync(buffer, CancellationToken.None);
                    seen.Append(Encoding.UTF8.GetString(buffer, 0, result.Count));
                }
            });
            if (await Task.WhenAny(reading, Task.Delay(TimeSpan.FromSeconds(30))) != reading)
                Assert.Fail($"the stuck client never joined: {seen}");
            await reading;
            client._pinging = client.PingAsync();
            return client;
        }

        private Task SendAsync(string json) =>
            _socket.SendAsync(Encoding.UTF8.GetBytes(json + "\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);

        private async Task PingAsync()
        {
            try
            {
                while (true)
                {
                    await Task.Delay(TimeSpan.FromSeconds(5), _stop.Token);
                    await SendAsync("{\"type\":6}");
                }
            }
            // The hub closing the stuck client is what the specs wait for; a ping can meet the close
            // before the socket's state says so (ConnectionClosedPrematurely).
            catch (Exception e) when (_stop.IsCancellationRequested || _socket.State != WebSocketState.Open || e is WebSocketException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _socket.Abort();
            await _pinging;
            _socket.Dispose();
            _stop.Dispose();
        }
    }
}
