using System.Diagnostics;
using Microsoft.AspNetCore.SignalR;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Losing_the_broker
{
    [Test]
    public async Task Sends_fail_fast_with_a_clear_error_and_the_client_stays_connected()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync(new Dictionary<string, string?> { ["Gateway:PublishTimeout"] = "00:00:03" });
        await system.StartWorkerAsync();
        var client = await system.ConnectAsync(hub);
        await client.SignInAsync("Ada");

        // The broker drops every connection of this virtual host and refuses new ones.
        await system.Broker.DeleteVirtualHostAsync(system.VirtualHost);

        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 3; i++)
        {
            var send = client.SendAsync("say", new { room = "any", text = "into the void" });
            // A guard against a hang, far above the configured 3 s publish timeout.
            var finished = await Task.WhenAny(send, Task.Delay(TimeSpan.FromSeconds(30)));
            Assert.That(finished, Is.SameAs(send), "Send returned instead of hanging");
            var ex = Assert.ThrowsAsync<HubException>(() => send);
            failures.Add(ex!.Message);
        }

        // A client that connects now is let in, and told clearly why its events are refused.
        var latecomer = await system.ConnectAsync(hub);
        var refused = Assert.ThrowsAsync<HubException>(() => latecomer.SendAsync("signIn", new { name = "Late" }));

        Assert.Multiple(() =>
        {
            Assert.That(failures, Has.All.Match("broker_unavailable|not_confirmed"));
            Assert.That(refused!.Message, Does.Match("broker_unavailable|not_confirmed"));
            Assert.That(client.State, Is.EqualTo(Microsoft.AspNetCore.SignalR.Client.HubConnectionState.Connected));
            Assert.That(latecomer.State, Is.EqualTo(Microsoft.AspNetCore.SignalR.Client.HubConnectionState.Connected));
            Assert.That(client.TimesClosed + latecomer.TimesClosed, Is.Zero);
        });
        TestContext.Out.WriteLine($"3 sends failed in {clock.ElapsedMilliseconds} ms");
    }

    [Test]
    public async Task An_event_no_queue_took_is_refused_and_leaves_no_gap_behind()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        var worker = await system.StartWorkerAsync();
        var client = await system.ConnectAsAsync(hub, "Ada", "gap");

        // Nothing consumes, and the shard queues are gone: the broker returns what the hub sends.
        await system.StopAsync(worker);
        foreach (var shard in TestSystem.ShardQueues)
            await system.Broker.DeleteQueueAsync(system.VirtualHost, shard);
        var refused = Assert.ThrowsAsync<HubException>(() => client.SendAsync("say", new { room = "gap", text = "lost" }));

        // A new worker declares the shard queues again; the refused seq is voided, so the next event goes through.
        await system.StartWorkerAsync();
        await client.SendAsync("say", new { room = "gap", text = "after" });
        await client.WaitForAsync("message", p => p.GetProperty("text").GetString() == "after");

        Assert.Multiple(() =>
        {
            Assert.That(refused!.Message, Does.Contain("not_routed"));
            Assert.That(client.Messages("gap").Select(m => m.Text), Is.EqualTo(new[] { "after" }));
            Assert.That(client.TimesClosed, Is.Zero);
        });
    }
}
