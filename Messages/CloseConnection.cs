namespace SocketStarter.Messages;

/// <summary>Close a connection; the client is told <see cref="Reason"/>.</summary>
public record CloseConnection
{
    public required string ConnectionId { get; init; }
    public required string Reason { get; init; }
}
