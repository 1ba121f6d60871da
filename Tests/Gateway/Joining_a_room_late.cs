using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Joining_a_room_late
{
    [Test]
    public async Task Gets_the_recent_history_and_the_member_list()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();

        var ada = await system.ConnectAsAsync(hub, "Ada", "history");
        for (var i = 1; i <= 55; i++)
            await ada.SendAsync("say", new { room = "history", text = $"message {i}" });
        await Wait.UntilAsync(() => ada.Messages("history").Count == 55, "Ada has her 55 messages");

        var cy = await system.ConnectAsync(hub);
        await cy.SignInAsync("Cy");
        var joined = await cy.JoinAsync("history");

        var history = joined.GetProperty("history").EnumerateArray().ToList();
        Assert.Multiple(() =>
        {
            Assert.That(joined.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "Ada", "Cy" }));
            Assert.That(history, Has.Count.EqualTo(50), "the last 50 messages");
            Assert.That(history.Select(h => h.GetProperty("text").GetString()),
                Is.EqualTo(Enumerable.Range(6, 50).Select(i => $"message {i}")));
            Assert.That(history.Select(h => h.GetProperty("seq").GetInt64()), Is.Ordered);
            Assert.That(joined.GetProperty("lastSeq").GetInt64(), Is.EqualTo(55));
        });

        // And from now on Cy is in the room like anyone else.
        await ada.SendAsync("say", new { room = "history", text = "welcome Cy" });
        await cy.WaitForAsync("message", p => p.GetProperty("text").GetString() == "welcome Cy");
        await ada.WaitForAsync("memberJoined", p => p.GetProperty("name").GetString() == "Cy");
    }

    [Test]
    public async Task Leaving_tells_the_room_and_stops_delivery()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();

        var ada = await system.ConnectAsAsync(hub, "Ada", "exit");
        var bob = await system.ConnectAsAsync(hub, "Bob", "exit");

        await bob.SendAsync("leave", new { room = "exit" });
        await bob.WaitForAsync("left");
        await ada.WaitForAsync("memberLeft", p => p.GetProperty("name").GetString() == "Bob");

        await ada.SendAsync("say", new { room = "exit", text = "only Ada hears this" });
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "only Ada hears this");
        // Bob's next own event is processed after Ada's message was delivered: if it had reached him, it would be here.
        var seq = await bob.SendAsync("say", new { room = "exit", text = "am I still here?" });
        var error = await bob.WaitForErrorAsync(seq);

        Assert.Multiple(() =>
        {
            Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("not_in_room"));
            Assert.That(bob.Messages("exit"), Is.Empty);
        });
    }

    [Test]
    public async Task Disconnecting_removes_the_member_and_tells_the_room()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();

        var ada = await system.ConnectAsync(hub);
        var bob = await system.ConnectAsync(hub);
        await ada.SignInAsync("Ada");
        await bob.SignInAsync("Bob");
        await ada.JoinAsync("door");
        await bob.JoinAsync("door");

        await bob.DisposeAsync();
        await ada.WaitForAsync("memberLeft", p => p.GetProperty("name").GetString() == "Bob");

        var cy = await system.ConnectAsync(hub);
        await cy.SignInAsync("Cy");
        var joined = await cy.JoinAsync("door");
        Assert.That(joined.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "Ada", "Cy" }));
    }
}
