using Microsoft.Extensions.Options;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace SocketStarter.GatewayWorker.Shards;

/// <summary>
/// The sharded upstream on the broker: a consistent-hash exchange (plugin
/// <c>rabbitmq_consistent_hash_exchange</c>) named <c>Worker:Queue</c>, and <c>Worker:Shards</c>
/// quorum queues with a single active consumer each, bound to it with equal weight. Every worker
/// declares all of it at start-up, whichever shards it will hold, so that the hubs' events find
/// every shard before any worker consumes it. Declaring is idempotent.
/// </summary>
public sealed partial class ShardTopology(Uri brokerUri, IOptions<WorkerOptions> options, ILogger<ShardTopology> logger)
{
    public const string ExchangeType = "x-consistent-hash";

    /// <summary>The arguments of a shard queue; the same as MassTransit declares for the endpoint.</summary>
    public static Dictionary<string, object?> QueueArguments => new()
    {
        ["x-queue-type"] = "quorum",
        ["x-single-active-consumer"] = true,
    };

    public async Task DeclareAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var factory = new ConnectionFactory { Uri = brokerUri, ClientProvidedName = "socketstarter-worker-topology" };
        await using var connection = await factory.CreateConnectionAsync(cancellationToken);
        await using var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken);
        try
        {
            await channel.ExchangeDeclareAsync(o.Queue, ExchangeType, durable: true, autoDelete: false, cancellationToken: cancellationToken);
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode is 503 or 406)
        {
            throw new InvalidOperationException(
                $"Worker:Queue: the broker refused the consistent-hash exchange '{o.Queue}' ({ex.ShutdownReason?.ReplyText}). " +
                "Enable the plugin rabbitmq_consistent_hash_exchange (rabbitmq/enabled_plugins), and delete an exchange of that name left by an older version.", ex);
        }
        for (var shard = 0; shard < o.Shards; shard++)
        {
            var queue = o.ShardQueue(shard);
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: QueueArguments, cancellationToken: cancellationToken);
            // The binding key of a consistent-hash exchange is the shard's weight.
            await channel.QueueBindAsync(queue, o.Queue, "1", cancellationToken: cancellationToken);
        }
        LogDeclared(o.Queue, o.Shards);
    }

    [LoggerMessage(LogLevel.Information, "Upstream {Exchange}: consistent-hash exchange with {Shards} shard queues declared")]
    private partial void LogDeclared(string exchange, int shards);
}
