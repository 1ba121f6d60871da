using System.Diagnostics;
using SocketStarter.Bench.Load;
using SocketStarter.Bench.Systems;

namespace SocketStarter.Bench;

/// <summary>One scenario's settings after defaults and flags.</summary>
public sealed record ScenarioSettings(
    string Scenario,
    LoadPlan Plan,
    IReadOnlyList<int> Workers,
    IReadOnlyList<string> Targets,
    IReadOnlyList<int> Hubs,
    ServiceSettings Services,
    bool HeapByType = false,
    int Repeat = 1,
    bool Statements = false);

/// <summary>Runs a scenario against each target, one after the other, each on fresh processes and a fresh database.</summary>
public sealed class ScenarioRunner(Broker broker, Database database, string runDirectory)
{
    public async Task<ScenarioResult> RunAsync(ScenarioSettings settings, CancellationToken cancellationToken)
    {
        var runs = new List<RunResult>();
        // Rounds one after the other, so that a host that slows down for a while slows one run of
        // each configuration rather than all runs of one.
        for (var round = 1; round <= settings.Repeat; round++)
        {
            foreach (var targetName in settings.Targets)
            {
                var workerCounts = targetName == "gateway" ? settings.Workers : [0];
                var hubCounts = targetName == "gateway" ? settings.Hubs : [1];
                foreach (var workers in workerCounts)
                {
                    foreach (var hubs in hubCounts)
                    {
                        Console.WriteLine();
                        Console.WriteLine($"=== {settings.Scenario} on {targetName}{(workers > 0 ? $" with {workers} worker(s)" : "")}{(hubs > 1 ? $" and {hubs} hub instances" : "")}{(settings.Repeat > 1 ? $", round {round} of {settings.Repeat}" : "")}");
                        var run = await RunOnceAsync(settings, targetName, workers, hubs, cancellationToken) with { Round = round };
                        if (settings.Scenario == "echo" && targetName == "gateway" && run.Timing is { } timing)
                            run = run with { Timing = timing with { Hops = [.. timing.Hops, .. await BrokerFloorAsync(settings, round, cancellationToken)] } };
                        runs.Add(run);
                        Report.PrintRun(runs[^1]);
                    }
                }
            }
        }
        return new ScenarioResult(settings.Scenario, Machine.Describe(), runs, Ratios.Of(runs));
    }

    /// <summary>
    /// Echo's hop table ends with what its two broker hops cost the plain client on the same node at
    /// the same pace (<see cref="BrokerFloor"/>), measured once the services are gone.
    /// </summary>
    private async Task<IReadOnlyList<Hop>> BrokerFloorAsync(ScenarioSettings settings, int round, CancellationToken cancellationToken)
    {
        var vhost = $"bench-broker-floor-{round}";
        var amqp = await broker.CreateVirtualHostAsync(vhost);
        try
        {
            var interval = settings.Plan.Rate > 0 ? TimeSpan.FromSeconds(1 / settings.Plan.Rate) : TimeSpan.FromMilliseconds(50);
            var messages = (int)Math.Clamp(settings.Plan.Duration / interval / 2, 20, 400);
            return await BrokerFloor.MeasureAsync(amqp, messages, interval, cancellationToken);
        }
        finally
        {
            await broker.DeleteVirtualHostAsync(vhost);
        }
    }

