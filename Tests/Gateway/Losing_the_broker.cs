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

        Assert.Multiple(() =>
        {
            Assert.That(failures, Has.All.Contains("broker_unavailable"));
            Assert.That(client.State, Is.EqualTo(Microsoft.AspNetCore.SignalR.Client.HubConnectionState.Connected));
            Assert.That(client.TimesClosed, Is.Zero);
        });
        TestContext.Out.WriteLine($"3 sends failed in {clock.ElapsedMilliseconds} ms");
    }
}
