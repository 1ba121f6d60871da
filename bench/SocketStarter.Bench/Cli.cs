using System.CommandLine;
using System.Globalization;
using SocketStarter.Bench.Load;
using SocketStarter.Bench.Systems;

namespace SocketStarter.Bench;

/// <summary>The command line: one command per scenario, and <c>all</c>.</summary>
public static class Cli
{
    /// <summary>Each scenario's defaults: sized to run on 2 cores in under a minute per target.</summary>
    private static readonly Dictionary<string, (string Description, ScenarioDefaults Normal, ScenarioDefaults Tiny)> Scenarios = new()
    {
        ["echo"] = ("One client alone in a room, one worker: the latency of a round trip at a light, steady rate.",
            new(1, 1, 20, 1, 10, 3, [1]), new(1, 1, 20, 1, 1, 0, [1])),
        ["rooms"] = ("1,000 connections in rooms of 10, talking at 1,000 msgs/s in total.",
            new(1000, 10, 1000, 1, 15, 5, [2]), new(20, 5, 50, 1, 1, 0, [1])),
        ["broadcast"] = ("One room of 1,000: every message reaches every member.",
            new(1000, 1000, 10, 1, 10, 5, [2]), new(20, 20, 5, 1, 1, 0, [1])),
        ["saturation"] = ("As many accepted msgs/s as the target takes, with 1, 2 and 4 workers (each connection alone in its room).",
            new(64, 1, 0, 4, 10, 5, [1, 2, 4]), new(4, 1, 0, 2, 1, 0, [1, 2])),
        // A warm-up of 40 s: in a fresh process the tiered JIT's background thread took about 80% of
        // the hub's CPU over the first 15 s of load (bench/RESULTS.md, 2026-12-04), and every added
        // hub instance compiles the same code again, so a short warm-up measures H x the JIT.
        // 50 msgs/s: at 200 one hub, 2 workers, the broker and the database already fill 2 cores,
        // and each added hub only takes CPU from the workers (bench/RESULTS.md, 2026-12-04).
        ["hubs"] = ("The rooms load at a light rate (50 msgs/s, 500 deliveries/s) over 1, 2 and 4 hub instances: hub CPU per delivered message as hubs are added.",
            new(1000, 10, 50, 1, 15, 40, [2], [1, 2, 4]), new(20, 5, 20, 1, 1, 0, [1], [1, 2])),
        ["idle"] = ("Connections that only stay open: how many one hub holds and its memory per connection.",
            new(2000, 1, 0, 1, 0, 0, [1]), new(20, 1, 0, 1, 0, 0, [1])),
        ["swap"] = ("Rooms under load while a worker is replaced (SIGTERM, start a new one): latency during the swap.",
            new(200, 10, 200, 1, 20, 3, [2]), new(10, 5, 20, 1, 3, 0, [2])),
    };

    private sealed record ScenarioDefaults(int Connections, int RoomSize, double Rate, int Window, double Duration, double Warmup, int[] Workers, int[]? Hubs = null);

