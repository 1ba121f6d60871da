using System.Security.Cryptography;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Options;
using SocketStarter.ChatWorker.Gateway;
using SocketStarter.Messages;

namespace SocketStarter.ChatWorker.Chat;

/// <summary>
/// The demo chat: sign in with a name, join and leave rooms, say things, see who is there and what
/// was said. Everything it knows is in the store; it sends replies only through the gateway.
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
        await ExecuteAsync(context, """
            INSERT INTO chat_connections (connection_id, hub_instance_id, session_id, connected_at)
            VALUES ($c, $h, NULL, $at) ON CONFLICT (connection_id) DO NOTHING
            """, ("$c", message.ConnectionId), ("$h", message.HubInstanceId), ("$at", context.Now.ToString("O")));
    }

    public async Task OnMessageAsync(GatewayEventContext context, ClientMessage message)
    {
        // A refused request writes nothing: everything since the savepoint is undone, replies included.
        await ExecuteAsync(context, "SAVEPOINT chat_event");
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
            await ExecuteAsync(context, "RELEASE chat_event");
        }
        catch (ChatError error)
        {
            await ExecuteAsync(context, "ROLLBACK TO chat_event");
            await ExecuteAsync(context, "RELEASE chat_event");
            await context.SendToConnectionAsync(context.ConnectionId, "error",
                new { code = error.Code, message = error.Message, seq = message.Seq, type = message.Type });
        }
    }

    public async Task OnDisconnectedAsync(GatewayEventContext context, ClientDisconnected message)
    {
        var session = await FindSessionAsync(context);
        await ExecuteAsync(context, "DELETE FROM chat_connections WHERE connection_id = $c", ("$c", context.ConnectionId));
        if (session is null)
            return;

        var stillConnected = await ScalarAsync(context,
            "SELECT COUNT(*) FROM chat_connections WHERE session_id = $s", ("$s", session.Value.Id)) is long n && n > 0;
        if (stillConnected)
            return;

        var rooms = await QueryAsync(context, "SELECT room FROM chat_members WHERE session_id = $s ORDER BY room",
            r => r.GetString(0), ("$s", session.Value.Id));
        await ExecuteAsync(context, "DELETE FROM chat_members WHERE session_id = $s", ("$s", session.Value.Id));
        foreach (var room in rooms)
            await context.SendToGroupAsync(ChatRules.Group(room), "memberLeft", new { room, name = session.Value.Name }, context.ConnectionId);
    }

    public Task OnFailedAsync(GatewayEventContext context, Exception exception) =>
        context.SendToConnectionAsync(context.ConnectionId, "error",
            new { code = "internal_error", message = "The server could not process this event; it was dropped.", seq = context.Seq });

    private static async Task SignInAsync(GatewayEventContext context, ClientMessage message)
    {
        // An authenticated user's name comes from their token (stamped by the hub), never from what the client claims.
        var name = message.UserId is { } userId
            ? ChatRules.TokenName(message.UserName, userId)
            : ChatRules.Name(ChatRules.Property(message.Payload, "name", message.Type, "{ name: string }"));
        if (await FindSessionAsync(context) is not null)
            throw ChatError.AlreadySignedIn();

        var sessionId = Guid.NewGuid().ToString("N");
        var token = Base64Url(RandomNumberGenerator.GetBytes(32));
        // Only the token's hash is kept: a copy of the store does not let anyone take a session over.
        await ExecuteAsync(context, "INSERT INTO chat_sessions (session_id, token, name, created_at, user_id) VALUES ($s, $t, $n, $at, $u)",
            ("$s", sessionId), ("$t", TokenHash(token)), ("$n", name), ("$at", context.Now.ToString("O")), ("$u", message.UserId));
        await ExecuteAsync(context, "UPDATE chat_connections SET session_id = $s WHERE connection_id = $c",
            ("$s", sessionId), ("$c", context.ConnectionId));

        await context.SendToConnectionAsync(context.ConnectionId, "signedIn", new { name, sessionId, token });
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
        // token is worth nothing to anyone else. (IS: equal, or both null in demo mode.)
        var sessions = await QueryAsync(context, "SELECT session_id, name FROM chat_sessions WHERE token = $t AND created_at >= $since AND user_id IS $u",
            r => (Id: r.GetString(0), Name: r.GetString(1)),
            ("$t", TokenHash(token)), ("$since", (context.Now - _options.SessionLifetime).ToString("O")), ("$u", message.UserId));
        if (sessions.Count == 0)
            throw ChatError.UnknownSession();
        var session = sessions[0];

        // The rooms it is still in (another connection of it may be open) and those it names, together.
        var current = await QueryAsync(context, "SELECT room FROM chat_members WHERE session_id = $s", r => r.GetString(0), ("$s", session.Id));
        if (current.Union(lastSeen.Select(r => r.Room), StringComparer.Ordinal).Count() > _options.MaxRoomsPerSession)
            throw ChatError.TooManyRooms(_options.MaxRoomsPerSession);

        await ExecuteAsync(context, "UPDATE chat_connections SET session_id = $s WHERE connection_id = $c",
            ("$s", session.Id), ("$c", context.ConnectionId));

        var rooms = new List<object>();
        foreach (var (room, seen) in lastSeen)
        {
            var isNew = await EnterAsync(context, room, session);
            var missed = await QueryAsync(context,
                "SELECT seq, sender, text, sent_at FROM chat_messages WHERE room = $r AND seq > $seen ORDER BY seq LIMIT $n",
                r => new RoomMessage(room, r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3)),
                ("$r", room), ("$seen", seen), ("$n", _options.ResumeLimit + 1));
            var complete = missed.Count <= _options.ResumeLimit;
            rooms.Add(new
            {
                room,
                members = await MembersAsync(context, room),
                messages = complete ? missed : await HistoryAsync(context, room),
                complete,
                lastSeq = await LastSeqAsync(context, room),
            });
            if (isNew)
                await context.SendToGroupAsync(ChatRules.Group(room), "memberJoined", new { room, name = session.Name }, context.ConnectionId);
        }

        // Into every room's group before this snapshot commits (the store's write lock is held
        // meanwhile, so all at once: one wait for the broker, not one per room).
        await Task.WhenAll(lastSeen.Select(r => context.AddToGroupAsync(context.ConnectionId, ChatRules.Group(r.Room))));

        await context.SendToConnectionAsync(context.ConnectionId, "resumed", new { name = session.Name, sessionId = session.Id, token, rooms });
    }

    private async Task JoinAsync(GatewayEventContext context, ClientMessage message)
    {
        var room = ChatRules.Room(ChatRules.Property(message.Payload, "room", message.Type, "{ room: string }"));
        var session = await RequireSessionAsync(context);

        var rooms = (long)(await ScalarAsync(context, "SELECT COUNT(*) FROM chat_members WHERE session_id = $s AND room <> $r",
            ("$s", session.Id), ("$r", room)))!;
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

        var removed = await ExecuteAsync(context, "DELETE FROM chat_members WHERE room = $r AND session_id = $s",
            ("$r", room), ("$s", session.Id));
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
        var session = await RequireSessionAsync(context);

        var isMember = await ScalarAsync(context, "SELECT COUNT(*) FROM chat_members WHERE room = $r AND session_id = $s",
            ("$r", room), ("$s", session.Id)) is long n && n > 0;
        if (!isMember)
            throw ChatError.NotInRoom(room);

        var seq = (long)(await ScalarAsync(context, "UPDATE chat_rooms SET last_seq = last_seq + 1 WHERE room = $r RETURNING last_seq", ("$r", room)))!;
        var at = context.Now.ToString("O");
        await ExecuteAsync(context, """
            INSERT INTO chat_messages (room, seq, session_id, sender, text, sent_at) VALUES ($r, $q, $s, $n, $t, $at)
            """, ("$r", room), ("$q", seq), ("$s", session.Id), ("$n", session.Name), ("$t", text), ("$at", at));

        await context.SendToGroupAsync(ChatRules.Group(room), "message", new RoomMessage(room, seq, session.Name, text, at, clientId));
    }

    /// <summary>Makes the session a member of the room (created when new); true when it was not one already.</summary>
    private static async Task<bool> EnterAsync(GatewayEventContext context, string room, (string Id, string Name) session)
    {
        await ExecuteAsync(context, "INSERT INTO chat_rooms (room, last_seq) VALUES ($r, 0) ON CONFLICT (room) DO NOTHING", ("$r", room));
        return await ExecuteAsync(context,
            "INSERT INTO chat_members (room, session_id, joined_at) VALUES ($r, $s, $at) ON CONFLICT (room, session_id) DO NOTHING",
            ("$r", room), ("$s", session.Id), ("$at", context.Now.ToString("O"))) == 1;
    }

    private static Task<List<string>> MembersAsync(GatewayEventContext context, string room) =>
        QueryAsync(context, """
            SELECT s.name FROM chat_members m JOIN chat_sessions s ON s.session_id = m.session_id
            WHERE m.room = $r ORDER BY m.joined_at, s.name
            """, r => r.GetString(0), ("$r", room));

    /// <summary>The room's latest messages, oldest first.</summary>
    private static Task<List<RoomMessage>> HistoryAsync(GatewayEventContext context, string room) =>
        QueryAsync(context, """
            SELECT seq, sender, text, sent_at FROM
              (SELECT seq, sender, text, sent_at FROM chat_messages WHERE room = $r ORDER BY seq DESC LIMIT $n)
            ORDER BY seq
            """, r => new RoomMessage(room, r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3)),
            ("$r", room), ("$n", ChatRules.HistorySize));

    private static async Task<long> LastSeqAsync(GatewayEventContext context, string room) =>
        (long)(await ScalarAsync(context, "SELECT last_seq FROM chat_rooms WHERE room = $r", ("$r", room)))!;

    private static async Task<(string Id, string Name)> RequireSessionAsync(GatewayEventContext context) =>
        await FindSessionAsync(context) ?? throw ChatError.NotSignedIn();

    private static async Task<(string Id, string Name)?> FindSessionAsync(GatewayEventContext context)
    {
        var rows = await QueryAsync(context, """
            SELECT s.session_id, s.name FROM chat_connections c JOIN chat_sessions s ON s.session_id = c.session_id
            WHERE c.connection_id = $c
            """, r => (r.GetString(0), r.GetString(1)), ("$c", context.ConnectionId));
        return rows.Count > 0 ? rows[0] : null;
    }

    private static async Task<int> ExecuteAsync(GatewayEventContext context, string sql, params (string, object?)[] parameters)
    {
        await using var command = context.Command(sql, parameters);
        return await command.ExecuteNonQueryAsync();
    }

    private static async Task<object?> ScalarAsync(GatewayEventContext context, string sql, params (string, object?)[] parameters)
    {
        await using var command = context.Command(sql, parameters);
        return await command.ExecuteScalarAsync();
    }

    private static async Task<List<T>> QueryAsync<T>(GatewayEventContext context, string sql, Func<Microsoft.Data.Sqlite.SqliteDataReader, T> read, params (string, object?)[] parameters)
    {
        await using var command = context.Command(sql, parameters);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await reader.ReadAsync())
            rows.Add(read(reader));
        return rows;
    }

    /// <summary>What the store keeps of a session token: its SHA-256, base64url.</summary>
    public static string TokenHash(string token) => Base64Url(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)));

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>A room message as clients see it, live and in history (where the sender's client id is not kept).</summary>
    private sealed record RoomMessage(string Room, long Seq, string From, string Text, string At,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ClientId = null);
}
