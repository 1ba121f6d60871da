namespace SocketStarter.Messages;

/// <summary>Remove a connection from a group.</summary>
public record RemoveFromGroup
{
    public required string ConnectionId { get; init; }
    public required string Group { get; init; }
}
