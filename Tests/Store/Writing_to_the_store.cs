using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SocketStarter.ChatWorker.Store;

namespace SocketStarter.Tests.Store;

/// <summary>The worker's one store writer: group commit, each write undone alone when it fails.</summary>
public sealed class Writing_to_the_store
{
    private string _folder = null!;
    private SqliteStore _store = null!;
    private StoreWriter _writer = null!;

    [SetUp]
    public async Task Create()
    {
        _folder = Directory.CreateTempSubdirectory("store-writer-").FullName;
        _store = new SqliteStore(Options.Create(new StoreOptions { Path = Path.Combine(_folder, "test.db") }));
        await _store.CreateSchemaAsync([new Schema()], CancellationToken.None);
        _writer = new StoreWriter(_store, NullLogger<StoreWriter>.Instance);
    }

    [TearDown]
    public async Task Remove()
    {
        await _writer.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public async Task Writes_that_wait_together_share_one_transaction()
    {
        var (holding, release) = HoldTheWriter();
        var first = _writer.WriteAsync((c, t, ct) => InsertAsync(c, t, "first", ct), CancellationToken.None);
        var second = _writer.WriteAsync(async (c, t, ct) =>
        {
            await InsertAsync(c, t, "second", ct);
            // Another connection sees only committed rows: "first" not yet, if both share a commit.
            return await CommittedAsync("first");
        }, CancellationToken.None);

        release.SetResult();
        await holding;
        await first;
        var secondSawFirstCommitted = await second;

        Assert.Multiple(async () =>
        {
            Assert.That(secondSawFirstCommitted, Is.False);
            Assert.That(await CommittedAsync("first"), Is.True);
            Assert.That(await CommittedAsync("second"), Is.True);
        });
    }

    [Test]
    public async Task A_failing_write_is_undone_alone_and_the_rest_of_its_batch_commits()
    {
        var (holding, release) = HoldTheWriter();
        var failing = _writer.WriteAsync<bool>(async (c, t, ct) =>
        {
            await InsertAsync(c, t, "failing", ct);
            throw new InvalidOperationException("refused");
        }, CancellationToken.None);
        var next = _writer.WriteAsync((c, t, ct) => InsertAsync(c, t, "next", ct), CancellationToken.None);

        release.SetResult();
        await holding;

        Assert.That(async () => await failing, Throws.InvalidOperationException.With.Message.EqualTo("refused"));
        await next;
        Assert.Multiple(async () =>
        {
            Assert.That(await CommittedAsync("failing"), Is.False);
            Assert.That(await CommittedAsync("next"), Is.True);
        });
    }

    [Test]
    public async Task A_write_completes_only_once_it_is_committed()
    {
        await _writer.WriteAsync((c, t, ct) => InsertAsync(c, t, "done", ct), CancellationToken.None);

        Assert.That(await CommittedAsync("done"), Is.True);
    }

    [Test]
    public async Task A_write_cancelled_while_it_waits_never_runs()
    {
        var (holding, release) = HoldTheWriter();
        using var cancel = new CancellationTokenSource();
        var cancelled = _writer.WriteAsync((c, t, ct) => InsertAsync(c, t, "cancelled", ct), cancel.Token);

        await cancel.CancelAsync();
        release.SetResult();
        await holding;

        Assert.That(async () => await cancelled, Throws.InstanceOf<OperationCanceledException>());
        Assert.That(await CommittedAsync("cancelled"), Is.False);
    }

    /// <summary>A write that keeps the writer busy until released, so the writes after it queue up.</summary>
    private (Task Holding, TaskCompletionSource Release) HoldTheWriter()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var holding = _writer.WriteAsync(async (_, _, _) => await release.Task, CancellationToken.None);
        return (holding, release);
    }

    private static async Task<bool> InsertAsync(SqliteConnection connection, SqliteTransaction transaction, string name, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO written (name) VALUES ($n)";
        command.Parameters.AddWithValue("$n", name);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return true;
    }

    private async Task<bool> CommittedAsync(string name)
    {
        await using var connection = await _store.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM written WHERE name = $n";
        command.Parameters.AddWithValue("$n", name);
        return (long)(await command.ExecuteScalarAsync())! > 0;
    }

    private sealed class Schema : IStoreSchema
    {
        public string Ddl => "CREATE TABLE IF NOT EXISTS written (name TEXT NOT NULL)";
    }
}
