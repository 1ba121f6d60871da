namespace SocketStarter.ChatWorker.Chat;

/// <summary>A request the chat refuses; sent back to the sender only, as an <c>error</c> event.</summary>
public sealed class ChatError(string code, string message) : Exception(message)
{
    public string Code { get; } = code;

    public static ChatError NotSignedIn() => new("not_signed_in", "Sign in first.");
    public static ChatError AlreadySignedIn() => new("already_signed_in", "This connection is already signed in.");
    public static ChatError InvalidName() => new("invalid_name", $"A name is 1-{ChatRules.MaxNameLength} characters, not only spaces, with no control characters.");
    public static ChatError NameTaken(string name) => new("name_taken", $"The name '{name}' is in use by someone signed in now; pick another.");
    public static ChatError InvalidRoom() => new("invalid_room", $"A room name is 1-{ChatRules.MaxRoomLength} letters, digits, spaces, '-' or '_'.");
    public static ChatError InvalidText() => new("invalid_text", $"A message is 1-{ChatRules.MaxTextLength} characters and not only spaces.");
    public static ChatError InvalidClientId() => new("invalid_payload", $"'say' takes an optional clientId of at most {ChatRules.MaxClientIdLength} characters.");
    public static ChatError TooManyRooms(int limit) => new("too_many_rooms", $"You are in {limit} rooms, the most a session may be in; leave one first.");
    public static ChatError NotInRoom(string room) => new("not_in_room", $"You are not in room '{room}'; join it first.");
    public static ChatError UnknownSession() => new("unknown_session", "This session is unknown or has expired; sign in again.");
    public static ChatError UnknownType(string type) => new("unknown_type", $"Unknown event type '{type}'. Known: signIn, resume, join, leave, say.");
    public static ChatError InvalidPayload(string type, string expected) => new("invalid_payload", $"'{type}' expects {expected}.");
}
