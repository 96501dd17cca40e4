-- Version 9: a direct message we sent waits for its peer, and keeps its
-- delivery receipt, in runs of consecutive messages, not in its own row.
--
-- Version 7 kept both in the message's own row (`awaiting_ack`,
-- `acked_ms`, and a partial index of the waiting rows), so an ack was one
-- UPDATE per message: SQLite rewrote the whole row and took its entry out
-- of the index, about 2.3 µs per message acked, a third of what the
-- sending node spent in SQLite per message. Messages sent in a burst get
-- consecutive `seq`s and are acked in bursts, so here a burst is one row:
--
-- - `direct_waiting (peer, first_seq, last_seq)`: each `seq` from
--   `first_seq` to `last_seq` is our own direct message to `peer`, not
--   acked yet. Runs of one peer never overlap.
-- - `direct_receipts (first_seq, last_seq, acked_ms)`: each `seq` in the
--   run is our own direct message, first acked by its peer at `acked_ms`.
--   Runs never overlap.
--
-- The message's own row never changes after it is written. Room messages
-- keep `outbox` and `deliveries` as before. (src/store/direct_outbox.rs
-- keeps the runs.)
--
-- A run cannot declare a FOREIGN KEY on each `seq` it covers; a trigger
-- cuts a deleted message out of its runs instead (natter never deletes
-- messages; this keeps a hand-made deletion from leaving a run that names
-- another message later stored under a reused `seq`).

CREATE TABLE direct_waiting (
    peer      BLOB    NOT NULL CHECK (length(peer) = 32),
    first_seq INTEGER NOT NULL CHECK (first_seq > 0),
    last_seq  INTEGER NOT NULL CHECK (last_seq >= first_seq),
    PRIMARY KEY (peer, first_seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE direct_receipts (
    first_seq INTEGER PRIMARY KEY CHECK (first_seq > 0),
    last_seq  INTEGER NOT NULL CHECK (last_seq >= first_seq),
    acked_ms  INTEGER NOT NULL CHECK (acked_ms >= 0)
) STRICT;

-- Move what the messages' own rows said, a run of one each. Only our own
-- direct messages ever carried either (natter_core::chat only queues our
-- own messages).
INSERT INTO direct_waiting (peer, first_seq, last_seq)
SELECT conv_peer, seq, seq FROM messages
 WHERE awaiting_ack = 1 AND outgoing = 1 AND conv_peer IS NOT NULL;
INSERT INTO direct_receipts (first_seq, last_seq, acked_ms)
SELECT seq, seq, acked_ms FROM messages
 WHERE acked_ms IS NOT NULL AND outgoing = 1 AND conv_peer IS NOT NULL;

DROP INDEX messages_awaiting_ack;
ALTER TABLE messages DROP COLUMN awaiting_ack;
ALTER TABLE messages DROP COLUMN acked_ms;

-- A deleted message leaves its runs: a run holding it is cut in two.
CREATE TRIGGER direct_outbox_after_delete AFTER DELETE ON messages
WHEN old.outgoing = 1 AND old.conv_peer IS NOT NULL BEGIN
    INSERT INTO direct_waiting (peer, first_seq, last_seq)
    SELECT peer, old.seq + 1, last_seq FROM direct_waiting
     WHERE peer = old.conv_peer AND first_seq <= old.seq AND last_seq > old.seq;
    UPDATE direct_waiting SET last_seq = old.seq - 1
     WHERE peer = old.conv_peer AND first_seq < old.seq AND last_seq >= old.seq;
    DELETE FROM direct_waiting
     WHERE peer = old.conv_peer AND first_seq = old.seq;
    INSERT INTO direct_receipts (first_seq, last_seq, acked_ms)
    SELECT old.seq + 1, last_seq, acked_ms FROM direct_receipts
     WHERE first_seq <= old.seq AND last_seq > old.seq;
    UPDATE direct_receipts SET last_seq = old.seq - 1
     WHERE first_seq < old.seq AND last_seq >= old.seq;
    DELETE FROM direct_receipts WHERE first_seq = old.seq;
END;
