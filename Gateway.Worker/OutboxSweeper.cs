using MassTransit;
using SocketStarter.GatewayWorker.Store;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// Now and then sends replies that no event processing flushed (see <see cref="Outbox.SweepAsync"/>),
/// and forgets connections closed long ago.
/// </summary>
public sealed partial class OutboxSweeper(Outbox outbox, GatewayStore store, IBus bus, TimeProvider time, ILogger<OutboxSweeper> logger) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MinimumAge = TimeSpan.FromSeconds(15);

    // A closed connection's last seq turns late duplicates away; after a day none can come.
    private static readonly TimeSpan ClosedRetention = TimeSpan.FromDays(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await outbox.SweepAsync(MinimumAge, bus, stoppingToken);
                await store.ForgetClosedAsync(time.GetUtcNow() - ClosedRetention, stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogSweepFailed(ex);
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "Outbox sweep failed; will try again")]
    private partial void LogSweepFailed(Exception exception);
}
