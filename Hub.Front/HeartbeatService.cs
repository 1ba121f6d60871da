using Microsoft.Extensions.Options;
using SocketStarter.Messages;

namespace SocketStarter.HubFront;

/// <summary>Tells workers this instance is alive, so they can expire the connections of one that is not.</summary>
public sealed partial class HeartbeatService(
    UpstreamPublisher publisher,
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
                await publisher.SendAsync(new HubInstanceHeartbeat
                {
                    HubInstanceId = options.Value.InstanceId,
                    ConnectionCount = gateway.ConnectionCount,
                    Interval = interval,
                    SentAt = time.GetUtcNow(),
                }, stoppingToken, mandatory: false);
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
