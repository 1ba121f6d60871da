namespace SocketStarter.Messages;

/// <summary>The connection closed. <see cref="Seq"/> is the connection's last seq: nothing follows it.</summary>
public record ClientDisconnected
{
    public required string ConnectionId { get; init; }
    public required string HubInstanceId { get; init; }
    public required long Seq { get; init; }
    public string? UserId { get; init; }
    public required DateTimeOffset DisconnectedAt { get; init; }

    /// <inheritdoc cref="ClientMessage.VoidedSeqs"/>
    public IReadOnlyList<long>? VoidedSeqs { get; init; }
}
