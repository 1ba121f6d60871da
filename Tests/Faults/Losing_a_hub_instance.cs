using System.Diagnostics;
using SocketStarter.HubFront;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Faults;

/// <summary>A hub instance killed with SIGKILL: its clients move to another instance and lose nothing.</summary>
public sealed class Losing_a_hub_instance
{
    private static readonly TimeSpan HubInstanceTimeout = TimeSpan.FromSeconds(3);

    [Test]
    public async Task Its_clients_resume_on_another_instance_with_exactly_what_they_missed_and_presence_drops_the_dead_connections()
    {
        await using var system = await TestSystem.CreateAsync();
        var fast = new Dictionary<string, string?> { ["Gateway:HeartbeatInterval"] = "00:00:01" };
        await using var doomed = await ServiceProcess.StartAsync("Hub.Front.dll",
            system.Settings(new Dictionary<string, string?>(fast) { ["Gateway:InstanceId"] = "hub-doomed" }), system.Directory);
        var doomedHub = new Uri(doomed.BaseAddress, GatewayHub.Path);
        var survivor = await system.StartHubAsync(new Dictionary<string, string?>(fast) { ["Gateway:InstanceId"] = "hub-survivor" });
        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Worker:HubInstanceTimeout"] = HubInstanceTimeout.ToString() });

        var ada = await system.ConnectAsync(doomedHub);
        var token = (await ada.SignInAsync("Ada")).GetProperty("token").GetString();
        await ada.JoinAsync("lobby");
        var carol = await system.ConnectAsAsync(doomedHub, "Carol", "lobby");
        var bob = await system.ConnectAsAsync(survivor, "Bob", "lobby");
        foreach (var text in new[] { "before 1", "before 2" })
            await bob.SendAsync("say", new { room = "lobby", text });
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "before 2");
        var lastSeen = ada.Messages("lobby").Max(m => m.Seq);

        doomed.Kill();
        var killed = Stopwatch.StartNew();
        await Wait.UntilAsync(() => ada.TimesClosed > 0 && carol.TimesClosed > 0, "the killed instance's clients see their connections drop");

        foreach (var text in new[] { "missed 1", "missed 2", "missed 3" })
            await bob.SendAsync("say", new { room = "lobby", text });
        // Said and delivered before Ada is back: she gets them from the resume, not also live.
        await bob.WaitForAsync("message", p => p.GetProperty("text").GetString() == "missed 3");
        var adaAgain = await system.ConnectAsync(survivor);
        await adaAgain.SendAsync("resume", new { token, lastSeen = new Dictionary<string, long> { ["lobby"] = lastSeen } });
        var resumed = (await adaAgain.WaitForAsync("resumed")).GetProperty("rooms").EnumerateArray().Single();
        await bob.SendAsync("say", new { room = "lobby", text = "after" });
        await adaAgain.WaitForAsync("message", p => p.GetProperty("text").GetString() == "after");

        await bob.WaitForAsync("memberLeft", p => p.GetProperty("name").GetString() == "Carol", TimeSpan.FromSeconds(30));
        var presenceDropped = killed.Elapsed;
        var dan = await system.ConnectAsync(survivor);
        await dan.SignInAsync("Dan");
        var members = (await dan.JoinAsync("lobby")).GetProperty("members").EnumerateArray().Select(m => m.GetString()).ToList();

        var missed = resumed.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("text").GetString()).ToList();
        var live = adaAgain.Messages("lobby").Select(m => m.Text).ToList();
        TestContext.Out.WriteLine($"presence dropped Carol {presenceDropped.TotalSeconds:F1} s after the kill (Worker:HubInstanceTimeout {HubInstanceTimeout.TotalSeconds} s)");
        Assert.Multiple(() =>
        {
            Assert.That(resumed.GetProperty("complete").GetBoolean(), Is.True);
            Assert.That(missed.Concat(live), Is.EqualTo(new[] { "missed 1", "missed 2", "missed 3", "after" }), "exactly what was missed, once each, in order");
            Assert.That(members, Is.EquivalentTo(new[] { "Ada", "Bob", "Dan" }), "Carol's dead connection is gone; Ada's session lives on her new one");
            Assert.That(bob.TimesClosed + adaAgain.TimesClosed, Is.Zero);
        });
    }
}
