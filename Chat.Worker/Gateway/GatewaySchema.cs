using SocketStarter.ChatWorker.Store;

namespace SocketStarter.ChatWorker.Gateway;

/// <summary>What the gateway side of a worker keeps: per-connection progress, the outbox, hub instances.</summary>
public sealed class GatewaySchema : IStoreSchema
{
    public string Ddl => """
        CREATE TABLE IF NOT EXISTS gateway_connections (
            connection_id   TEXT PRIMARY KEY,
            hub_instance_id TEXT NOT NULL,
            last_seq        INTEGER NOT NULL,
            closed_at       TEXT NULL,
            updated_at      TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS gateway_connections_open ON gateway_connections (hub_instance_id) WHERE closed_at IS NULL;
        CREATE INDEX IF NOT EXISTS gateway_connections_by_hub ON gateway_connections (hub_instance_id, updated_at);
        CREATE TABLE IF NOT EXISTS gateway_outbox (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            connection_id TEXT NOT NULL,
            seq           INTEGER NOT NULL,
            message_type  TEXT NOT NULL,
            body          TEXT NOT NULL,
            created_at    TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS gateway_outbox_by_connection ON gateway_outbox (connection_id, id);
        CREATE TABLE IF NOT EXISTS gateway_given_up (
            connection_id TEXT NOT NULL,
            seq           INTEGER NOT NULL,
            given_up_at   TEXT NOT NULL,
            PRIMARY KEY (connection_id, seq)
        );
        CREATE TABLE IF NOT EXISTS gateway_hub_instances (
            hub_instance_id  TEXT PRIMARY KEY,
            connection_count INTEGER NOT NULL,
            interval_ms      INTEGER NOT NULL,
            last_seen        TEXT NOT NULL
        );
        """;
}
