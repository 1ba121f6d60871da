using System.Collections.Concurrent;
using System.Net;
using System.Text;
using MassTransit;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using SocketStarter.Messages;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Auth;

/// <summary>With Auth:SigningKey set, the hub lets in only clients with a valid JWT and stamps who they are.</summary>
public sealed class Connecting_with_a_token
{
    private const string SigningKey = "a-test-signing-key-of-at-least-32-bytes";
    private const string ApiKey = "push-key-for-tests-0123456789";
    private TestSystem _system = null!;
    private Dictionary<string, string?> _settings = null!;

    [SetUp]
    public async Task StartAsync()
    {
        _system = await TestSystem.CreateAsync();
        _settings = new Dictionary<string, string?>
        {
            ["Auth:SigningKey"] = SigningKey,
            ["Auth:Issuer"] = "https://issuer.test",
            ["Auth:Audience"] = "socketstarter",
            ["PushApi:ApiKey"] = ApiKey,
        };
    }

    [TearDown]
    public async Task StopAsync() => await _system.DisposeAsync();

    [Test]
    public async Task Refuses_a_client_without_a_valid_token()
    {
        var hub = await _system.StartHubAsync(_settings);

        var anonymous = Assert.CatchAsync<HttpRequestException>(() => _system.ConnectAsync(hub));
        var forged = Assert.CatchAsync<HttpRequestException>(() => _system.ConnectAsync(hub, Token("u1", "Ada", key: "another-key-of-at-least-32-bytes-long!!")));
        var expired = Assert.CatchAsync<HttpRequestException>(() => _system.ConnectAsync(hub, Token("u1", "Ada", expires: DateTime.UtcNow.AddHours(-1))));
        var wrongAudience = Assert.CatchAsync<HttpRequestException>(() => _system.ConnectAsync(hub, Token("u1", "Ada", audience: "someone-else")));
        var valid = await _system.ConnectAsync(hub, Token("u1", "Ada"));

        Assert.Multiple(() =>
        {
            foreach (var refused in new[] { anonymous, forged, expired, wrongAudience })
                Assert.That(refused!.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(valid.State, Is.EqualTo(Microsoft.AspNetCore.SignalR.Client.HubConnectionState.Connected));
        });
    }

    [Test]
    public async Task A_session_token_resumes_only_for_the_user_it_was_given_to()
    {
        var hub = await _system.StartHubAsync(_settings);
        await _system.StartWorkerAsync();
        var ada = await _system.ConnectAsync(hub, Token("user-a", "Ada"));
        var token = (await ada.SignInAsync("ignored")).GetProperty("token").GetString();

        // Someone else who got hold of Ada's session token.
        var mallory = await _system.ConnectAsync(hub, Token("user-m", "Mallory"));
        var stolen = await mallory.SendAsync("resume", new { token });
        var refused = await mallory.WaitForErrorAsync(stolen);
        // Ada herself, on a new connection.
        var adaAgain = await _system.ConnectAsync(hub, Token("user-a", "Ada"));
        await adaAgain.SendAsync("resume", new { token });
        var resumed = await adaAgain.WaitForAsync("resumed");

        Assert.Multiple(() =>
        {
            Assert.That(refused.GetProperty("code").GetString(), Is.EqualTo("unknown_session"));
            Assert.That(mallory.Events("resumed"), Is.Empty);
            Assert.That(resumed.GetProperty("name").GetString(), Is.EqualTo("Ada"));
        });
    }

    [Test]
    public async Task Stamps_the_user_id_and_name_from_the_token_on_every_upstream_event()
    {
        var hub = await _system.StartHubAsync(_settings);
        var connected = new ConcurrentQueue<ClientConnected>();
        var messages = new ConcurrentQueue<ClientMessage>();
        // Stands in for the workers: whatever consumes the queue sees what the hub stamped.
        var bus = Bus.Factory.CreateUsingRabbitMq(cfg =>
        {
            cfg.Host(_system.BrokerUri);
            cfg.ReceiveEndpoint("stand-in-worker", e =>
            {
                // Where the hub publishes: the workers' consistent-hash exchange (one shard, weight 1).
                e.ConfigureConsumeTopology = false;
                e.Bind("chat-worker", b =>
                {
                    b.ExchangeType = "x-consistent-hash";
                    b.RoutingKey = "1";
                });
                e.Handler<ClientConnected>(c => { connected.Enqueue(c.Message); return Task.CompletedTask; });
                e.Handler<ClientMessage>(c => { messages.Enqueue(c.Message); return Task.CompletedTask; });
            });
        });
        await bus.StartAsync();
        try
        {
            var client = await _system.ConnectAsync(hub, Token("user-7", "Grace Hopper"));
            await client.SendAsync("anything", new { name = "Mallory" });
            await client.SendAsync("more", null);
            await Wait.UntilAsync(() => messages.Count == 2 && !connected.IsEmpty, "the connection and both events reach the queue's consumer");

            Assert.Multiple(() =>
            {
                Assert.That(connected.Select(c => (c.UserId, c.UserName)), Is.EqualTo(new[] { ("user-7", "Grace Hopper") }));
                Assert.That(messages.Select(m => (m.UserId, m.UserName)), Is.EqualTo(new[] { ("user-7", "Grace Hopper"), ("user-7", "Grace Hopper") }));
            });
        }
        finally
        {
            await bus.StopAsync();
        }
    }

    [Test]
    public async Task Sign_in_takes_the_name_from_the_token_not_from_the_client()
    {
        var hub = await _system.StartHubAsync(_settings);
        await _system.StartWorkerAsync();
        var client = await _system.ConnectAsync(hub, Token("user-7", "Grace Hopper"));

        var signedIn = await client.SignInAsync("Mallory");

        Assert.That(signedIn.GetProperty("name").GetString(), Is.EqualTo("Grace Hopper"));
    }

    [Test]
    public async Task Sign_in_without_a_name_claim_takes_the_user_id_not_the_name_the_client_sent()
    {
        var hub = await _system.StartHubAsync(_settings);
        await _system.StartWorkerAsync();
        var client = await _system.ConnectAsync(hub, Token("user-7", name: null));

        var signedIn = await client.SignInAsync("Mallory");

        Assert.That(signedIn.GetProperty("name").GetString(), Is.EqualTo("user-7"));
    }

    [Test]
    public async Task Sign_in_with_a_name_claim_longer_than_the_chat_allows_shortens_it()
    {
        var hub = await _system.StartHubAsync(_settings);
        await _system.StartWorkerAsync();
        var client = await _system.ConnectAsync(hub, Token("user-7", "  Grace Brewster Murray Hopper, Rear Admiral  "));

        var signedIn = await client.SignInAsync("Mallory");

        Assert.That(signedIn.GetProperty("name").GetString(), Is.EqualTo("Grace Brewster Murray Hopper, Re"));
    }

    [Test]
    public async Task A_service_pushing_to_a_user_through_one_instance_reaches_them_on_another()
    {
        var first = await _system.StartHubAsync(_settings);
        var second = await _system.StartHubAsync(_settings);
        var grace = await _system.ConnectAsync(second, Token("user-7", "Grace"));
        var graceOnFirst = await _system.ConnectAsync(first, Token("user-7", "Grace"));
        var alan = await _system.ConnectAsync(second, Token("user-8", "Alan"));
        using var api = new PushClient(first, ApiKey);

        await api.AcceptedAsync(api.PostEventAsync("/users/user-7/:send", "scoreChanged", new { score = 42 }));
        await api.AcceptedAsync(api.PostEventAsync("/:send", "done", null));

        foreach (var client in new[] { grace, graceOnFirst, alan })
            await client.WaitForAsync("done");
        Assert.Multiple(() =>
        {
            Assert.That(grace.Events("scoreChanged").Single().GetProperty("score").GetInt32(), Is.EqualTo(42));
            Assert.That(graceOnFirst.Events("scoreChanged"), Has.Count.EqualTo(1), "every connection of the user");
            Assert.That(alan.Events("scoreChanged"), Is.Empty);
        });
    }

    private static string Token(string userId, string? name, string key = SigningKey, DateTime? expires = null, string audience = "socketstarter")
    {
        var until = expires ?? DateTime.UtcNow.AddHours(1);
        var claims = new Dictionary<string, object> { ["sub"] = userId };
        if (name is not null)
            claims["name"] = name;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "https://issuer.test",
            Audience = audience,
            Claims = claims,
            NotBefore = until.AddHours(-2),
            IssuedAt = until.AddHours(-2),
            Expires = until,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), SecurityAlgorithms.HmacSha256),
        });
    }
}
