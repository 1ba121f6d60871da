using MassTransit;
using SocketStarter.GatewayWorker.Store;
using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker.Consumers;

/// <summary>
/// Records hub instances' heartbeats. Each worker has its own temporary queue for them, so they are
/// never stuck behind the backlog of client events (which would make a live hub look dead). What
/// an instance says it takes (<see cref="HubInstances"/>) is kept in memory, database or not.
/// </summary>
public sealed partial class HeartbeatConsumer(GatewayStore store, HubInstances instances, TimeProvider time, ILogger<HeartbeatConsumer> logger) : IConsumer<HubInstanceHeartbeat>
{
    public async Task Consume(ConsumeContext<HubInstanceHeartbeat> context)
    {
        var heartbeat = context.Message;
        instances.Heard(heartbeat.HubInstanceId, heartbeat.TakesCommandBatches);
        try
        {
            await store.RecordHeartbeatAsync(heartbeat.HubInstanceId, heartbeat.ConnectionCount, heartbeat.Interval, time.GetUtcNow(), context.CancellationToken);
        }
        catch (Exception ex) when (GatewayDatabase.IsUnavailable(ex))
        {
            // The next one comes in a few seconds; meanwhile the reaper expires nobody (it needs the database too).
            LogNotRecorded(heartbeat.HubInstanceId, ex.Message);
        }
    }

    [LoggerMessage(LogLevel.Debug, "Heartbeat of hub instance {HubInstanceId} not recorded: the database is unavailable ({Reason})")]
    private partial void LogNotRecorded(string hubInstanceId, string reason);
}
