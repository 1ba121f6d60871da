using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace SocketStarter.Bench.Systems;

/// <summary>Live objects of one type in a heap dump: how many and their bytes (shallow size).</summary>
public sealed record TypeTotal(string Type, long Count, long Bytes);

/// <summary>
/// The managed heap of a service by type, from <c>dotnet-gcdump</c> (a full, blocking collection
/// first, so only live objects count). The tool is a .NET global tool:
/// <c>dotnet tool install -g dotnet-gcdump</c>.
/// </summary>
public static partial class HeapDump
{
    public static string? FindTool()
    {
        var home = Environment.GetEnvironmentVariable("HOME") ?? "";
        var candidates = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Append(Path.Combine(home, ".dotnet", "tools"));
        return candidates.Select(d => Path.Combine(d, "dotnet-gcdump")).FirstOrDefault(File.Exists);
    }

    /// <summary>Dumps the heap of <paramref name="service"/> into <paramref name="directory"/> and returns its totals by type.</summary>
    public static async Task<IReadOnlyList<TypeTotal>> CollectAsync(Service service, string directory, string label)
    {
        var tool = FindTool() ?? throw new BenchException("--heap-by-type needs dotnet-gcdump: dotnet tool install -g dotnet-gcdump");
        var file = Path.Combine(directory, $"{service.Name}-{label}.gcdump");
        await RunAsync(tool, ["collect", "-p", service.Pid.ToString(CultureInfo.InvariantCulture), "-o", file, "-t", "300"]);
        var report = await RunAsync(tool, ["report", file]);
        return Parse(report);
    }

    /// <summary>
    /// Reads <c>dotnet-gcdump report</c>: lines of "size count type [assembly]" where size is the
    /// average size of one object of the row, a type split into size classes ("(Bytes &gt; 10K)")
    /// summed back into one.
    /// </summary>
    public static IReadOnlyList<TypeTotal> Parse(string report)
    {
        var totals = new Dictionary<string, (long Count, long Bytes)>();
        foreach (var line in report.Split('\n'))
        {
            var m = Row().Match(line);
            if (!m.Success)
                continue;
            var type = SizeClass().Replace(m.Groups[3].Value, "").Trim();
            if (type.EndsWith(']') && type.LastIndexOf(" [", StringComparison.Ordinal) is var at and > 0)
                type = type[..at];
            var count = long.Parse(m.Groups[2].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);
            var bytes = long.Parse(m.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture) * count;
            var (c, b) = totals.GetValueOrDefault(type);
            totals[type] = (c + count, b + bytes);
        }
        return totals.Select(t => new TypeTotal(t.Key, t.Value.Count, t.Value.Bytes)).OrderByDescending(t => t.Bytes).ToList();
    }

    /// <summary>What <paramref name="connections"/> added between two dumps, per connection, largest first.</summary>
    public static HeapByType PerConnection(IReadOnlyList<TypeTotal> before, IReadOnlyList<TypeTotal> after, int connections, int top)
    {
        var n = Math.Max(1, connections);
        var old = before.ToDictionary(t => t.Type);
        var added = after.Select(t =>
            {
                var b = old.GetValueOrDefault(t.Type);
                return new TypeCost(t.Type, Math.Round((t.Count - (b?.Count ?? 0)) / (double)n, 2), Math.Round((t.Bytes - (b?.Bytes ?? 0)) / (double)n, 0));
            })
            .OrderByDescending(t => t.BytesPerConnection)
            .ToList();
        var live = Math.Round((after.Sum(t => t.Bytes) - before.Sum(t => t.Bytes)) / (double)n, 0);
        var shown = added.Take(top).ToList();
        return new HeapByType(live, shown, Math.Round(live - shown.Sum(t => t.BytesPerConnection), 0));
    }

    private static async Task<string> RunAsync(string tool, string[] arguments)
    {
        var start = new ProcessStartInfo(tool, arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new BenchException($"dotnet-gcdump {arguments[0]} failed ({process.ExitCode}): {await error}{await output}");
        return await output;
    }

    [GeneratedRegex(@"^\s*([\d,]+)\s+([\d,]+)\s+(\S.*?)\s*$")]
    private static partial Regex Row();

    [GeneratedRegex(@"\s*\(Bytes\s*>\s*[\d.]+[KM]?\)")]
    private static partial Regex SizeClass();
}

/// <summary>Live managed bytes per connection (from two heap dumps), and the types that hold most of them.</summary>
public sealed record HeapByType(double LiveBytesPerConnection, IReadOnlyList<TypeCost> Types, double OtherBytesPerConnection);

public sealed record TypeCost(string Type, double CountPerConnection, double BytesPerConnection);
