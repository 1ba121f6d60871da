using System.Globalization;
using SocketStarter.Bench.Systems;

namespace SocketStarter.Bench.Load;

/// <summary>CPU seconds one group of processes used in the measured window, and per message.</summary>
/// <param name="Group">hubs, workers, baseline, broker, database or load generator.</param>
/// <param name="Processes">How many processes the group had (a process and its children count as one).</param>
/// <param name="JitSeconds">Of <paramref name="Seconds"/>, what the .NET tiered JIT's background thread used (recompiling hot code); 0 outside .NET.</param>
public sealed record CpuUse(string Group, int Processes, double Seconds, double? MicrosPerAccepted, double? MicrosPerDelivered,
    double JitSeconds = 0, double? JitMicrosPerAccepted = null);

/// <summary>
/// User + system CPU time of the run's processes from <c>/proc/[pid]/stat</c>, by group: the
/// services by their pid, the broker and the database by the folder their command line names
/// (with every child: the database's backends), the load generator itself. Linux only; elsewhere
/// nothing is counted.
/// </summary>
public sealed class CpuSampler(Func<IEnumerable<Service>> services, IReadOnlyDictionary<string, string> markers)
{
    private static readonly double TicksPerSecond = 100; // CLK_TCK: 100 on every Linux the bench runs on

    // The runtime's tiered compilation worker, as /proc shows a thread's name (cut to 15 characters).
    private const string JitThread = ".NET Tiered Com";

    public static string GroupOf(string serviceName) =>
        serviceName.StartsWith("worker", StringComparison.Ordinal) ? "workers"
        : serviceName.StartsWith("hub", StringComparison.Ordinal) ? "hubs"
        : serviceName;

    /// <summary>Each counted process now: its group, its CPU ticks so far, whether it is a group's own process (not a child), and its JIT thread's ticks.</summary>
    public Dictionary<int, (string Group, long Ticks, bool Root, long JitTicks)> Take()
    {
        var result = new Dictionary<int, (string Group, long Ticks, bool Root, long JitTicks)>();
        if (!Directory.Exists("/proc/self"))
            return result;
        var processes = new Dictionary<int, (int Parent, long Ticks)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
                continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                // After the command name in parentheses (which may hold spaces): state ppid … utime(14) stime(15).
                var fields = Fields(stat);
                processes[pid] = (int.Parse(fields[1], CultureInfo.InvariantCulture), Ticks(fields));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                // Gone meanwhile, or not ours to read.
            }
        }

        // The services of now: a worker replaced during the run is a new process.
        var roots = services().Where(s => !s.HasExited).ToDictionary(s => s.Pid, s => GroupOf(s.Name));
        roots[Environment.ProcessId] = "load generator";
        foreach (var pid in processes.Keys)
        {
            if (roots.ContainsKey(pid))
                continue;
            string cmdline;
            try { cmdline = File.ReadAllText($"/proc/{pid}/cmdline"); }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException) { continue; }
            foreach (var (group, marker) in markers)
            {
                if (cmdline.Contains(marker, StringComparison.Ordinal))
                    roots[pid] = group;
            }
        }

        foreach (var (pid, (_, ticks)) in processes)
        {
            // The nearest root up the parent chain: a child counts with the process that started it.
            var at = pid;
            string? group = null;
            for (var hops = 0; hops < 32 && group is null && at > 1; hops++)
            {
                if (roots.TryGetValue(at, out var g))
                    group = g;
                else if (processes.TryGetValue(at, out var p))
                    at = p.Parent;
                else
                    break;
            }
            if (group is not null)
                result[pid] = (group, ticks, roots.ContainsKey(pid), roots.ContainsKey(pid) ? JitTicks(pid) : 0);
        }
        return result;
    }

    // After the command name in parentheses (which may hold spaces): state ppid … utime(14) stime(15).
    private static string[] Fields(string stat) => stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

    private static long Ticks(string[] fields) =>
        long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);

    private static long JitTicks(int pid)
    {
        long ticks = 0;
        try
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    var stat = File.ReadAllText(Path.Combine(task, "stat"));
                    var open = stat.IndexOf('(', StringComparison.Ordinal);
                    if (open >= 0 && stat.AsSpan(open + 1).StartsWith(JitThread, StringComparison.Ordinal))
                        ticks += Ticks(Fields(stat));
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
                {
                    // The thread ended meanwhile.
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The process ended meanwhile.
        }
        return ticks;
    }

    /// <summary>
    /// What each group used between two snapshots, per accepted and per delivered message: per
    /// process, so that one that ended in the window takes nothing away and one that started in it
    /// counts from its start. (A replaced worker's time in the window before it stopped is therefore
    /// left out: the swap scenario's CPU table is low by that much.)
    /// </summary>
    public static IReadOnlyList<CpuUse> Between(Dictionary<int, (string Group, long Ticks, bool Root, long JitTicks)> before, Dictionary<int, (string Group, long Ticks, bool Root, long JitTicks)> after, long accepted, long delivered)
    {
        var uses = new List<CpuUse>();
        foreach (var g in after.GroupBy(p => p.Value.Group).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var ticks = g.Sum(p => p.Value.Ticks - (before.TryGetValue(p.Key, out var b) && b.Ticks <= p.Value.Ticks ? b.Ticks : 0));
            var jitTicks = g.Sum(p => p.Value.JitTicks - (before.TryGetValue(p.Key, out var b) && b.JitTicks <= p.Value.JitTicks ? b.JitTicks : 0));
            // The services that ran in the window: a worker replaced in it counts with its successor.
            var processes = g.Where(p => p.Value.Root).Select(p => p.Key)
                .Union(before.Where(p => p.Value.Root && p.Value.Group == g.Key).Select(p => p.Key)).Count();
            var seconds = ticks / TicksPerSecond;
            var jitSeconds = jitTicks / TicksPerSecond;
            uses.Add(new CpuUse(g.Key, processes, Math.Round(seconds, 2),
                accepted > 0 ? Math.Round(seconds * 1e6 / accepted, 1) : null,
                delivered > 0 ? Math.Round(seconds * 1e6 / delivered, 1) : null,
                Math.Round(jitSeconds, 2),
                accepted > 0 ? Math.Round(jitSeconds * 1e6 / accepted, 1) : null));
        }
        return uses;
    }
}
