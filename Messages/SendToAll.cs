using System.Text.Json;

namespace SocketStarter.Messages;

/// <summary>Deliver an event to every connection on every hub instance, except the ones listed.</summary>
public record SendToAll
{
    public IReadOnlyList<string>? ExceptConnectionIds { get; init; }
    public required string Type { get; init; }
    public required JsonElement Payload { get; init; }
}
