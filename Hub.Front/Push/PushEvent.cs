using System.Text.Json;

namespace SocketStarter.HubFront.Push;

/// <summary>The body of every <c>:send</c> request: clients receive it as <c>Event(type, payload)</c>.</summary>
/// <param name="Type">1-64 characters: a letter, then letters, digits, '.', '_', ':' or '-'.</param>
/// <param name="Payload">Any JSON; <c>null</c> when left out. At most Gateway:MaxPayloadBytes.</param>
public sealed record PushEvent(string Type, JsonElement? Payload);
