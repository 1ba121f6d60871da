using MassTransit;
using SocketStarter.ChatWorker.Store;

namespace SocketStarter.ChatWorker.Gateway;

/// <summary>
/// Now and then sends replies that no event processing flushed (see <see cref="Outbox.SweepAsync"/>),
/// and forgets connections closed long ago.
/// </summary>
public sealed partial class OutboxSweeper(Outbox outbox, StoreWriter writer, IBus bus, TimeProvider time, ILogger<OutboxSweeper> logger) : BackgroundService
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
                await ForgetClosedConnectionsAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogSweepFailed(ex);
            }
        }
    }

    private Task ForgetClosedConnectionsAsync(CancellationToken cancellationToken) =>
        writer.WriteAsync(async (connection, transaction, ct) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                DELETE FROM gateway_connections WHERE closed_at IS NOT NULL AND closed_at < $before;
                DELETE FROM gateway_given_up WHERE given_up_at < $before;
                """;
            command.Parameters.AddWithValue("$before", (time.GetUtcNow() - ClosedRetention).ToString("O"));
            await command.ExecuteNonQueryAsync(ct);
        }, cancellationToken);

    [LoggerMessage(LogLevel.Warning, "Outbox sweep failed; will try again")]
    private partial void LogSweepFailed(Exception exception);
}
