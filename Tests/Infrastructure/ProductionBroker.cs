using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// A private RabbitMQ node of the OS package set up as compose sets up the broker: the
/// repository's <c>rabbitmq/rabbitmq.conf</c> and <c>enabled_plugins</c>, the application's user,
/// password and virtual host seeded from the environment, then <c>rabbitmq/definitions.json</c>
/// imported through the management API. Its own node, so a test may stop and restart it.
/// </summary>
public sealed class ProductionBroker : IAsyncDisposable
{
    public const string User = "socketstarter";
    public const string VirtualHost = "socketstarter";

    private readonly string _directory;
    private readonly string _password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
    private HttpClient? _management;

    private ProductionBroker(string directory) => _directory = directory;

    public Uri Amqp { get; private set; } = null!;
    public Uri Prometheus { get; private set; } = null!;
    public HttpClient Management => _management ?? throw new InvalidOperationException("Not started.");

    public static async Task<ProductionBroker> StartAsync()
    {
        var broker = new ProductionBroker(Path.Combine(Path.GetTempPath(), $"socketstarter-prod-rabbit-{Guid.NewGuid():N}"));
        await broker.StartNodeAsync();
        try
        {
            var definitions = await File.ReadAllTextAsync(Path.Combine(RepositoryRoot.Path, "rabbitmq", "definitions.json"));
            var imported = await broker.Management.PostAsync("definitions", new StringContent(definitions, Encoding.UTF8, "application/json"));
            Assert.That(imported.IsSuccessStatusCode, Is.True, $"importing rabbitmq/definitions.json: {(int)imported.StatusCode} {await imported.Content.ReadAsStringAsync()}");
            return broker;
        }
        catch
        {
            // The caller never gets it to dispose: nothing of the node may outlive the test.
            await broker.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the node again, on the same ports and with the same data.</summary>
    public Task StartNodeAsync() => RunAsync("start");

    /// <summary>Stops the node the way an operator does (rabbitmqctl stop).</summary>
    public Task StopNodeAsync() => RunAsync("stop");

    /// <summary>
    /// Raises the node's memory alarm for real (a high watermark of 0): the broker stops reading
    /// from every connection that publishes, which stay open; consumers still get their deliveries.
    /// </summary>
    public Task BlockPublishersAsync() => RunAsync("ctl", "set_vm_memory_high_watermark", "0");

    /// <summary>Clears the alarm (the default watermark again).</summary>
    public Task UnblockPublishersAsync() => RunAsync("ctl", "set_vm_memory_high_watermark", "0.4");

    public async ValueTask DisposeAsync()
    {
        _management?.Dispose();
        await RunAsync("stop");
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private async Task RunAsync(string command, params string[] arguments)
    {
        var script = Path.Combine(RepositoryRoot.Path, "scripts", "rabbitmq-node");
        var start = new ProcessStartInfo("bash", [script, command, _directory, .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["RABBITMQ_NODE_CONF"] = Path.Combine(RepositoryRoot.Path, "rabbitmq", "rabbitmq.conf");
        start.Environment["RABBITMQ_NODE_PLUGINS"] = Path.Combine(RepositoryRoot.Path, "rabbitmq", "enabled_plugins");
        start.Environment["RABBITMQ_DEFAULT_USER"] = User;
        start.Environment["RABBITMQ_DEFAULT_PASS"] = _password;
        start.Environment["RABBITMQ_DEFAULT_VHOST"] = VirtualHost;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            Assert.Fail($"scripts/rabbitmq-node {command} failed ({process.ExitCode}): {await stderr}");

        if (command != "start" || _management is not null)
            return;
        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        var amqp = new Uri(lines["AMQP_URI"]);
        var management = new Uri(lines["MANAGEMENT_URI"]);
        Amqp = new UriBuilder(amqp) { UserName = User, Password = _password, Path = "/" + VirtualHost }.Uri;
        Prometheus = new Uri(lines["PROMETHEUS_URI"]);
        _management = new HttpClient { BaseAddress = new Uri(management.GetLeftPart(UriPartial.Authority) + "/api/") };
        _management.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{_password}")));
    }
}