    private static readonly Option<int?> ConnectionsOption = new("--connections", "-c") { Description = "Connections to open." };
    private static readonly Option<int?> RoomSizeOption = new("--room-size", "-k") { Description = "Members per room." };
    private static readonly Option<double?> RateOption = new("--rate", "-r") { Description = "Total say messages per second; 0 = as fast as the target accepts." };
    private static readonly Option<int?> WindowOption = new("--window") { Description = "Sends each connection keeps in flight at rate 0." };
    private static readonly Option<double?> DurationOption = new("--duration", "-d") { Description = "Seconds measured (after the warm-up)." };
    private static readonly Option<bool> ClosedLoopOption = new("--closed-loop") { Description = "At --rate 0: each of a connection's --window sends waits for its message to come back (the rate is what the target applies, and no backlog builds), not only for the hub's answer." };
    private static readonly Option<double?> WarmupOption = new("--warmup") { Description = "Seconds of load before measuring." };
    private static readonly Option<double> DrainOption = new("--drain-timeout") { Description = "Seconds without a new delivery before undelivered messages count as missing.", DefaultValueFactory = _ => 15 };
    private static readonly Option<int?> RepeatOption = new("--repeat") { Description = "Runs the whole sequence (every target and count) this many times, one round after the other, and adds a table of medians: on a shared host one run of each is not a measurement." };
    private static readonly Option<double> DrainLimitOption = new("--drain-limit") { Description = "Seconds the run waits at most for the backlog after the load stops; what is left counts as missing.", DefaultValueFactory = _ => 60 };
    private static readonly Option<string?> WorkersOption = new("--workers", "-w") { Description = "Gateway workers, or a list for saturation (1,2,4)." };
    private static readonly Option<string?> HubsOption = new("--hubs", "-H") { Description = "Gateway hub instances, or a list (1,2,4); clients are spread over them as --placement says." };
    private static readonly Option<string> PlacementOption = new("--placement") { Description = "With several hub instances: turn (connection i on instance i mod H, as a round-robin load balancer does) or room (a room's members on one instance).", DefaultValueFactory = _ => "turn" };
    private static readonly Option<string> TargetOption = new("--target", "-t") { Description = "gateway, baseline or both.", DefaultValueFactory = _ => "both" };
    private static readonly Option<string> SyncOption = new("--sync") { Description = "PostgreSQL's synchronous_commit for both targets' databases: on (a commit waits for its WAL flush) or off.", DefaultValueFactory = _ => "on" };
    private static readonly Option<int?> PrefetchOption = new("--prefetch") { Description = "Worker:PrefetchCount (default: the worker's own)." };
    private static readonly Option<int?> ConcurrencyOption = new("--concurrency") { Description = "Worker:ConcurrentMessageLimit (default: the worker's own)." };
    private static readonly Option<int?> PoolSizeOption = new("--pool-size") { Description = "Most database connections per worker process and for the baseline (Maximum Pool Size; default: the services' own, 20)." };
    private static readonly Option<bool> HeapByTypeOption = new("--heap-by-type") { Description = "idle: also dump the hub's heap before and after (dotnet-gcdump) and list the live bytes per connection by type." };
    private static readonly Option<bool> StatementsOption = new("--statements") { Description = "Also print the database's busiest statements over the measured window (pg_stat_statements: calls, mean and max time, waits included), to show where a message waits in the database. The private cluster is started with the extension loaded; a --postgres server must have it in shared_preload_libraries." };
    private static readonly Option<bool> TinyOption = new("--tiny") { Description = "Smallest sizes, to check the tool works (the smoke test)." };
    private static readonly Option<string?> RabbitOption = new("--rabbitmq") { Description = "Use this broker (amqp://user:pass@host:port/) instead of starting a private node." };
    private static readonly Option<string?> ManagementOption = new("--rabbitmq-management") { Description = "Its management API (http://user:pass@host:port/); default port 15672." };
    private static readonly Option<string?> PostgresOption = new("--postgres") { Description = "Use this PostgreSQL server (postgresql://user:pass@host:port/db, or an Npgsql connection string; a user that may create databases) instead of starting a private cluster." };
    private static readonly Option<string?> JsonOption = new("--json") { Description = "Where to write the JSON results (default .local/bench/<run>/results.json)." };
    private static readonly Option<string?> MarkdownOption = new("--markdown") { Description = "Also write the tables into this Markdown file, between its bench markers (bench/RESULTS.md)." };

    public static RootCommand Build()
    {
        var root = new RootCommand("SocketStarter benchmarks: the gateway (hub + broker + workers) side by side with a monolith SignalR hub doing the same chat work.");
        foreach (var (name, (description, _, _)) in Scenarios)
        {
            var command = new Command(name, description)
            {
                ConnectionsOption, RoomSizeOption, RateOption, WindowOption, ClosedLoopOption, RepeatOption, DurationOption, WarmupOption, DrainOption, DrainLimitOption, WorkersOption,
                HubsOption, PlacementOption, TargetOption, SyncOption, PrefetchOption, ConcurrencyOption, PoolSizeOption, TinyOption, RabbitOption, ManagementOption, PostgresOption, JsonOption, MarkdownOption,
                HeapByTypeOption, StatementsOption,
            };
            command.SetAction((parse, token) => RunAsync([name], parse, token));
            root.Subcommands.Add(command);
        }

        var all = new Command("all", "Every scenario, one after the other, on one broker.")
        {
            WarmupOption, ClosedLoopOption, DrainOption, DrainLimitOption, TargetOption, SyncOption, PrefetchOption, ConcurrencyOption, PoolSizeOption, TinyOption, RabbitOption, ManagementOption, PostgresOption, JsonOption, MarkdownOption,
            StatementsOption,
        };
        all.SetAction((parse, token) => RunAsync([.. Scenarios.Keys], parse, token));
        root.Subcommands.Add(all);
        return root;
    }

