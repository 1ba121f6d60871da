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
        await Wait.UntilAsync(async () => await system.Broker.QueueDepthAsync(system.VirtualHost, "chat-worker") == (0, 0),
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
}
