using Microsoft.Extensions.Options;

namespace SocketStarter.HubFront.Consumers;

/// <summary>
/// Hands downstream commands to SignalR without waiting for the clients to read them. SignalR
/// writes to every target whose socket keeps up at once and queues the write behind a slow
/// client's (its per-connection write lock takes waiters in order), so each connection still
/// receives in the order the commands came; what is not waited for here is the slow client, which
/// used to hold up every delivery of the instance until SignalR gave up on it (10 s). At most
/// <c>Gateway:MaxPendingSends</c> sends, holding at most <c>Gateway:MaxPendingSendBytes</c> of
/// payload, wait at once; beyond either the next command waits.
/// </summary>
public sealed partial class ClientSends(IOptions<GatewayOptions> options, GatewayMetrics metrics, ILogger<ClientSends> logger)
{
    private readonly SemaphoreSlim _slots = new(options.Value.MaxPendingSends, options.Value.MaxPendingSends);
    private readonly long _maxBytes = options.Value.MaxPendingSendBytes;
    private readonly Lock _bytesLock = new();
    private long _reservedBytes;
    private TaskCompletionSource? _bytesFreed;

    /// <summary>
    /// Starts <paramref name="send"/>; returns once it is written or queued behind a slow client (or
    /// when too many sends, or too many bytes, wait).
    /// </summary>
    /// <param name="bytes">About what the send holds while it waits: its payload's size.</param>
    public async ValueTask StartAsync(Func<Task> send, string command, long bytes, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        try
        {
            await ReserveBytesAsync(bytes, cancellationToken);
        }
        catch
        {
            _slots.Release();
            throw;
        }
        Task task;
        try
        {
            task = send();
        }
        catch
        {
            Release(bytes);
            throw;
        }
        if (task.IsCompleted)
        {
            Release(bytes);
            await task;
            return;
        }
        metrics.SendPending(1, bytes);
        _ = FinishAsync(task, command, bytes);
    }

    /// <summary>
    /// Waits until <paramref name="bytes"/> more fit the budget; a send alone always fits. Every
    /// waiter wakes at each release and looks again (not first come, first served): the commands
    /// consumer calls one at a time (<c>ConcurrentMessageLimit</c> 1), so there is one waiter at most.
    /// </summary>
    private async ValueTask ReserveBytesAsync(long bytes, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task freed;
            lock (_bytesLock)
            {
                if (_reservedBytes == 0 || _reservedBytes + bytes <= _maxBytes)
                {
                    _reservedBytes += bytes;
                    return;
                }
                _bytesFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                freed = _bytesFreed.Task;
            }
            await freed.WaitAsync(cancellationToken);
        }
    }

    private void Release(long bytes)
    {
        TaskCompletionSource? freed;
        lock (_bytesLock)
        {
            _reservedBytes -= bytes;
            freed = _bytesFreed;
            _bytesFreed = null;
        }
        freed?.TrySetResult();
        _slots.Release();
    }

    private async Task FinishAsync(Task task, string command, long bytes)
    {
        try
        {
            await task;
        }
        catch (Exception ex)
        {
            // A client gone meanwhile: what it did not read is its resume's business.
            LogSendFailed(ex, command);
        }
        finally
        {
            Release(bytes);
            metrics.SendPending(-1, -bytes);
        }
    }

    [LoggerMessage(LogLevel.Debug, "A {Command} to a slow client did not complete")]
    private partial void LogSendFailed(Exception exception, string command);
}
