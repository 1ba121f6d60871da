using MassTransit;
using SocketStarter.ChatWorker.Gateway;
using SocketStarter.Messages;

namespace SocketStarter.ChatWorker.Consumers;

/// <summary>
/// Records hub instances' heartbeats. Each worker has its own temporary queue for them, so they are
/// never stuck behind the backlog of client events (which would make a live hub look dead).
/// </summary>
public sealed class HeartbeatConsumer(HubInstances instances) : IConsumer<HubInstanceHeartbeat>
{
    public Task Consume(ConsumeContext<HubInstanceHeartbeat> context) =>
        instances.RecordAsync(context.Message, context.CancellationToken);
}
