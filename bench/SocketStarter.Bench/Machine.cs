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
}
