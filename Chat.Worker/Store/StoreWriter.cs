using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace SocketStarter.ChatWorker.Store;

/// <summary>
/// The one writer of this process: every write to the store goes through it, and writes that
/// arrive together share one transaction and one commit (group commit).
/// </summary>
/// <remarks>
/// SQLite takes one writer at a time. With several events in flight, each taking the lock itself,
/// the losers sleep in SQLite's busy handler (1, 2, 5, 10 … ms) while the lock is often already
/// free again, and every event pays its own commit and fsync: measured, eight events at once were
/// slower than one. Here a waiting write is started the moment the previous one ends, and one
/// fsync covers a whole batch. Each write runs in its own savepoint, so a write that fails is
/// undone alone and the others of its batch still commit; a write's task completes only after
/// its batch is committed. Writers in other processes sharing the file still wait for each other
/// through SQLite's lock (busy_timeout).
/// A write must not wait for another write, and must not write through another connection: both
/// would wait for the batch it holds.
/// </remarks>
public sealed partial class StoreWriter : IAsyncDisposable
{
    public delegate Task<T> Write<T>(SqliteConnection connection, SqliteTransaction transaction, CancellationToken cancellationToken);

    private const int MaxBatch = 64;

    private readonly SqliteStore _store;
    private readonly ILogger<StoreWriter> _logger;
    private readonly Channel<IPendingWrite> _queue = Channel.CreateUnbounded<IPendingWrite>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;

    public StoreWriter(SqliteStore store, ILogger<StoreWriter> logger)
    {
        _store = store;
        _logger = logger;
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Runs <paramref name="write"/> in a transaction; returns once that transaction has committed.</summary>
    public Task<T> WriteAsync<T>(Write<T> write, CancellationToken cancellationToken)
    {
        var pending = new PendingWrite<T>(write, cancellationToken);
        if (!_queue.Writer.TryWrite(pending))
            throw new ObjectDisposedException(nameof(StoreWriter), "The store is shutting down.");
        return pending.Task;
    }

    public Task WriteAsync(Func<SqliteConnection, SqliteTransaction, CancellationToken, Task> write, CancellationToken cancellationToken) =>
        WriteAsync<bool>(async (c, t, ct) =>
        {
            await write(c, t, ct);
            return true;
        }, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop;
    }

    private async Task RunAsync()
    {
        var batch = new List<IPendingWrite>(MaxBatch);
        SqliteConnection? connection = null;
        try
        {
            while (await _queue.Reader.WaitToReadAsync())
            {
                while (batch.Count < MaxBatch && _queue.Reader.TryRead(out var next))
                {
                    if (!next.CancelIfRequested())
                        batch.Add(next);
                }
                if (batch.Count == 0)
                    continue;

                try
                {
                    connection ??= await _store.OpenAsync();
                    await RunBatchAsync(connection, batch);
                }
                catch (Exception ex)
                {
                    // The batch did not commit (the store is unreachable, the disk full…): each write's
                    // caller sees the failure and retries; the next batch starts on a fresh connection.
                    LogBatchFailed(ex, batch.Count);
                    foreach (var write in batch)
                        write.Fail(ex);
                    if (connection is not null)
                        await connection.DisposeAsync();
                    connection = null;
                }
                batch.Clear();
            }
        }
        finally
        {
            if (connection is not null)
                await connection.DisposeAsync();
        }
    }

    private static async Task RunBatchAsync(SqliteConnection connection, List<IPendingWrite> batch)
    {
        var done = new List<IPendingWrite>(batch.Count);
        await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
        foreach (var write in batch)
        {
            transaction.Save("write");
            try
            {
                await write.RunAsync(connection, transaction);
                transaction.Release("write");
                done.Add(write);
            }
            catch (Exception ex)
            {
                transaction.Rollback("write");
                transaction.Release("write");
                write.Fail(ex);
            }
        }
        await transaction.CommitAsync();
        foreach (var write in done)
            write.Complete();
    }

    private interface IPendingWrite
    {
        bool CancelIfRequested();
        Task RunAsync(SqliteConnection connection, SqliteTransaction transaction);
        void Complete();
        void Fail(Exception exception);
    }

    private sealed class PendingWrite<T>(Write<T> write, CancellationToken cancellationToken) : IPendingWrite
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T? _result;

        public Task<T> Task => _completion.Task;

        public bool CancelIfRequested() => cancellationToken.IsCancellationRequested && _completion.TrySetCanceled(cancellationToken);

        public async Task RunAsync(SqliteConnection connection, SqliteTransaction transaction) =>
            _result = await write(connection, transaction, cancellationToken);

        public void Complete() => _completion.TrySetResult(_result!);

        public void Fail(Exception exception)
        {
            if (exception is OperationCanceledException && cancellationToken.IsCancellationRequested)
                _completion.TrySetCanceled(cancellationToken);
            else
                _completion.TrySetException(exception);
        }
    }

    [LoggerMessage(LogLevel.Warning, "A batch of {Count} store writes failed to commit; their events are retried")]
    private partial void LogBatchFailed(Exception exception, int count);
}
