using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using SocketStarter.ChatWorker.Chat;
using SocketStarter.ChatWorker.Store;

namespace SocketStarter.Tests.Chat;

/// <summary>Sessions past Chat:SessionLifetime with no open connection are forgotten; the rest stay.</summary>
public sealed class Forgetting_expired_sessions
{
    private string _folder = null!;
    private SqliteStore _store = null!;
    private StoreWriter _writer = null!;

    [SetUp]
    public async Task Create()
    {
        _folder = Directory.CreateTempSubdirectory("sessions-").FullName;
        _store = new SqliteStore(Options.Create(new StoreOptions { Path = Path.Combine(_folder, "chat.db") }));
        await _store.CreateSchemaAsync([new ChatSchema()], CancellationToken.None);
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
    public async Task Only_expired_sessions_without_a_connection_go_with_their_memberships()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));
        var lifetime = TimeSpan.FromDays(1);
        var old = clock.GetUtcNow() - lifetime - TimeSpan.FromMinutes(1);
        var recent = clock.GetUtcNow() - TimeSpan.FromHours(1);
        await ExecuteAsync($"""
            INSERT INTO chat_sessions (session_id, token, name, created_at) VALUES ('old-idle', 'h1', 'A', '{old:O}'), ('old-connected', 'h2', 'B', '{old:O}'), ('recent-idle', 'h3', 'C', '{recent:O}');
            INSERT INTO chat_connections VALUES ('conn-b', 'hub', 'old-connected', '{old:O}');
            INSERT INTO chat_members VALUES ('lobby', 'old-idle', '{old:O}'), ('lobby', 'old-connected', '{old:O}');
            """);
        var sweeper = new ExpiredSessionSweeper(_writer, Options.Create(new ChatOptions { SessionLifetime = lifetime }), clock, NullLogger<ExpiredSessionSweeper>.Instance);

        var forgotten = await sweeper.SweepAsync(CancellationToken.None);

        Assert.Multiple(async () =>
        {
            Assert.That(forgotten, Is.EqualTo(1));
            Assert.That(await ColumnAsync("SELECT session_id FROM chat_sessions ORDER BY session_id"), Is.EqualTo(new[] { "old-connected", "recent-idle" }));
            Assert.That(await ColumnAsync("SELECT session_id FROM chat_members"), Is.EqualTo(new[] { "old-connected" }));
        });
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await _store.OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<List<string>> ColumnAsync(string sql)
    {
        await using var connection = await _store.OpenAsync(CancellationToken.None);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        var values = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            values.Add(reader.GetString(0));
        return values;
    }
}