    private async Task<RunResult> RunOnceAsync(ScenarioSettings settings, string targetName, int workers, int hubs, CancellationToken cancellationToken)
    {
        var loadBefore = Machine.LoadAverage();
        var clock = Stopwatch.StartNew();
        await using ITarget target = targetName == "gateway"
            ? await GatewayTarget.StartAsync(broker, database, workers, settings.Services, runDirectory, cancellationToken, hubs)
            : await BaselineTarget.StartAsync(database, settings.Services, runDirectory, cancellationToken);

        var stats = new Stats();
        var label = $"{settings.Scenario}/{target.Name}{(workers > 0 ? $"/{workers}w" : "")}{(hubs > 1 ? $"/{hubs}h" : "")}";
        var markers = new Dictionary<string, string>();
        if (broker.ProcessMarker is { } brokerMarker && target.WorkerCount > 0)
            markers["broker"] = brokerMarker;
        if (database.ProcessMarker is { } databaseMarker)
            markers["database"] = databaseMarker;
        var load = new LoadRun(target, settings.Plan, label, stats, new CpuSampler(() => target.Services, markers),
            settings.Statements ? new StatementProbe(database.AdminConnectionString, target.DatabaseName) : null);
        Memory? before = null, after = null;
        HeapByType? heapByType = null;
        SwapResult? swap = null;
        var stillOpen = 0;
        try
        {
            if (settings.Scenario == "idle")
            {
                before = await target.Hub.MemoryAsync();
                var dumpBefore = settings.HeapByType ? await HeapDump.CollectAsync(target.Hub, runDirectory, "before") : null;
                await load.ConnectAsync(join: false, cancellationToken);
                // Let the hub settle (registration sent upstream, buffers returned) before measuring.
                await Task.Delay(TimeSpan.FromSeconds(3), cancellationToken);
                after = await target.Hub.MemoryAsync();
                // After the RSS figure: the dump's full collection would otherwise lower it.
                if (dumpBefore is not null)
                    heapByType = HeapDump.PerConnection(dumpBefore, await HeapDump.CollectAsync(target.Hub, runDirectory, "after"),
                        settings.Plan.Connections - load.ConnectFailures, top: 30);
                // BENCH_IDLE_HOLD=seconds keeps the connections open after measuring, to look at the hub by hand.
                if (int.TryParse(Environment.GetEnvironmentVariable("BENCH_IDLE_HOLD"), out var hold) && hold > 0)
                {
                    Console.WriteLine($"Holding the connections for {hold} s: {target.Name} hub pid {target.Hub.Pid}, {target.Hub.BaseAddress}");
                    await Task.Delay(TimeSpan.FromSeconds(hold), cancellationToken);
                }
            }
            else
            {
                await load.ConnectAsync(join: true, cancellationToken);
                Func<TimeSpan, CancellationToken, Task>? during = null;
                if (settings.Scenario == "swap")
                {
                    during = async (warmup, token) =>
                    {
                        await Task.Delay(warmup + settings.Plan.Duration / 3, token);
                        var started = Stopwatch.StartNew();
                        stats.OpenWindow();
                        await target.ReplaceWorkerAsync(0, token);
                        var took = started.Elapsed;
                        // Events queued during the swap are the ones that show its cost.
                        await Task.Delay(TimeSpan.FromSeconds(1), token);
                        stats.CloseWindow();
                        swap = new SwapResult(Math.Round(took.TotalSeconds, 2), null);
                    };
                }
                await load.TalkAsync(during, cancellationToken);
                if (swap is not null)
                    swap = swap with { WindowLatency = stats.WindowLatency() };
            }
            stillOpen = load.Clients.Count(c => c.IsOpen);
        }
        finally
        {
            await load.DisconnectAsync();
        }

        var seconds = Math.Max(1e-3, load.MeasuredFor.TotalSeconds);
        return new RunResult(
            settings.Scenario,
            target.Name,
            workers,
            settings.Plan.Connections,
            settings.Plan.RoomSize,
            settings.Plan.Rate,
            settings.Services.SynchronousCommit,
            new ConnectionResult(settings.Plan.Connections - load.ConnectFailures, load.ConnectFailures, stillOpen, stats.ConnectLatency()),
            load.Offered,
            stats.Sent,
            stats.Accepted,
            stats.ExpectedDeliveries,
            stats.Delivered,
            Math.Max(0, stats.ExpectedDeliveries - stats.Delivered),
            stats.Duplicates,
            Math.Round(stats.AcceptedInMeasure / seconds, 1),
            Math.Round(stats.DeliveredInMeasure / seconds, 1),
            // Closed loop: no backlog can build, so what the target keeps up with is the measured
            // window's rate; from the first delivery on, it would count the cold start in.
            settings.Plan.ClosedLoop ? Math.Round(stats.DeliveredInMeasure / seconds, 1) : stats.SustainedDeliveriesPerSecond(),
            stats.Latency(),
            stats.Errors.OrderBy(e => e.Key).ToDictionary(e => e.Key, e => e.Value),
            before is { } b && after is { } a ? IdleResult.Of(settings.Plan.Connections - load.ConnectFailures, b, a) with { HeapByType = heapByType } : null,
            swap,
            Math.Round(clock.Elapsed.TotalSeconds, 1),
            loadBefore,
            Machine.LoadAverage(),
            Timing.Of(stats, load.Hops),
            hubs,
            load.Cpu,
            load.StolenPercent,
            PoolSize: settings.Services.PoolSize,
            Statements: load.Statements);
    }
}

public sealed record ScenarioResult(string Scenario, MachineInfo Machine, IReadOnlyList<RunResult> Runs, Ratios? Ratios);

public sealed record RunResult(
    string Scenario,
    string Target,
    int Workers,
    int Connections,
    int RoomSize,
    double TargetRate,
    string SynchronousCommit,
    ConnectionResult ConnectionsOpened,
    long Offered,
    long Sent,
    long Accepted,
    long ExpectedDeliveries,
    long Delivered,
    long Missing,
    long Duplicates,
    double AcceptedPerSecond,
    double DeliveredPerSecond,
    double SustainedDeliveriesPerSecond,
    Latency LatencyMs,
    IReadOnlyDictionary<string, long> Errors,
    IdleResult? Idle,
    SwapResult? Swap,
    double WallSeconds,
    string LoadAverageBefore,
    string LoadAverageAfter,
    Timing? Timing = null,
    int Hubs = 1,
    IReadOnlyList<Load.CpuUse>? Cpu = null,
    double? StolenPercent = null,
    int Round = 1,
    int? PoolSize = null,
    IReadOnlyList<Load.StatementStat>? Statements = null);

