using System.Text.Json;

namespace SocketStarter.Messages;

/// <summary>Deliver an event to every connection in a group, except the ones listed.</summary>
public record SendToGroup
{
    public required string Group { get; init; }
    public IReadOnlyList<string>? ExceptConnectionIds { get; init; }
    public required string Type { get; init; }
    public required JsonElement Payload { get; init; }
}
