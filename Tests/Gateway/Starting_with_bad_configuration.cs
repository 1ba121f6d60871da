using Microsoft.Extensions.Options;
using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests.Gateway;

public sealed class Starting_with_bad_configuration
{
    private static readonly Dictionary<string, string?> Valid = new()
    {
        ["ConnectionStrings:rabbitmq"] = "amqp://guest:guest@127.0.0.1:1/",
        ["Gateway:UpstreamExchange"] = "chat-worker",
        ["ConnectionStrings:postgres"] = "Host=127.0.0.1;Port=1;Database=unused;Username=unused;Password=unused",
    };

    [TestCase(null, "ConnectionStrings:rabbitmq is not set")]
    [TestCase("not a uri", "ConnectionStrings:rabbitmq is not a broker URI")]
    [TestCase("http://localhost:5672/", "ConnectionStrings:rabbitmq is not a broker URI")]
    public void Stops_a_service_without_a_broker_address_naming_the_setting(string? value, string expected)
    {
        var settings = new Dictionary<string, string?>(Valid) { ["ConnectionStrings:rabbitmq"] = value };

        Assert.Multiple(() =>
        {
            Assert.That(() => TestSystem.BuildHub(settings), Throws.InvalidOperationException.With.Message.Contains(expected));
            Assert.That(() => TestSystem.BuildWorker(settings), Throws.InvalidOperationException.With.Message.Contains(expected));
        });
    }

    [TestCase(null, "ConnectionStrings:postgres is not set")]
    [TestCase("", "ConnectionStrings:postgres is not set")]
    [TestCase("Host=127.0.0.1;Frobnicate=yes", "ConnectionStrings:postgres is not a PostgreSQL connection string")]
    [TestCase("Database=chat;Username=u", "ConnectionStrings:postgres names no host")]
    public void Stops_a_worker_without_a_usable_database_setting_naming_it(string? value, string expected)
    {
        var settings = new Dictionary<string, string?>(Valid) { ["ConnectionStrings:postgres"] = value };

        Assert.That(() => TestSystem.BuildWorker(settings), Throws.InvalidOperationException.With.Message.Contains(expected));
    }

    [TestCase("password", "refused the login")]
    [TestCase("database", "does not exist")]
    public async Task A_worker_process_whose_database_refuses_it_exits_at_start_naming_the_setting(string wrong, string expected)
    {
        await using var system = await TestSystem.CreateAsync();
        var connection = new Npgsql.NpgsqlConnectionStringBuilder(system.DatabaseConnectionString);
        if (wrong == "password")
            connection.Password = "not-the-password";
        else
            connection.Database = "no_such_database";

        await using var worker = ServiceProcess.Launch("Chat.Worker.dll",
            system.Settings(new Dictionary<string, string?> { ["ConnectionStrings:postgres"] = connection.ConnectionString }), system.Directory);
        await worker.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.Multiple(() =>
        {
            Assert.That(worker.ExitCode, Is.Not.Zero);
            Assert.That(worker.Output, Does.Contain("ConnectionStrings:postgres").And.Contain(expected));
            Assert.That(worker.Output, Does.Not.Contain("not-the-password"), "the password is not logged");
        });
    }

    [TestCase("Gateway:UpstreamExchange", "")]
    [TestCase("Gateway:UpstreamExchange", "has spaces")]
    [TestCase("Gateway:MaxPayloadBytes", "0")]
    [TestCase("Gateway:PublishTimeout", "00:10:00")]
    [TestCase("Gateway:InstanceId", "no/slashes")]
    [TestCase("Gateway:MaxPendingSends", "0")]
    [TestCase("Gateway:MaxPendingSendBytes", "1000")]
    [TestCase("Gateway:SlowClientTimeout", "00:00:00")]
    [TestCase("Gateway:OrderFenceRetention", "00:00:10")]
    public void Stops_the_hub_at_start_naming_the_setting(string setting, string value)
    {
        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(() => TestSystem.BuildHub(new Dictionary<string, string?>(Valid) { [setting] = value })));
        Assert.That(ex!.Message, Does.Contain(setting));
    }

    [TestCase("Worker:Queue", "")]
    [TestCase("Worker:PrefetchCount", "0")]
    [TestCase("Worker:ConcurrentMessageLimit", "-1")]
    [TestCase("Worker:BatchSize", "0")]
    [TestCase("Worker:BatchSize", "31")]
    [TestCase("Worker:Writers", "0")]
    [TestCase("Worker:BatchLockTimeout", "00:00:00")]
    [TestCase("Worker:GapWaitLimit", "00:00:00")]
    [TestCase("Worker:HubInstanceTimeout", "00:00:00")]
    [TestCase("Worker:PublishTimeout", "00:00:00")]
    [TestCase("Chat:ResumeLimit", "0")]
    [TestCase("Chat:SessionLifetime", "00:00:10")]
    public void Stops_the_worker_at_start_naming_the_setting(string setting, string value)
    {
        var ex = Assert.ThrowsAsync<OptionsValidationException>(() => StartAsync(() => TestSystem.BuildWorker(new Dictionary<string, string?>(Valid) { [setting] = value })));
        Assert.That(ex!.Message, Does.Contain(setting));
    }

    /// <summary>Builds and starts a service the way Program.cs does; validation may stop either step.</summary>
    private static async Task StartAsync(Func<Microsoft.AspNetCore.Builder.WebApplication> build)
    {
        var app = build();
        try
        {
            await app.StartAsync();
            await app.StopAsync();
        }
        finally
        {
            try { await app.DisposeAsync(); }
            catch (OptionsValidationException) { } // disposing resolves the same invalid options again
        }
    }
}
