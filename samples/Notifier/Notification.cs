using System.Text.Json;
using SocketStarter.Messages;

namespace SocketStarter.Samples.Notifier;

/// <summary>Turns a command line into the gateway command that delivers the event.</summary>
public static class Notification
{
    public const string Usage = """
        usage: Notifier all                TYPE [PAYLOAD-JSON]
               Notifier group  GROUP       TYPE [PAYLOAD-JSON]
               Notifier user   USER-ID     TYPE [PAYLOAD-JSON]
               Notifier connection CONN-ID TYPE [PAYLOAD-JSON]
        The broker is ConnectionStrings__rabbitmq (default amqp://guest:guest@127.0.0.1:5672/).
        """;

    public static object Parse(IReadOnlyList<string> args)
    {
        if (args.Count == 0)
            throw new ArgumentException("Say whom to notify.");

        var (target, rest) = args[0] == "all" ? (null, args.Skip(1).ToList()) : (args.Count > 1 ? args[1] : null, args.Skip(2).ToList());
        if (args[0] != "all" && string.IsNullOrWhiteSpace(target))
            throw new ArgumentException($"'{args[0]}' needs a target.");
        if (rest.Count is < 1 or > 2)
            throw new ArgumentException("Give an event type and, optionally, its payload as JSON.");

        var type = rest[0];
        JsonElement payload;
        try
        {
            payload = JsonDocument.Parse(rest.Count == 2 ? rest[1] : "null").RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"The payload is not valid JSON: {ex.Message}");
        }

        return args[0] switch
        {
            "all" => new SendToAll { Type = type, Payload = payload },
            "group" => new SendToGroup { Group = target!, Type = type, Payload = payload },
            "user" => new SendToUser { UserId = target!, Type = type, Payload = payload },
            "connection" => new SendToConnections { ConnectionIds = [target!], Type = type, Payload = payload },
            _ => throw new ArgumentException($"Unknown target kind '{args[0]}'."),
        };
    }
}
