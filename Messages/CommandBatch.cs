namespace SocketStarter.Messages;

/// <summary>
/// Several commands for one hub instance, applied by it one after the other in the order listed, as
/// if each had come alone. A worker sends one when a flush has more than one command for an
/// instance: one publish and one broker confirm instead of one of each per command. Sent only to
/// an instance whose heartbeat says it takes them (<see cref="HubInstanceHeartbeat.TakesCommandBatches"/>);
/// a hub that does not know this type would set it aside unapplied.
/// </summary>
public record CommandBatch
{
    public required IReadOnlyList<BatchedCommand> Commands { get; init; }
}

/// <summary>
/// One command of a <see cref="CommandBatch"/>: exactly one of the commands is set. A group's command
/// carries the key and number of the ordered flush that sent it, as a command sent alone carries
/// them in its headers.
/// </summary>
public record BatchedCommand
{
    public SendToConnections? SendToConnections { get; init; }
    public SendToGroup? SendToGroup { get; init; }
    public SendToUser? SendToUser { get; init; }
    public SendToAll? SendToAll { get; init; }
    public AddToGroup? AddToGroup { get; init; }
    public RemoveFromGroup? RemoveFromGroup { get; init; }
    public CloseConnection? CloseConnection { get; init; }
    public string? OrderKey { get; init; }
    public long? OrderFlush { get; init; }

    /// <summary>The command in its place; <see cref="ArgumentException"/> for anything that is not a downstream command.</summary>
    public static BatchedCommand Of(object command, string? orderKey = null, long? orderFlush = null) => command switch
    {
        SendToConnections c => new() { SendToConnections = c, OrderKey = orderKey, OrderFlush = orderFlush },
        SendToGroup c => new() { SendToGroup = c, OrderKey = orderKey, OrderFlush = orderFlush },
        SendToUser c => new() { SendToUser = c, OrderKey = orderKey, OrderFlush = orderFlush },
        SendToAll c => new() { SendToAll = c, OrderKey = orderKey, OrderFlush = orderFlush },
        AddToGroup c => new() { AddToGroup = c, OrderKey = orderKey, OrderFlush = orderFlush },
        RemoveFromGroup c => new() { RemoveFromGroup = c, OrderKey = orderKey, OrderFlush = orderFlush },
        CloseConnection c => new() { CloseConnection = c, OrderKey = orderKey, OrderFlush = orderFlush },
        _ => throw new ArgumentException($"{command.GetType().Name} is not a downstream command.", nameof(command)),
    };
}
