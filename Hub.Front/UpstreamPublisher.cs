using MassTransit;
using Microsoft.Extensions.Options;

namespace SocketStarter.HubFront;

/// <summary>
/// Publishes upstream messages to the workers' consistent-hash exchange, with the connection id as
/// routing key, so all of a connection's events land in one shard queue, in the order sent. Returns
/// only when RabbitMQ confirmed that the queue holds them: publisher confirms (MassTransit's
/// default) plus the mandatory flag, so an event with no queue to land in fails instead of vanishing.
/// </summary>
public sealed class UpstreamPublisher(IBus bus, IBusControl busControl, IOptions<GatewayOptions> options)
{
    // The exchange the workers declare and bind their shard queues to; declared here the same way
    // (durable, x-consistent-hash), so the hub and the workers may start in either order.
    private readonly Uri _address = new($"exchange:{options.Value.UpstreamExchange}?type=x-consistent-hash");
    private readonly TimeSpan _timeout = options.Value.PublishTimeout;

    /// <summary>
    /// False while the bus is not healthy: it lost its broker (MassTransit reports Degraded while it
    /// reconnects), so sending would only wait out the publish timeout and end in doubt. The same
    /// test as readiness: what /health/ready calls unready refuses events at once with a clear error.
    /// </summary>
    public bool IsAvailable => busControl.CheckHealth().Status == BusHealthStatus.Healthy;

    /// <param name="mandatory">Fail when no queue takes the message, rather than let it vanish.</param>
    /// <param name="connectionId">The routing key: which shard the event lands in.</param>
    public async Task SendAsync<T>(T message, string connectionId, CancellationToken cancellationToken, bool mandatory = true) where T : class
    {
        // MassTransit waits for a lost connection to come back; the timeout turns that wait into a clear failure.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);

        // Let go at the timeout whatever the transport does: a publish awaiting a confirm can hang
        // after a broker restart (rabbitmq/rabbitmq-dotnet-client#1930, open on 7.2.2), and the
        // client's next sends queue behind this one.
        var endpoint = await bus.GetSendEndpoint(_address).WaitAsync(timeout.Token);
        await endpoint.Send(message, context =>
        {
            if (context is RabbitMqSendContext rabbit)
            {
                rabbit.Mandatory = mandatory;
                rabbit.RoutingKey = connectionId;
            }
        }, timeout.Token).WaitAsync(timeout.Token);
    }
}
