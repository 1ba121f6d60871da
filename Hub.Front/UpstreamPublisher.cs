using MassTransit;
using Microsoft.Extensions.Options;

namespace SocketStarter.HubFront;

/// <summary>
/// Sends upstream messages to the workers' queue and returns only when RabbitMQ confirmed that the
/// queue holds them: publisher confirms (MassTransit's default) plus the mandatory flag, so an
/// event with no queue to land in fails instead of vanishing.
/// </summary>
public sealed class UpstreamPublisher(IBus bus, IBusControl busControl, IOptions<GatewayOptions> options)
{
    // The exchange the workers' receive endpoint binds to its queue. Sending to "queue:" would
    // re-declare the queue without its quorum arguments and fail with PRECONDITION_FAILED.
    private readonly Uri _address = new($"exchange:{options.Value.UpstreamQueue}");
    private readonly TimeSpan _timeout = options.Value.PublishTimeout;

    /// <summary>
    /// False while the bus is not healthy: it lost its broker (MassTransit reports Degraded while it
    /// reconnects), so sending would only wait out the publish timeout and end in doubt. The same
    /// test as readiness: what /health/ready calls unready refuses events at once with a clear error.
    /// </summary>
    public bool IsAvailable => busControl.CheckHealth().Status == BusHealthStatus.Healthy;

    /// <param name="mandatory">Fail when no queue takes the message, rather than let it vanish.</param>
    public async Task SendAsync<T>(T message, CancellationToken cancellationToken, bool mandatory = true) where T : class
    {
        // MassTransit waits for a lost connection to come back; the timeout turns that wait into a clear failure.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);

        var endpoint = await bus.GetSendEndpoint(_address);
        await endpoint.Send(message, context =>
        {
            if (context is RabbitMqSendContext rabbit)
                rabbit.Mandatory = mandatory;
        }, timeout.Token);
    }
}
