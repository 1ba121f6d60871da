using System.Collections.Concurrent;
using System.Diagnostics;
using HdrHistogram;

namespace SocketStarter.Bench.Load;

/// <summary>
/// What a run measures, shared by every client: latency from send to delivery at each receiver
/// (microseconds, high dynamic range), counts, errors by kind. Safe to record from any thread.
/// </summary>
public sealed class Stats
{
    private const long HighestMicros = 120_000_000;
    private readonly object _lock = new();
    private readonly LongHistogram _total = new(HighestMicros, 3);
    private LongHistogram _interval = new(HighestMicros, 3);
    private readonly LongHistogram _window = new(HighestMicros, 3);
    private readonly LongHistogram _connect = new(HighestMicros, 3);
    private readonly LongHistogram _accept = new(HighestMicros, 3);
    private double _deliverySumMicros, _acceptSumMicros;
    private readonly ConcurrentDictionary<string, long> _errors = new();
    private long _sent, _accepted, _delivered, _duplicates, _expected;
    private long _measureFrom = long.MaxValue, _measureTo = long.MaxValue;
    private long _windowFrom = long.MaxValue, _windowTo = long.MaxValue;
    private long _acceptedInMeasure, _deliveredInMeasure;
    private long _firstDelivery = long.MaxValue, _lastDelivery;

    public long Sent => Interlocked.Read(ref _sent);
    public long Accepted => Interlocked.Read(ref _accepted);
    public long Delivered => Interlocked.Read(ref _delivered);
    public long Duplicates => Interlocked.Read(ref _duplicates);
    public long ExpectedDeliveries => Interlocked.Read(ref _expected);
    public long AcceptedInMeasure => Interlocked.Read(ref _acceptedInMeasure);
    public long DeliveredInMeasure => Interlocked.Read(ref _deliveredInMeasure);
    public IReadOnlyDictionary<string, long> Errors => _errors;

    /// <summary>From now on latencies count (the warm-up is over).</summary>
    public void StartMeasuring() => Interlocked.Exchange(ref _measureFrom, Stopwatch.GetTimestamp());

    public void StopMeasuring() => Interlocked.Exchange(ref _measureTo, Stopwatch.GetTimestamp());

    /// <summary>Messages sent from now on are also recorded apart (the worker swap).</summary>
    public void OpenWindow() => Interlocked.Exchange(ref _windowFrom, Stopwatch.GetTimestamp());

    public void CloseWindow() => Interlocked.Exchange(ref _windowTo, Stopwatch.GetTimestamp());

    private bool Measuring(long timestamp) => timestamp >= Interlocked.Read(ref _measureFrom) && timestamp < Interlocked.Read(ref _measureTo);

    public void Connected(TimeSpan took)
    {
        lock (_lock)
            _connect.RecordValue(Math.Clamp((long)took.TotalMicroseconds, 1, HighestMicros));
    }

    public void Sending() => Interlocked.Increment(ref _sent);

    /// <param name="sentAt">When the send started (<see cref="Stopwatch.GetTimestamp"/>), for the accept hop (send to the hub's answer); none for a send not timed.</param>
    public void RecordAccepted(int receivers, long? sentAt = null)
    {
        Interlocked.Increment(ref _accepted);
        Interlocked.Add(ref _expected, receivers);
        var now = Stopwatch.GetTimestamp();
        if (!Measuring(now))
            return;
        Interlocked.Increment(ref _acceptedInMeasure);
        if (sentAt is { } from && Measuring(from))
        {
            var micros = Math.Clamp((long)Stopwatch.GetElapsedTime(from, now).TotalMicroseconds, 1, HighestMicros);
            lock (_lock)
            {
                _accept.RecordValue(micros);
                _acceptSumMicros += micros;
            }
        }
    }

    public void Error(string kind) => _errors.AddOrUpdate(kind, 1, (_, n) => n + 1);

    public void Duplicate() => Interlocked.Increment(ref _duplicates);

    public void RecordDelivered(long sentAt)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _delivered);
        if (now < Interlocked.Read(ref _firstDelivery))
            Interlocked.Exchange(ref _firstDelivery, now);
        if (now > Interlocked.Read(ref _lastDelivery))
            Interlocked.Exchange(ref _lastDelivery, now);
        if (Measuring(now))
            Interlocked.Increment(ref _deliveredInMeasure);
        var micros = Math.Clamp((long)Stopwatch.GetElapsedTime(sentAt, now).TotalMicroseconds, 1, HighestMicros);
        var inWindow = sentAt >= Interlocked.Read(ref _windowFrom) && sentAt < Interlocked.Read(ref _windowTo);
        lock (_lock)
        {
            _interval.RecordValue(micros);
            if (Measuring(sentAt))
            {
                _total.RecordValue(micros);
                _deliverySumMicros += micros;
            }
            if (inWindow)
                _window.RecordValue(micros);
        }
    }

    /// <summary>
    /// Deliveries per second from the first to the last, drain included: what the target keeps up
    /// with, where accepted/s can run ahead of it into the queue.
    /// </summary>
    public double SustainedDeliveriesPerSecond()
    {
        var first = Interlocked.Read(ref _firstDelivery);
        var last = Interlocked.Read(ref _lastDelivery);
        return last > first ? Math.Round(Delivered / Stopwatch.GetElapsedTime(first, last).TotalSeconds, 1) : 0;
    }

    /// <summary>The p99 since the last call, for live progress.</summary>
    public double? IntervalP99Ms()
    {
        LongHistogram interval;
        lock (_lock)
        {
            interval = _interval;
            _interval = new LongHistogram(HighestMicros, 3);
        }
        return interval.TotalCount == 0 ? null : interval.GetValueAtPercentile(99) / 1000.0;
    }

    public Latency Latency() { lock (_lock) return Load.Latency.Of(_total); }

    public Latency WindowLatency() { lock (_lock) return Load.Latency.Of(_window); }

    public Latency ConnectLatency() { lock (_lock) return Load.Latency.Of(_connect); }

    /// <summary>From a send to the hub's answer (the broker's confirm, for the gateway), measured sends only.</summary>
    public Latency AcceptLatency() { lock (_lock) return Load.Latency.Of(_accept); }

    /// <summary>Means in milliseconds of the measured sends: send to each delivery, send to the hub's answer.</summary>
    public (double Delivery, double Accept) MeanMs()
    {
        lock (_lock)
            return (_total.TotalCount == 0 ? 0 : Math.Round(_deliverySumMicros / _total.TotalCount / 1000, 2),
                _accept.TotalCount == 0 ? 0 : Math.Round(_acceptSumMicros / _accept.TotalCount / 1000, 2));
    }
}

/// <summary>Percentiles in milliseconds.</summary>
public sealed record Latency(long Count, double P50, double P90, double P99, double P999, double Max)
{
    public static Latency Of(HistogramBase h) => h.TotalCount == 0
        ? new Latency(0, 0, 0, 0, 0, 0)
        : new Latency(h.TotalCount, Ms(h.GetValueAtPercentile(50)), Ms(h.GetValueAtPercentile(90)), Ms(h.GetValueAtPercentile(99)),
            Ms(h.GetValueAtPercentile(99.9)), Ms(h.GetMaxValue()));

    private static double Ms(long micros) => Math.Round(micros / 1000.0, 2);
}
