-- Version 2: the full-text index of new messages is written once per batch
-- by the code that inserts them (one INSERT ... SELECT per transaction)
-- instead of by a trigger per row. FTS5 flushes its pending index to disk at
-- every statement savepoint, so a trigger per row cost one flush per message.
-- Deletes and updates keep their triggers (rare).
DROP TRIGGER messages_fts_after_insert;
