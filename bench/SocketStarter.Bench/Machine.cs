namespace SocketStarter.Bench;

public sealed record MachineInfo(string Date, int Cores, string Cpu, string LoadAverage, string Os, string Runtime);

/// <summary>What the figures were measured on: they mean little without it.</summary>
public static class Machine
{
    public static MachineInfo Describe() => new(
        DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", System.Globalization.CultureInfo.InvariantCulture),
        Environment.ProcessorCount,
        CpuModel(),
        LoadAverage(),
        System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription);

    /// <summary>1, 5 and 15 minute load averages: other work on the machine shows here.</summary>
    public static string LoadAverage()
    {
        try { return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "unknown"; }
    }

    private static string CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))
                ?.Split(':', 2)[1].Trim() ?? "unknown";
        }
        catch (IOException) { return "unknown"; }
    }

    /// <summary>The machine's CPU time so far from the first line of <c>/proc/stat</c> (ticks): all of it, and what the host gave to others (steal).</summary>
    public static (long Total, long Steal)? CpuTimes()
    {
        try
        {
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user).
            var ticks = fields.Skip(1).Take(8).Select(f => long.Parse(f, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            return (ticks.Sum(), ticks[7]);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>
    /// Steal between two readings, in percent of the machine's time: on a shared VM, time the
    /// services wanted and the host gave to another guest. It makes a run slower than the same
    /// run on a quiet host; compare runs with similar figures.
    /// </summary>
    public static double? StolenPercent((long Total, long Steal)? before, (long Total, long Steal)? after) =>
        before is { } b && after is { } a && a.Total > b.Total ? Math.Round(100.0 * (a.Steal - b.Steal) / (a.Total - b.Total), 1) : null;
}
