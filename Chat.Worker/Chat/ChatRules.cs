using System.Text.Json;
using System.Text.RegularExpressions;

namespace SocketStarter.ChatWorker.Chat;

/// <summary>What the chat accepts as names, rooms and messages.</summary>
public static partial class ChatRules
{
    public const int MaxNameLength = 32;
    public const int MaxRoomLength = 32;
    public const int MaxTextLength = 4000;
    public const int HistorySize = 50;
    public const int MaxClientIdLength = 64;

    public static string Name(string? raw)
    {
        var name = raw?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > MaxNameLength || name.Any(char.IsControl))
            throw ChatError.InvalidName();
        return name;
    }

    /// <summary>
    /// The name of a user whose token the hub verified: the identity provider chose it, so it is fitted
    /// to the chat's rules rather than refused, which would lock the user out of signing in.
    /// </summary>
    public static string TokenName(string? userName, string userId)
    {
        var name = Fit(userName);
        return Name(name.Length > 0 ? name : Fit(userId));

        static string Fit(string? raw)
        {
            var name = new string((raw ?? "").Where(c => !char.IsControl(c)).ToArray()).Trim();
            if (name.Length <= MaxNameLength)
                return name;
            // Never cut a surrogate pair in half.
            var length = char.IsHighSurrogate(name[MaxNameLength - 1]) ? MaxNameLength - 1 : MaxNameLength;
            return name[..length].TrimEnd();
        }
    }

    public static string Room(string? raw)
    {
        var room = raw?.Trim();
        if (string.IsNullOrEmpty(room) || room.Length > MaxRoomLength || !RoomPattern().IsMatch(room))
            throw ChatError.InvalidRoom();
        return room;
    }

    public static string Text(string? raw)
    {
        if (string.IsNullOrWhiteSpace(raw) || raw.Length > MaxTextLength)
            throw ChatError.InvalidText();
        return raw;
    }

    /// <summary>The sender's own id for a message, echoed back so it can match the reply to what it sent.</summary>
    public static string? ClientId(string? raw) =>
        raw is { Length: > MaxClientIdLength } || raw?.Any(char.IsControl) == true ? throw ChatError.InvalidClientId() : raw;

    /// <summary>The SignalR group of a room's connections.</summary>
    public static string Group(string room) => $"room:{room}";

    /// <summary>A string property of an object payload, or a clear error naming what the type expects.</summary>
    public static string? Property(JsonElement payload, string name, string type, string expected)
    {
        if (payload.ValueKind != JsonValueKind.Object)
            throw ChatError.InvalidPayload(type, expected);
        if (!payload.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind != JsonValueKind.String)
            throw ChatError.InvalidPayload(type, expected);
        return value.GetString();
    }

    [GeneratedRegex(@"^[\p{L}\p{N}][\p{L}\p{N} _-]*$")]
    private static partial Regex RoomPattern();
}
