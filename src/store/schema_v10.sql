-- Version 10: a message names its author and its conversation's peer by a
-- small integer, a row of `identities`, not by the 32-byte key itself.
--
-- Every message row held two identity keys, and both were in an index:
-- the `(id, author)` key that drops duplicates and history's
-- `(conv_peer, order_ms, seq)`. On a chat of one peer every row repeated
-- the same two keys. With the keys stored once, in `identities`, the row
-- is 62 bytes shorter, the duplicate rule's key holds 17 bytes of values
-- instead of 48 and history's 31 fewer: SQLite's work per message stored
-- (insert, index entries, the pages a commit writes) fell by about a
-- sixth (docs/PERFORMANCE.md, "Chat rate, eighth look").
--
-- `identities (ref, key)`: one row per identity key that authored a
-- stored message or is the peer of a direct conversation; `ref` is the
-- rowid. Rows are only ever added, and the foreign keys below keep a
-- referenced one from being deleted. `messages.author_ref` and
-- `messages.conv_ref` replace `author` and `conv_peer` (NULL: public or a
-- room, as before). The `(id, author)` rule is now `UNIQUE (id,
-- author_ref)`: the same rule, since a key has exactly one ref.
--
-- The outbox tables, the receipts and the trust store keep their 32-byte
-- keys: their rows are few or one per burst.
--
-- SQLite cannot change a column's type, so messages is rebuilt as in
-- version 8: the children (outbox, deliveries) first, pointing at the new
-- table, then the old tables dropped and the new ones renamed. `seq`
-- values are kept, so the full-text index (rowid = seq) and the direct
-- outbox's runs stay valid as they are.

CREATE TABLE identities (
    ref INTEGER PRIMARY KEY,
    key BLOB    NOT NULL UNIQUE CHECK (length(key) = 32)
) STRICT;
INSERT INTO identities (key)
SELECT author FROM messages
UNION
SELECT conv_peer FROM messages WHERE conv_peer IS NOT NULL
ORDER BY 1;

CREATE TABLE messages_v10 (
    seq          INTEGER PRIMARY KEY,
    id           BLOB    NOT NULL CHECK (length(id) = 16),
    conv_ref     INTEGER          REFERENCES identities (ref),
    author_ref   INTEGER NOT NULL REFERENCES identities (ref),
    timestamp_ms INTEGER NOT NULL CHECK (timestamp_ms >= 0),
    text         TEXT    NOT NULL,
    signature    BLOB             CHECK (signature IS NULL OR length(signature) = 64),
    outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    received_ms  INTEGER NOT NULL CHECK (received_ms >= 0),
    order_ms     INTEGER NOT NULL CHECK (order_ms >= 0 AND order_ms <= timestamp_ms),
    room         BLOB             CHECK (room IS NULL OR length(room) = 32),
    legacy       INTEGER NOT NULL DEFAULT 0 CHECK (legacy BETWEEN 0 AND 2),
    wire         BLOB,
    -- id first: acks and the outbox look messages up by bare id, and this
    -- one index serves them and the (author, id) rule alike.
    UNIQUE (id, author_ref)
) STRICT;
INSERT INTO messages_v10 (seq, id, conv_ref, author_ref, timestamp_ms, text, signature,
                          outgoing, received_ms, order_ms, room, legacy, wire)
SELECT m.seq, m.id, c.ref, a.ref, m.timestamp_ms, m.text, m.signature, m.outgoing,
       m.received_ms, m.order_ms, m.room, m.legacy, m.wire
  FROM messages AS m
  JOIN identities AS a ON a.key = m.author
  LEFT JOIN identities AS c ON c.key = m.conv_peer;

CREATE TABLE outbox_v10 (
    peer        BLOB    NOT NULL CHECK (length(peer) = 32),
    message_seq INTEGER NOT NULL REFERENCES messages_v10 (seq) ON DELETE CASCADE,
    PRIMARY KEY (peer, message_seq)
) STRICT, WITHOUT ROWID;
INSERT INTO outbox_v10 SELECT peer, message_seq FROM outbox;

CREATE TABLE deliveries_v10 (
    message_seq INTEGER NOT NULL REFERENCES messages_v10 (seq) ON DELETE CASCADE,
    peer        BLOB    NOT NULL CHECK (length(peer) = 32),
    acked_ms    INTEGER NOT NULL CHECK (acked_ms >= 0),
    PRIMARY KEY (message_seq, peer)
) STRICT, WITHOUT ROWID;
INSERT INTO deliveries_v10 SELECT message_seq, peer, acked_ms FROM deliveries;

DROP TABLE outbox;
DROP TABLE deliveries;
DROP TABLE messages;
ALTER TABLE messages_v10 RENAME TO messages;
ALTER TABLE outbox_v10 RENAME TO outbox;
ALTER TABLE deliveries_v10 RENAME TO deliveries;

-- The indexes and triggers went with the old tables.
CREATE INDEX messages_by_conversation ON messages (conv_ref, order_ms, seq);
CREATE INDEX messages_by_room ON messages (room, order_ms, seq) WHERE room IS NOT NULL;
CREATE INDEX outbox_by_message ON outbox (message_seq);

CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;

CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF seq, text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;

-- Version 9's trigger, reading the peer's key through its ref.
CREATE TRIGGER direct_outbox_after_delete AFTER DELETE ON messages
WHEN old.outgoing = 1 AND old.conv_ref IS NOT NULL BEGIN
    INSERT INTO direct_waiting (peer, first_seq, last_seq)
    SELECT peer, old.seq + 1, last_seq FROM direct_waiting
     WHERE peer = (SELECT key FROM identities WHERE ref = old.conv_ref)
       AND first_seq <= old.seq AND last_seq > old.seq;
    UPDATE direct_waiting SET last_seq = old.seq - 1
     WHERE peer = (SELECT key FROM identities WHERE ref = old.conv_ref)
       AND first_seq < old.seq AND last_seq >= old.seq;
    DELETE FROM direct_waiting
     WHERE peer = (SELECT key FROM identities WHERE ref = old.conv_ref)
       AND first_seq = old.seq;
    INSERT INTO direct_receipts (first_seq, last_seq, acked_ms)
    SELECT old.seq + 1, last_seq, acked_ms FROM direct_receipts
     WHERE first_seq <= old.seq AND last_seq > old.seq;
    UPDATE direct_receipts SET last_seq = old.seq - 1
     WHERE first_seq < old.seq AND last_seq >= old.seq;
    DELETE FROM direct_receipts WHERE first_seq = old.seq;
END;
