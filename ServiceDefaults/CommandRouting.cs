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
}
