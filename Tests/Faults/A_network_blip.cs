using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Faults;

/// <summary>The network between a client and its hub drops for a moment and comes back.</summary>
public sealed class A_network_blip
{
    [Test]
    public async Task A_client_with_stateful_reconnect_keeps_its_connection_and_gets_what_was_sent_meanwhile()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        await using var link = new TcpProxy(hub);

        var ada = await system.ConnectAsync(link.Address, statefulReconnect: true);
        await ada.SignInAsync("Ada");
        await ada.JoinAsync("blip");
        var bob = await system.ConnectAsAsync(hub, "Bob", "blip");
        var connectionId = ada.ConnectionId;

        // The link goes down; Bob talks meanwhile; the link comes back.
        link.Cut();
        foreach (var text in new[] { "during 1", "during 2", "during 3" })
            await bob.SendAsync("say", new { room = "blip", text });
        await bob.WaitForAsync("message", p => p.GetProperty("text").GetString() == "during 3");
        link.Release();

        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "during 3");
        await ada.SendAsync("say", new { room = "blip", text = "still here" });
        await bob.WaitForAsync("message", p => p.GetProperty("text").GetString() == "still here");
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "still here");

        Assert.Multiple(() =>
        {
            Assert.That(ada.TimesClosed, Is.Zero, "the connection never closed");
            Assert.That(ada.ConnectionId, Is.EqualTo(connectionId), "the same connection, not a new one");
            Assert.That(ada.Messages("blip").Select(m => m.Text), Is.EqualTo(new[] { "during 1", "during 2", "during 3", "still here" }), "replayed once each, in order");
            Assert.That(ada.Events("message").Count, Is.EqualTo(4));
            Assert.That(bob.Events("memberLeft"), Is.Empty, "the hub never reported Ada gone");
        });
    }
}
