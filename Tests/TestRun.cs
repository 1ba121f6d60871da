using SocketStarter.Tests.Infrastructure;

namespace SocketStarter.Tests;

/// <summary>One broker for the whole run, stopped at the end.</summary>
[SetUpFixture]
public sealed class TestRun
{
    public static Broker Broker { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartBrokerAsync()
    {
        Broker = await Broker.StartAsync();
        await TestContext.Progress.WriteLineAsync($"RabbitMQ for this run: {Broker.Kind} at {Broker.Amqp.Host}:{Broker.Amqp.Port}");
    }

    [OneTimeTearDown]
    public async Task StopBrokerAsync()
    {
        if (Broker is not null)
            await Broker.DisposeAsync();
    }
}
