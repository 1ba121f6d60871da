using MassTransit;
using Microsoft.Extensions.Options;
using SocketStarter.ChatWorker.Gateway;

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

        if (_options.RetryLimit == 0)
            return;

        endpointConfigurator.UseMessageRetry(r =>
        {
            r.Intervals(Enumerable.Range(1, _options.RetryLimit).Select(i => TimeSpan.FromMilliseconds(100 * i)).ToArray());
            r.Ignore<SequenceGapTimeoutException>();
        });
    }
}
