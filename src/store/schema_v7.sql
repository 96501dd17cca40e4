-- Version 7: a direct message we sent keeps its own place in the outbox
-- and its delivery receipt in its own row.
--
-- A direct message has one recipient, the peer of its conversation. Its
-- outbox row and receipt were rows of `outbox` and `deliveries`: per
-- message sent, one row and one index entry written, then on the ack one
-- look-up, two deletes and one insert. Now the message's row says it:
-- `awaiting_ack` = 1 while that peer has not acked it (what an `outbox` row
-- said), `acked_ms` = when the first ack came (what a `deliveries` row
-- said). The ack is one UPDATE found through the (id, author) index.
-- Room messages, which have many recipients, keep `outbox` and
-- `deliveries` as before; the store's queries read both.
--
-- Only our own direct messages ever carry either (natter_core::chat only
-- queues our own messages). The index of waiting messages holds only those
-- (a partial index), so it stays as small as the outbox is.

ALTER TABLE messages ADD COLUMN awaiting_ack INTEGER NOT NULL DEFAULT 0
    CHECK (awaiting_ack IN (0, 1));
ALTER TABLE messages ADD COLUMN acked_ms INTEGER CHECK (acked_ms IS NULL OR acked_ms >= 0);

-- Move what the old tables held for direct messages.
UPDATE messages SET awaiting_ack = 1
 WHERE outgoing = 1 AND conv_peer IS NOT NULL
   AND EXISTS (SELECT 1 FROM outbox AS o
                WHERE o.message_seq = messages.seq AND o.peer = messages.conv_peer);
DELETE FROM outbox
 WHERE EXISTS (SELECT 1 FROM messages AS m
                WHERE m.seq = outbox.message_seq AND m.conv_peer = outbox.peer
                  AND m.outgoing = 1);

UPDATE messages SET acked_ms = (SELECT min(d.acked_ms) FROM deliveries AS d
                                 WHERE d.message_seq = messages.seq
                                   AND d.peer = messages.conv_peer)
 WHERE outgoing = 1 AND conv_peer IS NOT NULL;
DELETE FROM deliveries
 WHERE EXISTS (SELECT 1 FROM messages AS m
                WHERE m.seq = deliveries.message_seq AND m.conv_peer = deliveries.peer
                  AND m.outgoing = 1);

-- A peer's waiting messages in the order they are resent.
CREATE INDEX messages_awaiting_ack ON messages (conv_peer, order_ms, seq)
    WHERE awaiting_ack = 1;
