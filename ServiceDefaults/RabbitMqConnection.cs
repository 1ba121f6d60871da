using Microsoft.Extensions.Configuration;

namespace SocketStarter.ServiceDefaults;

/// <summary>The broker address every service reads from <c>ConnectionStrings:rabbitmq</c>.</summary>
public static class RabbitMqConnection
{
    public const string Setting = "ConnectionStrings:rabbitmq";

    /// <summary>The broker URI, or a start-up error that names the setting and shows the expected form.</summary>
    public static Uri GetRequiredUri(IConfiguration configuration)
    {
        var value = configuration.GetConnectionString("rabbitmq");
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidOperationException(
                $"{Setting} is not set. Give the broker as amqp://user:password@host:5672/vhost " +
                "(environment variable ConnectionStrings__rabbitmq).");

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps" or "rabbitmq" or "rabbitmqs"))
            throw new InvalidOperationException(
                $"{Setting} is not a broker URI: expected amqp://user:password@host:5672/vhost.");

        return uri;
    }
}
