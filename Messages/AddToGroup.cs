namespace SocketStarter.Messages;

/// <summary>Add a connection to a group; the hub instance holding it acts, the others ignore it.</summary>
public record AddToGroup
{
    public required string ConnectionId { get; init; }
    public required string Group { get; init; }
}
