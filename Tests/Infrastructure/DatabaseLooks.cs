using Npgsql;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>What the test's database is doing, seen from a connection of the test's own.</summary>
public static class DatabaseLooks
{
    /// <summary>Sessions of the connection's database waiting for a lock (a fresh look each call when the connection is in no transaction).</summary>
    public static async Task<long> SessionsWaitingForALockAsync(this NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
