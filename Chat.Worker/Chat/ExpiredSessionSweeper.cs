using Microsoft.Extensions.Options;
using SocketStarter.ChatWorker.Store;

namespace SocketStarter.ChatWorker.Chat;

/// <summary>
/// Forgets sessions that can no longer resume (older than <c>Chat:SessionLifetime</c>) and have no
/// open connection, so <c>chat_sessions</c> does not grow for ever. Their messages stay.
/// </summary>
public sealed partial class ExpiredSessionSweeper(
    StoreWriter writer,
    IOptions<ChatOptions> options,
    TimeProvider time,
    ILogger<ExpiredSessionSweeper> logger) : BackgroundService
{
    private static readonly TimeSpan Period = TimeSpan.FromMinutes(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period, time);
        do
        {
            try
            {
                var forgotten = await SweepAsync(stoppingToken);
                if (forgotten > 0)
                    LogForgotten(forgotten);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogSweepFailed(ex);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Forgets the expired sessions without a connection now; returns how many.</summary>
    public Task<int> SweepAsync(CancellationToken cancellationToken) =>
        writer.WriteAsync(async (connection, transaction, ct) =>
        {
            const string expired = """
                SELECT session_id FROM chat_sessions s WHERE s.created_at < $before
                  AND NOT EXISTS (SELECT 1 FROM chat_connections c WHERE c.session_id = s.session_id)
                """;
            var before = (time.GetUtcNow() - options.Value.SessionLifetime).ToString("O");
            await using (var members = connection.CreateCommand())
            {
                members.Transaction = transaction;
                members.CommandText = $"DELETE FROM chat_members WHERE session_id IN ({expired})";
                members.Parameters.AddWithValue("$before", before);
                await members.ExecuteNonQueryAsync(ct);
            }
            await using var sessions = connection.CreateCommand();
            sessions.Transaction = transaction;
            sessions.CommandText = $"DELETE FROM chat_sessions WHERE session_id IN ({expired})";
            sessions.Parameters.AddWithValue("$before", before);
            return await sessions.ExecuteNonQueryAsync(ct);
        }, cancellationToken);

    [LoggerMessage(LogLevel.Information, "Forgot {Count} expired sessions without a connection")]
    private partial void LogForgotten(int count);

    [LoggerMessage(LogLevel.Warning, "Sweeping expired sessions failed; will try again")]
    private partial void LogSweepFailed(Exception exception);
}
