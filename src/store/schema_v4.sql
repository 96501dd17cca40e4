-- v4: file transfers, both ways (core/src/files). A transfer is named by
-- (peer, direction, id); ids are chosen by senders.
CREATE TABLE transfers (
    peer        BLOB    NOT NULL,
    outgoing    INTEGER NOT NULL,
    id          BLOB    NOT NULL,
    name        TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    root        BLOB    NOT NULL,
    state       TEXT    NOT NULL,
    done_groups INTEGER NOT NULL DEFAULT 0,
    path        TEXT,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (peer, outgoing, id)
);
CREATE INDEX transfers_state ON transfers (state);
