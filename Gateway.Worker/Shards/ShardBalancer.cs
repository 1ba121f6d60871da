using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using MassTransit;
using Microsoft.Extensions.Options;
using SocketStarter.GatewayWorker.Consumers;

namespace SocketStarter.GatewayWorker.Shards;

/// <summary>
/// Keeps this worker holding a fair share of the shards: each live worker holds a disjoint set,
/// its size within one of every other's. Workers learn who is alive, and what each holds, from
/// each other's heartbeats. A shard moves by its holder finishing and acknowledging what it has
/// (stopping the shard's endpoint), then saying so; only then does the next holder connect, and
/// the queue's single active consumer guards the moment in between, so two workers never apply
/// one shard's events at once. A worker that dies (SIGKILL) holds nothing from the broker's view
/// at once; the others take its shards when its heartbeats have been missing for
/// <c>Worker:PeerTimeout</c>.
/// </summary>
public sealed partial class ShardBalancer : BackgroundService
{
    // Long enough to hear every live worker answer this one's first heartbeat before taking any shard.
    private static readonly TimeSpan JoinWait = TimeSpan.FromMilliseconds(500);

    // How long a shard's consumer may stay faulted before this worker restarts it. MassTransit
    // reconnects a consumer after a transient fault by itself (within a second or two once the
    // broker is back); after a fault it judges permanent it never does ("Cannot Retry"), and the
    // shard's events would wait for ever.
    private static readonly TimeSpan FaultedLimit = TimeSpan.FromSeconds(5);

    // How long a take waits for its consumer before the round goes on (the fault watch takes over).
    private static readonly TimeSpan ReadyWait = TimeSpan.FromSeconds(30);

    private readonly IBus _bus;
    private readonly IReceiveEndpointConnector _connector;
    private readonly ShardTopology _topology;
    private readonly UpstreamConsumerDefinition _definition;
    private readonly WorkerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ShardBalancer> _logger;
    private readonly ConcurrentDictionary<string, WorkerHeartbeat> _peers = new();
    private readonly ConcurrentDictionary<string, DateTimeOffset> _heardAt = new();
    private readonly ConcurrentDictionary<int, HostReceiveEndpointHandle> _held = new();
    private readonly ConcurrentDictionary<int, FaultWatch> _watches = new();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly SemaphoreSlim _publishing = new(1, 1);
    private readonly Counter<long> _moves;
    private volatile bool _stopping;
    // Since when this worker's heartbeats have reached the broker without a failure; null while they fail.
    private DateTimeOffset? _brokerUpSince;
    private volatile int[] _heldSnapshot = [];

    public ShardBalancer(WorkerIdentity identity, IBus bus, IReceiveEndpointConnector connector, ShardTopology topology, UpstreamConsumerDefinition definition,
        IOptions<WorkerOptions> options, TimeProvider time, IMeterFactory meterFactory, ILogger<ShardBalancer> logger)
    {
        WorkerId = identity.WorkerId;
        _bus = bus;
        _connector = connector;
        _topology = topology;
        _definition = definition;
        _options = options.Value;
        _time = time;
        _logger = logger;
        var meter = meterFactory.Create(WorkerMetrics.MeterName);
        meter.CreateObservableGauge("worker.shards.held", () => _heldSnapshot.Length, description: "Shards this worker consumes now.");
        _moves = meter.CreateCounter<long>("worker.shards.moves", description: "Shards this worker took or gave up, by direction (taken, released).");
    }

    public string WorkerId { get; }

    /// <summary>The shards this worker consumes now, in order.</summary>
    public IReadOnlyList<int> Held => _heldSnapshot;

