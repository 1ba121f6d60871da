using System.Globalization;
using MassTransit;
using Microsoft.Extensions.Options;
using SocketStarter.GatewayWorker.Store;
using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker.Consumers;

/// <summary>
/// Takes client events off the workers' queue and hands them to the application through the
/// <see cref="UpstreamEventProcessor"/>, which keeps them ordered and exactly once per connection.
/// </summary>
public sealed partial class UpstreamConsumer(
    UpstreamEventProcessor processor,
    IGatewayApplication application,
    IOptions<WorkerOptions> options,
    WorkerMetrics metrics,
    TimeProvider time,
    ILogger<UpstreamConsumer> logger) :
    IConsumer<ClientConnected>,
    IConsumer<ClientMessage>,
    IConsumer<ClientDisconnected>
{
    public const string WaitingSinceHeader = "SocketStarter-Waiting-Since";
    public const string WaitAttemptHeader = "SocketStarter-Wait-Attempt";
    public const string LastAppliedHeader = "SocketStarter-Wait-Last-Applied";

    // Without progress, a few times straight back to the queue (the predecessor is usually being
    // applied right now), then pauses that grow, so a long wait does not spin.
    private const int ImmediateAttempts = 3;
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan LongestPause = TimeSpan.FromMilliseconds(200);

    public Task Consume(ConsumeContext<ClientConnected> context) =>
        HandleAsync(context, UpstreamEvent.Of(context.Message), c => application.OnConnectedAsync(c, context.Message));

    public Task Consume(ConsumeContext<ClientMessage> context) =>
        HandleAsync(context, UpstreamEvent.Of(context.Message), c => application.OnMessageAsync(c, context.Message));

    public Task Consume(ConsumeContext<ClientDisconnected> context) =>
        HandleAsync(context, UpstreamEvent.Of(context.Message), c => application.OnDisconnectedAsync(c, context.Message));

    private async Task HandleAsync<T>(ConsumeContext<T> context, UpstreamEvent upstream, Func<GatewayEventContext, Task> apply)
        where T : class
    {
        var takenUp = time.GetTimestamp();
        if (context.SentTime is { } sent && context.GetRetryAttempt() == 0 && !context.ReceiveContext.Redelivered)
            metrics.Queued(time.GetUtcNow().UtcDateTime - sent);
        // Later events of this connection in this worker wait for this one to finish, and this one
        // for the earlier ones here: a connection's events go one at a time, in order.
        using var turn = processor.Enter(upstream);
        await processor.WaitForEarlierAsync(upstream, context.CancellationToken);
        try
        {
            await ApplyThroughOutagesAsync(context, upstream, apply, takenUp);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && context.GetRetryAttempt() >= options.Value.RetryLimit)
        {
            // Out of retries: record the event as done with no effect but the client's error, so the
            // connection's later events are not stuck behind it; the message goes to the error queue.
            LogGivingUp(ex, upstream.ConnectionId, upstream.Seq);
            try
            {
                await processor.ProcessAsync(upstream, c => application.OnFailedAsync(c, ex), context, context.CancellationToken);
            }
            catch (SequenceGapException)
            {
                // Not its turn yet: its successors give it up after Worker:GapWaitLimit, and the client is told.
            }
            throw;
        }
    }

    /// <summary>
    /// While the database (or the broker, for its replies) is unreachable (restarting, cut off) the event is tried again with growing
    /// pauses for as long as it takes, and stays unacknowledged meanwhile: an outage is nobody's
    /// fault, so it neither uses up the event's retries nor sends it to the error queue. A worker
    /// stopped meanwhile leaves it in the queue for the next.
    /// </summary>
    private async Task ApplyThroughOutagesAsync<T>(ConsumeContext<T> context, UpstreamEvent upstream, Func<GatewayEventContext, Task> apply, long takenUp)
        where T : class
    {
        var conflicts = 0;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await ApplyInTurnAsync(context, upstream, apply, takenUp);
                return;
            }
            catch (Exception ex) when (GatewayDatabase.IsConflict(ex) && ++conflicts <= ConflictRetries && !context.CancellationToken.IsCancellationRequested)
            {
                // A deadlock's victim or the like: nobody's fault, and rolled back whole; run it again
                // after a short random pause (so two that met do not meet again), without using up
                // the event's retries. One that keeps losing goes on to them.
                metrics.Conflict();
                LogConflict(upstream.ConnectionId, upstream.Seq, conflicts, ex.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 50) * conflicts), time, context.CancellationToken);
            }
            catch (Exception ex) when (GatewayDatabase.IsUnavailable(ex) && !context.CancellationToken.IsCancellationRequested)
            {
                metrics.DatabaseUnavailable();
                if (attempt == 0)
                    LogDatabaseUnavailable(upstream.ConnectionId, upstream.Seq, ex.Message);
                var pause = TimeSpan.FromTicks(Math.Min(DatabaseLongestPause.Ticks, DatabaseFirstPause.Ticks << Math.Min(attempt, 16)));
                await Task.Delay(pause, time, context.CancellationToken);
            }
            catch (BrokerUnavailableException ex) when (!context.CancellationToken.IsCancellationRequested)
            {
                // The same for the broker: a committed event's replies wait in the outbox meanwhile.
                metrics.BrokerUnavailable();
                if (attempt == 0)
                    LogBrokerUnavailable(upstream.ConnectionId, upstream.Seq, ex.Message);
                var pause = TimeSpan.FromTicks(Math.Min(DatabaseLongestPause.Ticks, DatabaseFirstPause.Ticks << Math.Min(attempt, 16)));
                await Task.Delay(pause, time, context.CancellationToken);
            }
        }
    }

    // Conflicts with other transactions run again this many times before they count as failures.
    private const int ConflictRetries = 10;

    private static readonly TimeSpan DatabaseFirstPause = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan DatabaseLongestPause = TimeSpan.FromSeconds(2);

    private async Task ApplyInTurnAsync<T>(ConsumeContext<T> context, UpstreamEvent upstream, Func<GatewayEventContext, Task> apply, long takenUp)
        where T : class
    {
        try
        {
            await processor.ProcessAsync(upstream, apply, context, context.CancellationToken, takenUp: takenUp);
        }
        catch (SequenceGapException gap)
        {
            // With shards, a connection's events come to one worker in order, so its predecessor is
            // either right behind it in this worker (it overtook it on the way in: wait for it here)
            // or behind it in the queue, where a handoff or a redelivery put it back: only going
            // round lets that one through. (Or it never comes: given up after Worker:GapWaitLimit.)
            LogOutOfTurn(upstream.ConnectionId, upstream.Seq, context.ReceiveContext.Redelivered, gap.Message);
            if (await WaitInProcessAsync(context, upstream, apply))
            {
                metrics.OvertookInProcess();
                return;
            }

            if (await WaitForPredecessorAsync(context, gap))
            {
                metrics.Requeued();
                return;
            }

            metrics.GaveUp();

            // No progress for Worker:GapWaitLimit: give the missing events up rather than stall the
            // connection for good. Should one of them turn up later, its client is told it was dropped.
            var missing = Enumerable.Range(1, (int)Math.Max(0, upstream.Seq - gap.LastApplied - 1)).Select(i => gap.LastApplied + i).ToList();
            LogGivingUpPredecessors(upstream.ConnectionId, upstream.Seq, gap.LastApplied);
            try
            {
                await processor.ProcessAsync(upstream with { VoidedSeqs = [.. upstream.VoidedSeqs ?? [], .. missing] }, apply, context, context.CancellationToken, givenUp: missing);
            }
            catch (SequenceGapException)
            {
                // Replies of the last applied event are still on their way: come back for another try.
                await Task.Delay(LongestPause, time, context.CancellationToken);
                await ResendAsync(context, DateTimeOffset.MinValue, attempt: 0, gap.LastApplied);
            }
        }
    }

    /// <summary>
    /// While an earlier event of the connection is being processed in this worker, waits for it and
    /// tries again. On first delivery, when none is, waits up to <see cref="ArrivalWait"/> for it to
    /// come in (delivered with this one, it may not have entered yet) and tries again once. False when
    /// the predecessor is not here. Holds no lock and no database connection while it waits.
    /// </summary>
    private async Task<bool> WaitInProcessAsync<T>(ConsumeContext<T> context, UpstreamEvent upstream, Func<GatewayEventContext, Task> apply)
        where T : class
    {
        // A redelivery or a copy that went round was not delivered with its predecessor: it went
        // back to the queue (a handoff, a kill), and the predecessor is behind it there.
        var waitedForArrival = context.ReceiveContext.Redelivered || ReadHeader(context, WaitAttemptHeader) is not null;
        while (true)
        {
            if (!await processor.WaitForEarlierAsync(upstream, context.CancellationToken))
            {
                if (waitedForArrival)
                    return false;
                waitedForArrival = true;
                await processor.WaitForArrivalAsync(upstream, ArrivalWait, context.CancellationToken);
            }
            // Its predecessor finished here meanwhile (or came in: then this waits for it above).
            if (await TryProcessAsync(context, upstream, apply))
                return true;
        }
    }

    // How long an event whose predecessor is not in this worker waits for it to come in before going
    // round: the predecessor's way in takes microseconds, a busy thread pool's turn a few ms.
    private static readonly TimeSpan ArrivalWait = TimeSpan.FromMilliseconds(250);

    /// <summary>Processes the event now that its turn came; false if another gap opened meanwhile.</summary>
    private async Task<bool> TryProcessAsync<T>(ConsumeContext<T> context, UpstreamEvent upstream, Func<GatewayEventContext, Task> apply)
        where T : class
    {
        try
        {
            await processor.ProcessAsync(upstream, apply, context, context.CancellationToken);
            return true;
        }
        catch (SequenceGapException)
        {
            return false;
        }
    }

    /// <summary>
    /// Frees this consumer slot while the predecessor is in flight (possibly in this worker's own
    /// prefetch buffer): a copy goes to the back of the queue and this delivery is acknowledged. A
    /// duplicate copy is harmless: the seq check skips it. While the connection makes progress the
    /// copy goes back at once; when it stops moving, pauses grow, and after Worker:GapWaitLimit
    /// without progress it stops waiting (returns false).
    /// </summary>
    private async Task<bool> WaitForPredecessorAsync<T>(ConsumeContext<T> context, SequenceGapException gap) where T : class
    {
        var now = time.GetUtcNow();
        var progressed = ReadHeader(context, LastAppliedHeader) is not { } seenBefore || gap.LastApplied > seenBefore;
        var since = !progressed && ReadHeader(context, WaitingSinceHeader) is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : now;
        var attempt = progressed ? 0 : (int)(ReadHeader(context, WaitAttemptHeader) ?? 0);

        if (now - since > options.Value.GapWaitLimit)
            return false;

        if (attempt >= ImmediateAttempts)
        {
            var pause = TimeSpan.FromTicks(Math.Min(LongestPause.Ticks, FirstPause.Ticks << Math.Min(attempt - ImmediateAttempts, 16)));
            await Task.Delay(pause, time, context.CancellationToken);
        }

        await ResendAsync(context, since, attempt, gap.LastApplied);
        LogWaiting(gap.ConnectionId, gap.Seq, gap.LastApplied, attempt, gap.Message);
        return true;
    }

    /// <summary>A copy to the back of the queue; acknowledging this delivery is the caller's return.</summary>
    private static async Task ResendAsync<T>(ConsumeContext<T> context, DateTimeOffset waitingSince, int attempt, long lastApplied)
        where T : class
    {
        // Through the exchange of the shard queue's own name (bound to it), so the queue is not declared again with other arguments.
        var queue = context.ReceiveContext.InputAddress.AbsolutePath.Split('/')[^1];
        var endpoint = await context.GetSendEndpoint(new Uri($"exchange:{queue}"));
        await endpoint.Send(context.Message, send =>
        {
            if (send is RabbitMqSendContext rabbit)
                rabbit.Mandatory = true;
            send.Headers.Set(WaitingSinceHeader, waitingSince.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
            send.Headers.Set(WaitAttemptHeader, (attempt + 1).ToString(CultureInfo.InvariantCulture));
            send.Headers.Set(LastAppliedHeader, lastApplied.ToString(CultureInfo.InvariantCulture));
        }, context.CancellationToken);
    }

    private static long? ReadHeader(ConsumeContext context, string name) =>
        context.Headers.Get<string>(name) is { } text && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value : null;

    [LoggerMessage(LogLevel.Warning, "Connection {ConnectionId}: seq {Seq} waits for the database, which is unavailable ({Reason}); it stays in the queue and is tried again")]
    private partial void LogDatabaseUnavailable(string connectionId, long seq, string reason);

    [LoggerMessage(LogLevel.Warning, "Connection {ConnectionId}: seq {Seq} waits for the broker ({Reason}); it stays in the queue and is tried again")]
    private partial void LogBrokerUnavailable(string connectionId, long seq, string reason);

    [LoggerMessage(LogLevel.Information, "Connection {ConnectionId}: seq {Seq} lost to another transaction ({Reason}); run again (conflict {Conflicts})")]
    private partial void LogConflict(string connectionId, long seq, int conflicts, string reason);

    [LoggerMessage(LogLevel.Debug, "Connection {ConnectionId}: seq {Seq} came before its turn (redelivered: {Redelivered}): {Reason}")]
    private partial void LogOutOfTurn(string connectionId, long seq, bool redelivered, string reason);

    [LoggerMessage(LogLevel.Debug, "Connection {ConnectionId}: seq {Seq} waits for its predecessor (last applied {LastSeq}, attempt {Attempt}): {Reason}")]
    private partial void LogWaiting(string connectionId, long seq, long lastSeq, int attempt, string reason);

    [LoggerMessage(LogLevel.Error, "Connection {ConnectionId}: seq {Seq} waited longer than Worker:GapWaitLimit; the seqs after {LastSeq} before it are given up")]
    private partial void LogGivingUpPredecessors(string connectionId, long seq, long lastSeq);

    [LoggerMessage(LogLevel.Error, "Connection {ConnectionId}: seq {Seq} failed after every retry; skipped and moved to the error queue")]
    private partial void LogGivingUp(Exception exception, string connectionId, long seq);
}
