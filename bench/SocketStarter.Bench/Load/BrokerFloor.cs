using System.Collections.Concurrent;
using System.Diagnostics;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace SocketStarter.Bench.Load;

/// <summary>
/// What the two broker hops of an event cost with nothing around them: the plain RabbitMQ client
/// publishing persistent messages with confirms, one at a time at the scenario's pace, to a quorum
/// queue (what an event waits in: the shard queues) and to a durable classic queue (what a reply
/// waits in: a hub instance's queue), on the run's own broker, consumed by a second connection.
/// Read next to the hop table: the rest of "hub publish → worker takes it up" and "worker publish
/// → hub hands to clients" is the services' own (MassTransit's send and receive pipelines,
/// serialization, the hub and the worker around them).
/// </summary>
public static class BrokerFloor
{
    public static async Task<IReadOnlyList<Hop>> MeasureAsync(Uri virtualHost, int messages, TimeSpan interval, CancellationToken cancellationToken)
    {
        var hops = new List<Hop>();
        foreach (var (queueType, label) in new[] { ("quorum", "quorum"), ("classic", "classic") })
        {
            var (delivered, confirmed) = await MeasureQueueAsync(virtualHost, queueType, messages, interval, cancellationToken);
            hops.Add(Of($"broker alone: {label} publish → delivered", delivered));
            hops.Add(Of($"broker alone: {label} publish → confirmed", confirmed));
        }
        return hops;
    }

    private static Hop Of(string name, List<double> values)
    {
        values.Sort();
        return new Hop(name, values.Count, values.Count > 0 ? Math.Round(values.Average(), 3) : 0, values.Count > 0 ? Math.Round(values[values.Count / 2], 3) : null);
    }

    private static async Task<(List<double> Delivered, List<double> Confirmed)> MeasureQueueAsync(Uri virtualHost, string queueType, int messages, TimeSpan interval, CancellationToken cancellationToken)
    {
        var factory = new ConnectionFactory { Uri = virtualHost, ClientProvidedName = "bench-broker-floor" };
        await using var publishing = await factory.CreateConnectionAsync(cancellationToken);
        await using var consuming = await factory.CreateConnectionAsync(cancellationToken);
        await using var publisher = await publishing.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true), cancellationToken);
        await using var consumer = await consuming.CreateChannelAsync(cancellationToken: cancellationToken);

        var queue = $"bench-broker-floor-{queueType}";
        await consumer.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false,
            arguments: new Dictionary<string, object?> { ["x-queue-type"] = queueType }, cancellationToken: cancellationToken);

        var arrivals = new ConcurrentDictionary<long, TaskCompletionSource<long>>();
        TaskCompletionSource<long> Arrival(long id) => arrivals.GetOrAdd(id, _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously));
        var receiver = new AsyncEventingBasicConsumer(consumer);
        receiver.ReceivedAsync += async (_, delivery) =>
        {
            var at = Stopwatch.GetTimestamp();
            Arrival(BitConverter.ToInt64(delivery.Body.Span)).TrySetResult(at);
            await consumer.BasicAckAsync(delivery.DeliveryTag, multiple: false);
        };
        await consumer.BasicQosAsync(0, 16, false, cancellationToken);
        await consumer.BasicConsumeAsync(queue, autoAck: false, receiver, cancellationToken);

        var delivered = new List<double>(messages);
        var confirmed = new List<double>(messages);
        var properties = new BasicProperties { Persistent = true };
        for (long id = 0; id < messages; id++)
        {
            var arrival = Arrival(id);
            var sent = Stopwatch.GetTimestamp();
            await publisher.BasicPublishAsync("", queue, mandatory: true, properties, BitConverter.GetBytes(id), cancellationToken);
            confirmed.Add(Stopwatch.GetElapsedTime(sent).TotalMilliseconds);
            var at = await arrival.Task.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            delivered.Add(Stopwatch.GetElapsedTime(sent, at).TotalMilliseconds);
            arrivals.TryRemove(id, out _);
            await Task.Delay(interval, cancellationToken);
        }
        await consumer.QueueDeleteAsync(queue, cancellationToken: cancellationToken);
        return (delivered, confirmed);
    }
}
