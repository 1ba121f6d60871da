-- All chat state: sessions, their connections, rooms, members and history.
CREATE TABLE chat_sessions (
    session_id text PRIMARY KEY,
    -- SHA-256 of the session token, base64url: a copy of the database lets nobody take a session over.
    token      text NOT NULL UNIQUE,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX chat_sessions_by_age ON chat_sessions (created_at);

CREATE TABLE chat_connections (
    connection_id   text PRIMARY KEY,
    hub_instance_id text NOT NULL,
    session_id      text NULL REFERENCES chat_sessions (session_id),
    connected_at    timestamptz NOT NULL
);
CREATE INDEX chat_connections_by_session ON chat_connections (session_id);

-- last_seq numbers the room's messages; taking the next one locks the room's row until commit.
CREATE TABLE chat_rooms (
    room     text PRIMARY KEY,
    last_seq bigint NOT NULL
);

CREATE TABLE chat_members (
    room       text NOT NULL,
    session_id text NOT NULL,
    joined_at  timestamptz NOT NULL,
    PRIMARY KEY (room, session_id)
);
CREATE INDEX chat_members_by_session ON chat_members (session_id);

CREATE TABLE chat_messages (
    room       text NOT NULL,
    seq        bigint NOT NULL,
    session_id text NOT NULL,
    sender     text NOT NULL,
    text       text NOT NULL,
    sent_at    timestamptz NOT NULL,
    PRIMARY KEY (room, seq)
);
