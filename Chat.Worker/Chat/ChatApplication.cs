using System.Security.Cryptography;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using SocketStarter.GatewayWorker;
using SocketStarter.Messages;

namespace SocketStarter.ChatWorker.Chat;

/// <summary>
/// The demo chat: sign in with a name, join and leave rooms, say things, see who is there and what
/// was said. Everything it knows is in its tables (Migrations/); it sends replies only through the gateway.
/// </summary>
/// <remarks>
/// Events to clients: <c>signedIn</c>, <c>resumed</c> (per room: members, what was missed, the room's last seq), <c>joined</c> (members, recent history, the room's last seq),
/// <c>left</c>, <c>memberJoined</c>, <c>memberLeft</c>, <c>message</c> (with the room's seq) and
/// <c>error</c> (code, message, and the seq and type of the event that caused it).
/// </remarks>
public sealed class ChatApplication(IOptions<ChatOptions> options) : IGatewayApplication
{
    private readonly ChatOptions _options = options.Value;

    public async Task OnConnectedAsync(GatewayEventContext context, ClientConnected message)
    {
        await context.ExecuteAsync("""
            INSERT INTO chat_connections (connection_id, hub_instance_id, session_id, connected_at)
            VALUES (@connectionId, @hubInstanceId, NULL, @now) ON CONFLICT (connection_id) DO NOTHING
            """, new { connectionId = message.ConnectionId, hubInstanceId = message.HubInstanceId, now = context.Now });
    }

    public async Task OnMessageAsync(GatewayEventContext context, ClientMessage message)
    {
        try
        {
            switch (message.Type)
            {
                case "signIn": await SignInAsync(context, message); break;
                case "resume": await ResumeAsync(context, message); break;
                case "join": await JoinAsync(context, message); break;
                case "leave": await LeaveAsync(context, message); break;
                case "say": await SayAsync(context, message); break;
                default: throw ChatError.UnknownType(message.Type);
            }
        }
        catch (ChatError error)
        {
            // A refused request writes nothing: what it did so far is undone, replies included.
            await context.RollbackAsync();
            await context.SendToConnectionAsync(context.ConnectionId, "error",
                new { code = error.Code, message = error.Message, seq = message.Seq, type = message.Type });
        }
    }

    public async Task OnDisconnectedAsync(GatewayEventContext context, ClientDisconnected message)
    {
        var session = await FindSessionAsync(context);
        await context.ExecuteAsync("DELETE FROM chat_connections WHERE connection_id = @connectionId", new { connectionId = context.ConnectionId });
        if (session is null)
            return;

        // Under the session's row lock, which a resume holds from its start to its commit: a page
        // reload resumes on a new connection (another shard, maybe another worker) while this one's
        // socket closes, and without the lock this could look for other connections before the
        // resume commits and take the session out of its rooms after the resume found it in them.
        await context.ExecuteAsync("SELECT 1 FROM chat_sessions WHERE session_id = @sessionId FOR UPDATE", new { sessionId = session.Id });
        var stillConnected = await context.ExecuteScalarAsync<bool>(
            "SELECT EXISTS (SELECT 1 FROM chat_connections WHERE session_id = @sessionId)", new { sessionId = session.Id });
        if (stillConnected)
            return;

        var rooms = await context.QueryAsync<string>(
            "DELETE FROM chat_members WHERE session_id = @sessionId RETURNING room", new { sessionId = session.Id });
        foreach (var room in rooms.Order(StringComparer.Ordinal))
            await context.SendToGroupAsync(ChatRules.Group(room), "memberLeft", new { room, name = session.Name }, context.ConnectionId);
    }

    public Task OnFailedAsync(GatewayEventContext context, Exception exception) =>
        context.SendToConnectionAsync(context.ConnectionId, "error",
            new { code = "internal_error", message = "The server could not process this event; it was dropped.", seq = context.Seq });

