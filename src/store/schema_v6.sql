-- Version 6: invite-only rooms.
--
-- `wire` holds the whole frame of the room items whose fields have no
-- columns of their own: an encrypted post to an invite-only room
-- (`SealedPost`; `text` is its clear text for a member, empty otherwise)
-- and an entry of an invite-only room's membership log (`RoomControl`,
-- marked `legacy` = 2; `text` empty). A room's history leaves the log
-- entries out; catch-up serves them with the posts.

ALTER TABLE messages ADD COLUMN wire BLOB;
