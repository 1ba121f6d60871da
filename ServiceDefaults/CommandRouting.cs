namespace SocketStarter.ServiceDefaults;

/// <summary>
/// How a downstream command reaches only the hub instances that hold its targets. Each hub
/// instance's command queue sits behind a fanout exchange of its own (the instance's receive
/// endpoint exchange, <c>gateway-{instance id}</c>, gone with the instance), which is bound both
/// under the shared per-command fanout exchanges (broadcasts, pushes) and under this durable
/// direct exchange with the instance id as routing key (targeted commands). A command sent here
/// for an instance that is gone matches no binding and is dropped: the exchange itself always exists.
/// </summary>
public static class CommandRouting
{
    public const string InstancesExchange = "gateway-instances";

    /// <summary>The hub instance's own command queue and fanout exchange.</summary>
    public static string InstanceEndpoint(string hubInstanceId) => $"gateway-{hubInstanceId}";

    /// <summary>
    /// Header of a command sent by an ordered flush: the order key (a group) whose flush sent it.
    /// With <see cref="OrderFlushHeader"/> it lets a hub drop a late copy of an older flush's command
    /// (a send a worker let go at its publish timeout) that arrives after a newer flush's.
    /// </summary>
    public const string OrderKeyHeader = "SocketStarter-Order-Key";

    /// <summary>
    /// Header of a command sent by an ordered flush: the flush's number (the database server's clock
    /// in microseconds, read under the key's lock), so the flushes of one key are numbered in the
    /// order they ran, on whichever worker.
    /// </summary>
    public const string OrderFlushHeader = "SocketStarter-Order-Flush";
}
