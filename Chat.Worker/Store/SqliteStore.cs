using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace SocketStarter.ChatWorker.Store;

/// <summary>
/// The state store: one SQLite file in WAL mode, shared by every worker process on the host.
/// Writers take the lock up front (BEGIN IMMEDIATE) and wait for each other instead of failing.
/// </summary>
public sealed class SqliteStore(IOptions<StoreOptions> options) : IHealthCheck
{
    private readonly string _connectionString = new SqliteConnectionStringBuilder
    {
        DataSource = Path.GetFullPath(options.Value.Path),
        Mode = SqliteOpenMode.ReadWriteCreate,
        Pooling = true,
        DefaultTimeout = 30,
    }.ToString();

    private readonly string _pragmas = $"PRAGMA busy_timeout = 30000; PRAGMA synchronous = {options.Value.Synchronous};";

    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = _pragmas;
        await command.ExecuteNonQueryAsync(cancellationToken);
        return connection;
    }

    public async Task CreateSchemaAsync(IEnumerable<IStoreSchema> schemas, CancellationToken cancellationToken)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(options.Value.Path));
        if (!string.IsNullOrEmpty(directory))
            Directory.CreateDirectory(directory);

        await using var connection = await OpenAsync(cancellationToken);
        await using (var wal = connection.CreateCommand())
        {
            wal.CommandText = "PRAGMA journal_mode = WAL;";
            await wal.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var transaction = connection.BeginTransaction();
        foreach (var schema in schemas)
        {
            await using (var command = connection.CreateCommand())
            {
                command.Transaction = transaction;
                command.CommandText = schema.Ddl;
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            // A store made by an older version: the columns added since. Workers starting at once
            // take turns here (the transaction holds the write lock), so each column is added once.
            foreach (var (table, column, definition) in schema.AddedColumns)
            {
                await using var exists = connection.CreateCommand();
                exists.Transaction = transaction;
                exists.CommandText = "SELECT COUNT(*) FROM pragma_table_info($table) WHERE name = $column";
                exists.Parameters.AddWithValue("$table", table);
                exists.Parameters.AddWithValue("$column", column);
                if ((long)(await exists.ExecuteScalarAsync(cancellationToken))! > 0)
                    continue;
                await using var add = connection.CreateCommand();
                add.Transaction = transaction;
                add.CommandText = $"ALTER TABLE \"{table}\" ADD COLUMN \"{column}\" {definition}";
                await add.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex)
        {
            return HealthCheckResult.Unhealthy("The state store cannot be opened.", ex);
        }
    }
}

/// <summary>Creates the store's tables before the bus starts taking messages.</summary>
public sealed class StoreInitializer(SqliteStore store, IEnumerable<IStoreSchema> schemas) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => store.CreateSchemaAsync(schemas, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
