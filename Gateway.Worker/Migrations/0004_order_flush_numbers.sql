-- Each ordered flush of a group takes a number from this sequence while it holds the group's lock,
-- so one group's flushes are numbered in the order they ran, whichever worker ran them. The hubs
-- drop a command of an older flush that arrives after a newer one's (a send let go at a worker's
-- publish timeout). A sequence, not a counter in a row: a flush that times out is rolled back, and
-- the next one must still get a higher number.
CREATE SEQUENCE gateway_order_flushes AS bigint;
