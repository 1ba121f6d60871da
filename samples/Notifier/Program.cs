using MassTransit;
using Microsoft.Extensions.Configuration;
using SocketStarter.Samples.Notifier;
using SocketStarter.ServiceDefaults;

// A second backend: it holds no socket and knows no hub instance, it only publishes gateway commands.
var configuration = new ConfigurationBuilder()
    .SetBasePath(AppContext.BaseDirectory)
    .AddJsonFile("appsettings.json", optional: true)
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

Uri broker;
try
{
    broker = RabbitMqConnection.GetRequiredUri(configuration);
}
catch (InvalidOperationException ex)
{
    await Console.Error.WriteLineAsync(ex.Message);
    return 2;
}

var bus = Bus.Factory.CreateUsingRabbitMq(cfg => cfg.Host(broker));
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
