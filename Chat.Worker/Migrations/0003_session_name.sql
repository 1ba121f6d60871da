-- In demo mode a name held by a live session is refused to anyone else (name_taken): found by name, case-insensitively.
CREATE INDEX chat_sessions_by_name ON chat_sessions (lower(name));
