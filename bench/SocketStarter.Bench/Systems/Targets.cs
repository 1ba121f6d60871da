using System.Reflection;

namespace SocketStarter.Bench.Systems;

/// <summary>What a scenario runs against: a hub URL, the process holding the sockets, and for the gateway its workers.</summary>
public interface ITarget : IAsyncDisposable
{
    string Name { get; }
    Uri HubUrl { get; }
    Service Hub { get; }

    /// <summary>Every hub instance's URL: the gateway may run several behind no balancer; clients are spread over them.</summary>
    IReadOnlyList<Uri> HubUrls { get; }
    int WorkerCount { get; }

    /// <summary>The target's own database on the run's server.</summary>
    string DatabaseName { get; }

    /// <summary>Every process of the target, for their <c>/metrics</c> (the hop table).</summary>
    IEnumerable<Service> Services { get; }

    /// <summary>A deploy of one worker: SIGTERM, wait until it exits, start a new one, wait until it is ready.</summary>
    Task ReplaceWorkerAsync(int index, CancellationToken cancellationToken);
}

/// <summary>
/// How the services are set up for a run. <c>SynchronousCommit</c>: PostgreSQL's synchronous_commit,
/// on or off. <c>PoolSize</c>: the most database connections each worker process (and the baseline)
/// opens, <c>Maximum Pool Size</c> in its connection string; null keeps the services' default.
/// </summary>
public sealed record ServiceSettings(string SynchronousCommit, int? PrefetchCount, int? ConcurrentMessageLimit, int? PoolSize = null)
{
    /// <summary>A run database's connection string with this run's pool size, if one is set.</summary>
    public string WithPoolSize(string connectionString) => PoolSize is { } size
        ? new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { MaxPoolSize = size }.ConnectionString
        : connectionString;
}

/// <summary>Hub.Front and W Chat.Worker processes on a broker virtual host and a database of their own.</summary>
public sealed class GatewayTarget : ITarget
{
    private readonly Broker _broker;
    private readonly Database _database;
    private readonly string _vhost;
    private readonly Dictionary<string, string> _workerSettings;
    private readonly string _logs;
    private readonly List<Service> _workers = [];
    private int _generation;

    private GatewayTarget(Broker broker, Database database, string vhost, Dictionary<string, string> workerSettings, string logs)
    {
        _broker = broker;
        _database = database;
        _vhost = vhost;
        _workerSettings = workerSettings;
        _logs = logs;
    }

    private readonly List<Service> _hubs = [];

    public string Name => "gateway";
    public Uri HubUrl => HubUrls[0];
    public Service Hub => _hubs[0];
    public IReadOnlyList<Uri> HubUrls => [.. _hubs.Select(h => new Uri(h.BaseAddress, "hub"))];
    public int WorkerCount => _workers.Count;
    public string DatabaseName => _vhost;
    public IEnumerable<Service> Services => [.. _hubs, .. _workers];

    public static async Task<GatewayTarget> StartAsync(Broker broker, Database database, int workers, ServiceSettings settings, string runDirectory, CancellationToken cancellationToken, int hubs = 1)
    {
        // One name for the run's virtual host, database and log folder.
        var vhost = $"bench-{Guid.NewGuid():N}";
        var amqp = await broker.CreateVirtualHostAsync(vhost);
        var logs = Directory.CreateDirectory(Path.Combine(runDirectory, "logs", vhost)).FullName;
        var workerSettings = new Dictionary<string, string>
        {
            ["ConnectionStrings:rabbitmq"] = amqp.ToString(),
        };
        if (settings.PrefetchCount is { } prefetch)
            workerSettings["Worker:PrefetchCount"] = prefetch.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (settings.ConcurrentMessageLimit is { } limit)
            workerSettings["Worker:ConcurrentMessageLimit"] = limit.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var target = new GatewayTarget(broker, database, vhost, workerSettings, logs);
        try
        {
            workerSettings["ConnectionStrings:postgres"] = settings.WithPoolSize(await database.CreateDatabaseAsync(vhost, settings.SynchronousCommit));
            var hubSettings = new Dictionary<string, string>
            {
                ["ConnectionStrings:rabbitmq"] = amqp.ToString(),
                // Every simulated user connects from this one address; the per-address limit is
                // for abuse, not load. So is the per-connection event rate (50/s, bursts of 250):
                // at --rate 0 a connection sends as fast as it is answered, and on a fast machine a
                // few connections pass it, so the run would measure the limiter's refusals. The
                // limiter still runs (its check is in every figure); it only never refuses.
                ["Limits:MaxConnectionsPerAddress"] = "1000000",
                ["Limits:EventsPerSecond"] = "100000",
                ["Limits:EventBurst"] = "1000000",
            };
            // Every worker and hub starts at once (each takes seconds): the hub declares the
            // upstream exchange itself, so either may come first, and no load starts before all
            // are ready. Every service that did start is kept, so that one failing to start leaves
            // the others to be stopped.
            var startedWorkers = new Service?[workers];
            var startedHubs = new Service?[hubs];
            try
            {
                await Task.WhenAll([
                    .. Enumerable.Range(1, workers).Select(async n => startedWorkers[n - 1] = await target.StartWorkerAsync(n, cancellationToken)),
                    .. Enumerable.Range(1, hubs).Select(async n => startedHubs[n - 1] = await Service.StartAsync(
                        n == 1 ? "hub" : $"hub-{n}", Repository.Binary("Hub.Front"), hubSettings, logs, cancellationToken)),
                ]);
            }
            finally
            {
                // In order: --placement counts the hubs from the first.
                target._workers.AddRange(startedWorkers.OfType<Service>());
                target._hubs.AddRange(startedHubs.OfType<Service>());
            }
            return target;
        }
        catch
        {
            await target.DisposeAsync();
            throw;
        }

    }

