using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using SocketStarter.HubFront;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Operations;

/// <summary>
/// Hub and worker against a broker set up from rabbitmq/ exactly as compose sets it up, on a node
/// of their own, which these specs stop and start (the run's shared broker is never stopped).
/// </summary>
public sealed class Running_on_the_production_broker_configuration
{
    private ProductionBroker _broker = null!;
    private readonly List<WebApplication> _hosts = [];
    private string _directory = null!;
    private string _database = null!;
    private string _databaseConnectionString = null!;

    [OneTimeSetUp]
    public async Task StartBrokerAsync() => _broker = await ProductionBroker.StartAsync();

    [OneTimeTearDown]
    public async Task StopBrokerAsync() => await _broker.DisposeAsync();

    [SetUp]
    public async Task CreateDirectoryAndDatabaseAsync()
    {
        _database = $"prod-{Guid.NewGuid():N}";
        Directory.CreateDirectory(_directory = Path.Combine(Path.GetTempPath(), $"socketstarter-{_database}"));
        _databaseConnectionString = await TestRun.Database.CreateDatabaseAsync(_database);
    }

    [TearDown]
    public async Task StopServicesAsync()
    {
        foreach (var host in Enumerable.Reverse(_hosts))
        {
            await host.StopAsync();
            await host.DisposeAsync();
        }
        _hosts.Clear();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        await TestRun.Database.DropDatabaseAsync(_database);
    }

    [Test]
    public async Task The_worker_queue_gets_the_delivery_limit_policy_without_a_conflict()
    {
        await StartAsync(TestSystem.BuildWorker(Settings()));

        // The management API shows the applied policy once it has collected the queue's stats.
        JsonElement queue = default;
        await Wait.UntilAsync(async () =>
        {
            queue = await _broker.Management.GetFromJsonAsync<JsonElement>($"queues/{ProductionBroker.VirtualHost}/chat-worker-00");
            return queue.TryGetProperty("effective_policy_definition", out var applied) && applied.ValueKind == JsonValueKind.Object && applied.EnumerateObject().Any();
        }, "the broker reports the policy it applies to the shard queue chat-worker-00");
        Assert.Multiple(() =>
        {
            Assert.That(queue.GetProperty("type").GetString(), Is.EqualTo("quorum"));
            Assert.That(queue.GetProperty("arguments").EnumerateObject().Select(a => a.Name),
                Has.None.AnyOf("x-delivery-limit", "x-dead-letter-exchange"), "the declaration leaves these to the policy");
            Assert.That(queue.GetProperty("policy").GetString(), Is.EqualTo("chat-worker-poison"));
            Assert.That(queue.GetProperty("effective_policy_definition").GetProperty("delivery-limit").GetInt32(), Is.EqualTo(20));
            Assert.That(queue.GetProperty("effective_policy_definition").GetProperty("dead-letter-exchange").GetString(), Is.EqualTo("chat-worker_error"));
        });
    }

    [Test]
    public async Task Readiness_fails_while_the_broker_is_stopped_and_recovers_after_it_is_back()
    {
        var worker = await StartAsync(TestSystem.BuildWorker(Settings()));
        var hub = await StartAsync(TestSystem.BuildHub(Settings()));
        var client = await ChatClient.ConnectAsync(new Uri(hub, GatewayHub.Path));
        await using var _ = client;
        await client.SignInAsync("Ada");

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        async Task<HttpStatusCode> Status(Uri service, string path)
        {
            try { return (await http.GetAsync(new Uri(service, path))).StatusCode; }
            catch (TaskCanceledException) { return HttpStatusCode.RequestTimeout; }
        }
        async Task<bool> Both(string path, HttpStatusCode expected) =>
            await Status(worker, path) == expected && await Status(hub, path) == expected;

        Assert.That(await Both("health/ready", HttpStatusCode.OK), Is.True, "both ready before the broker stops");

        await _broker.StopNodeAsync();
        await Wait.UntilAsync(() => Both("health/ready", HttpStatusCode.ServiceUnavailable), "hub and worker report not ready");
        Assert.That(await Both("alive", HttpStatusCode.OK), Is.True, "still alive: nothing to restart, only to keep traffic away");

        await _broker.StartNodeAsync();
        await Wait.UntilAsync(() => Both("health/ready", HttpStatusCode.OK), "hub and worker report ready again", TimeSpan.FromSeconds(90));

        // Ready means working: the same client's next event goes through and is answered.
        await client.JoinAsync("back");
        Assert.That(client.TimesClosed, Is.Zero);
    }

    private Dictionary<string, string?> Settings() => new()
    {
        ["ConnectionStrings:rabbitmq"] = _broker.Amqp.ToString(),
        ["Gateway:UpstreamExchange"] = "chat-worker",
        ["ConnectionStrings:postgres"] = _databaseConnectionString,
    };

    private async Task<Uri> StartAsync(WebApplication app)
    {
        _hosts.Add(app);
        await app.StartAsync();
        return new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
    }
}
