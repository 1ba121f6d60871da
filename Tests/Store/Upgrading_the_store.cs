using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using SocketStarter.ChatWorker.Chat;
using SocketStarter.ChatWorker.Store;

namespace SocketStarter.Tests.Store;

/// <summary>A store made by an older version gets the columns added since, once, keeping its rows.</summary>
public sealed class Upgrading_the_store
{
    [Test]
    public async Task Adds_a_missing_column_to_an_existing_table_and_does_nothing_the_second_time()
    {
        var folder = Directory.CreateTempSubdirectory("store-upgrade-").FullName;
        try
        {
            var store = new SqliteStore(Options.Create(new StoreOptions { Path = Path.Combine(folder, "chat.db") }));
            // chat_sessions as it shipped before user_id, with a session in it.
            await using (var old = await store.OpenAsync(CancellationToken.None))
            await using (var create = old.CreateCommand())
            {
                create.CommandText = """
                    CREATE TABLE chat_sessions (session_id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_at TEXT NOT NULL);
                    INSERT INTO chat_sessions VALUES ('s1', 'hash', 'Ada', '2026-11-30T00:00:00.0000000+00:00');
                    """;
                await create.ExecuteNonQueryAsync();
            }

            await store.CreateSchemaAsync([new ChatSchema()], CancellationToken.None);
            await store.CreateSchemaAsync([new ChatSchema()], CancellationToken.None);

            await using var connection = await store.OpenAsync(CancellationToken.None);
            await using var query = connection.CreateCommand();
            query.CommandText = "SELECT session_id, name, user_id IS NULL FROM chat_sessions";
            await using var reader = await query.ExecuteReaderAsync();
            Assert.That(await reader.ReadAsync(), Is.True);
            Assert.Multiple(() =>
            {
                Assert.That(reader.GetString(0), Is.EqualTo("s1"));
                Assert.That(reader.GetString(1), Is.EqualTo("Ada"));
                Assert.That(reader.GetInt64(2), Is.EqualTo(1), "the new column, empty for old rows");
            });
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }
}
