using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Chat;

/// <summary>
/// In demo mode (no JWT) a name is one person's while their session is live, that is while it has
/// a connection open: anyone else signing in with it is refused with <c>name_taken</c>.
/// </summary>
public sealed class Signing_in_with_a_taken_name
{
    [Test]
    public async Task Is_refused_while_the_session_holding_it_is_connected_whatever_the_case()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        await system.ConnectAsAsync(hub, "Ada", "lobby");

        var impostor = await system.ConnectAsync(hub);
        var sameName = await impostor.SendAsync("signIn", new { name = "Ada" });
        var refused = await impostor.WaitForErrorAsync(sameName);
        var otherCase = await impostor.SendAsync("signIn", new { name = "  aDA " });
        var refusedAgain = await impostor.WaitForErrorAsync(otherCase);
        var other = await impostor.SignInAsync("Ada Lovelace");

        await using var database = await system.OpenDatabaseAsync();
        var sessions = await Dapper.SqlMapper.ExecuteScalarAsync<long>(database, "SELECT COUNT(*) FROM chat_sessions WHERE lower(name) = 'ada'");
        Assert.Multiple(() =>
        {
            Assert.That(refused.GetProperty("code").GetString(), Is.EqualTo("name_taken"));
            Assert.That(refused.GetProperty("message").GetString(), Does.Contain("Ada"));
            Assert.That(refusedAgain.GetProperty("code").GetString(), Is.EqualTo("name_taken"));
            Assert.That(other.GetProperty("name").GetString(), Is.EqualTo("Ada Lovelace"));
            Assert.That(sessions, Is.EqualTo(1), "a refused sign-in creates no session");
        });
    }

    [Test]
    public async Task Is_free_again_once_the_session_holding_it_has_disconnected()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        var ada = await system.ConnectAsAsync(hub, "Ada", "lobby");
        var bob = await system.ConnectAsAsync(hub, "Bob", "lobby");

        await ada.DisposeAsync();
        await bob.WaitForAsync("memberLeft", p => p.GetProperty("name").GetString() == "Ada");
        var newcomer = await system.ConnectAsync(hub);
        var signedIn = await newcomer.SignInAsync("Ada");

        Assert.That(signedIn.GetProperty("name").GetString(), Is.EqualTo("Ada"));
    }

    [Test]
    public async Task Does_not_stop_the_session_itself_from_resuming_on_a_new_connection_while_the_old_one_is_open()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        // A page reloading: its new connection resumes before the old one's disconnect is applied.
        var before = await system.ConnectAsync(hub);
        var token = (await before.SignInAsync("Ada")).GetProperty("token").GetString();
        await before.JoinAsync("lobby");

        var after = await system.ConnectAsync(hub);
        await after.SendAsync("resume", new { token, lastSeen = new Dictionary<string, long> { ["lobby"] = 0 } });
        var resumed = await after.WaitForAsync("resumed");

        Assert.That(resumed.GetProperty("name").GetString(), Is.EqualTo("Ada"));
    }

    [Test]
    public async Task Is_not_refused_to_the_page_that_held_it_signing_in_again_with_its_previous_token()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        var before = await system.ConnectAsync(hub);
        var token = (await before.SignInAsync("Ada")).GetProperty("token").GetString();

        // Its session could not be resumed (expired, say) while the old connection is still open.
        var after = await system.ConnectAsync(hub);
        await after.SendAsync("signIn", new { name = "Ada", previousToken = token });
        var signedIn = await after.WaitForAsync("signedIn");
        var stranger = await system.ConnectAsync(hub);
        var guess = await stranger.SendAsync("signIn", new { name = "Ada", previousToken = "not-the-token" });
        var refused = await stranger.WaitForErrorAsync(guess);

        Assert.Multiple(() =>
        {
            Assert.That(signedIn.GetProperty("name").GetString(), Is.EqualTo("Ada"));
            Assert.That(refused.GetProperty("code").GetString(), Is.EqualTo("name_taken"));
        });
    }

    [Test]
    public async Task Is_refused_to_one_of_two_clients_signing_in_with_it_at_once()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        await system.StartWorkerAsync();
        var clients = new List<ChatClient>();
        for (var i = 0; i < 6; i++)
            clients.Add(await system.ConnectAsync(hub));

        await Task.WhenAll(clients.Select(c => c.SendAsync("signIn", new { name = "Ada" })));
        await Wait.UntilAsync(() => clients.All(c => c.Events("signedIn").Count + c.Events("error").Count == 1), "every sign-in is answered");

        Assert.Multiple(() =>
        {
            Assert.That(clients.Count(c => c.Events("signedIn").Count == 1), Is.EqualTo(1));
            Assert.That(clients.SelectMany(c => c.Events("error")).Select(e => e.GetProperty("code").GetString()), Is.All.EqualTo("name_taken"));
        });
    }
}
