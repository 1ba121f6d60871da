using MassTransit;
using SocketStarter.GatewayWorker.Shards;

namespace SocketStarter.GatewayWorker.Consumers;

/// <summary>Hands the other workers' heartbeats to this worker's shard balancer.</summary>
public sealed class WorkerHeartbeatConsumer(ShardBalancer balancer) : IConsumer<WorkerHeartbeat>
{
    public Task Consume(ConsumeContext<WorkerHeartbeat> context)
    {
        balancer.Observe(context.Message);
        return Task.CompletedTask;
    }
}