    private static async Task SignInAsync(GatewayEventContext context, ClientMessage message)
    {
        const string expected = "{ name: string, previousToken?: string }";
        // An authenticated user's name comes from their token (stamped by the hub), never from what the client claims.
        var name = message.UserId is { } userId
            ? ChatRules.TokenName(message.UserName, userId)
            : ChatRules.Name(ChatRules.Property(message.Payload, "name", message.Type, expected));
        if (await FindSessionAsync(context) is not null)
            throw ChatError.AlreadySignedIn();
        if (message.UserId is null)
            await RefuseTakenNameAsync(context, name, ChatRules.PreviousToken(ChatRules.Property(message.Payload, "previousToken", message.Type, expected), expected));

        var sessionId = Guid.NewGuid().ToString("N");
        var token = Base64Url(RandomNumberGenerator.GetBytes(32));
        // Only the token's hash is kept: a copy of the database does not let anyone take a session over.
        await context.ExecuteAsync("""
            INSERT INTO chat_sessions (session_id, token, name, created_at, user_id) VALUES (@sessionId, @token, @name, @now, @userId);
            UPDATE chat_connections SET session_id = @sessionId WHERE connection_id = @connectionId;
            """, new { sessionId, token = TokenHash(token), name, now = context.Now, userId = message.UserId, connectionId = context.ConnectionId });

        await context.SendToConnectionAsync(context.ConnectionId, "signedIn", new { name, sessionId, token });
    }

    /// <summary>
    /// In demo mode a name is one person's while their session is live: while it has a connection
    /// open (as far as the workers know: until its disconnect is applied, or its hub instance is
    /// declared dead). Compared case-insensitively, so "Ada" and "ada" are not two people. The
    /// session named by <paramref name="previousToken"/> (the page signing in again after its
    /// session expired, while its old connection is still being let go) does not count.
    /// </summary>
    private static async Task RefuseTakenNameAsync(GatewayEventContext context, string name, string? previousToken)
    {
        // Two sign-ins with one name on different shards: the second waits for the first to commit, then sees it.
        // Its own statement: the check's snapshot (read committed) is taken once the lock is held.
        await context.ExecuteAsync("SELECT pg_advisory_xact_lock(hashtext('chat_name:' || lower(@name)))", new { name });
        var taken = await context.ExecuteScalarAsync<bool>("""
            SELECT EXISTS (
                SELECT 1 FROM chat_sessions s JOIN chat_connections c ON c.session_id = s.session_id
                WHERE lower(s.name) = lower(@name) AND s.user_id IS NULL AND s.token IS DISTINCT FROM @previous)
            """, new { name, previous = previousToken is null ? null : TokenHash(previousToken) });
        if (taken)
            throw ChatError.NameTaken(name);
    }

    /// <summary>
    /// A client on a new connection (its hub instance died, its network dropped) takes its session
    /// back: the connection is bound to it, put back in the rooms it names, and sent every message
    /// of each room after the one it saw last.
    /// </summary>
    private async Task ResumeAsync(GatewayEventContext context, ClientMessage message)
    {
        var (token, lastSeen) = ChatRules.Resume(message.Payload, _options.MaxRoomsPerSession);
        if (await FindSessionAsync(context) is not null)
            throw ChatError.AlreadySignedIn();

        // With authentication on, a session resumes only for the user it was given to: a leaked
        // token is worth nothing to anyone else (equal, or both null in demo mode).
        // Locked to commit: the disconnect of the session's old connection waits for this resume (see OnDisconnectedAsync).
        var session = await context.QuerySingleOrDefaultAsync<Session>("""
            SELECT session_id AS Id, name FROM chat_sessions
            WHERE token = @token AND created_at >= @since AND user_id IS NOT DISTINCT FROM @userId
            FOR UPDATE
            """, new { token = TokenHash(token), since = context.Now - _options.SessionLifetime, userId = message.UserId })
            ?? throw ChatError.UnknownSession();

        // The rooms it is still in (another connection of it may be open) and those it names, together.
        var current = await context.QueryAsync<string>("SELECT room FROM chat_members WHERE session_id = @sessionId", new { sessionId = session.Id });
        if (current.Union(lastSeen.Select(r => r.Room), StringComparer.Ordinal).Count() > _options.MaxRoomsPerSession)
            throw ChatError.TooManyRooms(_options.MaxRoomsPerSession);

        await context.ExecuteAsync("UPDATE chat_connections SET session_id = @sessionId WHERE connection_id = @connectionId",
            new { sessionId = session.Id, connectionId = context.ConnectionId });

        var rooms = new List<object>();
        foreach (var (room, seen) in lastSeen)
        {
            var isNew = await EnterAsync(context, room, session);
            var missed = await context.QueryAsync<StoredMessage>("""
                SELECT seq, sender, text, sent_at AS SentAt FROM chat_messages WHERE room = @room AND seq > @seen ORDER BY seq LIMIT @limit
                """, new { room, seen, limit = _options.ResumeLimit + 1 });
            var complete = missed.Count <= _options.ResumeLimit;
            rooms.Add(new
            {
                room,
                members = await MembersAsync(context, room),
                messages = complete ? missed.Select(m => m.ToRoomMessage(room)).ToList() : await HistoryAsync(context, room),
                complete,
                lastSeq = await LastSeqAsync(context, room),
            });
            if (isNew)
                await context.SendToGroupAsync(ChatRules.Group(room), "memberJoined", new { room, name = session.Name }, context.ConnectionId);
        }

        // Into every room's group before this snapshot commits (row locks are held meanwhile, so
        // all at once: one wait for the broker, not one per room).
        await Task.WhenAll(lastSeen.Select(r => context.AddToGroupAsync(context.ConnectionId, ChatRules.Group(r.Room))));

        await context.SendToConnectionAsync(context.ConnectionId, "resumed", new { name = session.Name, sessionId = session.Id, token, rooms });
    }

