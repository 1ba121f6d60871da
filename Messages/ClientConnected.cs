namespace SocketStarter.Messages;

/// <summary>A client opened a connection on a hub instance. Always seq 1 of that connection.</summary>
public record ClientConnected
{
    public required string ConnectionId { get; init; }
    public required string HubInstanceId { get; init; }
    public required long Seq { get; init; }
    public string? UserId { get; init; }
    public required DateTimeOffset ConnectedAt { get; init; }
}
