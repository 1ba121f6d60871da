using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Bench;

/// <summary>
/// Keeps bench/ working: each scenario at its smallest size, on this run's broker and database
/// server, against both targets. No figure is asserted (speed is for the benchmark to print); that
/// every message accepted reached every member of its room, and that the JSON holds what it
/// promises, is.
/// </summary>
public sealed class Running_the_benchmarks
{
    private static readonly string Configuration =
        typeof(Running_the_benchmarks).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    // Each case starts its own services for every target and count, about 5 s a run on 2 cores, so
    // flags share cases: echo runs with a pool size of its own, the closed loop's rounds with one
    // worker count, the room placement over 2 hubs only.
    [TestCase("echo", "--pool-size", "2")]
    [TestCase("rooms")]
    [TestCase("broadcast")]
    [TestCase("saturation")]
    [TestCase("swap")]
    [TestCase("hubs")]
    [TestCase("saturation", "--closed-loop", "--repeat", "2", "-w", "1")]
    [TestCase("hubs", "--placement", "room", "-H", "2")]
    public async Task Delivers_every_message_of_a_tiny_run(string scenario, params string[] flags)
    {
        var (runs, output) = await RunAsync(scenario, flags);

        Assert.That(runs.Select(r => r.GetProperty("target").GetString()),
            scenario == "swap" ? Is.EqualTo(new[] { "gateway" }) : Does.Contain("gateway").And.Contain("baseline"));
        foreach (var run in runs)
        {
            var what = $"{scenario} on {run.GetProperty("target").GetString()} with {run.GetProperty("workers").GetInt32()} worker(s): {run}";
            Assert.Multiple(() =>
            {
                Assert.That(run.GetProperty("accepted").GetInt64(), Is.GreaterThan(0), what);
                Assert.That(run.GetProperty("accepted").GetInt64(), Is.EqualTo(run.GetProperty("sent").GetInt64()), what);
                Assert.That(run.GetProperty("delivered").GetInt64(), Is.EqualTo(run.GetProperty("expectedDeliveries").GetInt64()), what);
                Assert.That(run.GetProperty("missing").GetInt64(), Is.Zero, what);
                Assert.That(run.GetProperty("errors").EnumerateObject().Select(e => e.Name), Is.Empty, what);
                Assert.That(run.GetProperty("connectionsOpened").GetProperty("openAtEnd").GetInt32(), Is.EqualTo(run.GetProperty("connections").GetInt32()), what);
                Assert.That(run.GetProperty("latencyMs").GetProperty("count").GetInt64(), Is.GreaterThan(0), what);
                foreach (var field in new[] { "p50", "p90", "p99", "p999", "max" })
                    Assert.That(run.GetProperty("latencyMs").GetProperty(field).GetDouble(), Is.GreaterThan(0), what);
                Assert.That(run.GetProperty("acceptedPerSecond").GetDouble(), Is.GreaterThan(0), what);
                Assert.That(run.GetProperty("deliveredPerSecond").GetDouble(), Is.GreaterThan(0), what);
                Assert.That(run.GetProperty("loadAverageBefore").GetString(), Is.Not.Empty, what);
                // CPU of the measured window by process group; the hubs and workers are counted by pid.
                var cpu = run.GetProperty("cpu").EnumerateArray().ToDictionary(c => c.GetProperty("group").GetString()!, c => c.GetProperty("processes").GetInt32());
                if (run.GetProperty("target").GetString() == "gateway")
                {
                    Assert.That(cpu.GetValueOrDefault("hubs"), Is.EqualTo(run.GetProperty("hubs").GetInt32()), what);
                    // A swap's replaced worker counts too when its successor was ready before the window closed.
                    var workers = run.GetProperty("workers").GetInt32();
                    Assert.That(cpu.GetValueOrDefault("workers"), scenario == "swap" ? Is.InRange(workers, workers + 1) : Is.EqualTo(workers), what);
                }
                else
                    Assert.That(cpu.GetValueOrDefault("baseline"), Is.EqualTo(1), what);
                Assert.That(cpu.GetValueOrDefault("load generator"), Is.EqualTo(1), what);
                if (scenario == "swap")
                    Assert.That(run.GetProperty("swap").GetProperty("replaceSeconds").GetDouble(), Is.GreaterThan(0), what);
            });
        }
        var repeated = flags.Contains("--repeat");
        if (scenario == "saturation")
            Assert.That(runs.Where(r => r.GetProperty("target").GetString() == "gateway").Select(r => r.GetProperty("workers").GetInt32()), Is.EqualTo(repeated ? new[] { 1, 1 } : new[] { 1, 2 }));
        if (repeated)
        {
            // Round after round, every configuration in each (the gateway's one count and the baseline); the medians' table after the runs'.
            Assert.That(runs.Select(r => r.GetProperty("round").GetInt32()), Is.EqualTo(new[] { 1, 1, 2, 2 }));
            Assert.That(output, Does.Contain("Medians over the rounds").And.Contain(", round 2 of 2"));
        }
        if (flags.Contains("--pool-size"))
        {
            // Each process's pool capped at 2 connections, and the run says so.
            Assert.That(runs.Select(r => r.GetProperty("poolSize").GetInt32()), Is.All.EqualTo(2));
            Assert.That(output, Does.Contain("at most 2 database connections per process"));
        }
        if (scenario == "echo")
        {
            // Echo's hop table ends with the broker's own two hops, measured with the plain client on the same node.
            var floor = runs.Where(r => r.GetProperty("target").GetString() == "gateway")
                .SelectMany(r => r.GetProperty("timing").GetProperty("hops").EnumerateArray())
                .Where(h => h.GetProperty("name").GetString()!.StartsWith("broker alone", StringComparison.Ordinal))
                .ToList();
            Assert.That(floor.Select(h => h.GetProperty("name").GetString()), Is.EquivalentTo(new[]
            {
                "broker alone: quorum publish → delivered", "broker alone: quorum publish → confirmed",
                "broker alone: classic publish → delivered", "broker alone: classic publish → confirmed",
            }));
            Assert.That(floor.Select(h => h.GetProperty("count").GetInt64()), Is.All.EqualTo(20));
            Assert.That(floor.Select(h => h.GetProperty("p50Ms").GetDouble()), Is.All.GreaterThan(0));
            Assert.That(output, Does.Contain("broker alone: quorum publish → delivered"));
        }
        if (scenario == "hubs")
            Assert.That(runs.Where(r => r.GetProperty("target").GetString() == "gateway").Select(r => r.GetProperty("hubs").GetInt32()), Is.EqualTo(flags.Contains("-H") ? new[] { 2 } : new[] { 1, 2 }));
    }

