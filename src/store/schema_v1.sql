-- natter history schema, version 1.

-- Every chat message ever stored, sent or received. `seq` (the rowid) is the
-- insertion order; `id` is the author's random message id and is unique, which
-- is what drops duplicates forever.
CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY,
    id           BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    -- NULL: the public room; otherwise the identity key of the other side of a
    -- direct conversation.
    conv_peer    BLOB             CHECK (conv_peer IS NULL OR length(conv_peer) = 32),
    author       BLOB    NOT NULL CHECK (length(author) = 32),
    timestamp_ms INTEGER NOT NULL CHECK (timestamp_ms >= 0),
    text         TEXT    NOT NULL,
    -- The author's ed25519 signature of a public message (relayable).
    signature    BLOB             CHECK (signature IS NULL OR length(signature) = 64),
    outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
    received_ms  INTEGER NOT NULL CHECK (received_ms >= 0)
) STRICT;

-- History of one conversation and public catch-up, in timestamp order.
CREATE INDEX messages_by_conversation ON messages (conv_peer, timestamp_ms, seq);

-- Full-text index over messages.text. External content: the text is stored
-- once, in `messages`; the triggers below keep the index in step.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    content = 'messages',
    content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_after_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;

CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;

CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF seq, text ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;

-- Messages a peer has not acked yet. A row is removed when the ack arrives.
CREATE TABLE outbox (
    peer        BLOB    NOT NULL CHECK (length(peer) = 32),
    message_seq INTEGER NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
    PRIMARY KEY (peer, message_seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX outbox_by_message ON outbox (message_seq);

-- Who acked which message, and when (local clock).
CREATE TABLE deliveries (
    message_seq INTEGER NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
    peer        BLOB    NOT NULL CHECK (length(peer) = 32),
    acked_ms    INTEGER NOT NULL CHECK (acked_ms >= 0),
    PRIMARY KEY (message_seq, peer)
) STRICT, WITHOUT ROWID;

-- The trust store: every identity key ever seen.
CREATE TABLE peers (
    identity      BLOB    PRIMARY KEY CHECK (length(identity) = 32),
    noise_static  BLOB    NOT NULL CHECK (length(noise_static) = 32),
    nickname      TEXT    NOT NULL,
    first_seen_ms INTEGER NOT NULL CHECK (first_seen_ms >= 0),
    last_seen_ms  INTEGER NOT NULL CHECK (last_seen_ms >= 0),
    -- `host:port` it was last reached at or announced; dialled at start.
    last_addr     TEXT,
    trust         TEXT    NOT NULL DEFAULT 'unverified'
                          CHECK (trust IN ('unverified', 'verified')),
    verified_ms   INTEGER CHECK (verified_ms IS NULL OR verified_ms >= 0),
    CHECK ((trust = 'verified') = (verified_ms IS NOT NULL))
) STRICT, WITHOUT ROWID;

-- Peers that share a nickname (ASCII case folded) are found together.
CREATE INDEX peers_by_nickname ON peers (nickname COLLATE NOCASE);

-- Small settings, e.g. the local nickname.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
