using MassTransit;
using Microsoft.Extensions.Options;
using SocketStarter.Messages;

namespace SocketStarter.HubFront;

/// <summary>
/// Tells workers this instance is alive, so they can expire the connections of one that is not.
/// Published (every worker hears it on its own temporary queue), not queued with client events:
/// behind a backlog it would arrive late and make this instance look dead.
/// </summary>
public sealed partial class HeartbeatService(
    IBus bus,
    UpstreamGateway gateway,
    IOptions<GatewayOptions> options,
    TimeProvider time,
    ILogger<HeartbeatService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.Value.HeartbeatInterval;
        using var timer = new PeriodicTimer(interval, time);
        do
        {
            try
            {
                // MassTransit waits for a lost broker; a heartbeat older than its interval is worth nothing.
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timeout.CancelAfter(interval);
                await bus.Publish(new HubInstanceHeartbeat
                {
                    HubInstanceId = options.Value.InstanceId,
                    ConnectionCount = gateway.ConnectionCount,
                    Interval = interval,
                    SentAt = time.GetUtcNow(),
                    TakesCommandBatches = true,
                }, timeout.Token);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogHeartbeatFailed(ex, options.Value.InstanceId);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    [LoggerMessage(LogLevel.Warning, "Heartbeat of hub instance {HubInstanceId} was not confirmed")]
    private partial void LogHeartbeatFailed(Exception exception, string hubInstanceId);
}
