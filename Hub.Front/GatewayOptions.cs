using System.ComponentModel.DataAnnotations;

namespace SocketStarter.HubFront;

/// <summary>The hub's settings, section <c>Gateway</c>. Checked once at start-up.</summary>
public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>Id of this hub instance on the wire; unique per process unless set.</summary>
    [Required(ErrorMessage = "Gateway:InstanceId must not be empty."), RegularExpression("^[A-Za-z0-9_.-]{1,64}$", ErrorMessage = "Gateway:InstanceId must be 1-64 letters, digits, '.', '_' or '-'.")]
    public string InstanceId { get; set; } = Guid.NewGuid().ToString("N")[..12];

    /// <summary>
    /// The exchange every client event is published to: the application's (its workers'
    /// <c>Worker:Queue</c>), a consistent-hash exchange over its shard queues. Deployment
    /// configuration names it; the hub itself knows no application.
    /// </summary>
    [Required(ErrorMessage = "Gateway:UpstreamExchange must name the workers' exchange."),
     RegularExpression("^[A-Za-z0-9_.:-]{1,200}$", ErrorMessage = "Gateway:UpstreamExchange must be an exchange name (letters, digits, '.', '_', ':' or '-').")]
    public string UpstreamExchange { get; set; } = "";

    /// <summary>Largest accepted payload of one event, in UTF-8 bytes of its JSON.</summary>
    [Range(16, 16 * 1024 * 1024, ErrorMessage = "Gateway:MaxPayloadBytes must be between 16 and 16777216.")]
    public int MaxPayloadBytes { get; set; } = 32 * 1024;

    /// <summary>How long a client's Send waits for the broker's confirm before it fails.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00", ErrorMessage = "Gateway:PublishTimeout must be between 00:00:00.100 and 00:01:00.")]
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often this instance tells workers it is alive.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "Gateway:HeartbeatInterval must be between 00:00:01 and 00:10:00.")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How many downstream sends this instance lets wait for slow clients at once before it takes
    /// further commands from its queue (they wait there). A client that reads nothing is closed by
    /// SignalR after its transport's send timeout; until then its sends wait here, not the others'.
    /// </summary>
    [Range(1, 10_000_000, ErrorMessage = "Gateway:MaxPendingSends must be between 1 and 10000000.")]
    public int MaxPendingSends { get; set; } = 100_000;

    /// <summary>
    /// How many bytes of payload those waiting sends may hold at once (a waiting send keeps its
    /// message until the slow client takes it or is closed). Past this the instance takes no
    /// further commands from its queue until some finish; one send larger than the whole budget
    /// still goes, alone. Bounds the hub's memory by what it holds, not only by how many.
    /// </summary>
    [Range(typeof(long), "1024", "68719476736", ErrorMessage = "Gateway:MaxPendingSendBytes must be between 1024 and 68719476736.")]
    public long MaxPendingSendBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>
    /// A client whose socket takes nothing for this long while the hub has something for it is
    /// closed (SignalR's transport send timeout); it resumes its session when it reads again.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "Gateway:SlowClientTimeout must be between 00:00:01 and 00:10:00.")]
    public TimeSpan SlowClientTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long the hub remembers the newest ordered flush it applied for a group
    /// (<see cref="Consumers.OrderFence"/>): a late copy of an older flush's command that arrives
    /// within this time is dropped. Late copies come when a broker's block on publishers ends, so
    /// this should outlast the longest block expected; each group seen in it costs about 200 bytes.
    /// </summary>
    [Range(typeof(TimeSpan), "00:01:00", "7.00:00:00", ErrorMessage = "Gateway:OrderFenceRetention must be between 00:01:00 and 7.00:00:00.")]
    public TimeSpan OrderFenceRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Largest SignalR frame. Kept well above <see cref="MaxPayloadBytes"/> so an oversized payload
    /// gets a clear error instead of SignalR closing the connection.
    /// </summary>
    public long MaxFrameBytes => (long)MaxPayloadBytes * 4 + 4096;
}
