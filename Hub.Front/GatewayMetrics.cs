using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace SocketStarter.HubFront;

/// <summary>Gateway counters, tagged with the hub instance so instances can be told apart.</summary>
public sealed class GatewayMetrics
{
    public const string MeterName = "SocketStarter.Gateway";

    private readonly UpDownCounter<long> _connections;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _commands;
    private readonly Counter<long> _fenced;
    private readonly Histogram<long> _batchSize;
    private readonly Histogram<double> _publishDuration;
    private readonly Histogram<double> _commandDelay;
    private readonly Counter<long> _closedByLimits;
    private readonly Counter<long> _pushRequests;
    private readonly UpDownCounter<long> _pendingSends;
    private readonly UpDownCounter<long> _pendingSendBytes;
    private readonly KeyValuePair<string, object?> _instance;

    public GatewayMetrics(IMeterFactory meterFactory, Microsoft.Extensions.Options.IOptions<GatewayOptions> options)
    {
        var meter = meterFactory.Create(MeterName);
        _instance = new("hub.instance", options.Value.InstanceId);
        _connections = meter.CreateUpDownCounter<long>("gateway.connections", description: "Open client connections.");
        _accepted = meter.CreateCounter<long>("gateway.events.accepted", description: "Client events confirmed by the broker.");
        _rejected = meter.CreateCounter<long>("gateway.events.rejected", description: "Client events refused, by reason.");
        _commands = meter.CreateCounter<long>("gateway.commands.applied", description: "Downstream commands applied, by command.");
        _batchSize = meter.CreateHistogram("gateway.command_batch.commands", unit: "{command}", description: "Commands in each command batch received from a worker.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 3, 4, 6, 8, 12, 16, 32, 64] });
        _fenced = meter.CreateCounter<long>("gateway.commands.fenced", description: "Downstream commands dropped as late copies of an older flush of their group, by command.");
        // Fine enough for one hop (a fraction of a millisecond to seconds).
        var hop = new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 75, 100, 250, 500, 1000, 2500, 5000, 10000] };
        _publishDuration = meter.CreateHistogram("gateway.publish.duration", unit: "ms", description: "Time from accepting an event to the broker's confirm.", advice: hop);
        _commandDelay = meter.CreateHistogram("gateway.command.delay", unit: "ms", description: "Time from a worker's publish of a command to this hub handing it to its connections.", advice: hop);
        _closedByLimits = meter.CreateCounter<long>("gateway.connections.closed_by_limits", description: "Connections refused or closed by an abuse limit, by reason.");
        _pushRequests = meter.CreateCounter<long>("gateway.push.requests", description: "Push API requests, by command and outcome.");
        _pendingSends = meter.CreateUpDownCounter<long>("gateway.sends.pending", description: "Downstream sends waiting for a slow client to read.");
        _pendingSendBytes = meter.CreateUpDownCounter<long>("gateway.sends.pending_bytes", description: "Payload bytes held by downstream sends waiting for a slow client to read.");

        // The series whose labels are known at 0 from the start: a dashboard or an alert sees
        // "none yet" rather than no series.
        _accepted.Add(0, _instance);
        _connections.Add(0, _instance);
        _pendingSends.Add(0, _instance);
        _pendingSendBytes.Add(0, _instance);
        foreach (var command in Commands)
        {
            _commands.Add(0, _instance, new("command", command));
            _fenced.Add(0, _instance, new("command", command));
        }
    }

    /// <summary>The downstream commands a hub applies (GatewayCommandsConsumer), by the name the metrics give them.</summary>
    private static readonly string[] Commands =
    [
        nameof(SocketStarter.Messages.SendToConnections), nameof(SocketStarter.Messages.SendToGroup), nameof(SocketStarter.Messages.SendToUser),
        nameof(SocketStarter.Messages.SendToAll), nameof(SocketStarter.Messages.AddToGroup), nameof(SocketStarter.Messages.RemoveFromGroup),
        nameof(SocketStarter.Messages.CloseConnection),
    ];

    public void ConnectionOpened() => _connections.Add(1, _instance);
    public void ConnectionClosed() => _connections.Add(-1, _instance);
    public void Accepted(TimeSpan publishTime)
    {
        _accepted.Add(1, _instance);
        _publishDuration.Record(publishTime.TotalMilliseconds, _instance);
    }

    public void Rejected(string reason) => _rejected.Add(1, _instance, new("reason", reason));
    public void CommandApplied(string command, DateTime? sentTime = null)
    {
        _commands.Add(1, _instance, new("command", command));
        if (sentTime is { } sent)
            _commandDelay.Record((DateTime.UtcNow - sent).TotalMilliseconds, _instance);
    }
    public void BatchReceived(int commands) => _batchSize.Record(commands, _instance);
    public void CommandFenced(string command) => _fenced.Add(1, _instance, new("command", command));
    public void ClosedByLimits(string reason) => _closedByLimits.Add(1, _instance, new("reason", reason));
    public void SendPending(int delta, long bytes)
    {
        _pendingSends.Add(delta, _instance);
        _pendingSendBytes.Add(bytes, _instance);
    }
    public void PushRequest(string command, string outcome) => _pushRequests.Add(1, _instance, new("command", command), new("outcome", outcome));

    public static long Timestamp() => Stopwatch.GetTimestamp();
}
