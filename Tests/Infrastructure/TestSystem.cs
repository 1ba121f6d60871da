using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SocketStarter.ChatWorker;
using SocketStarter.HubFront;
using SocketStarter.ServiceDefaults;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// One test's whole system on real sockets: its own virtual host on the run's broker, hub hosts on
/// Kestrel, worker hosts sharing one SQLite file, and real SignalR clients.
/// </summary>
public sealed class TestSystem : IAsyncDisposable
{
    private readonly List<WebApplication> _hosts = [];
    private readonly List<ChatClient> _clients = [];

    private TestSystem(string virtualHost, Uri brokerUri, string directory)
    {
        VirtualHost = virtualHost;
        BrokerUri = brokerUri;
        Directory = directory;
    }

    public string VirtualHost { get; }
    public Uri BrokerUri { get; }
    public string Directory { get; }
    public string StorePath => Path.Combine(Directory, "chat.db");
    public Broker Broker => TestRun.Broker;

    public static async Task<TestSystem> CreateAsync()
    {
        var name = $"test-{Guid.NewGuid():N}";
        var uri = await TestRun.Broker.CreateVirtualHostAsync(name);
        var directory = Path.Combine(Path.GetTempPath(), name);
        System.IO.Directory.CreateDirectory(directory);
        return new TestSystem(name, uri, directory);
    }

    public async Task<Uri> StartHubAsync(IDictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?> { ["Gateway:UpstreamQueue"] = "chat-worker" };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            all[key] = value;

        var builder = CreateBuilder(typeof(GatewayHub), all);
        builder.AddServiceDefaults(GatewayMetrics.MeterName);
        builder.AddGateway();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        app.MapGateway();
        var address = await StartAsync(app);
        return new Uri(address, GatewayHub.Path);
    }

    public async Task<WebApplication> StartWorkerAsync(IDictionary<string, string?>? settings = null)
    {
        var all = new Dictionary<string, string?> { ["Store:Path"] = StorePath };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            all[key] = value;

        var builder = CreateBuilder(typeof(WorkerOptions), all);
        builder.AddServiceDefaults();
        builder.AddChatWorker();
        var app = builder.Build();
        app.MapDefaultEndpoints();
        await StartAsync(app);
        return app;
    }

    /// <summary>What SIGTERM does: a graceful stop that finishes in-flight events.</summary>
    public async Task StopAsync(WebApplication host)
    {
        await host.StopAsync();
        await host.DisposeAsync();
        _hosts.Remove(host);
    }

    public async Task<ChatClient> ConnectAsync(Uri hubUrl)
    {
        var client = await ChatClient.ConnectAsync(hubUrl);
        _clients.Add(client);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
            await client.DisposeAsync();
        foreach (var host in Enumerable.Reverse(_hosts).ToList())
        {
            await host.StopAsync();
            await host.DisposeAsync();
        }
        await TestRun.Broker.DeleteVirtualHostAsync(VirtualHost);
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private WebApplicationBuilder CreateBuilder(Type application, IDictionary<string, string?>? settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            ApplicationName = application.Assembly.GetName().Name,
            ContentRootPath = Directory,
            EnvironmentName = "Testing",
        });
        var all = new Dictionary<string, string?> { ["ConnectionStrings:rabbitmq"] = BrokerUri.ToString() };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            all[key] = value;
        builder.Configuration.AddInMemoryCollection(all);
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
