using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Stopping_a_worker
{
    [Test]
    public async Task Events_sent_meanwhile_are_processed_by_the_next_worker_and_no_client_drops()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        var worker = await system.StartWorkerAsync();

        var ada = await system.ConnectAsAsync(hub, "Ada", "deploy");
        var bob = await system.ConnectAsAsync(hub, "Bob", "deploy");

        // Stopped while events are in flight: it finishes what it holds and leaves the rest queued.
        var before = Enumerable.Range(1, 20).Select(i => ada.SendAsync("say", new { room = "deploy", text = $"before {i}" })).ToList();
        await Task.WhenAll(before);
        await system.StopAsync(worker);

        for (var i = 1; i <= 20; i++)
            await bob.SendAsync("say", new { room = "deploy", text = $"while down {i}" });
        await Wait.UntilAsync(async () => (await system.UpstreamDepthAsync()).Ready >= 20,
            "the broker reports the 20 events waiting in the queue");

        await system.StartWorkerAsync();
        await Wait.UntilAsync(() => ada.Messages("deploy").Count >= 40 && bob.Messages("deploy").Count >= 40, "every message reached both clients");

        var texts = ada.Messages("deploy").Select(m => m.Text).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(texts, Has.Count.EqualTo(40).And.Unique, "nothing lost, nothing doubled");
            Assert.That(texts.Where(t => t.StartsWith("before", StringComparison.Ordinal)), Is.EqualTo(Enumerable.Range(1, 20).Select(i => $"before {i}")));
            Assert.That(texts.Where(t => t.StartsWith("while", StringComparison.Ordinal)), Is.EqualTo(Enumerable.Range(1, 20).Select(i => $"while down {i}")));
            Assert.That(bob.Messages("deploy").Select(m => m.Text), Is.EqualTo(texts));
            Assert.That(ada.TimesClosed + bob.TimesClosed, Is.Zero, "no client was disconnected");
        });
    }
}

public sealed class Terminating_a_worker_process
{
    [Test]
    public async Task With_SIGTERM_it_finishes_in_flight_events_exits_cleanly_and_loses_nothing()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await using var worker = await ServiceProcess.StartAsync("Chat.Worker.dll", system.Settings(), system.Directory);

        var ada = await system.ConnectAsync(hub);
        await ada.SignInAsync("Ada");
        await ada.JoinAsync("sigterm");
        var sends = Enumerable.Range(1, 100).Select(i => ada.SendAsync("say", new { room = "sigterm", text = $"m{i}" })).ToList();
        await Task.WhenAll(sends);
        // Terminated while it works through the burst.
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "m1");
        worker.Terminate();
        await worker.WaitForExitAsync(TimeSpan.FromSeconds(40));
        var deliveredBeforeExit = ada.Messages("sigterm").Count;

        await system.StartWorkerAsync();
        await Wait.UntilAsync(() => ada.Messages("sigterm").Count >= 100, "all 100 messages arrived");

        Assert.Multiple(() =>
        {
            Assert.That(worker.ExitCode, Is.Zero, worker.Output);
            Assert.That(ada.Messages("sigterm").Select(m => m.Text), Is.EqualTo(Enumerable.Range(1, 100).Select(i => $"m{i}")));
            Assert.That(ada.TimesClosed, Is.Zero);
        });
        TestContext.Out.WriteLine($"{deliveredBeforeExit} of 100 delivered before the terminated worker exited");
    }
}
