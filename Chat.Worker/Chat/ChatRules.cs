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

    public const int MaxTokenLength = 128;

    /// <summary>
    /// A <c>resume</c> payload: <c>{ token: string, lastSeen?: { [room]: seq } }</c>, the rooms
    /// checked like a join's and in a stable order, at most <paramref name="maxRooms"/> of them.
    /// </summary>
    public static (string Token, IReadOnlyList<(string Room, long LastSeen)> Rooms) Resume(JsonElement payload, int maxRooms)
    {
        const string expected = "{ token: string, lastSeen?: { [room: string]: number } }";
        var token = Property(payload, "token", "resume", expected);
        if (string.IsNullOrWhiteSpace(token) || token.Length > MaxTokenLength)
            throw ChatError.InvalidPayload("resume", expected);

        var rooms = new SortedDictionary<string, long>(StringComparer.Ordinal);
        if (payload.TryGetProperty("lastSeen", out var lastSeen) && lastSeen.ValueKind != JsonValueKind.Null)
        {
            if (lastSeen.ValueKind != JsonValueKind.Object)
                throw ChatError.InvalidPayload("resume", expected);
            foreach (var entry in lastSeen.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt64(out var seq) || seq < 0)
                    throw ChatError.InvalidPayload("resume", expected);
                rooms[Room(entry.Name)] = seq;
            }
        }
        if (rooms.Count > maxRooms)
            throw ChatError.TooManyRooms(maxRooms);
        return (token, rooms.Select(r => (r.Key, r.Value)).ToList());
    }

    /// <summary>The optional <c>previousToken</c> of a <c>signIn</c>: the token of the session this page had.</summary>
    public static string? PreviousToken(string? raw, string expected) =>
        raw is not null && (string.IsNullOrWhiteSpace(raw) || raw.Length > MaxTokenLength) ? throw ChatError.InvalidPayload("signIn", expected) : raw;

    /// <summary>A time as clients see it: ISO 8601 in UTC, to the microsecond (what the database keeps).</summary>
    public static string Time(DateTimeOffset at) => Time(at.UtcDateTime);

    public static string Time(DateTime utc) =>
        DateTime.SpecifyKind(utc, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);

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
