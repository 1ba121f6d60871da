using MassTransit;
using Microsoft.Extensions.Options;

namespace SocketStarter.GatewayWorker.Consumers;

/// <summary>
/// How a shard queue is consumed: quorum, single active consumer, bounded retries before the
/// shard's error queue. The endpoints themselves are connected and stopped by the
/// <see cref="Shards.ShardBalancer"/> as this worker takes shards and gives them up.
/// </summary>
public sealed partial class UpstreamConsumerDefinition : ConsumerDefinition<UpstreamConsumer>
{
    private readonly WorkerOptions _options;

    public UpstreamConsumerDefinition(IOptions<WorkerOptions> options, ILogger<UpstreamConsumerDefinition> logger)
    {
        _options = options.Value;
        if (_options.ConcurrentMessageLimit < _options.PrefetchCount)
            LogFewerSlotsThanPrefetch(logger, _options.ConcurrentMessageLimit, _options.PrefetchCount);
    }

    /// <summary>A shard queue's endpoint: what the balancer connects for each shard it takes.</summary>
    public void ConfigureShardEndpoint(IReceiveEndpointConfigurator endpoint)
    {
        // The queue is bound to the upstream exchange (ShardTopology), not to the message types' exchanges.
        endpoint.ConfigureConsumeTopology = false;
        endpoint.ConcurrentMessageLimit = _options.ConcurrentMessageLimit;
        if (endpoint is IRabbitMqReceiveEndpointConfigurator rabbit)
        {
            rabbit.SetQuorumQueue();
            rabbit.SingleActiveConsumer = true;
            rabbit.PrefetchCount = _options.PrefetchCount;
        }
    }

    protected override void ConfigureConsumer(
        IReceiveEndpointConfigurator endpointConfigurator,
        IConsumerConfigurator<UpstreamConsumer> consumerConfigurator,
        IRegistrationContext context)
    {
        if (_options.RetryLimit > 0)
        {
            endpointConfigurator.UseMessageRetry(r =>
                r.Intervals(Enumerable.Range(1, _options.RetryLimit).Select(i => TimeSpan.FromMilliseconds(100 * i)).ToArray()));
        }

        // No partitioner by connection: the consumer keeps a connection's events in order itself
        // (UpstreamEventProcessor.Enter and WaitForEarlierAsync), without holding a partition while
        // a redelivered predecessor is still on its way.
    }

    [LoggerMessage(LogLevel.Warning, "Worker:ConcurrentMessageLimit ({Limit}) is below Worker:PrefetchCount ({Prefetch}): an event that overtakes its predecessor while that one waits for a slot goes back to the end of the queue instead of waiting for it. Keep the limit at least the prefetch count.")]
    private static partial void LogFewerSlotsThanPrefetch(ILogger logger, int limit, int prefetch);
}
