using System.Collections.Concurrent;
using System.Diagnostics;
using MassTransit;
using SocketStarter.Messages;

namespace SocketStarter.GatewayWorker;

/// <summary>
/// Per hub instance, at most one send of this worker in flight: commands that come while it waits
/// for its confirm (from other flushes, of other groups and connections) go together in the next
/// send, as one <see cref="CommandBatch"/>. What one caller hands in stays together and in its
/// order; callers that are in flight at once were not ordered with each other to begin with (a
/// command that must follow another is handed in only once the other's send was confirmed), so
/// putting them in one batch, in the order they came, keeps every order that matters. With little
/// traffic a send goes at once, as before; under load the sends to an instance, and the messages
/// the broker and the hub handle, grow fewer. Only for instances that take batches.
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

    private sealed class InstanceQueue(string hubInstanceId, WorkerMetrics metrics, TimeSpan publishTimeout)
    {
        private readonly Lock _lock = new();
        private readonly List<Waiting> _waiting = [];
        private bool _sending;

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
                    return !_sending && _waiting.Count == 0;
            }
        }

        public async Task SendAsync(IPublishEndpoint publisher, IReadOnlyList<HubRouting.Routed> commands, CancellationToken cancellationToken)
        {
            var waiting = new Waiting(publisher, commands, Activity.Current, cancellationToken);
            bool start;
            lock (_lock)
            {
                _waiting.Add(waiting);
                start = !_sending;
                _sending = true;
            }
            // The first caller starts the sending on its own flow (no thread hop before its send);
            // the loop goes on from the confirm's completion for whatever came meanwhile.
            if (start)
                _ = SendWaitingAsync();
            try
            {
                await waiting.Done.Task.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                lock (_lock)
                    _waiting.Remove(waiting); // not taken yet: never sent
                throw;
            }
        }

        private async Task SendWaitingAsync()
        {
            while (true)
            {
                List<Waiting> taken = [];
                lock (_lock)
                {
                    // What waits, up to a batch's worth (a caller's commands are never split between sends).
                    var count = 0;
                    while (_waiting.Count > 0 && (taken.Count == 0 || count + _waiting[0].Commands.Count <= HubRouting.Batcher.MaxCommands))
                    {
                        var next = _waiting[0];
                        _waiting.RemoveAt(0);
                        if (next.CancellationToken.IsCancellationRequested)
                            continue;
                        taken.Add(next);
                        count += next.Commands.Count;
                    }
                    if (taken.Count == 0)
                    {
                        _sending = false;
                        return;
                    }
                }
                // The send carries the trace of the first caller it holds. It is bounded by
                // Worker:PublishTimeout of its own, not by a caller's deadline (each caller stops
                // waiting at its own): a confirm that never comes must not hold up the queue.
                Activity.Current = taken[0].Activity;
                using var bounded = new CancellationTokenSource(publishTimeout);
                try
                {
                    await SendNowAsync(taken[0].Publisher, [.. taken.SelectMany(t => t.Commands)], bounded.Token);
                    foreach (var t in taken)
                        t.Done.TrySetResult();
                }
                catch (Exception ex)
                {
                    var failure = ex is OperationCanceledException && bounded.IsCancellationRequested ? new BrokerUnavailableException(publishTimeout, ex) : ex;
                    foreach (var t in taken)
                        t.Done.TrySetException(failure);
                }
                finally
                {
                    Activity.Current = null;
                }
            }
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
