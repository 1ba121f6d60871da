using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Limits;

public sealed class Joining_too_many_rooms
{
    [Test]
    public async Task Is_refused_with_an_error_event_until_the_session_leaves_one()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Chat:MaxRoomsPerSession"] = "2" });
        var ada = await system.ConnectAsAsync(hub, "Ada", "one");
        await ada.JoinAsync("two");

        var refusedSeq = await ada.SendAsync("join", new { room = "three" });
        var error = await ada.WaitForErrorAsync(refusedSeq);
        await ada.JoinAsync("one");
        await ada.SendAsync("leave", new { room = "two" });
        await ada.WaitForAsync("left");
        var joined = await ada.JoinAsync("three");

        Assert.Multiple(() =>
        {
            Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("too_many_rooms"));
            Assert.That(error.GetProperty("message").GetString(), Does.Contain("2 rooms"));
            Assert.That(joined.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "Ada" }));
            Assert.That(ada.Events("joined").Count(j => j.GetProperty("room").GetString() == "three"), Is.EqualTo(1), "the refused join left nothing behind");
        });
    }
}