    private static async Task<int> RunAsync(string[] scenarios, ParseResult parse, CancellationToken cancellationToken)
    {
        List<ScenarioSettings> settings;
        Uri? rabbit, management;
        string? postgres;
        try
        {
            settings = scenarios.Select(s => Settings(s, parse)).ToList();
            rabbit = ParseUri(parse.GetValue(RabbitOption), "--rabbitmq", "amqp");
            management = ParseUri(parse.GetValue(ManagementOption), "--rabbitmq-management", "http");
            postgres = ParsePostgres(parse.GetValue(PostgresOption));
        }
        catch (BenchException ex)
        {
            await Console.Error.WriteLineAsync("error: " + ex.Message);
            return 2;
        }

        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var runDirectory = Directory.CreateDirectory(Path.Combine(Repository.Root, ".local", "bench", $"{stamp}-{string.Join('-', scenarios.Length > 1 ? ["all"] : scenarios)}")).FullName;
        var results = new List<ScenarioResult>();
        try
        {
            Console.WriteLine(Repository.Describe());
            await using var broker = await Broker.StartAsync(rabbit, management, runDirectory);
            await using var database = await Database.StartAsync(postgres, runDirectory, statements: settings.Any(s => s.Statements));
            var runner = new ScenarioRunner(broker, database, runDirectory);
            foreach (var s in settings)
                results.Add(await runner.RunAsync(s, cancellationToken));
        }
        catch (BenchException ex)
        {
            await Console.Error.WriteLineAsync("error: " + ex.Message);
            return 1;
        }
        catch (Npgsql.NpgsqlException ex)
        {
            await Console.Error.WriteLineAsync("error: PostgreSQL: " + ex.Message);
            return 1;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("Interrupted; the services, the broker node and the database cluster it started are stopped.");
            return 130;
        }

        Report.PrintTable(results);
        var command = "bench/run " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
        await Report.WriteJsonAsync(parse.GetValue(JsonOption) ?? Path.Combine(runDirectory, "results.json"),
            new { command, machine = Machine.Describe(), binaries = Repository.Describe(), scenarios = results });
        if (parse.GetValue(MarkdownOption) is { } markdown)
            await Report.WriteMarkdownAsync(markdown, results, command);
        Console.WriteLine($"Logs of the services: {Path.Combine(runDirectory, "logs")}");
        return 0;
    }

