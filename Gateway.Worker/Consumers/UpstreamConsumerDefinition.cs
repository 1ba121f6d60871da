using MassTransit;
using Microsoft.Extensions.Options;

using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker.Consumers;

/// <summary>The workers' queue: quorum, shared by every worker, with bounded retries before the error queue.</summary>
public sealed partial class UpstreamConsumerDefinition : ConsumerDefinition<UpstreamConsumer>
{
    private readonly WorkerOptions _options;

    public UpstreamConsumerDefinition(IOptions<WorkerOptions> options, ILogger<UpstreamConsumerDefinition> logger)
    {
        _options = options.Value;
        EndpointName = _options.Queue;
        ConcurrentMessageLimit = _options.ConcurrentMessageLimit;
        if (_options.ConcurrentMessageLimit < _options.PrefetchCount)
            LogFewerSlotsThanPrefetch(logger, _options.ConcurrentMessageLimit, _options.PrefetchCount);
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

        // No partitioner by connection: two events of one connection may run at once here, and the
        // later one waits for the earlier without holding anything the earlier needs (see
        // UpstreamEventProcessor.WaitForTurnAsync). A partition would make it wait while holding the
        // partition, blocking its own predecessor, whenever deliveries reach it out of order.
    }

    [LoggerMessage(LogLevel.Warning, "Worker:ConcurrentMessageLimit ({Limit}) is below Worker:PrefetchCount ({Prefetch}): an event that arrives before its predecessor holds a slot while it waits, and a predecessor prefetched behind it may find none free, so the wait ends only after five seconds without progress. Keep the limit at least the prefetch count.")]
    private static partial void LogFewerSlotsThanPrefetch(ILogger logger, int limit, int prefetch);
}
