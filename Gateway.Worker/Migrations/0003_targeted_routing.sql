-- Commands go only to the hub instances that hold their targets (see HubRouting).

-- The hub instance a reply goes to; NULL: every instance (a user, everyone, a group, or not known).
ALTER TABLE gateway_outbox ADD COLUMN target_instance text NULL;

-- Which hub instance holds each member of each group: written in the transaction of the event that
-- adds or removes the member (or closes its connection), read by the group's ordered flush, so a
-- reply committed after a join goes to the new member's instance too.
CREATE TABLE gateway_group_members (
    group_name      text NOT NULL,
    connection_id   text NOT NULL,
    hub_instance_id text NULL, -- NULL: the connection's instance is not known; the group's replies go to every instance
    PRIMARY KEY (group_name, connection_id)
);
CREATE INDEX gateway_group_members_by_connection ON gateway_group_members (connection_id);