    private async Task JoinAsync(GatewayEventContext context, ClientMessage message)
    {
        var room = ChatRules.Room(ChatRules.Property(message.Payload, "room", message.Type, "{ room: string }"));
        var session = await RequireSessionAsync(context);

        var rooms = await context.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM chat_members WHERE session_id = @sessionId AND room <> @room",
            new { sessionId = session.Id, room });
        if (rooms >= _options.MaxRoomsPerSession)
            throw ChatError.TooManyRooms(_options.MaxRoomsPerSession);

        var isNew = await EnterAsync(context, room, session);
        var members = await MembersAsync(context, room);
        var history = await HistoryAsync(context, room);
        var lastSeq = await LastSeqAsync(context, room);

        // In the group before this snapshot commits: any message committed after it reaches the client live.
        await context.AddToGroupAsync(context.ConnectionId, ChatRules.Group(room));
        await context.SendToConnectionAsync(context.ConnectionId, "joined", new { room, members, history, lastSeq });
        if (isNew)
            await context.SendToGroupAsync(ChatRules.Group(room), "memberJoined", new { room, name = session.Name }, context.ConnectionId);
    }

    private static async Task LeaveAsync(GatewayEventContext context, ClientMessage message)
    {
        var room = ChatRules.Room(ChatRules.Property(message.Payload, "room", message.Type, "{ room: string }"));
        var session = await RequireSessionAsync(context);

        var removed = await context.ExecuteAsync("DELETE FROM chat_members WHERE room = @room AND session_id = @sessionId",
            new { room, sessionId = session.Id });
        if (removed == 0)
            throw ChatError.NotInRoom(room);

        await context.RemoveFromGroupAsync(context.ConnectionId, ChatRules.Group(room));
        await context.SendToConnectionAsync(context.ConnectionId, "left", new { room });
        await context.SendToGroupAsync(ChatRules.Group(room), "memberLeft", new { room, name = session.Name });
    }

    private static async Task SayAsync(GatewayEventContext context, ClientMessage message)
    {
        const string expected = "{ room: string, text: string, clientId?: string }";
        var room = ChatRules.Room(ChatRules.Property(message.Payload, "room", message.Type, expected));
        var text = ChatRules.Text(ChatRules.Property(message.Payload, "text", message.Type, expected));
        var clientId = ChatRules.ClientId(ChatRules.Property(message.Payload, "clientId", message.Type, expected));
        // The sender's session, the room's next seq (taken under the room row's lock, held to commit)
        // and the message, in one statement; nothing when not signed in or not a member.
        var said = await context.QuerySingleOrDefaultAsync<Said>("""
            WITH sender AS (
                SELECT s.session_id, s.name FROM chat_connections c JOIN chat_sessions s ON s.session_id = c.session_id
                WHERE c.connection_id = @connectionId
            ), next AS (
                UPDATE chat_rooms r SET last_seq = r.last_seq + 1 FROM sender
                WHERE r.room = @room AND EXISTS (SELECT 1 FROM chat_members m WHERE m.room = @room AND m.session_id = sender.session_id)
                RETURNING r.last_seq, sender.session_id, sender.name
            )
            INSERT INTO chat_messages (room, seq, session_id, sender, text, sent_at)
            SELECT @room, last_seq, session_id, name, @text, @now FROM next
            RETURNING seq, sender
            """, new { connectionId = context.ConnectionId, room, text, now = context.Now });
        if (said is null)
        {
            await RequireSessionAsync(context);
            throw ChatError.NotInRoom(room);
        }

        await context.SendToGroupAsync(ChatRules.Group(room), "message",
            new RoomMessage(room, said.Seq, said.Sender, text, ChatRules.Time(context.Now), clientId));
    }

    /// <summary>
    /// Makes the session a member of the room (created when new); true when it was not one already.
    /// Holds the room's row locked until this event commits, before its history is read: a message
    /// said meanwhile (which takes its seq under the same lock) commits after this event, so after
    /// the connection joined the room's group, and reaches it live; one committed before is in the
    /// history it is sent. Either way, none falls between the two.
    /// </summary>
    private static async Task<bool> EnterAsync(GatewayEventContext context, string room, Session session)
    {
        await context.ExecuteAsync("""
            INSERT INTO chat_rooms (room, last_seq) VALUES (@room, 0) ON CONFLICT (room) DO NOTHING;
            SELECT 1 FROM chat_rooms WHERE room = @room FOR UPDATE;
            """, new { room });
        return await context.ExecuteAsync("""
            INSERT INTO chat_members (room, session_id, joined_at) VALUES (@room, @sessionId, @now)
            ON CONFLICT (room, session_id) DO NOTHING
            """, new { room, sessionId = session.Id, now = context.Now }) == 1;
    }

    private static Task<IReadOnlyList<string>> MembersAsync(GatewayEventContext context, string room) =>
        context.QueryAsync<string>("""
            SELECT s.name FROM chat_members m JOIN chat_sessions s ON s.session_id = m.session_id
            WHERE m.room = @room ORDER BY m.joined_at, s.name
            """, new { room });

    /// <summary>The room's latest messages, oldest first.</summary>
    private static async Task<List<RoomMessage>> HistoryAsync(GatewayEventContext context, string room) =>
        (await context.QueryAsync<StoredMessage>("""
            SELECT seq, sender, text, sent_at AS SentAt FROM
              (SELECT seq, sender, text, sent_at FROM chat_messages WHERE room = @room ORDER BY seq DESC LIMIT @limit) AS latest
            ORDER BY seq
            """, new { room, limit = ChatRules.HistorySize }))
        .Select(m => m.ToRoomMessage(room)).ToList();

    private static Task<long> LastSeqAsync(GatewayEventContext context, string room) =>
        context.ExecuteScalarAsync<long>("SELECT last_seq FROM chat_rooms WHERE room = @room", new { room });

    private static async Task<Session> RequireSessionAsync(GatewayEventContext context) =>
        await FindSessionAsync(context) ?? throw ChatError.NotSignedIn();

    private static Task<Session?> FindSessionAsync(GatewayEventContext context) =>
        context.QuerySingleOrDefaultAsync<Session>("""
            SELECT s.session_id AS Id, s.name FROM chat_connections c JOIN chat_sessions s ON s.session_id = c.session_id
            WHERE c.connection_id = @connectionId
            """, new { connectionId = context.ConnectionId });

    /// <summary>What the database keeps of a session token: its SHA-256, base64url.</summary>
    public static string TokenHash(string token) => Base64Url(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private sealed record Session(string Id, string Name);

    private sealed record Said(long Seq, string Sender);

    private sealed record StoredMessage(long Seq, string Sender, string Text, DateTime SentAt)
    {
        public RoomMessage ToRoomMessage(string room) => new(room, Seq, Sender, Text, ChatRules.Time(SentAt));
    }

    /// <summary>A room message as clients see it, live and in history (where the sender's client id is not kept).</summary>
    private sealed record RoomMessage(string Room, long Seq, string From, string Text, string At,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ClientId = null);
}
