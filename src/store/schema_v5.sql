-- Version 5: rooms.
--
-- A room message has conv_peer NULL and `room` set to its room's id (32
-- bytes). `legacy` = 1 marks a message of the default room, #lobby, that is
-- signed as an old `Public` frame (its signature has no room in it), so it
-- is served again in that form; every public message from before rooms is
-- one (`legacy` = 2 marks an invite-only room's membership log entry, from
-- version 6 on). The id below is SHA-256("natter/1 open-room" || "lobby")
-- (natter_core::chat::default_room; a test checks it).
--
-- History, search and catch-up read rooms through the new index; direct
-- conversations keep messages_by_conversation.

ALTER TABLE messages ADD COLUMN room BLOB CHECK (room IS NULL OR length(room) = 32);
ALTER TABLE messages ADD COLUMN legacy INTEGER NOT NULL DEFAULT 0 CHECK (legacy IN (0, 1, 2));

UPDATE messages
   SET room = X'987b4e4fbf815e740608fb72abaee9fa9b205193431c6cf3a2e13919cd34f48d', legacy = 1
 WHERE conv_peer IS NULL;

CREATE INDEX messages_by_room ON messages (room, order_ms, seq) WHERE room IS NOT NULL;
