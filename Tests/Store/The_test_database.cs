using Npgsql;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Store;

/// <summary>The PostgreSQL the specs run against: a database each, a server that can be stopped, real authentication.</summary>
public sealed class The_test_database
{
    [Test]
    public async Task Gives_each_test_a_database_that_keeps_what_is_written()
    {
        var name = UniqueName();
        var connectionString = await TestRun.Database.CreateDatabaseAsync(name);
        try
        {
            await WriteAsync(connectionString, "héllo ✓");
            Assert.That(await ReadAsync(connectionString), Is.EqualTo(new[] { "héllo ✓" }));
        }
        finally
        {
            await TestRun.Database.DropDatabaseAsync(name);
        }
    }

    [Test]
    public async Task Copies_a_template_database()
    {
        var template = UniqueName();
        var copy = UniqueName();
        var templateConnection = await TestRun.Database.CreateDatabaseAsync(template);
        try
        {
            // Left in the pool on purpose: creating from a template must not trip over it.
            await WriteAsync(templateConnection, "from the template");
            var copyConnection = await TestRun.Database.CreateDatabaseAsync(copy, template);
            Assert.That(await ReadAsync(copyConnection), Is.EqualTo(new[] { "from the template" }));
        }
        finally
        {
            await TestRun.Database.DropDatabaseAsync(copy);
            await TestRun.Database.DropDatabaseAsync(template);
        }
    }

    [Test]
    public async Task Refuses_connections_while_a_private_server_is_stopped_and_keeps_its_data_across_the_restart()
    {
        await using var database = await Database.StartPrivateAsync();
        var connectionString = await database.CreateDatabaseAsync("kept");
        await WriteAsync(connectionString, "before the stop");

        await database.StopServerAsync();
        Assert.That(await AnswersAsync(connectionString), Is.False);

        await database.StartServerAsync();
        // A pooled connection from before the stop fails once and is dropped; a new one follows.
        await Wait.UntilAsync(() => AnswersAsync(connectionString), "the restarted server answers");
        Assert.That(await ReadAsync(connectionString), Is.EqualTo(new[] { "before the stop" }));
    }

    [Test]
    public void Never_stops_the_runs_shared_server()
    {
        Assert.Multiple(() =>
        {
            Assert.That(TestRun.Database.StopServerAsync, Throws.InvalidOperationException);
            Assert.That(TestRun.Database.StartServerAsync, Throws.InvalidOperationException);
        });
    }

    [Test]
    public void Refuses_a_wrong_password()
    {
        var wrong = new NpgsqlConnectionStringBuilder(TestRun.Database.AdminConnectionString)
        {
            Password = "not-" + Guid.NewGuid().ToString("N"),
            Pooling = false,
        }.ConnectionString;

        Assert.That(async () =>
        {
            await using var connection = new NpgsqlConnection(wrong);
            await connection.OpenAsync();
        }, Throws.TypeOf<PostgresException>().With.Property(nameof(PostgresException.SqlState)).EqualTo(PostgresErrorCodes.InvalidPassword));
    }

    [Test]
    public void Points_a_connection_string_or_uri_at_another_database()
    {
        var fromUri = new NpgsqlConnectionStringBuilder(Database.WithDatabase("postgresql://chat:p%40ss@db.example:5433/postgres?sslmode=disable", "rooms"));
        var fromKeyValue = new NpgsqlConnectionStringBuilder(Database.WithDatabase("Host=db.example;Port=5433;Username=chat;Password=p@ss;Database=postgres", "rooms"));

        Assert.Multiple(() =>
        {
            foreach (var result in new[] { fromUri, fromKeyValue })
            {
                Assert.That(result.Host, Is.EqualTo("db.example"));
                Assert.That(result.Port, Is.EqualTo(5433));
                Assert.That(result.Username, Is.EqualTo("chat"));
                Assert.That(result.Password, Is.EqualTo("p@ss"));
                Assert.That(result.Database, Is.EqualTo("rooms"));
            }
            Assert.That(fromUri.SslMode, Is.EqualTo(SslMode.Disable));
        });
    }

    private static string UniqueName() => $"spec_{Guid.NewGuid():N}";

    private static async Task WriteAsync(string connectionString, string text)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("CREATE TABLE IF NOT EXISTS notes (text text NOT NULL); INSERT INTO notes VALUES (@text)", connection);
        command.Parameters.AddWithValue("text", text);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<List<string>> ReadAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT text FROM notes ORDER BY text", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var texts = new List<string>();
        while (await reader.ReadAsync())
            texts.Add(reader.GetString(0));
        return texts;
    }

    private static async Task<bool> AnswersAsync(string connectionString)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            return await command.ExecuteScalarAsync() is 1;
        }
        catch (NpgsqlException)
        {
            return false;
        }
    }
}
