using MassTransit;
using SocketStarter.Messages;
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

    /// <summary>
    /// Sends a walk's commands in the walk's order for every instance, with one message per instance
    /// where it can: commands for instances whose heartbeat says they take a <see cref="CommandBatch"/>
    /// wait here, per instance, until <see cref="SendAsync()"/>, and then go to each instance's queue
    /// (<see cref="HubSendQueues"/>), which sends them as one batch with whatever else waits for the
    /// instance (a command alone as itself), the instances side by side. An instance that takes no batches (an
    /// older hub, or one this worker has not heard from yet) gets each command at once, as before.
    /// A command for every instance (one not known) first sends what waits, so that no instance sees
    /// the walk's commands in another order. Not thread-safe: one walk at a time.
    /// </summary>
    /// <summary>A command on its way to a hub instance, with the flush it comes from for a group's.</summary>
    public readonly record struct Routed(object Command, Type Type, Order? Order);

    public sealed class Batcher(IPublishEndpoint publisher, HubInstances instances, HubSendQueues queues, WorkerMetrics metrics, CancellationToken cancellationToken)
    {
        /// <summary>At most this many commands in one batch; more for an instance are sent as the next.</summary>
        public const int MaxCommands = 64;

        private readonly Dictionary<string, List<Routed>> _waiting = new(StringComparer.Ordinal);

        /// <param name="hubInstanceIds">The instances to send it to; one null among them: every instance.</param>
        public async Task AddAsync(object command, Type type, IReadOnlyCollection<string?> hubInstanceIds, Order? order)
        {
            if (hubInstanceIds.Count == 0)
                return;
            if (publisher is not ISendEndpointProvider || hubInstanceIds.Contains(null))
            {
                await SendAsync();
                await SendToEachAsync(publisher, command, type, hubInstanceIds, order, cancellationToken);
                return;
            }
            List<string>? alone = null;
            foreach (var hubInstanceId in hubInstanceIds.OfType<string>())
            {
                // One with commands waiting keeps waiting, whatever its heartbeat said meanwhile: a
                // command sent ahead of them would overtake them.
                if (!_waiting.TryGetValue(hubInstanceId, out var commands) && !instances.TakesBatches(hubInstanceId))
                {
                    (alone ??= []).Add(hubInstanceId);
                    continue;
                }
                if (commands is null)
                    _waiting[hubInstanceId] = commands = [];
                commands.Add(new Routed(command, type, order));
            }
            // An instance that takes no batches has nothing waiting here: sent now, it keeps its order.
            if (alone is not null)
            {
                foreach (var _ in alone)
                    metrics.SentToHub(1);
                await SendToEachAsync(publisher, command, type, alone, order, cancellationToken);
            }
        }

        /// <summary>
        /// Sends every command that waits, through each instance's queue (<see cref="HubSendQueues"/>),
        /// the instances side by side; returns once every send that holds them is confirmed.
        /// </summary>
        public async Task SendAsync()
        {
            if (_waiting.Count == 0)
                return;
            var waiting = _waiting.ToArray();
            _waiting.Clear();
            await Task.WhenAll(waiting.Select(w => queues.SendAsync(publisher, w.Key, w.Value, cancellationToken)));
        }
    }

    private static Task PublishAsync(IPublishEndpoint publisher, object command, Type type, Order? order, CancellationToken cancellationToken) =>
        (order is { } o
            ? publisher.Publish(command, type, Pipe.Execute<PublishContext>(o.Stamp), cancellationToken)
            : publisher.Publish(command, type, cancellationToken)).WaitAsync(cancellationToken);
}
