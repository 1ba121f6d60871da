using MassTransit;
using Microsoft.Extensions.Options;
using SocketStarter.ChatWorker.Gateway;
using SocketStarter.Messages;

namespace SocketStarter.ChatWorker.Consumers;

/// <summary>The workers' queue: quorum, shared by every worker, with bounded retries before the error queue.</summary>
public sealed class UpstreamConsumerDefinition : ConsumerDefinition<UpstreamConsumer>
{
    private readonly WorkerOptions _options;

    public UpstreamConsumerDefinition(IOptions<WorkerOptions> options)
    {
        _options = options.Value;
        EndpointName = _options.Queue;
        ConcurrentMessageLimit = _options.ConcurrentMessageLimit;
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<UpstreamConsumer> consumerConfigurator,
        IRegistrationContext context)
    {
        if (endpointConfigurator is IRabbitMqReceiveEndpointConfigurator rabbit)
        {
            rabbit.SetQuorumQueue();
            rabbit.PrefetchCount = _options.PrefetchCount;
        }

        if (_options.RetryLimit > 0)
        {
            endpointConfigurator.UseMessageRetry(r =>
                r.Intervals(Enumerable.Range(1, _options.RetryLimit).Select(i => TimeSpan.FromMilliseconds(100 * i)).ToArray()));
        }

        // One connection's events in this worker go one at a time, in the order they arrived, so
        // they do not race each other into gaps; different connections still run in parallel.
        var partitioner = endpointConfigurator.CreatePartitioner(_options.ConcurrentMessageLimit);
        consumerConfigurator.Message<ClientConnected>(m => m.UsePartitioner(partitioner, c => c.Message.ConnectionId));
        consumerConfigurator.Message<ClientMessage>(m => m.UsePartitioner(partitioner, c => c.Message.ConnectionId));
        consumerConfigurator.Message<ClientDisconnected>(m => m.UsePartitioner(partitioner, c => c.Message.ConnectionId));
    }
}
