using System.Diagnostics;
using System.Globalization;
using SocketStarter.Bench.Systems;

namespace SocketStarter.Bench.Load;

/// <summary>The shape of the load: who connects, how rooms are cut, how fast they talk.</summary>
/// <param name="Rate">Total say messages per second; 0 means as fast as the target accepts them.</param>
/// <param name="Window">Sends each connection keeps in flight when <paramref name="Rate"/> is 0.</param>
/// <param name="Placement">How clients are spread over several hub instances.</param>
/// <param name="ClosedLoop">At rate 0: each send waits for its message to come back to the sender, not only for the hub's answer.</param>
public sealed record LoadPlan(int Connections, int RoomSize, double Rate, int Window, TimeSpan Duration, TimeSpan Warmup, TimeSpan DrainTimeout, TimeSpan DrainLimit,
    Placement Placement = Placement.Turn, bool ClosedLoop = false);

/// <summary>Which hub instance a client connects to when the target has several.</summary>
public enum Placement
{
    /// <summary>Connection i to instance i mod H, as a round-robin load balancer does: a room's members sit on every instance.</summary>
    Turn,

    /// <summary>A room's members all on one instance (room r on instance r mod H), as routing clients by room would.</summary>
    Room,
}

/// <summary>Connects the clients, signs them in, puts them in rooms, talks, then waits for every delivery.</summary>
public sealed class LoadRun(ITarget target, LoadPlan plan, string label, Stats stats, CpuSampler? cpu = null, StatementProbe? statementProbe = null)
{
    /// <summary>Sends one connection may have in flight at a fixed rate before more count as not sent.</summary>
    private const int MaxInFlightPerSender = 64;

    private readonly List<BenchClient> _clients = [];
    private readonly List<Task> _sends = [];
    private long _offered;

    public IReadOnlyList<BenchClient> Clients => _clients;
    public long Offered => Interlocked.Read(ref _offered);
    public TimeSpan MeasuredFor { get; private set; }

    /// <summary>Where the measured window's time went, by the services' own histograms (empty for idle).</summary>
    public IReadOnlyList<Hop> Hops { get; private set; } = [];

    /// <summary>The database's statements over the measured window (<c>--statements</c>); null when not asked for.</summary>
    public IReadOnlyList<StatementStat>? Statements { get; private set; }
    public int ConnectFailures { get; private set; }

    /// <summary>CPU of each group of processes in the measured window (empty for idle, or off Linux).</summary>
    public IReadOnlyList<CpuUse> Cpu { get; private set; } = [];

    /// <summary>Of the machine's CPU time in the measured window, the share its host gave to others (steal); null where /proc/stat is missing.</summary>
    public double? StolenPercent { get; private set; }

