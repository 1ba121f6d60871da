using System.Text.Json;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

/// <summary>
/// A client whose connection is gone (its hub instance died, its network dropped) takes its
/// session back on a new connection with the token it got at sign-in.
/// </summary>
public sealed class Resuming_a_session
{
    [Test]
    public async Task A_new_connection_gets_the_session_its_rooms_and_exactly_the_messages_it_missed()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();

        var ada = await system.ConnectAsync(hub);
        var signedIn = await ada.SignInAsync("Ada");
        await ada.JoinAsync("lobby");
        var bob = await system.ConnectAsAsync(hub, "Bob", "lobby");
        await bob.SendAsync("say", new { room = "lobby", text = "seen by Ada" });
        await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "seen by Ada");
        var lastSeen = ada.Messages("lobby").Max(m => m.Seq);

        await ada.DisposeAsync();
        foreach (var text in new[] { "missed 1", "missed 2", "missed 3" })
            await bob.SendAsync("say", new { room = "lobby", text });
        await bob.WaitForAsync("message", p => p.GetProperty("text").GetString() == "missed 3");

        var again = await system.ConnectAsync(hub);
        await again.SendAsync("resume", new { token = signedIn.GetProperty("token").GetString(), lastSeen = new Dictionary<string, long> { ["lobby"] = lastSeen } });
        var resumed = await again.WaitForAsync("resumed");
        var room = resumed.GetProperty("rooms").EnumerateArray().Single();

        await bob.SendAsync("say", new { room = "lobby", text = "live again" });
        await again.WaitForAsync("message", p => p.GetProperty("text").GetString() == "live again");
        await again.SendAsync("say", new { room = "lobby", text = "Ada is back" });
        var fromAda = await bob.WaitForAsync("message", p => p.GetProperty("text").GetString() == "Ada is back");

        Assert.Multiple(() =>
        {
            Assert.That(resumed.GetProperty("name").GetString(), Is.EqualTo("Ada"));
            Assert.That(resumed.GetProperty("sessionId").GetString(), Is.EqualTo(signedIn.GetProperty("sessionId").GetString()));
            Assert.That(room.GetProperty("room").GetString(), Is.EqualTo("lobby"));
            Assert.That(room.GetProperty("complete").GetBoolean(), Is.True);
            Assert.That(Texts(room.GetProperty("messages")), Is.EqualTo(new[] { "missed 1", "missed 2", "missed 3" }));
            Assert.That(room.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()),
                Is.EqualTo(new[] { lastSeen + 1, lastSeen + 2, lastSeen + 3 }));
            Assert.That(room.GetProperty("lastSeq").GetInt64(), Is.EqualTo(lastSeen + 3));
            Assert.That(room.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EquivalentTo(new[] { "Ada", "Bob" }));
            Assert.That(fromAda.GetProperty("from").GetString(), Is.EqualTo("Ada"));
        });
    }

    [Test]
    public async Task A_room_with_more_missed_than_the_limit_comes_back_as_recent_history_marked_incomplete()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Chat:ResumeLimit"] = "2" });

        var ada = await system.ConnectAsync(hub);
        var token = (await ada.SignInAsync("Ada")).GetProperty("token").GetString();
        await ada.JoinAsync("lobby");
        await ada.DisposeAsync();
        var bob = await system.ConnectAsAsync(hub, "Bob", "lobby");
        foreach (var text in new[] { "one", "two", "three" })
            await bob.SendAsync("say", new { room = "lobby", text });
        await bob.WaitForAsync("message", p => p.GetProperty("text").GetString() == "three");

        var again = await system.ConnectAsync(hub);
        await again.SendAsync("resume", new { token, lastSeen = new Dictionary<string, long> { ["lobby"] = 0 } });
        var room = (await again.WaitForAsync("resumed")).GetProperty("rooms").EnumerateArray().Single();

        Assert.Multiple(() =>
        {
            Assert.That(room.GetProperty("complete").GetBoolean(), Is.False);
            Assert.That(Texts(room.GetProperty("messages")), Is.EqualTo(new[] { "one", "two", "three" }), "the room's recent history");
            Assert.That(room.GetProperty("lastSeq").GetInt64(), Is.EqualTo(3));
        });
    }

    [Test]
    public async Task An_unknown_token_or_a_bad_payload_is_refused_and_the_connection_can_still_sign_in()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        var client = await system.ConnectAsync(hub);

        var unknown = await client.SendAsync("resume", new { token = "not-a-token-anyone-was-given" });
        var noToken = await client.SendAsync("resume", new { lastSeen = new Dictionary<string, long>() });
        var badSeq = await client.SendAsync("resume", new { token = "x", lastSeen = new Dictionary<string, string> { ["lobby"] = "ten" } });
        var unknownError = await client.WaitForErrorAsync(unknown);
        var noTokenError = await client.WaitForErrorAsync(noToken);
        var badSeqError = await client.WaitForErrorAsync(badSeq);
        var signedIn = await client.SignInAsync("Carol");

        Assert.Multiple(() =>
        {
            Assert.That(unknownError.GetProperty("code").GetString(), Is.EqualTo("unknown_session"));
            Assert.That(unknownError.GetProperty("message").GetString(), Does.Contain("sign in again"));
            Assert.That(noTokenError.GetProperty("code").GetString(), Is.EqualTo("invalid_payload"));
            Assert.That(badSeqError.GetProperty("code").GetString(), Is.EqualTo("invalid_payload"));
            Assert.That(client.Events("resumed"), Is.Empty);
            Assert.That(signedIn.GetProperty("name").GetString(), Is.EqualTo("Carol"));
        });
    }

    [Test]
    public async Task A_resume_that_would_put_the_session_in_more_rooms_than_allowed_is_refused()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync(new Dictionary<string, string?> { ["Chat:MaxRoomsPerSession"] = "2" });

        // Still in "one" and "two" through a connection that stays open.
        var first = await system.ConnectAsync(hub);
        var token = (await first.SignInAsync("Ada")).GetProperty("token").GetString();
        await first.JoinAsync("one");
        await first.JoinAsync("two");

        var second = await system.ConnectAsync(hub);
        var seq = await second.SendAsync("resume", new { token, lastSeen = new Dictionary<string, long> { ["three"] = 0 } });
        var refused = await second.WaitForErrorAsync(seq);

        Assert.That(refused.GetProperty("code").GetString(), Is.EqualTo("too_many_rooms"));
    }

    [Test]
    public async Task Session_tokens_carry_at_least_128_random_bits_differ_per_sign_in_and_are_stored_hashed()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();

        var tokens = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var client = await system.ConnectAsync(hub);
            tokens.Add((await client.SignInAsync($"Name {i}")).GetProperty("token").GetString()!);
        }

        // The database keeps hashes only: a copy of it does not let anyone take a session over.
        await using var database = await system.OpenDatabaseAsync();
        var stored = (await Dapper.SqlMapper.QueryAsync<string>(database, "SELECT token FROM chat_sessions")).ToList();

        Assert.Multiple(() =>
        {
            // Base64url: 6 bits per character.
            Assert.That(tokens, Is.Unique.And.All.Length.GreaterThanOrEqualTo(22));
            Assert.That(stored, Has.Count.EqualTo(3).And.No.AnyOf(tokens.ToArray()));
            Assert.That(stored, Is.EquivalentTo(tokens.Select(SocketStarter.ChatWorker.Chat.ChatApplication.TokenHash)));
        });
    }

    /// <summary>
    /// A page reload: the new page resumes while the old page's connection is still closing, and
    /// the two events are on different connections, so different shards, applied side by side. The
    /// disconnect used to look for the session's other connections before the resume committed and
    /// take the session out of its rooms after the resume had found it in them: the resumed page
    /// was in the room's group but not a member, and its next message was refused (the browser
    /// test of a reload and a .NET resume spec each timed out on it now and then). Here the resume
    /// is held at its very end, in its transaction, by the test holding the new connection's row of
    /// the room's group, while the old connection closes.
    /// </summary>
    [Test]
    public async Task A_resume_racing_the_old_connections_disconnect_keeps_the_session_in_its_rooms()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        var ada = await system.ConnectAsync(hub);
        var signedIn = await ada.SignInAsync("Ada");
        await ada.JoinAsync("lobby");
        var bob = await system.ConnectAsAsync(hub, "Bob", "lobby");
        await ada.WaitForAsync("memberJoined", p => p.GetProperty("name").GetString() == "Bob");
        var again = await system.ConnectAsync(hub);

        await using var database = await system.OpenDatabaseAsync();
        await using (var holder = await system.OpenDatabaseAsync())
        {
            await using var hold = await holder.BeginTransactionAsync();
            await using (var insert = new Npgsql.NpgsqlCommand("INSERT INTO gateway_group_members (group_name, connection_id) VALUES ('room:lobby', $1)", holder, hold)
            {
                Parameters = { new() { Value = again.ConnectionId } },
            })
            {
                await insert.ExecuteNonQueryAsync();
            }
            await again.SendAsync("resume", new { token = signedIn.GetProperty("token").GetString(), lastSeen = new Dictionary<string, long> { ["lobby"] = 0 } });
            await Wait.UntilAsync(async () => await database.SessionsWaitingForALockAsync() >= 1, "the resume waits at its end, in its transaction");

            await ada.DisposeAsync();
            // The disconnect is either applied now (Bob hears that Ada left) or waits for the resume.
            await Wait.UntilAsync(async () => bob.Events("memberLeft").Count > 0 || await database.SessionsWaitingForALockAsync() >= 2,
                "the old connection's disconnect was applied, or waits for the resume");
            await hold.RollbackAsync();
        }
        var resumed = await again.WaitForAsync("resumed");
        var seq = await again.SendAsync("say", new { room = "lobby", text = "Ada is back" });
        var heard = await Task.WhenAny(
            bob.WaitForAsync("message", p => p.GetProperty("text").GetString() == "Ada is back"),
            again.WaitForErrorAsync(seq));

        Assert.Multiple(() =>
        {
            Assert.That(resumed.GetProperty("rooms").EnumerateArray().Select(r => r.GetProperty("room").GetString()), Is.EqualTo(new[] { "lobby" }));
            Assert.That(heard.Result.TryGetProperty("code", out var code) ? code.GetString() : null, Is.Null, "Ada's message after the resume was taken, not refused");
            Assert.That(bob.Events("memberLeft"), Is.Empty, "Ada never left the room: her session kept a connection throughout");
        });
    }


    private static IEnumerable<string?> Texts(JsonElement messages) =>
        messages.EnumerateArray().Select(m => m.GetProperty("text").GetString());
}
