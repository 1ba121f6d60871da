using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Operations;

/// <summary>
/// The ports of the system scripts/start runs (<c>scripts/local.sh</c>): a port a setting gives is
/// used, or refused naming the port and the setting; a default that is taken gives way to a free
/// port, so two copies of the system run side by side. Real bash, real listening sockets.
/// </summary>
public sealed class Choosing_the_local_ports
{
    private string _state = "";

    [SetUp]
    public void CreateState() => _state = Directory.CreateTempSubdirectory("socketstarter-ports-").FullName;

    [TearDown]
    public void DeleteState() => Directory.Delete(_state, recursive: true);

    [Test]
    public async Task A_free_default_is_used_and_a_taken_one_gives_way_to_the_next_free_port()
    {
        using var held = Listen();
        var taken = Port(held);
        var free = FreePort();

        var atFree = await LocalAsync($"choose_port HUB_PORT {free}");
        var atTaken = await LocalAsync($"choose_port HUB_PORT {taken}");

        Assert.Multiple(() =>
        {
            Assert.That(atFree.Output, Is.EqualTo(free.ToString()));
            Assert.That(atTaken.ExitCode, Is.Zero, atTaken.Error);
            Assert.That(int.Parse(atTaken.Output), Is.GreaterThan(taken));
            Assert.That(IsFree(int.Parse(atTaken.Output)), Is.True);
            Assert.That(atTaken.Error, Does.Contain($"Port {taken} (HUB_PORT) is in use; using {atTaken.Output} instead"));
        });
    }

    [Test]
    public async Task A_given_port_that_is_taken_stops_naming_the_port_and_the_setting()
    {
        using var held = Listen();
        var taken = Port(held);

        var result = await LocalAsync($"choose_port APP_PORT 8080 {taken}");
        var reserved = await LocalAsync($"RESERVED_PORTS='{FreePort()} 1234'; choose_port WORKER_PORT_BASE+1 '' 1234");
        var malformed = await LocalAsync("choose_port HUB_PORT 5000 80a");

        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.Not.Zero);
            Assert.That(result.Output, Is.Empty);
            Assert.That(result.Error, Does.Contain($"Port {taken} (APP_PORT) is in use").And.Contain("set APP_PORT to another port"));
            Assert.That(reserved.ExitCode, Is.Not.Zero);
            Assert.That(reserved.Error, Does.Contain("Port 1234 (WORKER_PORT_BASE+1"));
            Assert.That(malformed.ExitCode, Is.Not.Zero);
            Assert.That(malformed.Error, Does.Contain("HUB_PORT=80a is not a port"));
        });
    }

    [Test]
    public async Task Workers_listen_above_their_base_skipping_taken_ports_unless_the_base_was_given()
    {
        using var held = Listen();
        var taken = Port(held);
        var basePort = taken - 1;

        var derived = await LocalAsync($"WORKER_PORT_BASE={basePort} WORKER_PORT_BASE_GIVEN=0; worker_port 1");
        var given = await LocalAsync($"WORKER_PORT_BASE={basePort} WORKER_PORT_BASE_GIVEN=1; worker_port 1");
        var fromEnvironment = await LocalAsync("unset WORKER_PORT_BASE_GIVEN; load_ports; echo $WORKER_PORT_BASE_GIVEN", new() { ["WORKER_PORT_BASE"] = basePort.ToString() });

        Assert.Multiple(() =>
        {
            Assert.That(derived.ExitCode, Is.Zero, derived.Error);
            Assert.That(int.Parse(derived.Output), Is.GreaterThan(taken));
            Assert.That(derived.Error, Does.Contain($"Port {taken} (WORKER_PORT_BASE+1, worker 1) is in use; using {derived.Output} instead (set WORKER_PORT_BASE to choose)"));
            Assert.That(given.ExitCode, Is.Not.Zero);
            Assert.That(given.Error, Does.Contain($"Port {taken} (WORKER_PORT_BASE+1, worker 1) is in use").And.Contain("set WORKER_PORT_BASE to another port"));
            Assert.That(fromEnvironment.Output, Is.EqualTo("1"));
        });
    }

    [Test]
    public async Task Start_stops_before_building_or_starting_anything_when_a_given_port_is_taken()
    {
        using var held = Listen();
        var taken = Port(held);

        var result = await RunAsync(Path.Combine(RepositoryRoot.Path, "scripts", "start"), new() { ["HUB_PORT"] = taken.ToString() });

        Assert.Multiple(() =>
        {
            Assert.That(result.ExitCode, Is.Not.Zero);
            Assert.That(result.Error, Does.Contain($"Port {taken} (HUB_PORT) is in use"));
            Assert.That(result.Output, Does.Not.Contain("Starting"));
            Assert.That(Directory.Exists(Path.Combine(_state, "rabbitmq")), Is.False);
            Assert.That(Directory.Exists(Path.Combine(_state, "postgres")), Is.False);
        });
    }

    private Task<(int ExitCode, string Output, string Error)> LocalAsync(string commands, Dictionary<string, string>? environment = null) =>
        RunAsync("bash", environment, "-c", $"source '{Path.Combine(RepositoryRoot.Path, "scripts", "local.sh")}'; {commands}");

    private async Task<(int ExitCode, string Output, string Error)> RunAsync(string file, Dictionary<string, string>? environment, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        start.Environment["SOCKETSTARTER_STATE"] = _state;
        foreach (var name in new[] { "HUB_PORT", "APP_PORT", "WORKER_PORT_BASE", "WORKERS", "RESERVED_PORTS" })
            start.Environment.Remove(name);
        foreach (var (name, value) in environment ?? [])
            start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await output).Trim(), await error);
    }

    private static TcpListener Listen()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    private static int Port(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;

    private static int FreePort()
    {
        using var listener = Listen();
        return Port(listener);
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect(IPAddress.Loopback, port);
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }
}
