using MassTransit;
using SocketStarter.ServiceDefaults;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// Sends a downstream command to the hub instances that hold its targets (see
/// <see cref="CommandRouting"/>), or to every instance when they are not known. The command keeps
/// its message type, so the hub's consumer takes it as it takes a published one. Every send ends
/// when its token is cancelled: a publish through a consume context on a connection the broker
/// blocks (a memory alarm) did not end at its own token (MassTransit 8.5; measured in
/// <c>Faults_under_load.The_broker_blocking_publishers_for_a_while</c>: a 2 s token, a 9.9 s wait),
/// and one awaiting its confirm can hang for good after a broker restart
/// (rabbitmq/rabbitmq-dotnet-client#1930, open on 7.2.2), so it is let go. A send let go may still
/// reach the broker later, after newer commands another worker sent meanwhile: a duplicate out of
/// order. A group's commands carry their flush's <see cref="Order"/>, by which the hub drops such a
/// copy (docs/architecture.md, "What a let-go send can still do").
/// </summary>
internal static class HubRouting
{
    // Durable and always there (the hubs declare it too, alike): a send never meets a missing
    // exchange, which would close the channel and fail the other commands in flight on it.
    private static readonly Uri InstancesAddress = new($"exchange:{CommandRouting.InstancesExchange}?type=direct");

    /// <summary>The ordered flush a command of a group comes from: its key and its number.</summary>
    public readonly record struct Order(string Key, long Flush)
    {
        public void Stamp(SendContext context)
        {
            context.Headers.Set(CommandRouting.OrderKeyHeader, Key);
            context.Headers.Set(CommandRouting.OrderFlushHeader, Flush);
        }
    }

    /// <param name="hubInstanceId">The instance that holds the target; null: not known, every instance gets it.</param>
    /// <param name="order">The flush that sends it, for a group's command; null for the rest.</param>
    public static async Task SendAsync(IPublishEndpoint publisher, object command, Type type, string? hubInstanceId, Order? order, CancellationToken cancellationToken)
    {
        // ConsumeContext and IBus are both, which is what the runtime hands in; anything else broadcasts.
        if (hubInstanceId is null || publisher is not ISendEndpointProvider sender)
        {
            await PublishAsync(publisher, command, type, order, cancellationToken);
            return;
        }
        var endpoint = await sender.GetSendEndpoint(InstancesAddress).WaitAsync(cancellationToken);
        await endpoint.Send(command, type, Pipe.Execute<SendContext>(c =>
        {
            c.SetRoutingKey(hubInstanceId);
            order?.Stamp(c);
        }), cancellationToken).WaitAsync(cancellationToken);
    }

    /// <summary>
    /// One send for each instance, side by side: each instance keeps its own order (the caller's
    /// next command starts once every send of this one is confirmed), and the order between
    /// instances does not matter. Once to every instance when one of them is not known (null).
    /// </summary>
    public static async Task SendToEachAsync(IPublishEndpoint publisher, object command, Type type, IReadOnlyCollection<string?> hubInstanceIds, Order? order, CancellationToken cancellationToken)
    {
        if (hubInstanceIds.Contains(null))
        {
            await PublishAsync(publisher, command, type, order, cancellationToken);
            return;
        }
        if (hubInstanceIds.Count == 1)
        {
            await SendAsync(publisher, command, type, hubInstanceIds.First(), order, cancellationToken);
            return;
        }
        await Task.WhenAll(hubInstanceIds.Select(hubInstanceId => SendAsync(publisher, command, type, hubInstanceId, order, cancellationToken)));
    }

    private static Task PublishAsync(IPublishEndpoint publisher, object command, Type type, Order? order, CancellationToken cancellationToken) =>
        (order is { } o
            ? publisher.Publish(command, type, Pipe.Execute<PublishContext>(o.Stamp), cancellationToken)
            : publisher.Publish(command, type, cancellationToken)).WaitAsync(cancellationToken);
}