    /// <summary>A peer's heartbeat: remembered, and answered at once when the peer is new, so it learns of this worker quickly.</summary>
    public void Observe(WorkerHeartbeat heartbeat)
    {
        if (heartbeat.WorkerId == WorkerId)
            return;
        var isNew = !_peers.ContainsKey(heartbeat.WorkerId);
        _peers[heartbeat.WorkerId] = heartbeat;
        _heardAt[heartbeat.WorkerId] = _time.GetUtcNow();
        if (isNew && !heartbeat.Stopping)
            LogPeerJoined(heartbeat.WorkerId, heartbeat.Shards.Count);
        _wake.Writer.TryWrite(isNew);
    }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the host reports started: the hubs' events find their shard queues from now on.
        await _topology.DeclareAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await PublishAsync(stoppingToken);
        _brokerUpSince = _time.GetUtcNow();
        // Heartbeats on their own clock: a round waits on the broker (a take for its consumer, up to
        // ReadyWait; a release for the shard's events in flight), which can be longer than
        // Worker:PeerTimeout, and a worker that said nothing meanwhile would be declared dead by its
        // peers, who would take its shards and move them again once it is heard.
        var heartbeats = BeatAsync(stoppingToken);
        await Task.Delay(JoinWait, _time, stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            var changed = false;
            try
            {
                changed = await RebalanceAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogRebalanceFailed(ex);
            }

            // What changed is told at once, not at the next beat.
            if (changed)
                await TryPublishAsync(stoppingToken);

            // Until the next round is due or a peer says something.
            using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            tick.CancelAfter(_options.PeerHeartbeatInterval / 4);
            var answerNewPeer = false;
            try
            {
                answerNewPeer = await _wake.Reader.ReadAsync(tick.Token);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
            }
            if (answerNewPeer)
                await TryPublishAsync(stoppingToken);
        }
        await heartbeats;
    }

    /// <summary>Says what this worker holds every <c>Worker:PeerHeartbeatInterval</c>, whatever a round is waiting for.</summary>
    private async Task BeatAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.PeerHeartbeatInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
                await TryPublishAsync(stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// A graceful stop hands every shard over before the bus stops (this service stops first: it
    /// is registered after the bus): announce stopping, finish and acknowledge what each shard holds,
    /// then say nothing is held any more.
    /// </summary>
    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        await base.StopAsync(cancellationToken);
        await TryPublishAsync(cancellationToken);
        var shards = _held.Keys.ToList();
        await Task.WhenAll(shards.Select(s => ReleaseAsync(s, cancellationToken)));
        await TryPublishAsync(cancellationToken);
        if (shards.Count > 0)
            LogHandedOver(shards.Count);
    }

    /// <summary>One round: give up what is over this worker's share or held by a lower id too; take free shards up to the share.</summary>
    private async Task<bool> RebalanceAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        // Peers not heard from for PeerTimeout are dead: they hold nothing.
        foreach (var (id, heard) in _heardAt)
        {
            if (now - heard > _options.PeerTimeout && _peers.TryRemove(id, out var gone))
            {
                _heardAt.TryRemove(id, out _);
                if (!gone.Stopping)
                    LogPeerLost(id, _options.PeerTimeout, gone.Shards.Count);
            }
        }
        await RestartFaultedAsync(now, cancellationToken);
        var peers = _peers.Values.ToList();
        var plan = ShardPlan.For(WorkerId, _held.Keys.ToHashSet(), peers, _options.Shards, _stopping);

        // All at once: each endpoint's start or stop waits on the broker (and a stop on the events in flight).
        await Task.WhenAll(plan.Release.Select(shard => ReleaseAsync(shard, cancellationToken)));
        await Task.WhenAll(plan.Take.Select(shard => TakeAsync(shard, cancellationToken)));
        return plan.Release.Count + plan.Take.Count > 0;
    }

    private async Task TakeAsync(int shard, CancellationToken cancellationToken)
    {
        var queue = _options.ShardQueue(shard);
        var watch = new FaultWatch(this, shard);
        var handle = _connector.ConnectReceiveEndpoint(queue, (context, endpoint) =>
        {
            _definition.ConfigureShardEndpoint(endpoint);
            endpoint.ConnectReceiveEndpointObserver(watch);
            endpoint.ConfigureConsumer<UpstreamConsumer>(context);
        });
        _held[shard] = handle;
        _watches[shard] = watch;
        Snapshot();
        try
        {
            await handle.Ready.WaitAsync(ReadyWait, _time, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Still connecting (the broker may be away): held, and watched for faults.
            LogNotReadyYet(queue, ReadyWait);
            return;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // It will never consume: let it go, so a later round takes the shard again.
            LogTakeFailed(queue, ex);
            await DropAsync(shard, handle);
            return;
        }
        _moves.Add(1, new KeyValuePair<string, object?>("direction", "taken"));
        LogTaken(queue, _heldSnapshot.Length);
    }

    /// <summary>
    /// Gives up the consumers that have been faulted for <see cref="FaultedLimit"/> while the broker
    /// was reachable (while it is away, every consumer is faulted and MassTransit reconnects them
    /// itself once it is back); the round then takes their shards again.
    /// </summary>
    private async Task RestartFaultedAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_brokerUpSince is not { } up || cancellationToken.IsCancellationRequested)
            return;
        var drops = new List<Task>();
        foreach (var (shard, watch) in _watches)
        {
            if (watch.FaultedSince is not { } since || now - (since > up ? since : up) < FaultedLimit || !_held.TryGetValue(shard, out var handle))
                continue;
            LogRestartingFaulted(_options.ShardQueue(shard), now - since);
            drops.Add(DropAsync(shard, handle));
        }
        await Task.WhenAll(drops);
    }

    /// <summary>Stops a consumer that consumes nothing (faulted, or never started) and forgets it.</summary>
    private async Task DropAsync(int shard, HostReceiveEndpointHandle handle)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await handle.StopAsync(timeout.Token);
        }
        catch (Exception ex)
        {
            LogDropFailed(_options.ShardQueue(shard), ex.Message);
        }
        if (_held.TryRemove(new KeyValuePair<int, HostReceiveEndpointHandle>(shard, handle)))
            _watches.TryRemove(shard, out _);
        Snapshot();
    }

    private async Task ReleaseAsync(int shard, CancellationToken cancellationToken)
    {
        if (!_held.TryGetValue(shard, out var handle))
            return;
        // Stopping the endpoint finishes the events in flight and acknowledges them first; only
        // then is the shard no longer listed as held.
        await handle.StopAsync(cancellationToken);
        _held.TryRemove(shard, out _);
        _watches.TryRemove(shard, out _);
        Snapshot();
        _moves.Add(1, new KeyValuePair<string, object?>("direction", "released"));
        LogReleased(_options.ShardQueue(shard), _heldSnapshot.Length);
    }

    private void Snapshot()
    {
        lock (_held)
            _heldSnapshot = [.. _held.Keys.Order()];
    }

    // Let go at the token even when MassTransit's publish waits on (a blocked connection: see HubRouting).
    private Task PublishAsync(CancellationToken cancellationToken) =>
        _bus.Publish(new WorkerHeartbeat { WorkerId = WorkerId, Shards = _heldSnapshot, Stopping = _stopping, SentAt = _time.GetUtcNow() }, cancellationToken).WaitAsync(cancellationToken);

    private async Task TryPublishAsync(CancellationToken cancellationToken)
    {
        // One at a time, each taking the snapshot of its moment: peers hear what is held in order.
        await _publishing.WaitAsync(cancellationToken);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await PublishAsync(timeout.Token);
            _brokerUpSince ??= _time.GetUtcNow();
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The broker is away: the others stop hearing this worker; its shards' consumers are gone with the connection too.
            _brokerUpSince = null;
            LogHeartbeatFailed(ex.Message);
        }
        finally
        {
            _publishing.Release();
        }
    }

    [LoggerMessage(LogLevel.Information, "Worker {WorkerId} joined, holding {Count} shards")]
    private partial void LogPeerJoined(string workerId, int count);

    [LoggerMessage(LogLevel.Warning, "Worker {WorkerId} not heard from for {Timeout}: its {Count} shards are free")]
    private partial void LogPeerLost(string workerId, TimeSpan timeout, int count);

    /// <summary>Notes when a shard's consumer faults, and when it is ready again.</summary>
    private sealed class FaultWatch(ShardBalancer balancer, int shard) : IReceiveEndpointObserver
    {
        private long _faultedAtTicks;

        /// <summary>Since when the consumer has been faulted without being ready again; null when it is fine.</summary>
        public DateTimeOffset? FaultedSince => Interlocked.Read(ref _faultedAtTicks) is var t and not 0 ? new DateTimeOffset(t, TimeSpan.Zero) : null;

        public Task Ready(ReceiveEndpointReady ready)
        {
            Interlocked.Exchange(ref _faultedAtTicks, 0);
            return Task.CompletedTask;
        }

        public Task Faulted(ReceiveEndpointFaulted faulted)
        {
            if (Interlocked.CompareExchange(ref _faultedAtTicks, balancer._time.GetUtcNow().UtcTicks, 0) == 0 && !balancer._stopping)
            {
                balancer.LogConsumerFaulted(balancer._options.ShardQueue(shard), faulted.Exception?.Message ?? "unknown");
                balancer._wake.Writer.TryWrite(false);
            }
            return Task.CompletedTask;
        }

        public Task Stopping(ReceiveEndpointStopping stopping) => Task.CompletedTask;

        public Task Completed(ReceiveEndpointCompleted completed) => Task.CompletedTask;
    }

    [LoggerMessage(LogLevel.Warning, "Shard {Queue}'s consumer faulted: {Reason}")]
    private partial void LogConsumerFaulted(string queue, string reason);

    [LoggerMessage(LogLevel.Warning, "Shard {Queue}'s consumer has been faulted for {Elapsed}: restarting it")]
    private partial void LogRestartingFaulted(string queue, TimeSpan elapsed);

    [LoggerMessage(LogLevel.Warning, "Shard {Queue}'s consumer did not start; the shard is free to take again")]
    private partial void LogTakeFailed(string queue, Exception exception);

    [LoggerMessage(LogLevel.Warning, "Shard {Queue}'s consumer is not ready after {Wait}; it keeps trying")]
    private partial void LogNotReadyYet(string queue, TimeSpan wait);

    [LoggerMessage(LogLevel.Debug, "Stopping shard {Queue}'s faulted consumer: {Reason}")]
    private partial void LogDropFailed(string queue, string reason);

    [LoggerMessage(LogLevel.Information, "Took shard {Queue}; holding {Count}")]
    private partial void LogTaken(string queue, int count);

    [LoggerMessage(LogLevel.Information, "Gave up shard {Queue} (its events in flight finished first); holding {Count}")]
    private partial void LogReleased(string queue, int count);

    [LoggerMessage(LogLevel.Information, "Stopping: handed over {Count} shards")]
    private partial void LogHandedOver(int count);

    [LoggerMessage(LogLevel.Warning, "Rebalancing shards failed; will try again")]
    private partial void LogRebalanceFailed(Exception exception);

    [LoggerMessage(LogLevel.Debug, "Worker heartbeat not sent: {Reason}")]
    private partial void LogHeartbeatFailed(string reason);
}
