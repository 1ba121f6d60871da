using System.Text.Json;

namespace SocketStarter.Messages;

/// <summary>Deliver an event to every connection of an authenticated user.</summary>
public record SendToUser
{
    public required string UserId { get; init; }
    public required string Type { get; init; }
    public required JsonElement Payload { get; init; }
}