    private static ScenarioSettings Settings(string scenario, ParseResult parse)
    {
        var (_, normal, tiny) = Scenarios[scenario];
        var d = parse.GetValue(TinyOption) ? tiny : normal;
        var single = parse.CommandResult.Command.Name != "all";
        T Pick<T>(Option<T?> option, T fallback) where T : struct => single && parse.GetValue(option) is { } v ? v : fallback;

        var connections = Pick(ConnectionsOption, d.Connections);
        var roomSize = Pick(RoomSizeOption, d.RoomSize);
        var rate = Pick(RateOption, d.Rate);
        var window = Pick(WindowOption, d.Window);
        var duration = Pick(DurationOption, d.Duration);
        // With all, --warmup is for every scenario that has load (idle has none) and --closed-loop for saturation.
        var warmup = single ? Pick(WarmupOption, d.Warmup)
            : parse.GetValue(WarmupOption) is { } allWarmup && scenario != "idle" ? allWarmup : d.Warmup;
        var drain = parse.GetValue(DrainOption);
        var drainLimit = parse.GetValue(DrainLimitOption);
        var workers = single && parse.GetValue(WorkersOption) is { } w ? ParseCounts(w, "--workers") : d.Workers;
        var hubs = single && parse.GetValue(HubsOption) is { } h ? ParseCounts(h, "--hubs") : d.Hubs ?? [1];

        if (connections < 1) throw new BenchException("--connections must be at least 1.");
        if (roomSize < 1 || roomSize > connections) throw new BenchException($"--room-size must be between 1 and --connections ({connections}).");
        if (rate < 0) throw new BenchException("--rate must be 0 (as fast as accepted) or more.");
        if (window < 1) throw new BenchException("--window must be at least 1.");
        var closedLoop = parse.GetValue(ClosedLoopOption) && (single || scenario == "saturation");
        if (closedLoop && rate != 0) throw new BenchException("--closed-loop is for --rate 0 (as fast as the target applies); at a fixed rate the sends do not wait.");
        if (duration < 0 || warmup < 0 || drain <= 0 || drainLimit <= 0) throw new BenchException("--duration and --warmup must be 0 or more, --drain-timeout and --drain-limit more than 0.");
        if (scenario != "idle" && duration <= 0) throw new BenchException("--duration must be more than 0.");
        if (scenario == "idle" && hubs is not [1]) throw new BenchException("idle measures one hub's memory: --hubs 1.");
        var repeat = single && parse.GetValue(RepeatOption) is { } times ? times : 1;
        if (repeat is < 1 or > 20) throw new BenchException("--repeat must be between 1 and 20.");
        if (scenario == "swap" && workers[0] < 2) throw new BenchException("swap needs --workers 2 or more: one keeps working while the other is replaced.");

        var targets = parse.GetValue(TargetOption) switch
        {
            "both" => scenario == "swap" ? new[] { "gateway" } : ["gateway", "baseline"],
            "gateway" => ["gateway"],
            "baseline" when scenario == "swap" => throw new BenchException("swap replaces a gateway worker; the baseline has none (--target gateway)."),
            "baseline" => ["baseline"],
            var other => throw new BenchException($"--target must be gateway, baseline or both, not '{other}'."),
        };
        // all has no --placement: each scenario's clients in turn, as a round-robin load balancer places them.
        var placement = (single ? parse.GetValue(PlacementOption) : "turn")?.ToLowerInvariant() switch
        {
            "turn" => Placement.Turn,
            "room" => Placement.Room,
            _ => throw new BenchException($"--placement must be turn or room, not '{parse.GetValue(PlacementOption)}'."),
        };
        var sync = parse.GetValue(SyncOption)?.ToLowerInvariant();
        if (sync is not ("on" or "off"))
            throw new BenchException($"--sync must be on or off (PostgreSQL's synchronous_commit), not '{parse.GetValue(SyncOption)}'.");
        if (single && parse.GetValue(HeapByTypeOption) && scenario != "idle")
            throw new BenchException("--heap-by-type is for the idle scenario.");
        if (single && scenario == "idle" && parse.GetValue(HeapByTypeOption) && Systems.HeapDump.FindTool() is null)
            throw new BenchException("--heap-by-type needs dotnet-gcdump: dotnet tool install -g dotnet-gcdump");
        if (single && scenario == "idle" && parse.GetValue(StatementsOption))
            throw new BenchException("--statements is for scenarios that send messages; idle sends none.");
        if (parse.GetValue(PrefetchOption) is < 1 || parse.GetValue(ConcurrencyOption) is < 1)
            throw new BenchException("--prefetch and --concurrency must be at least 1.");
        if (parse.GetValue(PoolSizeOption) is < 1 or > 1000)
            throw new BenchException("--pool-size must be between 1 and 1000 (database connections per process).");

        return new ScenarioSettings(
            scenario,
            new LoadPlan(connections, roomSize, rate, window, TimeSpan.FromSeconds(duration), TimeSpan.FromSeconds(warmup), TimeSpan.FromSeconds(drain), TimeSpan.FromSeconds(drainLimit), placement, closedLoop),
            workers,
            targets,
            hubs,
            new ServiceSettings(sync, parse.GetValue(PrefetchOption), parse.GetValue(ConcurrencyOption), parse.GetValue(PoolSizeOption)),
            HeapByType: single && scenario == "idle" && parse.GetValue(HeapByTypeOption),
            Repeat: repeat,
            Statements: parse.GetValue(StatementsOption) && scenario != "idle");
    }

    private static Uri? ParseUri(string? text, string option, string scheme)
    {
        if (text is null)
            return null;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || !uri.Scheme.StartsWith(scheme, StringComparison.Ordinal))
            throw new BenchException($"{option} must be an absolute {scheme} URI such as {scheme}://guest:guest@127.0.0.1:{(scheme == "amqp" ? 5672 : 15672)}/, not '{text}'.");
        return uri;
    }

    private static string? ParsePostgres(string? text)
    {
        if (text is null)
            return null;
        try
        {
            return Database.ToConnectionString(text);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or UriFormatException or KeyNotFoundException)
        {
            throw new BenchException($"--postgres must be a URI such as postgresql://postgres:password@127.0.0.1:5432/postgres or an Npgsql connection string ({ex.Message}).");
        }
    }

    private static int[] ParseCounts(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var counts = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out counts[i]) || counts[i] < 1 || counts[i] > 32)
                throw new BenchException($"{option} must be a number 1-32 or a list such as 1,2,4; '{text}' is not.");
        }
        return counts.Length > 0 ? counts : throw new BenchException($"{option} must name at least one count.");
    }
}
