using Npgsql;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests;

/// <summary>One broker and one database server for the whole run, stopped at the end.</summary>
[SetUpFixture]
public sealed class TestRun
{
    public static Broker Broker { get; private set; } = null!;
    public static Database Database { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartServicesAsync()
    {
        var broker = Broker.StartAsync();
        var database = Database.StartAsync();
        try
        {
            await Task.WhenAll(broker, database);
        }
        catch
        {
            // Whichever did start must not outlive a run that cannot go on.
            if (broker.IsCompletedSuccessfully)
                await (await broker).DisposeAsync();
            if (database.IsCompletedSuccessfully)
                await (await database).DisposeAsync();
            throw;
        }
        Broker = await broker;
        Database = await database;
        var server = new NpgsqlConnectionStringBuilder(Database.AdminConnectionString);
        await TestContext.Progress.WriteLineAsync($"RabbitMQ for this run: {Broker.Kind} at {Broker.Amqp.Host}:{Broker.Amqp.Port}");
        await TestContext.Progress.WriteLineAsync($"PostgreSQL for this run: {Database.Kind} at {server.Host}:{server.Port}");
    }

    [OneTimeTearDown]
    public async Task StopServicesAsync()
    {
        try
        {
            if (Broker is not null)
                await Broker.DisposeAsync();
        }
        finally
        {
            if (Database is not null)
                await Database.DisposeAsync();
        }
    }
}
