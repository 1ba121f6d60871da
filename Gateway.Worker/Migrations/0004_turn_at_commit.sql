-- An event that follows one its worker applied itself takes its turn in its commit's round trip,
-- after the application's work (see UpstreamEventProcessor). This raises when that turn is not
-- the event's after all (another transaction recorded the seq, or replies of the connection still
-- wait in the outbox): the statements after it, the COMMIT included, do not run, the transaction
-- rolls back, and the worker applies the event again, taking its turn first.
CREATE FUNCTION gateway_require_turn(taken boolean, connection_id text, seq bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT taken THEN
        RAISE EXCEPTION 'seq % of connection % is not the next to apply', seq, connection_id USING ERRCODE = 'GW001';
    END IF;
    RETURN true;
END
$$;
