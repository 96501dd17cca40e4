-- Version 3: a message is identified by (author, id), not by id alone, and
-- sorts by `order_ms`, not by its author's claimed timestamp.
-- Deduplicating by bare id let a peer that had seen someone's message id
-- plant its own message under it first, so the genuine one was dropped as a
-- duplicate and acked (issue: id squatting). Two authors may now use the
-- same id; the same author cannot.
--
-- `order_ms` = min(timestamp_ms, received_ms + 600000): an author whose
-- clock runs ahead, or who lies, cannot pin a message after every later
-- genuine one (a timestamp of 2^63 - 1 sorted last forever). natter computes
-- it on insert (natter_core::chat::store::order_ms; 600000 ms is
-- MAX_CLOCK_SKEW_MS).
--
-- SQLite cannot drop a UNIQUE constraint in place, so messages is rebuilt.
-- Its children (outbox, deliveries) are rebuilt with it, children first, so
-- that dropping the old parent cascades into nothing, and renaming the new
-- parent points the new children's foreign keys at it. `seq` values are
-- kept, so the full-text index (rowid = seq) stays valid as it is.

CREATE TABLE messages_v3 (
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
    -- id first: acks and the outbox look messages up by bare id, and this
    -- one index serves them and the (author, id) rule alike.
    UNIQUE (id, author)
) STRICT;
INSERT INTO messages_v3 SELECT seq, id, conv_peer, author, timestamp_ms, text, signature,
    outgoing, received_ms, min(timestamp_ms, received_ms + 600000) FROM messages;

CREATE TABLE outbox_v3 (
    peer        BLOB    NOT NULL CHECK (length(peer) = 32),
    message_seq INTEGER NOT NULL REFERENCES messages_v3 (seq) ON DELETE CASCADE,
    PRIMARY KEY (peer, message_seq)
) STRICT, WITHOUT ROWID;
INSERT INTO outbox_v3 SELECT peer, message_seq FROM outbox;

CREATE TABLE deliveries_v3 (
    message_seq INTEGER NOT NULL REFERENCES messages_v3 (seq) ON DELETE CASCADE,
    peer        BLOB    NOT NULL CHECK (length(peer) = 32),
    acked_ms    INTEGER NOT NULL CHECK (acked_ms >= 0),
    PRIMARY KEY (message_seq, peer)
) STRICT, WITHOUT ROWID;
INSERT INTO deliveries_v3 SELECT message_seq, peer, acked_ms FROM deliveries;

DROP TABLE outbox;
DROP TABLE deliveries;
DROP TABLE messages;
ALTER TABLE messages_v3 RENAME TO messages;
ALTER TABLE outbox_v3 RENAME TO outbox;
ALTER TABLE deliveries_v3 RENAME TO deliveries;

CREATE INDEX messages_by_conversation ON messages (conv_peer, order_ms, seq);
CREATE INDEX outbox_by_message ON outbox (message_seq);

-- The index's update and delete triggers went with the old table.
CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;

CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF seq, text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;
