using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Chatting_in_a_room
{
    [Test]
    public async Task Two_clients_see_each_others_messages_in_order()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();

        var ada = await system.ConnectAsAsync(hub, "Ada", "lobby");
        var bob = await system.ConnectAsync(hub);
        await bob.SignInAsync("Bob");
        var bobJoined = await bob.JoinAsync("lobby");
        await ada.WaitForAsync("memberJoined", p => p.GetProperty("name").GetString() == "Bob");

        // A conversation: each waits to hear the other before answering.
        var turns = new[] { (ada, bob, "hello from Ada 1"), (bob, ada, "hello from Bob 1"), (ada, bob, "hello from Ada 2"), (bob, ada, "hello from Bob 2") };
        foreach (var (speaker, hearer, text) in turns)
        {
            await speaker.SendAsync("say", new { room = "lobby", text });
            await hearer.WaitForAsync("message", p => p.GetProperty("text").GetString() == text);
        }

        string[] expected = ["hello from Ada 1", "hello from Bob 1", "hello from Ada 2", "hello from Bob 2"];
        await Wait.UntilAsync(() => ada.Messages("lobby").Count >= 4 && bob.Messages("lobby").Count >= 4, "both clients have all four messages");

        Assert.Multiple(() =>
        {
            Assert.That(bobJoined.GetProperty("members").EnumerateArray().Select(m => m.GetString()), Is.EqualTo(new[] { "Ada", "Bob" }));
            Assert.That(ada.Messages("lobby").Select(m => m.Text), Is.EqualTo(expected));
            Assert.That(bob.Messages("lobby").Select(m => m.Text), Is.EqualTo(expected));
            Assert.That(ada.Messages("lobby").Select(m => m.From), Is.EqualTo(new[] { "Ada", "Bob", "Ada", "Bob" }));
            Assert.That(ada.Messages("lobby").Select(m => m.Seq), Is.EqualTo(new long[] { 1, 2, 3, 4 }));
        });
    }

    [Test]
    public async Task The_sender_gets_its_client_id_back_on_its_message_and_others_do_too()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        var ada = await system.ConnectAsAsync(hub, "Ada", "lobby");
        var bob = await system.ConnectAsAsync(hub, "Bob", "lobby");

        await ada.SendAsync("say", new { room = "lobby", text = "tagged", clientId = "c-42" });
        var seq = await ada.SendAsync("say", new { room = "lobby", text = "bad tag", clientId = new string('x', 65) });
        var atAda = await ada.WaitForAsync("message", p => p.GetProperty("text").GetString() == "tagged");
        var atBob = await bob.WaitForAsync("message", p => p.GetProperty("text").GetString() == "tagged");
        var refused = await ada.WaitForErrorAsync(seq);

        Assert.Multiple(() =>
        {
            Assert.That(atAda.GetProperty("clientId").GetString(), Is.EqualTo("c-42"));
            Assert.That(atBob.GetProperty("clientId").GetString(), Is.EqualTo("c-42"));
            Assert.That(refused.GetProperty("code").GetString(), Is.EqualTo("invalid_payload"));
            Assert.That(ada.Messages("lobby").Select(m => m.Text), Does.Not.Contain("bad tag"));
        });
    }

    [Test]
    public async Task Sends_return_increasing_sequence_numbers_from_two()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();
        var client = await system.ConnectAsync(hub);

        // ClientConnected took seq 1.
        var seqs = new List<long>();
        for (var i = 0; i < 5; i++)
            seqs.Add(await client.SendAsync("nothingKnown", null));

        Assert.That(seqs, Is.EqualTo(new long[] { 2, 3, 4, 5, 6 }));
    }
}
