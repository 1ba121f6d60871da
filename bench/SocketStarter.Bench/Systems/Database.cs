using System.Diagnostics;
using Npgsql;

namespace SocketStarter.Bench.Systems;

/// <summary>
/// The PostgreSQL server of a bench run: one given by <c>--postgres</c>, else a private cluster
/// started by <c>scripts/postgres-node</c> in a short temp folder (durable: fsync on), stopped and
/// deleted at the end. Every target run gets a fresh database of its own, dropped after it, so
/// nothing one run stored slows or feeds the next.
/// </summary>
public sealed class Database : IAsyncDisposable
{
    private readonly Func<Task> _stop;

    private Database(string adminConnectionString, Func<Task> stop, string? processMarker = null)
    {
        ProcessMarker = processMarker;
        AdminConnectionString = new NpgsqlConnectionStringBuilder(adminConnectionString) { Database = "postgres", Pooling = false }.ConnectionString;
        _stop = stop;
    }

    /// <summary>A superuser on database <c>postgres</c>, in Npgsql's key=value form.</summary>
    public string AdminConnectionString { get; }

    /// <summary>What the private cluster's postmaster has on its command line (its folder), to count its CPU with its backends'; null for a given database.</summary>
    public string? ProcessMarker { get; }

    /// <param name="given">A <c>postgresql://</c> URI or an Npgsql connection string; null for a private cluster.</param>
    /// <param name="statements">Makes <c>pg_stat_statements</c> available (<c>--statements</c>): a private
    /// cluster is started with it loaded; a given server must have it loaded already.</param>
    public static async Task<Database> StartAsync(string? given, string runDirectory, bool statements = false)
    {
        if (given is not null)
        {
            var server = new Database(ToConnectionString(given), () => Task.CompletedTask);
            if (statements)
                await server.EnableStatementsAsync();
            return server;
        }

        // A unix socket path has a 107-byte limit, and the postgres user must reach the folder:
        // the temp folder, not the checkout.
        var directory = Path.Combine(Path.GetTempPath(), $"ssb-pg-{Guid.NewGuid().ToString("N")[..12]}");
        Console.WriteLine($"Starting a private PostgreSQL cluster in {directory}");
        async Task StopAsync()
        {
            try { await NodeScriptAsync("stop", directory); }
            finally
            {
                // Its data is of no use after the run; its log stays with the services' logs.
                try { File.Copy(Path.Combine(directory, "log"), Path.Combine(Directory.CreateDirectory(Path.Combine(runDirectory, "logs")).FullName, "postgres.log"), overwrite: true); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
                try { Directory.Delete(directory, recursive: true); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }

        try
        {
            var lines = await NodeScriptAsync("start", directory, preload: statements ? "pg_stat_statements" : null);
            var cluster = new Database(ToConnectionString(lines["POSTGRES_URI"]), StopAsync, directory);
            if (statements)
                await cluster.EnableStatementsAsync();
            return cluster;
        }
        catch
        {
            // A cluster that started half-way must not outlive the failure.
            try { await StopAsync(); } catch (BenchException) { }
            throw;
        }
    }

    /// <summary>
    /// A fresh database and the connection string the services get for it, with PostgreSQL's
    /// <c>synchronous_commit</c> set for every session (<c>on</c>: a commit waits for its WAL flush).
    /// </summary>
    public async Task<string> CreateDatabaseAsync(string name, string synchronousCommit)
    {
        await ExecuteAsync($"CREATE DATABASE {Quote(name)}");
        return new NpgsqlConnectionStringBuilder(AdminConnectionString)
        {
            Database = name,
            Pooling = true,
            Options = $"-c synchronous_commit={synchronousCommit}",
        }.ConnectionString;
    }

    /// <summary>Creates the <c>pg_stat_statements</c> view (once per server) and checks that the server collects it.</summary>
    private async Task EnableStatementsAsync()
    {
        try
        {
            await ExecuteAsync("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            await ExecuteAsync("SELECT count(*) FROM pg_stat_statements");
        }
        catch (PostgresException ex)
        {
            throw new BenchException($"--statements needs pg_stat_statements in the server's shared_preload_libraries ({ex.MessageText}).");
        }
    }

    /// <summary>Drops a run's database, cutting whoever is still connected to it.</summary>
    public Task DropDatabaseAsync(string name) => ExecuteAsync($"DROP DATABASE IF EXISTS {Quote(name)} WITH (FORCE)");

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await _stop();
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Npgsql's key=value form of a <c>postgresql://user:password@host:port/database</c> URI; any other string as is.</summary>
    public static string ToConnectionString(string value)
    {
        if (!value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) && !value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase))
            return new NpgsqlConnectionStringBuilder(value).ConnectionString;

        var uri = new Uri(value);
        var builder = new NpgsqlConnectionStringBuilder { Host = uri.Host, Port = uri.Port > 0 ? uri.Port : 5432 };
        var userInfo = uri.UserInfo.Split(':', 2);
        if (userInfo[0].Length > 0)
            builder.Username = Uri.UnescapeDataString(userInfo[0]);
        if (userInfo.Length == 2)
            builder.Password = Uri.UnescapeDataString(userInfo[1]);
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            builder[Uri.UnescapeDataString(kv[0])] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
        }
        return builder.ConnectionString;
    }

    private static async Task<Dictionary<string, string>> NodeScriptAsync(string command, string directory, string? preload = null)
    {
        var script = Path.Combine(Repository.Root, "scripts", "postgres-node");
        var start = new ProcessStartInfo("bash", [script, command, directory]) { RedirectStandardOutput = true, RedirectStandardError = true };
        // Benchmarks measure the durable server: never the test runs' fsync-off mode.
        start.Environment.Remove("POSTGRES_NODE_FAST");
        start.Environment.Remove("POSTGRES_NODE_PRELOAD");
        if (preload is not null)
            start.Environment["POSTGRES_NODE_PRELOAD"] = preload;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new BenchException($"scripts/postgres-node {command} failed ({process.ExitCode}): {await stderr}");
        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
    }
}