    [Test]
    public async Task Shows_what_the_database_spent_the_window_on_with_statements()
    {
        // Its own private cluster: the bench starts it with pg_stat_statements loaded, which this
        // run's server (a private cluster, a container or one given) need not have.
        var (runs, output) = await RunAsync("rooms", ownDatabase: true, "--statements");

        Assert.That(runs.Select(r => r.GetProperty("target").GetString()), Is.EquivalentTo(new[] { "gateway", "baseline" }));
        foreach (var run in runs)
        {
            var statements = run.GetProperty("statements").EnumerateArray()
                .Select(s => (Query: s.GetProperty("query").GetString()!, Calls: s.GetProperty("calls").GetInt64(), Total: s.GetProperty("totalMs").GetDouble()))
                .ToList();
            Assert.Multiple(() =>
            {
                Assert.That(run.GetProperty("missing").GetInt64(), Is.Zero, run.ToString());
                // Both targets run the runtime: every room message in the window took its connection's
                // turn and wrote its reply to the outbox, in the target's own database.
                Assert.That(statements.Where(s => s.Query.Contains("UPDATE gateway_connections", StringComparison.Ordinal)).Select(s => s.Calls), Has.One.GreaterThan(0), run.ToString());
                Assert.That(statements.Where(s => s.Query.Contains("INSERT INTO gateway_outbox", StringComparison.Ordinal)).Select(s => s.Calls), Has.One.GreaterThan(0), run.ToString());
                // The busiest first, at most the 8 busiest.
                Assert.That(statements, Has.Count.InRange(2, 8), run.ToString());
                Assert.That(statements.Select(s => s.Total), Is.Ordered.Descending, run.ToString());
            });
        }
        Assert.That(output, Does.Contain("database statements in the measured window"));
    }

