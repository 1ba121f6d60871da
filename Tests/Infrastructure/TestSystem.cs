using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SocketStarter.ChatWorker;
using SocketStarter.GatewayWorker;
using SocketStarter.HubFront;
using SocketStarter.ServiceDefaults;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// One test's whole system on real sockets: its own virtual host on the run's broker, its own
/// database on the run's PostgreSQL, hub hosts on Kestrel, worker hosts sharing that database, and
/// real SignalR clients.
/// </summary>
public sealed class TestSystem : IAsyncDisposable
{
    private readonly List<WebApplication> _hosts = [];
    private readonly List<ChatClient> _clients = [];

    private readonly Database _server;

    private TestSystem(string virtualHost, Uri brokerUri, Database server, string database, string databaseConnectionString, string directory)
    {
        _server = server;
        VirtualHost = virtualHost;
        BrokerUri = brokerUri;
        DatabaseName = database;
        DatabaseConnectionString = databaseConnectionString;
        Directory = directory;
    }

    public string VirtualHost { get; }
    public Uri BrokerUri { get; }
    public string DatabaseName { get; }

    /// <summary>This test's own database (Npgsql form), shared by its workers.</summary>
    public string DatabaseConnectionString { get; }
    public string Directory { get; }
    public Broker Broker => TestRun.Broker;

    /// <param name="server">The PostgreSQL server of its database: the run's, unless the test stops one of its own.</param>
    public static async Task<TestSystem> CreateAsync(Database? server = null)
    {
        server ??= TestRun.Database;
        var name = $"test-{Guid.NewGuid():N}";
        var uri = TestRun.Broker.CreateVirtualHostAsync(name);
        var database = server.CreateDatabaseAsync(name);
        var directory = Path.Combine(Path.GetTempPath(), name);
        System.IO.Directory.CreateDirectory(directory);
        return new TestSystem(name, await uri, server, name, await database, directory);
    }

    /// <summary>Where hubs publish upstream events: the workers' consistent-hash exchange (see <see cref="RoutedBy"/>).</summary>
    public static Uri UpstreamAddress { get; } = new("exchange:chat-worker?type=x-consistent-hash");

    /// <summary>An upstream event's routing key, as the hub sets it: its connection id picks the shard.</summary>
    public static MassTransit.IPipe<MassTransit.SendContext> RoutedBy(string connectionId) => MassTransit.Pipe.Execute<MassTransit.SendContext>(context =>
    {
        if (context is MassTransit.RabbitMqSendContext rabbit)
            rabbit.RoutingKey = connectionId;
    });

    /// <summary>The workers' shard queues, by the default settings.</summary>
    public static IReadOnlyList<string> ShardQueues { get; } =
        Enumerable.Range(0, new WorkerOptions().Shards).Select(new WorkerOptions().ShardQueue).ToList();

    /// <summary>What waits in all the shard queues: ready and unacknowledged, summed.</summary>
    public async Task<(long Ready, long Unacknowledged)> UpstreamDepthAsync()
    {
        long ready = 0, unacknowledged = 0;
        foreach (var queue in ShardQueues)
        {
            var (r, u) = await Broker.QueueDepthAsync(VirtualHost, queue);
            ready += r;
            unacknowledged += u;
        }
        return (ready, unacknowledged);
    }

