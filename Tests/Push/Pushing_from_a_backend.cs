using System.Net;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Push;

/// <summary>
/// A backend that holds no socket pushes through the HTTP API of one hub instance; clients held by
/// any instance get the event, because the API publishes the same commands the workers do.
/// </summary>
public sealed class Pushing_from_a_backend
{
    private const string Key = "push-key-for-tests-0123456789";
    private TestSystem _system = null!;
    private Uri _first = null!;
    private Uri _second = null!;
    private PushClient _api = null!;

    [SetUp]
    public async Task StartAsync()
    {
        _system = await TestSystem.CreateAsync();
        var settings = new Dictionary<string, string?> { ["PushApi:ApiKey"] = Key, ["PushApi:MaxBodyBytes"] = "8192", ["Gateway:MaxPayloadBytes"] = "1024" };
        _first = await _system.StartHubAsync(settings);
        _second = await _system.StartHubAsync(settings);
        _api = new PushClient(_first, Key);
    }

    [TearDown]
    public async Task StopAsync()
    {
        _api.Dispose();
        await _system.DisposeAsync();
    }

    [Test]
    public async Task A_message_to_a_room_reaches_its_members_on_every_instance()
    {
        await _system.StartWorkerAsync();
        var ada = await _system.ConnectAsAsync(_first, "Ada", "lobby");
        var bob = await _system.ConnectAsAsync(_second, "Bob", "lobby");
        var outsider = await _system.ConnectAsAsync(_second, "Eve", "elsewhere");

        // The chat names a room's group "room:NAME"; the gateway only sees a group name.
        await _api.AcceptedAsync(_api.PostEventAsync($"/groups/{PushClient.Segment("room:lobby")}/:send", "notice", new { text = "deploy at six" }));
        await _api.AcceptedAsync(_api.PostEventAsync("/:send", "done", null));

        foreach (var client in new[] { ada, bob, outsider })
            await client.WaitForAsync("done");
        Assert.Multiple(() =>
        {
            Assert.That(ada.Events("notice").Single().GetProperty("text").GetString(), Is.EqualTo("deploy at six"));
            Assert.That(bob.Events("notice"), Has.Count.EqualTo(1));
            Assert.That(outsider.Events("notice"), Is.Empty);
        });
    }

    [Test]
    public async Task Every_command_reaches_a_connection_held_by_another_instance()
    {
        var target = await _system.ConnectAsync(_second);
        var other = await _system.ConnectAsync(_second);
        var group = $"/groups/g/connections/{PushClient.Segment(target.ConnectionId)}";

        await _api.AcceptedAsync(_api.PostEventAsync($"/connections/{PushClient.Segment(target.ConnectionId)}/:send", "direct", new { n = 1 }));
        await _api.AcceptedAsync(_api.SendAsync(HttpMethod.Put, group));
        await _api.AcceptedAsync(_api.PostEventAsync("/groups/g/:send", "grouped", new { n = 2 }));
        await _api.AcceptedAsync(_api.SendAsync(HttpMethod.Delete, group));
        await _api.AcceptedAsync(_api.PostEventAsync("/groups/g/:send", "grouped", new { n = 3 }));
        await _api.AcceptedAsync(_api.PostEventAsync($"/:send?excluded={PushClient.Segment(other.ConnectionId)}", "news", new { n = 4 }));
        await _api.AcceptedAsync(_api.PostEventAsync("/:send", "done", null));
        await target.WaitForAsync("done");
        await other.WaitForAsync("done");

        await _api.AcceptedAsync(_api.SendAsync(HttpMethod.Delete, $"/connections/{PushClient.Segment(target.ConnectionId)}?reason={PushClient.Segment("maintenance")}"));
        await Wait.UntilAsync(() => target.TimesClosed == 1, "the connection is closed");

        Assert.Multiple(() =>
        {
            Assert.That(target.Events("direct"), Has.Count.EqualTo(1));
            Assert.That(target.Events("grouped").Select(p => p.GetProperty("n").GetInt32()), Is.EqualTo(new[] { 2 }), "removed from the group before the second");
            Assert.That(target.Events("news"), Has.Count.EqualTo(1));
            Assert.That(other.Events("news"), Is.Empty, "excluded");
            Assert.That(other.Events("direct"), Is.Empty);
            Assert.That(target.ClosingReason, Is.EqualTo("maintenance"));
            Assert.That(other.TimesClosed, Is.Zero);
        });
    }

