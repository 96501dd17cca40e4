-- Version 11: the full-text index keeps no per-row token counts
-- (`columnsize = 0`).
--
-- By default FTS5 writes, for every row it indexes, how many tokens its
-- column holds, into a shadow table (`messages_fts_docsize`): a B-tree
-- insert per message, about a sixteenth of a sending node's thread in the
-- chat benchmark. Only ranking reads it (`bm25()`, the `rank` column),
-- and natter ranks nothing: search returns the most recently stored
-- matches (`ORDER BY rowid DESC`). Without the table a message's insert
-- costs SQLite about 10 % less (docs/PERFORMANCE.md, "Chat rate, eighth
-- look"). Searches match exactly what they matched before; a phrase
-- (`foo-bar`) still needs positions, which stay.
--
-- An FTS5 table's options cannot change in place, so the index is built
-- again from `messages` (external content: the text was never stored
-- twice). The triggers that keep it in step name it and are kept.

DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2',
    columnsize = 0
);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
