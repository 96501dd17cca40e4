-- Version 9: a direct message we sent waits for its peer in a narrow
-- table of its own, and its delivery receipt is a row of another.
--
-- Version 7 kept both in the message's own row (`awaiting_ack`,
-- `acked_ms`, and a partial index of the waiting rows), so an ack was one
-- UPDATE: but an UPDATE rewrites the whole row and takes its entry out of
-- the index, about 2.3 µs per message acked, a third of what the sending
-- node spent in SQLite per message. Here the message's row never changes
-- after it is written:
--
-- - `direct_waiting (peer, seq)`: our own direct message `seq` has not been
--   acked by `peer`, the peer of its conversation. One B-tree, no other
--   index; a transaction's waiting messages are added by one INSERT ...
--   SELECT, and an ack ends a run of consecutive `seq`s with one ranged
--   DELETE.
-- - `direct_receipts (seq, acked_ms)`: when the peer of our direct message
--   `seq` first acked it. Keyed by `seq`, so receipts are appended in the
--   order messages were sent, again one statement per run of `seq`s.
--
-- Room messages keep `outbox` and `deliveries` as before.
--
-- Neither table declares a FOREIGN KEY: SQLite checks one on every row
-- inserted (a look-up of the message, about a quarter of what the two
-- rows cost), and every row here is made from a `messages` row by the
-- statements in outbox.rs. A trigger does what ON DELETE CASCADE did.

CREATE TABLE direct_waiting (
    peer BLOB    NOT NULL CHECK (length(peer) = 32),
    seq  INTEGER NOT NULL,
    PRIMARY KEY (peer, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE direct_receipts (
    seq      INTEGER PRIMARY KEY,
    acked_ms INTEGER NOT NULL CHECK (acked_ms >= 0)
) STRICT;

CREATE TRIGGER direct_outbox_after_delete AFTER DELETE ON messages BEGIN
    DELETE FROM direct_waiting WHERE peer = old.conv_peer AND seq = old.seq;
    DELETE FROM direct_receipts WHERE seq = old.seq;
END;

-- Move what the messages' own rows said. Only our own direct messages
-- ever carried either (natter_core::chat only queues our own messages).
INSERT INTO direct_waiting (peer, seq)
SELECT conv_peer, seq FROM messages
 WHERE awaiting_ack = 1 AND outgoing = 1 AND conv_peer IS NOT NULL;
INSERT INTO direct_receipts (seq, acked_ms)
SELECT seq, acked_ms FROM messages
 WHERE acked_ms IS NOT NULL AND outgoing = 1 AND conv_peer IS NOT NULL;

DROP INDEX messages_awaiting_ack;
ALTER TABLE messages DROP COLUMN awaiting_ack;
ALTER TABLE messages DROP COLUMN acked_ms;