    [Test]
    public async Task Measures_the_hub_memory_of_idle_connections()
    {
        var (runs, _) = await RunAsync("idle");

        Assert.That(runs, Has.Count.EqualTo(2));
        foreach (var run in runs)
        {
            var idle = run.GetProperty("idle");
            Assert.Multiple(() =>
            {
                Assert.That(idle.GetProperty("connections").GetInt32(), Is.EqualTo(run.GetProperty("connections").GetInt32()), run.ToString());
                Assert.That(run.GetProperty("connectionsOpened").GetProperty("openAtEnd").GetInt32(), Is.EqualTo(run.GetProperty("connections").GetInt32()), run.ToString());
                Assert.That(idle.GetProperty("rssBeforeBytes").GetInt64(), Is.GreaterThan(0), run.ToString());
                Assert.That(idle.GetProperty("rssAfterBytes").GetInt64(), Is.GreaterThan(0), run.ToString());
                Assert.That(idle.TryGetProperty("rssBytesPerConnection", out _), Is.True, run.ToString());
            });
        }
    }

    [TestCase("--room-size must be between 1 and --connections (10)", "rooms", "--room-size", "50", "--connections", "10")]
    [TestCase("--placement must be turn or room, not 'nearest'", "hubs", "--placement", "nearest")]
    [TestCase("--closed-loop is for --rate 0", "rooms", "--closed-loop", "--rate", "5")]
    [TestCase("--repeat must be between 1 and 20", "echo", "--repeat", "0")]
    [TestCase("--pool-size must be between 1 and 1000", "echo", "--pool-size", "0")]
    // Reached only once every scenario's settings before it were read: all has no --placement of its own.
    [TestCase("--sync must be on or off", "all", "--sync", "maybe")]
    [TestCase("--statements is for scenarios that send messages", "idle", "--statements")]
    public async Task Refuses_bad_flags_with_a_message_naming_them(string error, params string[] flags)
    {
        var (exitCode, output) = await StartBenchAsync([.. flags, "--tiny"]);

        Assert.Multiple(() =>
        {
            Assert.That(exitCode, Is.EqualTo(2));
            Assert.That(output, Does.Contain(error));
        });
    }

    [Test]
    public async Task Stops_on_SIGTERM_in_the_middle_of_a_flat_out_run_and_leaves_no_service_running()
    {
        // Flat out and closed loop: every send loop runs until the run ends; 16 connections keep
        // each under the hub's per-connection rate limit. Long enough that only the signal ends it.
        var dll = Path.Combine(RepositoryRoot.Path, "bench", "SocketStarter.Bench", "bin", Configuration, "net10.0", "SocketStarter.Bench.dll");
        var start = new ProcessStartInfo("dotnet", [dll, "saturation", "--tiny", "-t", "gateway", "-w", "1", "--connections", "16", "--closed-loop",
            "--warmup", "0", "--duration", "600",
            "--rabbitmq", TestRun.Broker.Amqp.ToString(), "--rabbitmq-management", TestRun.Broker.Management.ToString(),
            "--postgres", TestRun.Database.AdminConnectionString])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var bench = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        var accepting = 0;
        bench.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            lock (output)
                output.AppendLine(e.Data);
            // A live line with messages going through: "... accepted/s      312 ...".
            if (System.Text.RegularExpressions.Regex.IsMatch(e.Data, @"open 16/16\s+accepted/s\s+[1-9]"))
                Interlocked.Exchange(ref accepting, 1);
        };
        bench.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        bench.BeginOutputReadLine();
        bench.BeginErrorReadLine();
        try
        {
            await Wait.UntilAsync(() => Volatile.Read(ref accepting) == 1 || bench.HasExited, "the run carries messages", TimeSpan.FromMinutes(2));
            Assert.That(bench.HasExited, Is.False, () => Text(output));
            var services = ChildrenOf(bench.Id).Where(pid => CommandLineOf(pid) is var command && (command.Contains("Hub.Front") || command.Contains("Chat.Worker"))).ToList();
            Assert.That(services, Has.Count.EqualTo(2), "the hub and the worker, started by the run");

            using (var kill = Process.Start("kill", ["-TERM", bench.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync();

            // The services stop gracefully (a worker drains), so this takes seconds, not the 600 of the run.
            await Wait.UntilAsync(() => bench.HasExited, "the bench exits after SIGTERM", TimeSpan.FromMinutes(2));
            Assert.That(services.Where(pid => Directory.Exists($"/proc/{pid}")), Is.Empty, () => $"services still running after the bench exited\n{Text(output)}");
        }
        finally
        {
            if (!bench.HasExited)
                bench.Kill(entireProcessTree: true);
        }
    }

    private static string Text(System.Text.StringBuilder output)
    {
        lock (output)
            return output.ToString();
    }

    /// <summary>The processes whose parent is <paramref name="pid"/> (from /proc).</summary>
    private static List<int> ChildrenOf(int pid) =>
        [.. Directory.EnumerateDirectories("/proc")
            .Select(Path.GetFileName)
            .Select(name => int.TryParse(name, out var id) ? id : 0)
            .Where(id => id > 0 && ParentOf(id) == pid)];

    private static string CommandLineOf(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); }
        catch (IOException) { return ""; }
    }

