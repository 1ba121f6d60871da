using System.Collections.Concurrent;
using System.Diagnostics;
using MassTransit;
using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// Per hub instance, at most <see cref="MaxInFlight"/> sends of this worker in flight: commands that
/// come while that many wait for their confirms (from other flushes, of other groups and
/// connections) go together in the next send, as one <see cref="CommandBatch"/>. What one caller hands in stays together and in its
/// order; callers that are in flight at once were not ordered with each other to begin with (a
/// command that must follow another is handed in only once the other's send was confirmed), so
/// putting them in one batch, in the order they came, or in sends side by side, keeps every order
/// that matters. With little traffic a send goes at once, as before; under load the sends to an
/// instance, and the messages the broker and the hub handle, grow fewer. Only for instances that
/// take batches.
/// </summary>
public sealed class HubSendQueues
{
    private readonly ConcurrentDictionary<string, InstanceQueue> _queues = new(StringComparer.Ordinal);
    private readonly WorkerMetrics metrics;
    private readonly Microsoft.Extensions.Options.IOptions<WorkerOptions> options;

    public HubSendQueues(WorkerMetrics metrics, Microsoft.Extensions.Options.IOptions<WorkerOptions> options)
    {
        this.metrics = metrics;
        this.options = options;
        metrics.ObserveHubSendsWaiting(() => _queues.Values.Sum(q => q.WaitingCommands));
    }

    /// <summary>
    /// Sends <paramref name="commands"/> to <paramref name="hubInstanceId"/> in their order, with
    /// others' that wait at the same time; returns once the broker confirmed the send that held them.
    /// Cancelled before the send took them: they are never sent. Cancelled after: the send may still
    /// arrive (a let-go send, as with any send cut off at its timeout).
    /// </summary>
    internal Task SendAsync(IPublishEndpoint publisher, string hubInstanceId, IReadOnlyList<HubRouting.Routed> commands, CancellationToken cancellationToken)
    {
        var now = Environment.TickCount64;
        if (now >= Interlocked.Read(ref _nextSweep))
            Sweep(now);
        var queue = _queues.GetOrAdd(hubInstanceId, id => new InstanceQueue(id, metrics, options.Value.PublishTimeout));
        queue.LastUsed = now;
        return queue.SendAsync(publisher, commands, cancellationToken);
    }

    // Instances not sent to for an hour are forgotten (hub instances come and go with deploys). A
    // caller that still holds a forgotten queue sends through it; one after it gets a new queue, and
    // the two may each have a send in flight: callers in flight at once need no order between them.
    private static readonly long Retention = (long)TimeSpan.FromHours(1).TotalMilliseconds;
    private long _nextSweep;

    private void Sweep(long now)
    {
        Interlocked.Exchange(ref _nextSweep, now + Retention / 4);
        foreach (var (id, queue) in _queues)
        {
            if (now - queue.LastUsed > Retention && queue.Idle)
                _queues.TryRemove(new KeyValuePair<string, InstanceQueue>(id, queue));
        }
    }

    private sealed class Waiting(IPublishEndpoint publisher, IReadOnlyList<HubRouting.Routed> commands, Activity? activity, CancellationToken cancellationToken)
    {
        public IPublishEndpoint Publisher { get; } = publisher;
        public IReadOnlyList<HubRouting.Routed> Commands { get; } = commands;
        public Activity? Activity { get; } = activity;
        public CancellationToken CancellationToken { get; } = cancellationToken;
        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// Sends to one instance in flight at once, at most. Below it every send goes at once, as if there
    /// were no queue (the latency of a light load); once that many wait for their confirms, what
    /// comes waits and goes together in the next.
    /// </summary>
    public const int MaxInFlight = 4;

    private sealed class InstanceQueue(string hubInstanceId, WorkerMetrics metrics, TimeSpan publishTimeout)
    {
        private readonly Lock _lock = new();
        private readonly List<Waiting> _waiting = [];
        private int _senders;

        public long LastUsed { get; set; }

        /// <summary>Commands handed in and not yet taken by a send.</summary>
        public long WaitingCommands
        {
            get
            {
                lock (_lock)
                    return _waiting.Sum(w => w.Commands.Count);
            }
        }

        public bool Idle
        {
            get
            {
                lock (_lock)
                    return _senders == 0 && _waiting.Count == 0;
            }
        }