    private Task<Service> StartWorkerAsync(int n, CancellationToken cancellationToken) =>
        Service.StartAsync($"worker-{n}.{Interlocked.Increment(ref _generation)}", Repository.Binary("Chat.Worker"), _workerSettings, _logs, cancellationToken);

    public async Task ReplaceWorkerAsync(int index, CancellationToken cancellationToken)
    {
        // The stopped worker stays listed (as exited) until its successor is ready, so the list
        // never holds a process the target no longer owns; one that fails to start stops itself.
        await _workers[index].TerminateAsync(TimeSpan.FromSeconds(40));
        var successor = await StartWorkerAsync(index + 1, cancellationToken);
        var stopped = _workers[index];
        _workers[index] = successor;
        await stopped.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        // The hubs first: their clients' disconnects are the last events the workers apply. Every
        // service is stopped even when one fails to, and the first failure is reported after.
        var failures = new List<Exception>();
        foreach (var service in (IEnumerable<Service>)[.. _hubs, .. _workers])
        {
            try { await service.DisposeAsync(); }
            catch (Exception ex) { failures.Add(ex); }
        }
        await _broker.DeleteVirtualHostAsync(_vhost);
        await _database.DropDatabaseAsync(_vhost);
        if (failures.Count > 0)
            throw new AggregateException("Stopping the gateway's services failed", failures);
    }
}

/// <summary>The monolith: the same chat, store and outbox inside a plain SignalR hub, on a database of its own; no broker.</summary>
public sealed class BaselineTarget : ITarget
{
    private readonly Database _database;
    private readonly string _databaseName;

    private BaselineTarget(Database database, string databaseName)
    {
        _database = database;
        _databaseName = databaseName;
    }

    public string Name => "baseline";
    public Uri HubUrl => new(Hub.BaseAddress, "hub");
    public IReadOnlyList<Uri> HubUrls => [HubUrl];
    public Service Hub { get; private set; } = null!;
    public int WorkerCount => 0;
    public string DatabaseName => _databaseName;
    public IEnumerable<Service> Services => [Hub];

    public static async Task<BaselineTarget> StartAsync(Database database, ServiceSettings settings, string runDirectory, CancellationToken cancellationToken)
    {
        var name = $"baseline-{Guid.NewGuid():N}";
        var logs = Directory.CreateDirectory(Path.Combine(runDirectory, "logs", name)).FullName;
        var target = new BaselineTarget(database, name);
        try
        {
            var connectionString = settings.WithPoolSize(await database.CreateDatabaseAsync(name, settings.SynchronousCommit));
            target.Hub = await Service.StartAsync("baseline", Repository.Binary("SocketStarter.Baseline"), new Dictionary<string, string>
            {
                ["ConnectionStrings:postgres"] = connectionString,
            }, logs, cancellationToken);
            return target;
        }
        catch
        {
            await target.DisposeAsync();
            throw;
        }
    }

    public Task ReplaceWorkerAsync(int index, CancellationToken cancellationToken) =>
        throw new NotSupportedException("The monolith has no workers: replacing its logic means restarting the process that holds every socket.");

    public async ValueTask DisposeAsync()
    {
        if (Hub is not null)
            await Hub.DisposeAsync();
        await _database.DropDatabaseAsync(_databaseName);
    }
}

/// <summary>The checkout and the Release builds the tool starts.</summary>
public static class Repository
{
    public static string Root { get; } = Find();

    private static readonly string Configuration =
        typeof(Repository).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    /// <summary>
    /// Where <c>bench/run</c> published the services ReadyToRun (<c>BENCH_BINARIES</c>, one folder
    /// per project), as their container images run; null: the Release builds in the checkout.
    /// </summary>
    public static string? Published { get; } = Environment.GetEnvironmentVariable("BENCH_BINARIES") is { Length: > 0 } folder ? folder : null;

    /// <summary>What the services run from, for the run's header.</summary>
    public static string Describe() => Published is { } folder
        ? $"Services published ReadyToRun, from {folder}"
        : $"Services from their {Configuration} builds (JIT only)";

    public static string Binary(string project)
    {
        if (Published is { } published)
            return Path.Combine(published, project, project + ".dll");
        var folder = project.StartsWith("SocketStarter.", StringComparison.Ordinal) ? Path.Combine("bench", project) : project;
        return Path.Combine(Root, folder, "bin", Configuration, "net10.0", project + ".dll");
    }

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SocketStarter.sln")))
                return dir.FullName;
        }
        throw new BenchException($"SocketStarter.sln not found above {AppContext.BaseDirectory}: run the tool from its build in the checkout.");
    }
}

/// <summary>A failure of the bench itself, reported as one clear line.</summary>
public sealed class BenchException(string message) : Exception(message);
