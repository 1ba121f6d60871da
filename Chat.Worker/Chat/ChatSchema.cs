using SocketStarter.ChatWorker.Store;

namespace SocketStarter.ChatWorker.Chat;

/// <summary>All chat state: sessions, their connections, rooms, members and history.</summary>
public sealed class ChatSchema : IStoreSchema
{
    public string Ddl => """
        CREATE TABLE IF NOT EXISTS chat_sessions (
            session_id TEXT PRIMARY KEY,
            token      TEXT NOT NULL UNIQUE,
            name       TEXT NOT NULL,
            created_at TEXT NOT NULL,
            user_id    TEXT NULL
        );
        CREATE TABLE IF NOT EXISTS chat_connections (
            connection_id   TEXT PRIMARY KEY,
            hub_instance_id TEXT NOT NULL,
            session_id      TEXT NULL REFERENCES chat_sessions (session_id),
            connected_at    TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS chat_connections_by_session ON chat_connections (session_id);
        CREATE TABLE IF NOT EXISTS chat_rooms (
            room     TEXT PRIMARY KEY,
            last_seq INTEGER NOT NULL
        );
        CREATE TABLE IF NOT EXISTS chat_members (
            room       TEXT NOT NULL,
            session_id TEXT NOT NULL,
            joined_at  TEXT NOT NULL,
            PRIMARY KEY (room, session_id)
        );
        CREATE INDEX IF NOT EXISTS chat_members_by_session ON chat_members (session_id);
        CREATE TABLE IF NOT EXISTS chat_messages (
            room       TEXT NOT NULL,
            seq        INTEGER NOT NULL,
            session_id TEXT NOT NULL,
            sender     TEXT NOT NULL,
            text       TEXT NOT NULL,
            sent_at    TEXT NOT NULL,
            PRIMARY KEY (room, seq)
        );
        """;

    /// <summary>The authenticated user a session belongs to (null in demo mode); added after 2026-12-01.</summary>
    public IReadOnlyList<(string Table, string Column, string Definition)> AddedColumns => [("chat_sessions", "user_id", "TEXT NULL")];
}
