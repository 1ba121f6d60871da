CREATE TABLE counter (total bigint NOT NULL);
INSERT INTO counter (total) VALUES (0);
