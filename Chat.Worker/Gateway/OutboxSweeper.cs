using MassTransit;

namespace SocketStarter.ChatWorker.Gateway;

/// <summary>Now and then sends replies that no event processing flushed (see <see cref="Outbox.SweepAsync"/>).</summary>
public sealed partial class OutboxSweeper(Outbox outbox, IBus bus, TimeProvider time, ILogger<OutboxSweeper> logger) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan MinimumAge = TimeSpan.FromSeconds(15);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await outbox.SweepAsync(MinimumAge, bus, stoppingToken);
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
