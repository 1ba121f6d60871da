using System.Diagnostics;
using DotNet.Testcontainers.Builders;
using Npgsql;
using Testcontainers.PostgreSql;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>
/// The one PostgreSQL server of a test run: <c>POSTGRES_URI</c> when set; else a Testcontainers
/// server when a Docker engine answers; else a private cluster of the OS package, started on a free
/// port by <c>scripts/postgres-node</c> with its data in a temp folder. Tests isolate themselves
/// with a database each. Test servers run without durability (fsync off): a crash loses nothing
/// a test needs. Only a cluster of <see cref="StartPrivateAsync"/> stops and starts: the run's
/// shared server never does, whatever its kind, so a test behaves the same in every environment.
/// </summary>
public sealed class Database : IAsyncDisposable
{
    private readonly Func<ValueTask> _dispose;
    private readonly string? _clusterDirectory;

    private Database(string adminConnectionString, string kind, string? clusterDirectory, Func<ValueTask> dispose)
    {
        AdminConnectionString = WithDatabase(adminConnectionString, "postgres");
        Kind = kind;
        _clusterDirectory = clusterDirectory;
        _dispose = dispose;
    }

    public string Kind { get; }

    /// <summary>The superuser on database <c>postgres</c>, in Npgsql's key=value form.</summary>
    public string AdminConnectionString { get; }

    public static async Task<Database> StartAsync()
    {
        var given = Environment.GetEnvironmentVariable("POSTGRES_URI");
        if (!string.IsNullOrWhiteSpace(given))
            return new Database(ToConnectionString(given), "POSTGRES_URI", null, () => ValueTask.CompletedTask);

        var container = await TryStartContainerAsync();
        if (container is not null)
            return new Database(container.GetConnectionString(), "Testcontainers", null, container.DisposeAsync);

        return await StartClusterAsync(stoppable: false);
    }

    /// <summary>
    /// Always a new private cluster of the OS package, for a test that stops and starts its server
    /// (<see cref="StopServerAsync"/>); deleted at dispose.
    /// </summary>
    public static Task<Database> StartPrivateAsync() => StartClusterAsync(stoppable: true);

    private static async Task<Database> StartClusterAsync(bool stoppable)
    {
        var directory = Path.Combine(Path.GetTempPath(), $"socketstarter-pg-{Guid.NewGuid():N}");
        try
        {
            var lines = await RunNodeScriptAsync("start", directory);
            return new Database(ToConnectionString(lines["POSTGRES_URI"]), "private postgresql cluster", stoppable ? directory : null, async () =>
            {
                await RunNodeScriptAsync("stop", directory);
                DeleteDirectory(directory);
            });
        }
        catch
        {
            // A cluster that started half-way must not outlive the failure.
            try { await RunNodeScriptAsync("stop", directory); } catch (InvalidOperationException) { }
            DeleteDirectory(directory);
            throw;
        }
    }

    /// <summary>A new database (a copy of <paramref name="template"/> when given); its connection string, pooled.</summary>
    public async Task<string> CreateDatabaseAsync(string name, string? template = null)
    {
        if (template is not null)
        {
            // CREATE DATABASE ... TEMPLATE fails while anyone is connected to the template: this
            // process's idle pooled connections count too.
            NpgsqlConnection.ClearAllPools();
        }
        var sql = $"CREATE DATABASE {Quote(name)}" + (template is null ? "" : $" TEMPLATE {Quote(template)}");
        await ExecuteAsync(sql);
        return new NpgsqlConnectionStringBuilder(WithDatabase(AdminConnectionString, name)) { Pooling = true }.ConnectionString;
    }

    /// <summary>Drops a database, cutting whoever is still connected to it.</summary>
    public Task DropDatabaseAsync(string name) => ExecuteAsync($"DROP DATABASE IF EXISTS {Quote(name)} WITH (FORCE)");

    /// <summary>Stops a private cluster's server (fast: open sessions are cut); its data stays.</summary>
    public async Task StopServerAsync() => await RunNodeScriptAsync("stop", PrivateCluster());

    /// <summary>Starts a stopped private cluster again, on the same port with the same data.</summary>
    public async Task StartServerAsync() => await RunNodeScriptAsync("start", PrivateCluster());

    /// <summary>
    /// <paramref name="connectionString"/> (Npgsql key=value or a <c>postgresql://</c> URI) pointed
    /// at another database, in Npgsql's form.
    /// </summary>
    public static string WithDatabase(string connectionString, string database) =>
        new NpgsqlConnectionStringBuilder(ToConnectionString(connectionString)) { Database = database }.ConnectionString;

    public async ValueTask DisposeAsync() => await _dispose();

    private string PrivateCluster() =>
        _clusterDirectory ?? throw new InvalidOperationException($"Only a cluster of Database.StartPrivateAsync stops and starts; this server is the run's ({Kind}).");

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>Npgsql's key=value form of a <c>postgresql://user:password@host:port/database?key=value</c> URI; any other string as is.</summary>
    private static string ToConnectionString(string value)
    {
        if (!value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) && !value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase))
            return value;

        var uri = new Uri(value);
        var userInfo = uri.UserInfo.Split(':', 2);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')) is { Length: > 0 } database ? database : "postgres",
        };
        if (userInfo[0].Length > 0)
            builder.Username = Uri.UnescapeDataString(userInfo[0]);
        if (userInfo.Length == 2)
            builder.Password = Uri.UnescapeDataString(userInfo[1]);
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var (key, setting) = pair.Split('=', 2) is [var k, var v] ? (k, v) : (pair, "");
            builder[Uri.UnescapeDataString(key)] = Uri.UnescapeDataString(setting);
        }
        return builder.ConnectionString;
    }

    private static async Task<PostgreSqlContainer?> TryStartContainerAsync()
    {
        try
        {
            // The private clusters' major version, with the same settings as theirs.
            var container = new PostgreSqlBuilder("postgres:15-alpine")
                .WithCommand("-c", "max_connections=300", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
                .Build();
            await container.StartAsync();
            return container;
        }
        catch (DockerUnavailableException)
        {
            return null;
        }
    }

    private static void DeleteDirectory(string directory)
    {
        try { Directory.Delete(directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static async Task<Dictionary<string, string>> RunNodeScriptAsync(string command, string directory)
    {
        var script = Path.Combine(RepositoryRoot.Path, "scripts", "postgres-node");
        var start = new ProcessStartInfo("bash", [script, command, directory])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["POSTGRES_NODE_FAST"] = "1" },
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"scripts/postgres-node {command} failed ({process.ExitCode}): {await stderr}");

        return (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2))
            .Where(p => p.Length == 2)
            .ToDictionary(p => p[0], p => p[1]);
    }
}
