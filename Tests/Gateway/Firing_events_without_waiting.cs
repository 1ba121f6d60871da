using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Firing_events_without_waiting
{
    [Test]
    public async Task Three_workers_apply_all_200_once_and_in_the_clients_order()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        // Prefetch above concurrency: a waiting event must not starve a predecessor sitting in its own worker's buffer.
        var tight = new Dictionary<string, string?> { ["Worker:PrefetchCount"] = "16", ["Worker:ConcurrentMessageLimit"] = "2" };
        for (var i = 0; i < 3; i++)
            await system.StartWorkerAsync(tight);

        var listener = await system.ConnectAsAsync(hub, "Listener", "burst");

        var sender = await system.ConnectAsync(hub);
        var sends = new List<Task<long>>
        {
            sender.SendAsync("signIn", new { name = "Sender" }),
            sender.SendAsync("join", new { room = "burst" }),
        };
        for (var i = 1; i <= 200; i++)
            sends.Add(sender.SendAsync("say", new { room = "burst", text = $"burst {i}" }));
        var seqs = await Task.WhenAll(sends);

        await Wait.UntilAsync(() => listener.Messages("burst").Count >= 200 && sender.Messages("burst").Count >= 200,
            "both clients received 200 messages", TimeSpan.FromSeconds(90));
        await Wait.UntilAsync(async () => await system.UpstreamDepthAsync() == (0, 0),
            "the queue is empty: no event is left waiting for a predecessor");

        var expected = Enumerable.Range(1, 200).Select(i => $"burst {i}").ToList();
        await using var cy = await system.ConnectAsync(hub);
        await cy.SignInAsync("Cy");
        var history = (await cy.JoinAsync("burst")).GetProperty("history").EnumerateArray()
            .Select(h => h.GetProperty("text").GetString()).ToList();

        Assert.Multiple(() =>
        {
            Assert.That(seqs, Is.EqualTo(Enumerable.Range(2, 202).Select(i => (long)i)), "the hub numbered the events in the client's order");
            Assert.That(listener.Messages("burst").Select(m => m.Text), Is.EqualTo(expected), "delivered once each, in the client's order");
            Assert.That(listener.Messages("burst").Select(m => m.Seq), Is.EqualTo(Enumerable.Range(1, 200).Select(i => (long)i)));
            Assert.That(sender.Messages("burst").Select(m => m.Text), Is.EqualTo(expected));
            Assert.That(history, Is.EqualTo(expected.TakeLast(50)), "stored in the client's order");
            Assert.That(listener.Events("error").Concat(sender.Events("error")), Is.Empty);
        });
    }

    [Test]
    public async Task One_worker_drains_a_backlog_of_many_connections_in_order_without_sending_any_event_back_to_the_queue()
    {
        const int Clients = 16, Says = 40;
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        var setup = await system.StartWorkerAsync();
        var clients = new List<ChatClient>();
        for (var i = 0; i < Clients; i++)
            clients.Add(await system.ConnectAsAsync(hub, $"User{i}", $"room{i}"));
        await system.StopAsync(setup);

        // While no worker runs, every client fires all its messages at once: a backlog in which the
        // connections' events interleave, several of each in any worker's prefetch at a time.
        await Task.WhenAll(clients.Select((client, i) =>
            Task.WhenAll(Enumerable.Range(1, Says).Select(n => client.SendAsync("say", new { room = $"room{i}", text = $"m{n}" })))));

        // A worker process of its own, with its default settings, so its metrics are its alone.
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);
        await Wait.UntilAsync(() => clients.Select((client, i) => client.Messages($"room{i}").Count).All(count => count >= Says),
            "every client received all its messages", TimeSpan.FromSeconds(90));
        await Wait.UntilAsync(async () => await system.UpstreamDepthAsync() == (0, 0),
            "the queue is empty");

        using var http = new HttpClient();
        var metrics = await http.GetStringAsync(new Uri(worker.BaseAddress, "metrics"));
        var expected = Enumerable.Range(1, Says).Select(n => $"m{n}").ToList();
        TestContext.Out.WriteLine($"events that overtook their predecessor in the worker and waited for it there: {Prometheus.Sample(metrics, "worker_events_out_of_turn_total", "resolved=\"in_process\"")}");
        Assert.Multiple(() =>
        {
            for (var i = 0; i < Clients; i++)
                Assert.That(clients[i].Messages($"room{i}").Select(m => m.Text), Is.EqualTo(expected), $"client {i}: each once, in the order sent");
            // An event that overtook its predecessor in the worker waits for it in place; one sent to
            // the back of a long queue would hold up every later event of its connection.
            Assert.That(Prometheus.Sample(metrics, "worker_events_out_of_turn_total", "resolved=\"requeued\""), Is.Zero, "events sent back to the queue");
            Assert.That(Prometheus.Sample(metrics, "worker_events_out_of_turn_total", "resolved=\"given_up\""), Is.Zero, "predecessors given up");
        });
    }
}
