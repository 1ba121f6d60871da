using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Operations;

/// <summary>
/// The ports <c>scripts/rabbitmq-node</c> gives a private node (the tests', the bench's, the local
/// system's broker): all different, all free. Each was drawn on its own, so two could be the same
/// (AMQP and epmd both on 23780 in a bench run of 2026-12-06: the node died with eaddrinuse).
/// Real bash, real listening sockets; the node itself is not started.
/// </summary>
public sealed class Picking_a_private_broker_nodes_ports
{
    private string _dir = "";

    [SetUp]
    public void CreateDir() => _dir = Directory.CreateTempSubdirectory("socketstarter-rabbit-ports-").FullName;

    [TearDown]
    public void DeleteDir() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Five_ports_from_a_narrow_range_are_all_different_and_a_taken_one_is_skipped()
    {
        // Eleven ports for five picks, one of them held (and the one below it, whose next port
        // must be free too): with picks drawn independently, a repeat is all but certain over
        // these rounds.
        using var held = new TcpListener(IPAddress.Loopback, 0);
        held.Start();
        var taken = ((IPEndPoint)held.LocalEndpoint).Port;
        var from = taken - 2;
        for (var round = 0; round < 8; round++)
        {
            var dir = Path.Combine(_dir, round.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var (exitCode, output, error) = await PortsAsync(dir, $"{from}-{from + 10}");
            var ports = output.Split('\n').Where(l => l.Contains("_PORT=", StringComparison.Ordinal))
                .Select(l => int.Parse(l.Split('=')[1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Multiple(() =>
            {
                Assert.That(exitCode, Is.Zero, error);
                Assert.That(ports, Has.Count.EqualTo(5), output);
                Assert.That(ports, Is.Unique, output);
                Assert.That(ports, Has.None.EqualTo(taken), output);
                Assert.That(ports, Is.All.InRange(from, from + 10), output);
            });
        }
    }

    [Test]
    public async Task A_range_too_small_or_malformed_is_refused_naming_the_setting()
    {
        var tooSmall = await PortsAsync(Path.Combine(_dir, "small"), "30100-30103");
        var malformed = await PortsAsync(Path.Combine(_dir, "malformed"), "30100:30200");

        Assert.Multiple(() =>
        {
            Assert.That(tooSmall.ExitCode, Is.Not.Zero);
            Assert.That(tooSmall.Error, Does.Contain("no free port found"));
            Assert.That(malformed.ExitCode, Is.EqualTo(2));
            Assert.That(malformed.Error, Does.Contain("RABBITMQ_NODE_PORTS must be FROM-TO"));
        });
    }

    private static async Task<(int ExitCode, string Output, string Error)> PortsAsync(string dir, string range)
    {
        var start = new ProcessStartInfo(Path.Combine(RepositoryRoot.Path, "scripts", "rabbitmq-node"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("ports");
        start.ArgumentList.Add(dir);
        start.Environment["RABBITMQ_NODE_PORTS"] = range;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await output).Trim(), await error);
    }
}
