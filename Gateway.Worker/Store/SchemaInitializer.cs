using Npgsql;

namespace SocketStarter.GatewayWorker.Store;

/// <summary>
/// Migrates the database before the bus starts taking messages. A database that is not up yet
/// (all services starting together) is waited for; one that refuses the login, or does not exist,
/// stops the worker at once with an error naming the setting.
/// </summary>
public sealed partial class SchemaInitializer(string connectionString, IEnumerable<MigrationSet> sets, ILogger<SchemaInitializer> logger) : IHostedService
{
    private static readonly TimeSpan WaitForDatabase = TimeSpan.FromSeconds(60);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var target = new NpgsqlConnectionStringBuilder(connectionString);
        var where = $"{target.Host}:{target.Port}/{target.Database}";
        var deadline = DateTime.UtcNow + WaitForDatabase;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await SchemaMigrations.MigrateAsync(connectionString, sets, logger, cancellationToken);
                return;
            }
            catch (PostgresException ex) when (ex.SqlState is "28P01" or "28000")
            {
                throw new InvalidOperationException($"{GatewayDatabase.Setting}: the database at {where} refused the login ({ex.MessageText}). Check the user name and password.", ex);
            }
            catch (PostgresException ex) when (ex.SqlState == "3D000")
            {
                throw new InvalidOperationException($"{GatewayDatabase.Setting}: the database at {where} does not exist ({ex.MessageText}). Create it, or name another.", ex);
            }
            catch (Exception ex) when (GatewayDatabase.IsUnavailable(ex) && DateTime.UtcNow < deadline)
            {
                LogWaiting(where, attempt, ex.Message);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)), cancellationToken);
            }
            catch (Exception ex) when (GatewayDatabase.IsUnavailable(ex))
            {
                throw new InvalidOperationException($"{GatewayDatabase.Setting}: no database answered at {where} within {WaitForDatabase.TotalSeconds:0} s ({ex.Message}).", ex);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(LogLevel.Warning, "The database at {Where} does not answer yet (attempt {Attempt}: {Reason}); waiting")]
    private partial void LogWaiting(string where, int attempt, string reason);
}
