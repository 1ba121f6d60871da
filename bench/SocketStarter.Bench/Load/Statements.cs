using System.Text.RegularExpressions;
using Npgsql;

namespace SocketStarter.Bench.Load;

/// <summary>
/// What the database spent its time on in the measured window, by statement, from
/// <c>pg_stat_statements</c> (<c>--statements</c>): the target's database's counters are reset when the
/// window opens and read when it closes. A statement's time includes what it waited for, so a lock
/// that a statement queues on shows as a mean far above its work (a room's flush lock, a room's row).
/// </summary>
public sealed partial class StatementProbe(string adminConnectionString, string databaseName)
{
    /// <summary>How many statements are kept, by their total time in the window.</summary>
    public const int Top = 8;

    public async Task StartAsync()
    {
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync();
        await using var reset = new NpgsqlCommand("SELECT pg_stat_statements_reset(0::oid, d.oid, 0::bigint) FROM pg_database d WHERE d.datname = $1", connection)
        {
            Parameters = { new() { Value = databaseName } },
        };
        await reset.ExecuteNonQueryAsync();
    }

    public async Task<IReadOnlyList<StatementStat>> StopAsync()
    {
        await using var connection = new NpgsqlConnection(adminConnectionString);
        await connection.OpenAsync();
        await using var read = new NpgsqlCommand($"""
            SELECT s.calls, s.mean_exec_time, s.max_exec_time, s.total_exec_time, s.query
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = $1 AND s.calls > 0
            ORDER BY s.total_exec_time DESC LIMIT {Top}
            """, connection)
        {
            Parameters = { new() { Value = databaseName } },
        };
        var stats = new List<StatementStat>();
        await using var reader = await read.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            stats.Add(new StatementStat(
                OneLine(reader.GetString(4)),
                reader.GetInt64(0),
                Math.Round(reader.GetDouble(1), 3),
                Math.Round(reader.GetDouble(2), 1),
                Math.Round(reader.GetDouble(3), 1)));
        }
        return stats;
    }

    /// <summary>The statement on one line, shortened for the table (the JSON keeps 300 characters).</summary>
    private static string OneLine(string query)
    {
        var line = Spaces().Replace(query, " ").Trim();
        return line.Length <= 300 ? line : line[..300] + "…";
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}

/// <summary>One statement over the measured window: its calls, mean and max time (waits included), and total, in milliseconds.</summary>
public sealed record StatementStat(string Query, long Calls, double MeanMs, double MaxMs, double TotalMs);