    private static int ParentOf(int pid)
    {
        try
        {
            // "pid (comm) state ppid ...": the command may hold spaces and parentheses, so read after the last ')'.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return 0;
        }
    }

    private static Task<(List<JsonElement> Runs, string Output)> RunAsync(string scenario, params string[] flags) =>
        RunAsync(scenario, ownDatabase: false, flags);

    /// <param name="ownDatabase">The bench starts a private cluster of its own instead of using this run's server.</param>
    private static async Task<(List<JsonElement> Runs, string Output)> RunAsync(string scenario, bool ownDatabase, params string[] flags)
    {
        var json = Path.Combine(Path.GetTempPath(), $"socketstarter-bench-{Guid.NewGuid():N}.json");
        try
        {
            // A pause in deliveries is not a loss: with 2 competing workers, one connection's events
            // can circle the queue waiting for each other for many seconds (bench/RESULTS.md), so
            // only the run's drain limit (60 s) ends the wait, and what is left counts as missing.
            var (exitCode, output) = await StartBenchAsync([scenario, .. flags, "--tiny", "--drain-timeout", "60", "--json", json,
                "--rabbitmq", TestRun.Broker.Amqp.ToString(), "--rabbitmq-management", TestRun.Broker.Management.ToString(),
                .. ownDatabase ? Array.Empty<string>() : ["--postgres", TestRun.Database.AdminConnectionString]]);
            Assert.That(exitCode, Is.Zero, output);

            using var document = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var root = document.RootElement;
            Assert.Multiple(() =>
            {
                Assert.That(root.GetProperty("machine").GetProperty("cores").GetInt32(), Is.GreaterThan(0));
                Assert.That(root.GetProperty("scenarios").GetArrayLength(), Is.EqualTo(1));
                Assert.That(root.GetProperty("scenarios")[0].GetProperty("scenario").GetString(), Is.EqualTo(scenario));
            });
            var result = root.GetProperty("scenarios")[0];
            // Latency ratios exist where both targets carried messages.
            if (scenario is not ("swap" or "idle"))
                Assert.That(result.GetProperty("ratios").GetProperty("p50").GetDouble(), Is.GreaterThan(0), result.ToString());
            return (result.GetProperty("runs").EnumerateArray().Select(r => r.Clone()).ToList(), output);
        }
        finally
        {
            File.Delete(json);
        }
    }

    private static async Task<(int ExitCode, string Output)> StartBenchAsync(string[] arguments)
    {
        var dll = Path.Combine(RepositoryRoot.Path, "bench", "SocketStarter.Bench", "bin", Configuration, "net10.0", "SocketStarter.Bench.dll");
        var start = new ProcessStartInfo("dotnet", [dll, .. arguments])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await Wait.UntilAsync(() => process.HasExited, $"bench {string.Join(' ', arguments)} finishes", TimeSpan.FromMinutes(5));
        }
        finally
        {
            if (!process.HasExited)
                process.Kill(entireProcessTree: true);
        }
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }
}
