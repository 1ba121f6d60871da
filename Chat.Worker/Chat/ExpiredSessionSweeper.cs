using Dapper;
using Microsoft.Extensions.Options;
using Npgsql;

namespace SocketStarter.ChatWorker.Chat;

/// <summary>
/// Forgets sessions that can no longer resume (older than <c>Chat:SessionLifetime</c>) and have no
/// open connection, so <c>chat_sessions</c> does not grow for ever. Their messages stay.
/// </summary>
public sealed partial class ExpiredSessionSweeper(
    NpgsqlDataSource dataSource,
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
    public async Task<int> SweepAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        // One statement: the sessions and their memberships go together.
        return await connection.ExecuteScalarAsync<int>(new CommandDefinition("""
            WITH expired AS (
                SELECT session_id FROM chat_sessions s WHERE s.created_at < @before
                  AND NOT EXISTS (SELECT 1 FROM chat_connections c WHERE c.session_id = s.session_id)
            ), members AS (
                DELETE FROM chat_members WHERE session_id IN (SELECT session_id FROM expired)
            ), sessions AS (
                DELETE FROM chat_sessions WHERE session_id IN (SELECT session_id FROM expired) RETURNING 1
            )
            SELECT COUNT(*)::int FROM sessions
            """, new { before = time.GetUtcNow() - options.Value.SessionLifetime }, cancellationToken: cancellationToken));
    }

    [LoggerMessage(LogLevel.Information, "Forgot {Count} expired sessions without a connection")]
    private partial void LogForgotten(int count);

    [LoggerMessage(LogLevel.Warning, "Sweeping expired sessions failed; will try again")]
    private partial void LogSweepFailed(Exception exception);
}
