namespace SocketStarter.Messages;

/// <summary>A client opened a connection on a hub instance. Always seq 1 of that connection.</summary>
public record ClientConnected
{
    public required string ConnectionId { get; init; }
    public required string HubInstanceId { get; init; }
    public required long Seq { get; init; }
    public string? UserId { get; init; }

    /// <summary>The authenticated user's display name, from the hub's configured name claim; null in demo mode.</summary>
    public string? UserName { get; init; }
    public required DateTimeOffset ConnectedAt { get; init; }
}
