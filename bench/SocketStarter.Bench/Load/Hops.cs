using System.Globalization;

namespace SocketStarter.Bench.Load;

/// <summary>
/// Where an event's time goes, hop by hop, from the services' own histograms (<c>/metrics</c> of the
/// hub and of every worker): their counts, sums and buckets read when the measured window opens and
/// again when it closes, so each hop's mean and median cover the same window as the latency.
/// </summary>
public sealed class HopProbe(IReadOnlyList<Uri> services)
{
    /// <summary>The hops, in the order an event meets them, by their Prometheus names (unit suffix left off).</summary>
    public static readonly IReadOnlyList<(string Metric, string Hop)> Known =
    [
        ("gateway_publish_duration", "hub: accept → broker confirm"),
        ("worker_event_queued", "hub publish → worker takes it up"),
        ("worker_event_applied", "worker: taken up → commit"),
        ("worker_event_replied", "worker: commit → replies confirmed"),
        // Inside that, a group's ordered flush (rooms, echo): the lock is held from the end of the first step to the end of the last.
        ("worker_flush_locked", "  flush: group's lock waited for, rows read"),
        ("worker_flush_published", "  flush: rows sent until confirmed"),
        ("worker_flush_committed", "  flush: sent rows deleted, lock released"),
        ("gateway_command_delay", "worker publish → hub hands to clients"),
        // Not a hop: how many events each commit covered (the count is of commits; mean and median in events, not ms).
        ("worker_batch_events", "worker: events per commit (not ms)"),
    ];

    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private Dictionary<string, Series>? _start;

    public async Task StartAsync() => _start = await ScrapeAsync();

    public async Task<IReadOnlyList<Hop>> StopAsync()
    {
        var end = await ScrapeAsync();
        var hops = new List<Hop>();
        foreach (var (metric, name) in Known)
        {
            if (!end.TryGetValue(metric, out var last))
                continue;
            var first = _start?.GetValueOrDefault(metric) ?? new Series();
            var count = last.Count - first.Count;
            if (count <= 0)
                continue;
            var buckets = last.Buckets.Select(b => (b.Key, Count: b.Value - first.Buckets.GetValueOrDefault(b.Key))).OrderBy(b => b.Key).ToList();
            hops.Add(new Hop(name, (long)count, Math.Round((last.Sum - first.Sum) / count, 2), Median(buckets, count)));
        }
        return hops;
    }

    /// <summary>The median from cumulative bucket counts, interpolated inside its bucket (as Prometheus' histogram_quantile does).</summary>
    private static double? Median(List<(double Le, double Count)> buckets, double total)
    {
        var rank = total / 2;
        var lower = 0.0;
        var below = 0.0;
        foreach (var (le, count) in buckets)
        {
            if (count >= rank)
            {
                if (double.IsPositiveInfinity(le))
                    return null;
                var inBucket = count - below;
                return Math.Round(inBucket <= 0 ? le : lower + (le - lower) * (rank - below) / inBucket, 2);
            }
            lower = le;
            below = count;
        }
        return null;
    }

    private async Task<Dictionary<string, Series>> ScrapeAsync()
    {
        var all = new Dictionary<string, Series>();
        foreach (var service in services)
        {
            string text;
            try
            {
                text = await Http.GetStringAsync(new Uri(service, "metrics"));
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                continue; // a worker replaced meanwhile (the swap): its share is missing from the means
            }
            foreach (var line in text.Split('\n'))
                Add(all, line);
        }
        return all;
    }

    private static void Add(Dictionary<string, Series> all, string line)
    {
        if (line.Length == 0 || line[0] == '#')
            return;
        var nameEnd = line.IndexOfAny(['{', ' ']);
        var valueStart = line.LastIndexOf(' ');
        if (nameEnd <= 0 || valueStart <= nameEnd
            || !double.TryParse(line.AsSpan(valueStart + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            return;
        var name = line[..nameEnd];
        foreach (var (metric, _) in Known)
        {
            if (!name.StartsWith(metric, StringComparison.Ordinal))
                continue;
            var series = all.TryGetValue(metric, out var s) ? s : all[metric] = new Series();
            if (name.EndsWith("_sum", StringComparison.Ordinal))
                series.Sum += value;
            else if (name.EndsWith("_count", StringComparison.Ordinal))
                series.Count += value;
            else if (name.EndsWith("_bucket", StringComparison.Ordinal) && Le(line) is { } le)
                series.Buckets[le] = series.Buckets.GetValueOrDefault(le) + value;
            return;
        }
    }

    private static double? Le(string line)
    {
        var at = line.IndexOf("le=\"", StringComparison.Ordinal);
        if (at < 0)
            return null;
        var end = line.IndexOf('"', at + 4);
        var text = line[(at + 4)..end];
        return text == "+Inf" ? double.PositiveInfinity
            : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var le) ? le : null;
    }

    private sealed class Series
    {
        public double Sum { get; set; }
        public double Count { get; set; }
        public Dictionary<double, double> Buckets { get; } = [];
    }
}

/// <summary>One hop over the measured window: how many passed it, their mean and median in milliseconds.</summary>
public sealed record Hop(string Name, long Count, double MeanMs, double? P50Ms);