    /// <summary>Opens the connections, <paramref name="join"/>ing each into its room when asked.</summary>
    public async Task ConnectAsync(bool join, CancellationToken cancellationToken)
    {
        using var progress = Progress.Start(() => $"{label}: connecting {_clients.Count}/{plan.Connections}");
        using var gate = new SemaphoreSlim(32);
        var clients = new BenchClient?[plan.Connections];
        var failures = 0;
        await Task.WhenAll(Enumerable.Range(0, plan.Connections).Select(async i =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                var instance = plan.Placement == Placement.Room ? i / plan.RoomSize : i;
                var client = await BenchClient.ConnectAsync(target.HubUrls[instance % target.HubUrls.Count], stats, cancellationToken);
                clients[i] = client;
                lock (_clients)
                    _clients.Add(client);
                if (join)
                {
                    var roomStart = i / plan.RoomSize * plan.RoomSize;
                    var roomSize = Math.Min(plan.RoomSize, plan.Connections - roomStart);
                    await client.SignInAndJoinAsync($"u{i}", $"r{i / plan.RoomSize}", roomSize, cancellationToken);
                }
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                // Counted by kind, never fatal: a target that refuses connections is a result. (When
                // every transport fails, SignalR wraps the reason in an AggregateException.)
                Interlocked.Increment(ref failures);
                var reason = ex is AggregateException { InnerExceptions: [var first, ..] } ? first : ex;
                stats.Error("connect:" + (reason.InnerException ?? reason).GetType().Name);
            }
            finally
            {
                gate.Release();
            }
        }));
        ConnectFailures = failures;
        _clients.Clear();
        _clients.AddRange(clients.Where(c => c is not null && (!join || c.Room is not null))!);
    }

    /// <summary>Talks for warm-up plus duration; <paramref name="during"/> runs alongside (the worker swap).</summary>
    public async Task TalkAsync(Func<TimeSpan, CancellationToken, Task>? during, CancellationToken cancellationToken)
    {
        if (_clients.Count == 0)
            throw new BenchException($"{label}: no client could connect and join; see the errors above.");

        var clock = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var progress = Progress.Start(LiveLine);
        var sideTask = during is null ? Task.CompletedTask : during(plan.Warmup, stop.Token);

        var measure = Task.Run(async () =>
        {
            await Task.Delay(plan.Warmup, stop.Token);
            var hops = new HopProbe([.. target.Services.Select(s => s.BaseAddress)]);
            await hops.StartAsync();
            if (statementProbe is not null)
                await statementProbe.StartAsync();
            var cpuBefore = cpu?.Take();
            var machineBefore = Machine.CpuTimes();
            stats.StartMeasuring();
            var measuredFrom = clock.Elapsed;
            await Task.Delay(plan.Duration, stop.Token);
            stats.StopMeasuring();
            MeasuredFor = clock.Elapsed - measuredFrom;
            if (cpu is not null && cpuBefore is not null)
                Cpu = CpuSampler.Between(cpuBefore, cpu.Take(), stats.AcceptedInMeasure, stats.DeliveredInMeasure);
            StolenPercent = Machine.StolenPercent(machineBefore, Machine.CpuTimes());
            Hops = await hops.StopAsync();
            if (statementProbe is not null)
                Statements = await statementProbe.StopAsync();
        }, stop.Token);

        try
        {
            if (plan.Rate > 0)
                await PacedAsync(clock, measure, stop.Token);
            else
                await FlatOutAsync(measure, stop.Token);
            await measure;
            await AwaitSendsAsync();
        }
        catch
        {
            // The side task (a worker being replaced) must be over before the target is stopped,
            // or what it starts outlives the run.
            await stop.CancelAsync();
            try { await sideTask; }
            catch (Exception) { }
            throw;
        }
        await sideTask;
        await DrainAsync(cancellationToken);
    }

    private async Task PacedAsync(Stopwatch clock, Task measure, CancellationToken cancellationToken)
    {
        var inFlight = new int[_clients.Count];
        var next = 0;
        while (!measure.IsCompleted)
        {
            var due = (long)(plan.Rate * clock.Elapsed.TotalSeconds) - Offered;
            for (var j = 0; j < due; j++)
            {
                Interlocked.Increment(ref _offered);
                var index = next++ % _clients.Count;
                if (Volatile.Read(ref inFlight[index]) >= MaxInFlightPerSender)
                {
                    stats.Error("not_sent:sender_backlog");
                    continue;
                }
                Interlocked.Increment(ref inFlight[index]);
                var send = SendOneAsync(_clients[index], () => Interlocked.Decrement(ref inFlight[index]), cancellationToken);
                lock (_sends)
                    _sends.Add(send);
            }
            await Task.Delay(2, cancellationToken);
        }
    }

    private static async Task SendOneAsync(BenchClient client, Action done, CancellationToken cancellationToken)
    {
        try
        {
            await client.SayAsync(cancellationToken);
        }
        finally
        {
            done();
        }
    }

    private async Task FlatOutAsync(Task measure, CancellationToken cancellationToken)
    {
        var loops = _clients.SelectMany(c => Enumerable.Range(0, plan.Window).Select(_ => Task.Run(async () =>
        {
            // The token too: once cancelled (Ctrl-C, SIGTERM), a send fails at once without
            // yielding, so these loops would spin on the thread pool and starve the very
            // continuation that completes the measurement (seen: 1.7 million "cancelled" sends and
            // a run that never stopped).
            while (!measure.IsCompleted && !cancellationToken.IsCancellationRequested && c.IsOpen)
            {
                Interlocked.Increment(ref _offered);
                await c.SayAsync(cancellationToken, plan.ClosedLoop ? plan.DrainTimeout : null);
            }
        }, cancellationToken))).ToList();
        lock (_sends)
            _sends.AddRange(loops);
        await measure;
    }

    private async Task AwaitSendsAsync()
    {
        Task[] sends;
        lock (_sends)
            sends = [.. _sends];
        await Task.WhenAll(sends);
    }

    /// <summary>
    /// Waits until every accepted message reached every member of its room, or nothing moves for
    /// the drain timeout, or the backlog is still there after the drain limit (a target far behind).
    /// </summary>
    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        using var progress = Progress.Start(() => $"{label}: draining, {stats.Delivered}/{stats.ExpectedDeliveries} delivered");
        var last = -1L;
        var still = Stopwatch.StartNew();
        var total = Stopwatch.StartNew();
        while (stats.Delivered < stats.ExpectedDeliveries && still.Elapsed < plan.DrainTimeout && total.Elapsed < plan.DrainLimit)
        {
            var now = stats.Delivered;
            if (now != last)
            {
                last = now;
                still.Restart();
            }
            await Task.Delay(50, cancellationToken);
        }
    }

    private long _lastAccepted, _lastDelivered;
    private long _lastTick = Stopwatch.GetTimestamp();

    private string LiveLine()
    {
        var now = Stopwatch.GetTimestamp();
        var seconds = Math.Max(1e-3, Stopwatch.GetElapsedTime(_lastTick, now).TotalSeconds);
        var accepted = stats.Accepted;
        var delivered = stats.Delivered;
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{label}: open {_clients.Count(c => c.IsOpen)}/{plan.Connections}  accepted/s {(accepted - _lastAccepted) / seconds,8:F0}  delivered/s {(delivered - _lastDelivered) / seconds,9:F0}  p99 {(stats.IntervalP99Ms() is { } p ? $"{p:F1} ms" : "-"),9}  errors {stats.Errors.Values.Sum()}");
        _lastAccepted = accepted;
        _lastDelivered = delivered;
        _lastTick = now;
        return line;
    }

    public async Task DisconnectAsync()
    {
        using var gate = new SemaphoreSlim(64);
        await Task.WhenAll(_clients.Select(async c =>
        {
            await gate.WaitAsync();
            try { await c.DisposeAsync(); }
            finally { gate.Release(); }
        }));
    }
}

/// <summary>One line of live progress a second on the console, until disposed.</summary>
public sealed class Progress : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    private Progress(Func<string> line)
    {
        _loop = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token))
                    Console.WriteLine(line());
            }
            catch (OperationCanceledException)
            {
                // Stopped.
            }
        });
    }

    public static Progress Start(Func<string> line) => new(line);

    public void Dispose()
    {
        _stop.Cancel();
        _loop.GetAwaiter().GetResult();
        _stop.Dispose();
    }
}