    /// <summary>A connection to this test's database, to look at what the workers wrote.</summary>
    public async Task<Npgsql.NpgsqlConnection> OpenDatabaseAsync()
    {
        var connection = new Npgsql.NpgsqlConnection(DatabaseConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    public async Task<Uri> StartHubAsync(IDictionary<string, string?>? settings = null)
    {
        var address = await StartAsync(BuildHub(Settings(settings), Directory));
        return new Uri(address, GatewayHub.Path);
    }

    public async Task<WebApplication> StartWorkerAsync(IDictionary<string, string?>? settings = null)
    {
        var app = BuildWorker(Settings(settings), Directory);
        await StartAsync(app);
        return app;
    }

    /// <summary>A worker running an application of the test's own on the runtime (no tables of its own).</summary>
    public async Task<WebApplication> StartWorkerAsync<TApplication>(IDictionary<string, string?>? settings = null)
        where TApplication : class, IGatewayApplication
    {
        var builder = CreateBuilder(typeof(TApplication), Settings(settings), Directory);
        builder.AddServiceDefaults(WorkerMetrics.MeterName);
        builder.AddGatewayWorker<TApplication>();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        await StartAsync(app);
        return app;
    }

    /// <summary>This system's settings for a service: broker, queue, store, then the test's own.</summary>
    public Dictionary<string, string?> Settings(IDictionary<string, string?>? overrides = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["ConnectionStrings:rabbitmq"] = BrokerUri.ToString(),
            ["Gateway:UpstreamExchange"] = "chat-worker",
            ["ConnectionStrings:postgres"] = DatabaseConnectionString,
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
            all[key] = value;
        return all;
    }

    /// <summary>The hub as Hub.Front's Program.cs composes it, on a free loopback port.</summary>
    public static WebApplication BuildHub(IDictionary<string, string?> settings, string? contentRoot = null)
    {
        var builder = CreateBuilder(typeof(GatewayHub), settings, contentRoot);
        builder.AddServiceDefaults(GatewayMetrics.MeterName);
        builder.AddGateway();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapGateway();
        return app;
    }

    /// <summary>A worker as Chat.Worker's Program.cs composes it, on a free loopback port.</summary>
    public static WebApplication BuildWorker(IDictionary<string, string?> settings, string? contentRoot = null)
    {
        var builder = CreateBuilder(typeof(ChatWorker.Extensions), settings, contentRoot);
        builder.AddServiceDefaults(WorkerMetrics.MeterName);
        builder.AddChatWorker();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        return app;
    }

    /// <summary>What SIGTERM does: a graceful stop that finishes in-flight events.</summary>
    public async Task StopAsync(WebApplication host)
    {
        await host.StopAsync();
        await host.DisposeAsync();
        _hosts.Remove(host);
    }

    public async Task<ChatClient> ConnectAsync(Uri hubUrl, string? accessToken = null, IReadOnlyDictionary<string, string>? headers = null, bool statefulReconnect = false)
    {
        var client = await ChatClient.ConnectAsync(hubUrl, accessToken, headers, statefulReconnect);
        _clients.Add(client);
        return client;
    }

    /// <summary>A client signed in as <paramref name="name"/> that joined <paramref name="room"/>.</summary>
    public async Task<ChatClient> ConnectAsAsync(Uri hubUrl, string name, string room)
    {
        var client = await ConnectAsync(hubUrl);
        await client.SignInAsync(name);
        await client.JoinAsync(room);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
            await client.DisposeAsync();
        foreach (var host in Enumerable.Reverse(_hosts).ToList())
        {
            try
            {
                await host.StopAsync();
            }
            catch (OperationCanceledException ex)
            {
                // A graceful stop that outlasted the host's shutdown timeout (a worker's is 30 s):
                // what it still held goes back to the queue, as when an orchestrator kills it. The
                // stop is what the shutdown specs test; here the rest must still be torn down.
                await TestContext.Out.WriteLineAsync($"A host did not stop within its shutdown timeout and is disposed anyway: {ex.Message}");
            }
            await host.DisposeAsync();
        }
        await TestRun.Broker.DeleteVirtualHostAsync(VirtualHost);
        try { await _server.DropDatabaseAsync(DatabaseName); }
        catch (Npgsql.NpgsqlException) { } // a server the test stopped goes with its data anyway
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static WebApplicationBuilder CreateBuilder(Type application, IDictionary<string, string?> settings, string? contentRoot)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            ApplicationName = application.Assembly.GetName().Name,
            ContentRootPath = contentRoot ?? Path.GetTempPath(),
            EnvironmentName = "Testing",
        });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(Enum.Parse<LogLevel>(Environment.GetEnvironmentVariable("TEST_LOG_LEVEL") ?? "Warning"));
        return builder;
    }

    private async Task<Uri> StartAsync(WebApplication app)
    {
        _hosts.Add(app);
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!;
        return new Uri(addresses.Addresses.First());
    }
}
