-- Replies to a group leave in the order their events committed, whichever worker committed them:
-- the group is the reply's order key, and a flush publishes a key's rows in id order under a lock.
ALTER TABLE gateway_outbox ADD COLUMN order_key text NULL;
CREATE INDEX gateway_outbox_by_order_key ON gateway_outbox (order_key, id) WHERE order_key IS NOT NULL;
