using System.Globalization;
using System.Text.RegularExpressions;

namespace SocketStarter.Tests.Infrastructure;

/// <summary>Reads samples out of a service's <c>/metrics</c> page (Prometheus text format).</summary>
public static partial class Prometheus
{
    /// <summary>The sum of a metric's samples whose labels contain <paramref name="label"/>.</summary>
    public static double Sample(string exposition, string metric, string label) =>
        SampleLine().Matches(exposition)
            .Where(m => m.Groups["name"].Value == metric && m.Groups["labels"].Value.Contains(label, StringComparison.Ordinal))
            .Sum(m => double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture));

    /// <summary>Whether the exposition has a sample of <paramref name="metric"/> whose labels contain <paramref name="label"/>, whatever its value.</summary>
    public static bool Has(string exposition, string metric, string label) =>
        SampleLine().Matches(exposition).Any(m => m.Groups["name"].Value == metric && m.Groups["labels"].Value.Contains(label, StringComparison.Ordinal));

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?<labels>[^}]*)\})? (?<value>\S+)", RegexOptions.Multiline)]
    private static partial Regex SampleLine();
}
