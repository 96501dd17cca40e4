-- Version 8: the same messages table, with `legacy`'s CHECK written as a
-- range.
--
-- `CHECK (legacy IN (0, 1, 2))` (version 5) made SQLite build a temporary
-- B-tree of the three values for every row inserted (an IN list of more
-- than two values is looked up in one): opening, filling and closing it
-- was about a fifth of each message's insert, on both nodes of a chat. For
-- an INTEGER column of a STRICT table, `BETWEEN 0 AND 2` allows exactly
-- the same values and is two comparisons.
--
-- SQLite cannot change a CHECK in place, so messages is rebuilt as in
-- version 3: the children (outbox, deliveries) first, pointing at the new
-- table, then the old tables dropped and the new ones renamed. `seq`
-- values are kept, so the full-text index (rowid = seq) stays valid as it
-- is. Columns keep their order and every other constraint its text.

CREATE TABLE messages_v8 (
    seq          INTEGER PRIMARY KEY,
    id           BLOB    NOT NULL CHECK (length(id) = 16),
    conv_peer    BLOB             CHECK (conv_peer IS NULL OR length(conv_peer) = 32),
    author       BLOB    NOT NULL CHECK (length(author) = 32),
    timestamp_ms INTEGER NOT NULL CHECK (timestamp_ms >= 0),
    text         TEXT    NOT NULL,
    signature    BLOB             CHECK (signature IS NULL OR length(signature) = 64),
    outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    received_ms  INTEGER NOT NULL CHECK (received_ms >= 0),
    order_ms     INTEGER NOT NULL CHECK (order_ms >= 0 AND order_ms <= timestamp_ms),
    room         BLOB             CHECK (room IS NULL OR length(room) = 32),
    legacy       INTEGER NOT NULL DEFAULT 0 CHECK (legacy BETWEEN 0 AND 2),
    wire         BLOB,
    awaiting_ack INTEGER NOT NULL DEFAULT 0 CHECK (awaiting_ack IN (0, 1)),
    acked_ms     INTEGER          CHECK (acked_ms IS NULL OR acked_ms >= 0),
    -- id first: acks and the outbox look messages up by bare id, and this
    -- one index serves them and the (author, id) rule alike.
    UNIQUE (id, author)
) STRICT;
INSERT INTO messages_v8 (seq, id, conv_peer, author, timestamp_ms, text, signature, outgoing,
                         received_ms, order_ms, room, legacy, wire, awaiting_ack, acked_ms)
SELECT seq, id, conv_peer, author, timestamp_ms, text, signature, outgoing,
       received_ms, order_ms, room, legacy, wire, awaiting_ack, acked_ms
  FROM messages;

CREATE TABLE outbox_v8 (
    peer        BLOB    NOT NULL CHECK (length(peer) = 32),
    message_seq INTEGER NOT NULL REFERENCES messages_v8 (seq) ON DELETE CASCADE,
    PRIMARY KEY (peer, message_seq)
) STRICT, WITHOUT ROWID;
INSERT INTO outbox_v8 SELECT peer, message_seq FROM outbox;

CREATE TABLE deliveries_v8 (
    message_seq INTEGER NOT NULL REFERENCES messages_v8 (seq) ON DELETE CASCADE,
    peer        BLOB    NOT NULL CHECK (length(peer) = 32),
    acked_ms    INTEGER NOT NULL CHECK (acked_ms >= 0),
    PRIMARY KEY (message_seq, peer)
) STRICT, WITHOUT ROWID;
INSERT INTO deliveries_v8 SELECT message_seq, peer, acked_ms FROM deliveries;

DROP TABLE outbox;
DROP TABLE deliveries;
DROP TABLE messages;
ALTER TABLE messages_v8 RENAME TO messages;
ALTER TABLE outbox_v8 RENAME TO outbox;
ALTER TABLE deliveries_v8 RENAME TO deliveries;

-- The indexes and triggers went with the old tables.
CREATE INDEX messages_by_conversation ON messages (conv_peer, order_ms, seq);
CREATE INDEX messages_by_room ON messages (room, order_ms, seq) WHERE room IS NOT NULL;
CREATE INDEX messages_awaiting_ack ON messages (conv_peer, order_ms, seq)
    WHERE awaiting_ack = 1;
CREATE INDEX outbox_by_message ON outbox (message_seq);

CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;

CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF seq, text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;
