using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using SocketStarter.ChatWorker.Chat;
using SocketStarter.GatewayWorker;
using SocketStarter.GatewayWorker.Store;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Store;

/// <summary>The schema comes from versioned scripts, applied at start-up, once, whoever starts first.</summary>
public sealed class Migrating_the_database
{
    private static readonly MigrationSet Gateway = new(typeof(GatewayWorkerExtensions).Assembly, GatewayWorkerExtensions.JournalTable);
    private static readonly MigrationSet Chat = new(typeof(ChatApplication).Assembly, "app_schema_versions");

    [Test]
    public async Task Three_workers_starting_at_once_on_an_empty_database_apply_each_script_once_and_all_serve()
    {
        await using var system = await TestSystem.CreateAsync();
        var hub = await system.StartHubAsync();

        await Task.WhenAll(system.StartWorkerAsync(), system.StartWorkerAsync(), system.StartWorkerAsync());

        await using var database = await system.OpenDatabaseAsync();
        var gateway = (await database.QueryAsync<string>($"SELECT scriptname FROM {GatewayWorkerExtensions.JournalTable}")).ToList();
        var chat = (await database.QueryAsync<string>("SELECT scriptname FROM app_schema_versions")).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(gateway, Is.EquivalentTo(Gateway.ScriptNames), "each of the runtime's scripts recorded once");
            Assert.That(chat, Is.EquivalentTo(Chat.ScriptNames), "each of the chat's scripts recorded once");
            Assert.That(Chat.ScriptNames, Has.Count.GreaterThanOrEqualTo(2));
        });

        var client = await system.ConnectAsync(hub);
        await client.SignInAsync("Ada");
        Assert.That((await client.JoinAsync("lobby")).GetProperty("room").GetString(), Is.EqualTo("lobby"));
    }

    [Test]
    public async Task A_database_at_the_previous_version_gets_the_later_scripts_and_keeps_its_rows()
    {
        await using var system = await TestSystem.CreateAsync();
        // The schema as it was before sessions had a user (0002), with a session signed in then; the later scripts come at start-up.
        var first = Chat.ScriptNames.Single(n => n.EndsWith("0002_session_user.sql", StringComparison.Ordinal));
        var later = Chat.ScriptNames.Where(n => string.CompareOrdinal(n, first) >= 0).ToList();
        await SchemaMigrations.MigrateAsync(system.DatabaseConnectionString, [Gateway, Chat], NullLogger.Instance, CancellationToken.None, include: name => !later.Contains(name));
        await using (var before = await system.OpenDatabaseAsync())
        {
            Assert.That(await before.ExecuteScalarAsync<bool>(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'chat_sessions' AND column_name = 'user_id')"), Is.False,
                "the earlier schema has no user_id yet");
            await before.ExecuteAsync("INSERT INTO chat_sessions (session_id, token, name, created_at) VALUES ('s-old', @token, 'Grace', now())",
                new { token = ChatApplication.TokenHash("token-from-before") });
        }

        var hub = await system.StartHubAsync();
        await system.StartWorkerAsync();

        await using var after = await system.OpenDatabaseAsync();
        Assert.That(await after.QueryAsync<string>("SELECT scriptname FROM app_schema_versions"), Is.SupersetOf(later));
        Assert.That(await after.ExecuteScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'chat_sessions_by_name')"), Is.True);
        // The session made before the upgrade still resumes.
        var client = await system.ConnectAsync(hub);
        await client.SendAsync("resume", new { token = "token-from-before" });
        var resumed = await client.WaitForAsync("resumed");
        Assert.That(resumed.GetProperty("name").GetString(), Is.EqualTo("Grace"));
    }
}
