using System.Reflection;
using DbUp;
using DbUp.Engine;
using Npgsql;

namespace SocketStarter.GatewayWorker.Store;

/// <summary>
/// One component's versioned SQL scripts: the embedded <c>Migrations/*.sql</c> of an assembly,
/// applied in name order and recorded in a journal table of its own, so the runtime's and the
/// application's scripts are numbered independently.
/// </summary>
public sealed record MigrationSet(Assembly Assembly, string JournalTable)
{
    /// <summary>Script names: the resource names of the assembly's <c>Migrations/*.sql</c>, in the order they apply.</summary>
    public IReadOnlyList<string> ScriptNames => Assembly.GetManifestResourceNames()
        .Where(IsMigration)
        .Order(StringComparer.Ordinal)
        .ToList();

    internal static bool IsMigration(string resourceName) =>
        resourceName.Contains(".Migrations.", StringComparison.Ordinal) && resourceName.EndsWith(".sql", StringComparison.Ordinal);
}

/// <summary>
/// Brings the database to the latest schema at start-up. Workers that start together take turns
/// through a PostgreSQL advisory lock, so each script runs once, whoever gets there first.
/// </summary>
public static partial class SchemaMigrations
{
    // Any fixed number: pg_advisory_lock keys are global to the database.
    private const long LockKey = 0x536f636b65745374; // "SocketSt"

    /// <summary>Applies every script of <paramref name="sets"/> not yet applied; returns the names it applied.</summary>
    /// <param name="include">Only scripts whose name passes (tests bring a database to an earlier version).</param>
    public static async Task<IReadOnlyList<string>> MigrateAsync(
        string connectionString, IEnumerable<MigrationSet> sets, ILogger logger, CancellationToken cancellationToken, Func<string, bool>? include = null)
    {
        // The lock's connection is a session of its own, outside the pool: DbUp opens pooled ones
        // meanwhile (a pool of one would wait for itself), and should the unlock below fail, closing
        // the session still frees the lock, where a pooled connection would carry it on.
        await using var lockConnection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await lockConnection.OpenAsync(cancellationToken);
        await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock(@key)", lockConnection))
        {
            take.Parameters.AddWithValue("key", LockKey);
            await take.ExecuteNonQueryAsync(cancellationToken);
        }

        var applied = new List<string>();
        try
        {
            foreach (var set in sets)
            {
                var engine = DeployChanges.To
                    .PostgresqlDatabase(connectionString)
                    .WithScriptsEmbeddedInAssembly(set.Assembly, name => MigrationSet.IsMigration(name) && (include?.Invoke(name) ?? true))
                    .JournalToPostgresqlTable("public", set.JournalTable)
                    .WithTransactionPerScript()
                    .LogToNowhere()
                    .Build();
                var result = await Task.Run(engine.PerformUpgrade, cancellationToken);
                if (!result.Successful)
                    throw new InvalidOperationException(
                        $"Migrating the database failed at script {result.ErrorScript?.Name ?? "(none)"}: {result.Error?.Message}", result.Error);
                foreach (var script in result.Scripts)
                {
                    LogApplied(logger, script.Name, set.JournalTable);
                    applied.Add(script.Name);
                }
            }
        }
        finally
        {
            await using var release = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", lockConnection);
            release.Parameters.AddWithValue("key", LockKey);
            await release.ExecuteNonQueryAsync(CancellationToken.None);
        }

        if (applied.Count == 0)
            LogUpToDate(logger);
        return applied;
    }

    [LoggerMessage(LogLevel.Information, "Database migration {Script} applied (journal {Journal})")]
    private static partial void LogApplied(ILogger logger, string script, string journal);

    [LoggerMessage(LogLevel.Information, "Database schema is up to date")]
    private static partial void LogUpToDate(ILogger logger);
}
