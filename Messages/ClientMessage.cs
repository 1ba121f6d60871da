using System.Text.Json;

namespace SocketStarter.Messages;

/// <summary>
/// An event a client sent through <c>Send(type, payload)</c>, accepted by the hub.
/// <see cref="Seq"/> numbers the events of one connection 1, 2, 3 … in the order the hub accepted them.
/// </summary>
public record ClientMessage
{
    public required string ConnectionId { get; init; }
    public required string HubInstanceId { get; init; }
    public required long Seq { get; init; }
    public required string Type { get; init; }
    public required JsonElement Payload { get; init; }
    public string? UserId { get; init; }
    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>
    /// Earlier seqs of this connection whose publish the hub could not confirm and reported to the
    /// client as failed. They will never be re-sent; a worker treats them as applied with no effect.
    /// </summary>
    public IReadOnlyList<long>? VoidedSeqs { get; init; }
}