        public async Task SendAsync(IPublishEndpoint publisher, IReadOnlyList<HubRouting.Routed> commands, CancellationToken cancellationToken)
        {
            var waiting = new Waiting(publisher, commands, Activity.Current, cancellationToken);
            bool sender;
            lock (_lock)
            {
                _waiting.Add(waiting);
                sender = _senders < MaxInFlight;
                if (sender)
                    _senders++;
            }
            if (!sender)
            {
                try
                {
                    await waiting.Done.Task.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    lock (_lock)
                        _waiting.Remove(waiting); // not taken yet: never sent
                    throw;
                }
                return;
            }

            // A sender of its own: it sends what waits, its own commands among them, on its own flow
            // (no thread hop on a light load's path), until its own went; what came meanwhile is left
            // to a sender that goes on by itself, so this caller returns once its own are confirmed.
            while (!waiting.Done.Task.IsCompleted)
            {
                if (!await SendWaitingOnceAsync(cancellationToken))
                {
                    // Nothing waits, its own included: another sender took them and sends them now.
                    await waiting.Done.Task.WaitAsync(cancellationToken);
                    return;
                }
            }
            _ = SendTheRestAsync();
            await waiting.Done.Task;
        }

        /// <summary>Goes on sending what waits until nothing does, then stops being a sender.</summary>
        private async Task SendTheRestAsync()
        {
            while (await SendWaitingOnceAsync(CancellationToken.None))
            {
            }
        }

        /// <summary>
        /// Takes what waits (up to a batch's worth; a caller's commands are never split between sends)
        /// and sends it; false, and no longer a sender, when nothing waits.
        /// </summary>
        private async Task<bool> SendWaitingOnceAsync(CancellationToken cancellationToken)
        {
            List<Waiting> taken = [];
            lock (_lock)
            {
                var count = 0;
                while (_waiting.Count > 0 && (taken.Count == 0 || count + _waiting[0].Commands.Count <= HubRouting.Batcher.MaxCommands))
                {
                    var next = _waiting[0];
                    _waiting.RemoveAt(0);
                    if (next.CancellationToken.IsCancellationRequested)
                    {
                        next.Done.TrySetCanceled(next.CancellationToken);
                        continue;
                    }
                    taken.Add(next);
                    count += next.Commands.Count;
                }
                if (taken.Count == 0)
                {
                    _senders--;
                    return false;
                }
            }
            // The send carries the trace of the first caller it holds. It is bounded by
            // Worker:PublishTimeout of its own (a confirm that never comes must not hold up the queue),
            // and by the deadline of the caller that runs it, if any; each waiting caller stops
            // waiting at its own.
            var previous = Activity.Current;
            Activity.Current = taken[0].Activity;
            using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            bounded.CancelAfter(publishTimeout);
            try
            {
                await SendNowAsync(taken[0].Publisher, [.. taken.SelectMany(t => t.Commands)], bounded.Token);
                foreach (var t in taken)
                    t.Done.TrySetResult();
            }
            catch (Exception ex)
            {
                // Cut off (the timeout, or the deadline of the caller that ran it): for every caller
                // held, the broker did not confirm in time, and its event is tried again.
                var failure = ex is OperationCanceledException ? new BrokerUnavailableException(publishTimeout, ex) : ex;
                foreach (var t in taken)
                    t.Done.TrySetException(failure);
            }
            finally
            {
                Activity.Current = previous;
            }
            return true;
        }

        private async Task SendNowAsync(IPublishEndpoint publisher, IReadOnlyList<HubRouting.Routed> commands, CancellationToken cancellationToken)
        {
            // More than a batch's worth only when one caller handed in that many: one batch after the other.
            for (var start = 0; start < commands.Count; start += HubRouting.Batcher.MaxCommands)
            {
                var chunk = commands.Skip(start).Take(HubRouting.Batcher.MaxCommands).ToList();
                metrics.SentToHub(chunk.Count);
                if (chunk.Count == 1)
                    await HubRouting.SendAsync(publisher, chunk[0].Command, chunk[0].Type, hubInstanceId, chunk[0].Order, cancellationToken);
                else
                    await HubRouting.SendAsync(publisher, new CommandBatch { Commands = [.. chunk.Select(c => BatchedCommand.Of(c.Command, c.Order?.Key, c.Order?.Flush))] },
                        typeof(CommandBatch), hubInstanceId, null, cancellationToken);
            }
        }
    }
}
