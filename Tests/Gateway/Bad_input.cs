using Microsoft.AspNetCore.SignalR;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Bad_input
{
    private TestSystem _system = null!;
    private ChatClient _client = null!;
    private ChatClient _bystander = null!;

    [SetUp]
    public async Task StartAsync()
    {
        _system = await TestSystem.CreateAsync();
        var hub = await _system.StartHubAsync();
        await _system.StartWorkerAsync();
        _client = await _system.ConnectAsync(hub);
        _bystander = await _system.ConnectAsync(hub);
        await _bystander.SignInAsync("Bystander");
        await _bystander.JoinAsync("calm");
    }

    [TearDown]
    public async Task StopAsync() => await _system.DisposeAsync();

    [Test]
    public async Task An_oversized_payload_is_refused_by_the_hub()
    {
        var ex = Assert.ThrowsAsync<HubException>(() => _client.SendAsync("say", new { room = "calm", text = new string('x', 40_000) }));
        Assert.That(ex!.Message, Does.Contain("payload_too_large").And.Contain("32768"));
        await AssertStillWorksAsync();
    }

    [TestCase("")]
    [TestCase("1abc")]
    [TestCase("has space")]
    [TestCase("<script>")]
    public async Task A_malformed_type_is_refused_by_the_hub(string type)
    {
        var ex = Assert.ThrowsAsync<HubException>(() => _client.SendAsync(type, new { }));
        Assert.That(ex!.Message, Does.Contain("invalid_type"));
        await AssertStillWorksAsync();
    }

    [Test]
    public async Task A_type_over_64_characters_is_refused_by_the_hub()
    {
        var ex = Assert.ThrowsAsync<HubException>(() => _client.SendAsync("a" + new string('b', 64), new { }));
        Assert.That(ex!.Message, Does.Contain("invalid_type"));
        await AssertStillWorksAsync();
    }

    [TestCase("dance", "{}", "unknown_type")]
    [TestCase("join", "{\"room\":\"calm\"}", "not_signed_in")]
    [TestCase("say", "{\"room\":\"calm\",\"text\":\"hi\"}", "not_signed_in")]
    [TestCase("signIn", "{\"name\":\"   \"}", "invalid_name")]
    [TestCase("signIn", "{\"name\":\"abcdefghijklmnopqrstuvwxyz0123456\"}", "invalid_name")]
    [TestCase("signIn", "{\"name\":42}", "invalid_payload")]
    [TestCase("signIn", "\"Ada\"", "invalid_payload")]
    [TestCase("signIn", "null", "invalid_payload")]
    public async Task A_request_the_chat_refuses_gets_an_error_to_the_sender_only(string type, string payload, string code)
    {
        var seq = await _client.SendAsync(type, System.Text.Json.JsonDocument.Parse(payload).RootElement);
        var error = await _client.WaitForErrorAsync(seq);

        Assert.Multiple(() =>
        {
            Assert.That(error.GetProperty("code").GetString(), Is.EqualTo(code));
            Assert.That(error.GetProperty("type").GetString(), Is.EqualTo(type));
            Assert.That(error.GetProperty("message").GetString(), Is.Not.Empty);
        });
        await AssertStillWorksAsync();
    }

    [TestCase("say", "{\"room\":\"calm\",\"text\":\"\"}", "invalid_text")]
    [TestCase("say", "{\"room\":\"calm\"}", "invalid_text")]
    [TestCase("say", "{\"room\":\"elsewhere\",\"text\":\"hi\"}", "not_in_room")]
    [TestCase("leave", "{\"room\":\"elsewhere\"}", "not_in_room")]
    [TestCase("join", "{\"room\":\"\"}", "invalid_room")]
    [TestCase("join", "{\"room\":\"a/b\"}", "invalid_room")]
    [TestCase("join", "{\"room\":\"abcdefghijklmnopqrstuvwxyz0123456\"}", "invalid_room")]
    [TestCase("signIn", "{\"name\":\"Again\"}", "already_signed_in")]
    public async Task A_signed_in_client_gets_a_clear_error_and_nothing_is_written(string type, string payload, string code)
    {
        await _client.SignInAsync("Ada");
        await _client.JoinAsync("calm");
        var seq = await _client.SendAsync(type, System.Text.Json.JsonDocument.Parse(payload).RootElement);
        var error = await _client.WaitForErrorAsync(seq);

        Assert.That(error.GetProperty("code").GetString(), Is.EqualTo(code));
        await AssertStillWorksAsync(signedIn: true);
    }

    [Test]
    public async Task A_text_over_4000_characters_is_refused_and_one_of_4000_accepted()
    {
        await _client.SignInAsync("Ada");
        await _client.JoinAsync("calm");
        var tooLong = await _client.SendAsync("say", new { room = "calm", text = new string('y', 4001) });
        var error = await _client.WaitForErrorAsync(tooLong);
        await _client.SendAsync("say", new { room = "calm", text = new string('z', 4000) });
        await _bystander.WaitForAsync("message", p => p.GetProperty("text").GetString()!.Length == 4000);

        Assert.Multiple(() =>
        {
            Assert.That(error.GetProperty("code").GetString(), Is.EqualTo("invalid_text"));
            Assert.That(_bystander.Messages("calm").Select(m => m.Text.Length), Is.EqualTo(new[] { 4000 }));
        });
    }

    /// <summary>The refused client's connection still works, and nobody else saw anything of it.</summary>
    private async Task AssertStillWorksAsync(bool signedIn = false)
    {
        if (!signedIn)
        {
            await _client.SignInAsync("Ada");
            await _client.JoinAsync("calm");
        }
        await _client.SendAsync("say", new { room = "calm", text = "still here" });
        await _bystander.WaitForAsync("message", p => p.GetProperty("text").GetString() == "still here");

        Assert.Multiple(() =>
        {
            Assert.That(_bystander.Messages("calm").Select(m => m.Text), Is.EqualTo(new[] { "still here" }), "nothing of the bad input reached others");
            Assert.That(_bystander.Events("error"), Is.Empty);
            Assert.That(_client.TimesClosed + _bystander.TimesClosed, Is.Zero);
        });
    }
}
