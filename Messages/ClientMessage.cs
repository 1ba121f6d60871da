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

    /// <summary>The authenticated user's display name, from the hub's configured name claim; null in demo mode.</summary>
    public string? UserName { get; init; }
    public required DateTimeOffset ReceivedAt { get; init; }

    /// <summary>
    /// Earlier seqs of this connection whose publish the hub could not confirm and reported to the
    /// client as failed. The hub never re-sends them, so workers do not wait for them; one that
    /// reached the queue after all is applied at most once, and only before anything after it.
    /// </summary>
    public IReadOnlyList<long>? VoidedSeqs { get; init; }
}
