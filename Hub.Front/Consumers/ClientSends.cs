using Microsoft.Extensions.Options;

namespace SocketStarter.HubFront.Consumers;

/// <summary>
/// Hands downstream commands to SignalR without waiting for the clients to read them. SignalR
/// writes to every target whose socket keeps up at once and queues the write behind a slow
/// client's (its per-connection write lock takes waiters in order), so each connection still
/// receives in the order the commands came; what is not waited for here is the slow client, which
/// used to hold up every delivery of the instance until SignalR gave up on it (10 s). At most
/// <c>Gateway:MaxPendingSends</c> sends wait at once; beyond that the next command waits.
/// </summary>
public sealed partial class ClientSends(IOptions<GatewayOptions> options, GatewayMetrics metrics, ILogger<ClientSends> logger)
{
    private readonly SemaphoreSlim _slots = new(options.Value.MaxPendingSends, options.Value.MaxPendingSends);

    /// <summary>Starts <paramref name="send"/>; returns once it is written or queued behind a slow client (or when too many wait).</summary>
    public async ValueTask StartAsync(Func<Task> send, string command, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken);
        Task task;
        try
        {
            task = send();
        }
        catch
        {
            _slots.Release();
            throw;
        }
        if (task.IsCompleted)
        {
            _slots.Release();
            await task;
            return;
        }
        metrics.SendPending(1);
        _ = FinishAsync(task, command);
    }

    private async Task FinishAsync(Task task, string command)
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
            metrics.SendPending(-1);
            _slots.Release();
        }
    }

    [LoggerMessage(LogLevel.Debug, "A {Command} to a slow client did not complete")]
    private partial void LogSendFailed(Exception exception, string command);
}