/// <summary>
/// The latency budget of a run: means over the measured sends from the clients (send to each
/// delivery, send to the hub's answer) and each hop's mean and median from the services' own
/// histograms. The hops overlap a little (a publish's confirm runs while the broker already
/// delivers); what the hops leave of the delivery mean is the way between clients and hub.
/// </summary>
public sealed record Timing(double DeliveryMeanMs, Latency AcceptMs, double AcceptMeanMs, IReadOnlyList<Hop> Hops)
{
    public static Timing? Of(Load.Stats stats, IReadOnlyList<Hop> hops)
    {
        var (delivery, accept) = stats.MeanMs();
        return delivery == 0 && hops.Count == 0 ? null : new Timing(delivery, stats.AcceptLatency(), accept, hops);
    }
}

public sealed record ConnectionResult(int Opened, int Failed, int OpenAtEnd, Latency ConnectMs);

/// <summary>The hub process's memory with the idle connections open, and per connection.</summary>
public sealed record IdleResult(int Connections, long RssBeforeBytes, long RssAfterBytes, long? GcHeapBeforeBytes, long? GcHeapAfterBytes, double RssBytesPerConnection, double? GcHeapBytesPerConnection)
{
    /// <summary>With <c>--heap-by-type</c>: live managed bytes per connection by type (two heap dumps).</summary>
    public HeapByType? HeapByType { get; init; }

    public static IdleResult Of(int connections, Memory before, Memory after)
    {
        var n = Math.Max(1, connections);
        return new IdleResult(connections, before.RssBytes, after.RssBytes, before.GcHeapBytes, after.GcHeapBytes,
            Math.Round((after.RssBytes - before.RssBytes) / (double)n, 0),
            before.GcHeapBytes is { } gb && after.GcHeapBytes is { } ga ? Math.Round((ga - gb) / (double)n, 0) : null);
    }
}

/// <summary>Latency of the messages sent from SIGTERM of the old worker until a second after the new one was ready.</summary>
public sealed record SwapResult(double ReplaceSeconds, Latency? WindowLatency);

/// <summary>
/// Gateway over baseline, when both ran: latency from the gateway run with the most workers,
/// throughput from the gateway run that delivered most (saturation runs several worker counts).
/// </summary>
public sealed record Ratios(double? P50, double? P99, double? AcceptedPerSecond, double? DeliveredPerSecond, double? RssPerConnection)
{
    /// <summary>From each configuration's median over its rounds (with one round, its run).</summary>
    public static Ratios? Of(IReadOnlyList<RunResult> runs)
    {
        var configurations = Median.ByConfiguration(runs);
        var gateway = configurations.Where(r => r.Target == "gateway").OrderByDescending(r => r.Workers).FirstOrDefault();
        var best = configurations.Where(r => r.Target == "gateway").OrderByDescending(r => r.DeliveredPerSecond).FirstOrDefault();
        var baseline = configurations.FirstOrDefault(r => r.Target == "baseline");
        if (gateway is null || best is null || baseline is null)
            return null;
        return new Ratios(
            Divide(gateway.P50, baseline.P50),
            Divide(gateway.P99, baseline.P99),
            Divide(best.AcceptedPerSecond, baseline.AcceptedPerSecond),
            Divide(best.DeliveredPerSecond, baseline.DeliveredPerSecond),
            Divide(gateway.RssPerConnection, baseline.RssPerConnection));
    }

    private static double? Divide(double? a, double? b) => a is { } x && b is { } y && y > 0 ? Math.Round(x / y, 2) : null;
}

/// <summary>One configuration (target, workers, hubs) of a scenario: the medians of its rounds, and the spread of its delivered/s.</summary>
public sealed record Median(
    string Scenario, string Target, int Workers, int Hubs, int Rounds,
    double AcceptedPerSecond, double DeliveredPerSecond, double DeliveredMin, double DeliveredMax,
    double P50, double P99, double? RssPerConnection, double? StolenMin, double? StolenMax)
{
    public static IReadOnlyList<Median> ByConfiguration(IEnumerable<RunResult> runs) =>
        [.. runs.GroupBy(r => (r.Scenario, r.Target, r.Workers, r.Hubs)).Select(g =>
        {
            var rs = g.ToList();
            var stolen = rs.Where(r => r.StolenPercent is not null).Select(r => r.StolenPercent!.Value).ToList();
            var rss = rs.Where(r => r.Idle is not null).Select(r => r.Idle!.RssBytesPerConnection).ToList();
            return new Median(g.Key.Scenario, g.Key.Target, g.Key.Workers, g.Key.Hubs, rs.Count,
                Of(rs.Select(r => r.AcceptedPerSecond)), Of(rs.Select(r => r.DeliveredPerSecond)),
                rs.Min(r => r.DeliveredPerSecond), rs.Max(r => r.DeliveredPerSecond),
                Of(rs.Select(r => r.LatencyMs.P50)), Of(rs.Select(r => r.LatencyMs.P99)),
                rss.Count > 0 ? Of(rss) : null,
                stolen.Count > 0 ? stolen.Min() : null, stolen.Count > 0 ? stolen.Max() : null);
        })];

    /// <summary>The middle value; of an even count, the mean of the two in the middle.</summary>
    public static double Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