    [TestCase(null)]
    [TestCase("Bearer wrong-key-wrong-key-wrong")]
    [TestCase("X-Api-Key wrong-key-wrong-key-wrong")]
    [TestCase("Basic cHVzaDprZXk=")]
    public async Task A_request_without_the_right_key_gets_401_and_delivers_nothing(string? credentials)
    {
        var client = await _system.ConnectAsync(_second);
        using var anonymous = new PushClient(_first, apiKey: null);
        using var response = await anonymous.SendAsync(HttpMethod.Post, "/:send", """{"type":"intrusion","payload":null}""", request =>
        {
            if (credentials?.Split(' ', 2) is ["X-Api-Key", var key])
                request.Headers.Add("X-Api-Key", key);
            else if (credentials?.Split(' ', 2) is [var scheme, var value])
                request.Headers.Authorization = new(scheme, value);
        });
        await _api.AcceptedAsync(_api.PostEventAsync("/:send", "done", null));
        await client.WaitForAsync("done");

        Assert.Multiple(async () =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That((await PushClient.ProblemAsync(response)).GetProperty("detail").GetString(), Does.Contain("PushApi:ApiKey"));
            Assert.That(client.Events("intrusion"), Is.Empty);
        });
    }

    [Test]
    public async Task The_key_is_accepted_in_an_X_Api_Key_header()
    {
        var client = await _system.ConnectAsync(_second);
        using var keyHeader = new PushClient(_first, apiKey: null);
        await keyHeader.AcceptedAsync(keyHeader.SendAsync(HttpMethod.Post, "/:send", """{"type":"hello"}""", r => r.Headers.Add("X-Api-Key", Key)));

        var hello = await client.WaitForAsync("hello");
        Assert.That(hello.ValueKind, Is.EqualTo(System.Text.Json.JsonValueKind.Null), "a missing payload arrives as null");
    }

    [TestCase("/:send", "{}", "type")]
    [TestCase("/:send", """{"type":42}""", "type")]
    [TestCase("/:send", """{"type":"1abc","payload":{}}""", "type")]
    [TestCase("/:send", """{"type":"ok","paylod":{}}""", "paylod")]
    [TestCase("/:send", """["type","ok"]""", "body")]
    [TestCase("/:send", """{"type":"ok",""", "body")]
    [TestCase("/:send?excluded=", """{"type":"ok"}""", "excluded")]
    [TestCase("/users/%20/:send", """{"type":"ok"}""", "user")]
    [TestCase("/groups/%09tab/:send", """{"type":"ok"}""", "group")]
    public async Task A_malformed_request_gets_400_naming_the_field(string path, string body, string field)
    {
        using var response = await _api.SendAsync(HttpMethod.Post, path, body);
        var problem = await PushClient.ProblemAsync(response);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), problem.ToString());
            Assert.That(problem.GetProperty("errors").TryGetProperty(field, out _), Is.True, problem.ToString());
            Assert.That(problem.GetProperty("detail").GetString(), Is.Not.Empty);
        });
    }

    [Test]
    public async Task A_close_reason_over_512_characters_gets_400()
    {
        using var response = await _api.SendAsync(HttpMethod.Delete, $"/connections/c1?reason={new string('r', 513)}");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
    }

    [Test]
    public async Task A_body_that_is_not_json_gets_415()
    {
        using var response = await _api.SendAsync(HttpMethod.Post, "/:send", configure: r => r.Content = new StringContent("type=ok"));
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));
    }

    [Test]
    public async Task An_oversized_body_gets_413()
    {
        using var response = await _api.PostEventAsync("/:send", "big", new { text = new string('x', 9000) });
        var problem = await PushClient.ProblemAsync(response);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
            Assert.That(problem.GetProperty("detail").GetString(), Does.Contain("PushApi:MaxBodyBytes"));
        });
    }

    [Test]
    public async Task An_oversized_body_without_a_length_gets_413()
    {
        var content = new StreamContent(new MemoryStream(System.Text.Encoding.UTF8.GetBytes($$"""{"type":"big","payload":"{{new string('x', 9000)}}"}""")));
        content.Headers.ContentType = new("application/json");
        using var response = await _api.SendAsync(HttpMethod.Post, "/:send", configure: r =>
        {
            r.Content = content;
            r.Headers.TransferEncodingChunked = true;
        });
        var problem = await PushClient.ProblemAsync(response);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
            // Not the payload limit (1024 here), which a body read in full would also trip.
            Assert.That(problem.GetProperty("detail").GetString(), Does.Contain("PushApi:MaxBodyBytes"));
        });
    }

    [Test]
    public async Task A_payload_over_the_gateway_limit_gets_413_naming_it()
    {
        using var response = await _api.PostEventAsync("/:send", "big", new { text = new string('x', 2000) });
        var problem = await PushClient.ProblemAsync(response);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
            Assert.That(problem.GetProperty("detail").GetString(), Does.Contain("Gateway:MaxPayloadBytes"));
        });
    }

    [Test]
    public async Task Without_a_broker_a_request_gets_503_with_a_clear_body()
    {
        await _system.Broker.DeleteVirtualHostAsync(_system.VirtualHost);

        using var response = await _api.PostEventAsync("/:send", "lost", null);
        var problem = await PushClient.ProblemAsync(response);

        Assert.Multiple(() =>
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
            Assert.That(problem.GetProperty("title").GetString(), Is.EqualTo("broker_unavailable"));
            Assert.That(problem.GetProperty("detail").GetString(), Does.Contain("broker"));
        });
    }

    [Test]
    public async Task The_api_is_described_by_an_openapi_document()
    {
        using var response = await _api.GetAsync("/openapi/v1.json");
        var document = await PushClient.ProblemAsync(response);
        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();

        Assert.That(paths, Is.SupersetOf(new[]
        {
            "/api/v1/hubs/gateway/:send",
            "/api/v1/hubs/gateway/users/{user}/:send",
            "/api/v1/hubs/gateway/groups/{group}/:send",
            "/api/v1/hubs/gateway/connections/{connectionId}/:send",
            "/api/v1/hubs/gateway/groups/{group}/connections/{connectionId}",
            "/api/v1/hubs/gateway/connections/{connectionId}",
        }));
    }
}

public sealed class A_hub_without_a_push_key
{
    [Test]
    public async Task Has_no_push_api()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();
        using var api = new PushClient(hub, "any-key-any-key-any-key");

        using var response = await api.PostEventAsync("/:send", "hello", null);
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
    }
}
