using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using SocketStarter.ChatWorker.Chat;
using SocketStarter.GatewayWorker;
using SocketStarter.GatewayWorker.Store;

namespace SocketStarter.Tests.Chat;

/// <summary>Sessions past Chat:SessionLifetime with no open connection are forgotten; the rest stay.</summary>
public sealed class Forgetting_expired_sessions
{
    private string _database = null!;
    private NpgsqlDataSource _dataSource = null!;

    [SetUp]
    public async Task Create()
    {
        _database = $"sessions-{Guid.NewGuid():N}";
        var connectionString = await TestRun.Database.CreateDatabaseAsync(_database);
        await SchemaMigrations.MigrateAsync(connectionString,
            [new MigrationSet(typeof(GatewayWorkerExtensions).Assembly, GatewayWorkerExtensions.JournalTable), new MigrationSet(typeof(ChatApplication).Assembly, "app_schema_versions")],
            NullLogger.Instance, CancellationToken.None);
        _dataSource = NpgsqlDataSource.Create(connectionString);
    }

    [TearDown]
    public async Task Remove()
    {
        await _dataSource.DisposeAsync();
        await TestRun.Database.DropDatabaseAsync(_database);
    }

    [Test]
    public async Task Only_expired_sessions_without_a_connection_go_with_their_memberships()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 12, 0, 0, TimeSpan.Zero));
        var lifetime = TimeSpan.FromDays(1);
        var old = clock.GetUtcNow() - lifetime - TimeSpan.FromMinutes(1);
        var recent = clock.GetUtcNow() - TimeSpan.FromHours(1);
        await using (var connection = await _dataSource.OpenConnectionAsync())
        {
            await connection.ExecuteAsync("""
                INSERT INTO chat_sessions (session_id, token, name, created_at) VALUES ('old-idle', 'h1', 'A', @old), ('old-connected', 'h2', 'B', @old), ('recent-idle', 'h3', 'C', @recent);
                INSERT INTO chat_connections VALUES ('conn-b', 'hub', 'old-connected', @old);
                INSERT INTO chat_members VALUES ('lobby', 'old-idle', @old), ('lobby', 'old-connected', @old);
                """, new { old, recent });
        }
        var sweeper = new ExpiredSessionSweeper(_dataSource, Options.Create(new ChatOptions { SessionLifetime = lifetime }), clock, NullLogger<ExpiredSessionSweeper>.Instance);

        var forgotten = await sweeper.SweepAsync(CancellationToken.None);

        await using var check = await _dataSource.OpenConnectionAsync();
        var sessions = (await check.QueryAsync<string>("SELECT session_id FROM chat_sessions ORDER BY session_id")).ToList();
        var members = (await check.QueryAsync<string>("SELECT session_id FROM chat_members")).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(forgotten, Is.EqualTo(1));
            Assert.That(sessions, Is.EqualTo(new[] { "old-connected", "recent-idle" }));
            Assert.That(members, Is.EqualTo(new[] { "old-connected" }));
        });
    }
}
