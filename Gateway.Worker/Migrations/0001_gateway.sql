-- What the gateway runtime keeps: per-connection progress, the outbox, given-up seqs, hub instances.

-- A connection's last applied seq: read under a row lock while its next event applies.
CREATE TABLE gateway_connections (
    connection_id   text PRIMARY KEY,
    hub_instance_id text NOT NULL,
    last_seq        bigint NOT NULL,
    closed_at       timestamptz NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX gateway_connections_open ON gateway_connections (hub_instance_id) WHERE closed_at IS NULL;
CREATE INDEX gateway_connections_by_hub ON gateway_connections (hub_instance_id, updated_at);
CREATE INDEX gateway_connections_closed ON gateway_connections (closed_at) WHERE closed_at IS NOT NULL;

-- Replies written with the effect of the event that sent them, published after commit.
CREATE TABLE gateway_outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id text NOT NULL,
    seq           bigint NOT NULL,
    message_type  text NOT NULL,
    body          text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX gateway_outbox_by_connection ON gateway_outbox (connection_id, id);
CREATE INDEX gateway_outbox_by_age ON gateway_outbox (created_at);

-- Seqs a connection stopped waiting for (Worker:GapWaitLimit): should one still come, its client is told.
CREATE TABLE gateway_given_up (
    connection_id text NOT NULL,
    seq           bigint NOT NULL,
    given_up_at   timestamptz NOT NULL,
    PRIMARY KEY (connection_id, seq)
);

-- Hub instances' heartbeats, as the workers heard them.
CREATE TABLE gateway_hub_instances (
    hub_instance_id  text PRIMARY KEY,
    connection_count integer NOT NULL,
    interval_ms      bigint NOT NULL,
    last_seen        timestamptz NOT NULL
);
