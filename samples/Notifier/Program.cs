using MassTransit;
using Microsoft.Extensions.Configuration;
using SocketStarter.Samples.Notifier;
using SocketStarter.ServiceDefaults;

// A second backend: it holds no socket and knows no hub instance, it only publishes gateway commands.
var configuration = new ConfigurationBuilder()
    .AddInMemoryCollection(new Dictionary<string, string?> { [RabbitMqConnection.Setting] = "amqp://guest:guest@127.0.0.1:5672/" })
    .AddEnvironmentVariables()
    .Build();

object command;
try
{
    command = Notification.Parse(args);
}
catch (ArgumentException ex)
{
    await Console.Error.WriteLineAsync($"{ex.Message}\n\n{Notification.Usage}");
    return 2;
}

var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(RabbitMqConnection.GetRequiredUri(configuration)));
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
await bus.StartAsync(timeout.Token);
try
{
    // Returns once the broker confirmed the command: every hub instance gets it.
    await bus.Publish(command, command.GetType(), timeout.Token);
    Console.WriteLine($"published {command.GetType().Name}");
    return 0;
}
finally
{
    await bus.StopAsync(CancellationToken.None);
}
