using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace SocketStarter.GatewayWorker.Store;

/// <summary>
/// The workers' PostgreSQL database, read from <c>ConnectionStrings:postgres</c>: an Npgsql
/// connection string (<c>Host=…;Database=…;Username=…;Password=…</c>) or a URI
/// (<c>postgresql://user:password@host:5432/database</c>, as managed services hand them out).
/// </summary>
public static class GatewayDatabase
{
    public const string Setting = "ConnectionStrings:postgres";

    // Unless the connection string says otherwise. An event holds a connection only for its
    // transaction (milliseconds), so 20 keep a worker's CPU busy; eight workers then need at most
    // 160 of the server's max_connections (compose and the private clusters allow 300).
    public const int DefaultMaxPoolSize = 20;

    /// <summary>The connection string in Npgsql's form, or a start-up error that names the setting.</summary>
    public static string GetRequiredConnectionString(IConfiguration configuration)
    {
        var value = configuration.GetConnectionString("postgres");
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidOperationException(
                $"{Setting} is not set. Give the workers' database as postgresql://user:password@host:5432/database " +
                "or Host=…;Database=…;Username=…;Password=… (environment variable ConnectionStrings__postgres).");

        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = value.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) || value.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
                ? FromUri(value)
                : new NpgsqlConnectionStringBuilder(value);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or UriFormatException or KeyNotFoundException)
        {
            throw new InvalidOperationException(
                $"{Setting} is not a PostgreSQL connection string ({ex.Message}): expected postgresql://user:password@host:5432/database " +
                "or Host=…;Database=…;Username=…;Password=….", ex);
        }

        if (string.IsNullOrWhiteSpace(builder.Host))
            throw new InvalidOperationException($"{Setting} names no host: expected postgresql://user:password@host:5432/database.");
        if (!value.Contains("pool size", StringComparison.OrdinalIgnoreCase) && !value.Contains("maxpoolsize", StringComparison.OrdinalIgnoreCase))
            builder.MaxPoolSize = DefaultMaxPoolSize;
        // The same few statements run for every event: prepared once per connection, the server
        // skips parsing and planning them. Unless the string says otherwise.
        if (!value.Contains("auto prepare", StringComparison.OrdinalIgnoreCase) && !value.Contains("autoprepare", StringComparison.OrdinalIgnoreCase))
        {
            builder.MaxAutoPrepare = 64;
            builder.AutoPrepareMinUsages = 2;
        }
        // Workers keep no session state (SET LOCAL only), so a pooled connection needs no reset.
        if (!value.Contains("reset on close", StringComparison.OrdinalIgnoreCase))
            builder.NoResetOnClose = true;

        builder.ApplicationName ??= "socketstarter-worker";
        return builder.ConnectionString;
    }

    private static NpgsqlConnectionStringBuilder FromUri(string value)
    {
        var uri = new Uri(value);
        var builder = new NpgsqlConnectionStringBuilder { Host = uri.Host };
        if (uri.Port > 0)
            builder.Port = uri.Port;
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
                builder.Password = Uri.UnescapeDataString(parts[1]);
        }
        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0)
            builder.Database = database;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            builder[Uri.UnescapeDataString(kv[0])] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
        }
        return builder;
    }

    /// <summary>
    /// A failure that goes away when the database comes back (it restarts, the network returns):
    /// the event is tried again for as long as it takes, never parked in the error queue. Not a
    /// conflict with another transaction (<see cref="IsConflict"/>), which Npgsql also counts as
    /// transient: the database is there, the transaction just has to run again.
    /// </summary>
    public static bool IsUnavailable(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is PostgresException { SqlState: SerializationFailure or DeadlockDetected or LockNotAvailable })
                return false;
            if (e is NpgsqlException { IsTransient: true })
                return true;
            // The server went away mid-statement or refused new connections while starting or stopping.
            if (e is PostgresException { SqlState: "57P01" or "57P02" or "57P03" or "53300" } || e is System.Net.Sockets.SocketException)
                return true;
        }
        return false;
    }

    /// <summary>
    /// The transaction lost to another one: chosen as a deadlock's victim, a serialization failure,
    /// or a lock wait past a lock_timeout. Running it again is the cure.
    /// </summary>
    public static bool IsConflict(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is PostgresException { SqlState: SerializationFailure or DeadlockDetected or LockNotAvailable })
                return true;
        }
        return false;
    }

    private const string SerializationFailure = "40001";
    private const string DeadlockDetected = "40P01";
    private const string LockNotAvailable = "55P03";
}

/// <summary>Ready only while the database answers.</summary>
public sealed class DatabaseHealthCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(3));
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(timeout.Token);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("The database does not answer.", ex);
        }
    }
}
