using System.Text.Json;

namespace SocketStarter.Messages;

/// <summary>Deliver an event to these connections, wherever they are held.</summary>
public record SendToConnections
{
    public required IReadOnlyList<string> ConnectionIds { get; init; }
    public required string Type { get; init; }
    public required JsonElement Payload { get; init; }
}
