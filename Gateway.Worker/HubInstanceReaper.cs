using MassTransit;
using Microsoft.Extensions.Options;
using SocketStarter.GatewayWorker.Store;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// Lets go of the connections of hub instances that stopped sending heartbeats (killed, cut off):
/// their clients have reconnected elsewhere or are gone, and presence must not list them forever.
/// </summary>
/// <remarks>
/// Silence is measured from the later of the instance's last heartbeat and the moment this
/// worker last had both its bus and its database: a worker that just started, or just got its
/// broker or database back, has not had the chance to record the heartbeats, and an outage is not
/// a hub's death. Heartbeats come on this worker's own temporary queue, never behind the backlog
/// of the shared one.
/// </remarks>
public sealed partial class HubInstanceReaper(
    GatewayStore store,
    UpstreamEventProcessor processor,
    IBus bus,
    IBusControl busControl,
    IOptions<WorkerOptions> options,
    TimeProvider time,
    ILogger<HubInstanceReaper> logger) : BackgroundService
{
    private const int BatchSize = 500;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var timeout = options.Value.HubInstanceTimeout;
        var period = TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 6, TimeSpan.FromMilliseconds(250).Ticks, TimeSpan.FromSeconds(5).Ticks));
        DateTimeOffset? healthySince = null;
        using var timer = new PeriodicTimer(period, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = time.GetUtcNow();
            if (busControl.CheckHealth().Status != BusHealthStatus.Healthy || !await DatabaseAnswersAsync(stoppingToken))
            {
                healthySince = null;
                continue;
            }
            healthySince ??= now;
            if (now - healthySince < timeout)
                continue;

            try
            {
                await ExpireSilentAsync(now - timeout, stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                healthySince = null;
                LogExpiryFailed(ex);
            }
        }
    }

    private async Task<bool> DatabaseAnswersAsync(CancellationToken cancellationToken)
    {
        try
        {
            await store.PingAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (GatewayDatabase.IsUnavailable(ex))
        {
            return false;
        }
    }

    private async Task ExpireSilentAsync(DateTimeOffset silentSince, CancellationToken cancellationToken)
    {
        var silent = await store.SilentConnectionsAsync(silentSince, BatchSize, cancellationToken);
        foreach (var instance in silent.GroupBy(c => c.HubInstanceId))
        {
            var expired = 0;
            foreach (var (connectionId, hubInstanceId) in instance)
            {
                if (await processor.ExpireAsync(connectionId, hubInstanceId, silentSince, bus, cancellationToken))
                    expired++;
            }
            if (expired > 0)
                LogExpired(instance.Key, expired, options.Value.HubInstanceTimeout);
        }
        await store.ForgetSilentInstancesAsync(silentSince, cancellationToken);
    }

    [LoggerMessage(LogLevel.Warning, "Hub instance {HubInstanceId} silent for longer than {Timeout}: {Count} of its connections expired")]
    private partial void LogExpired(string hubInstanceId, int count, TimeSpan timeout);

    [LoggerMessage(LogLevel.Warning, "Expiring the connections of silent hub instances failed; will try again")]
    private partial void LogExpiryFailed(Exception exception);
}
