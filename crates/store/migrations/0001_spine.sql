-- The spine: stored records, dead letters, API tokens and the audit chain.

CREATE TABLE alerts (
    id          BLOB PRIMARY KEY NOT NULL,  -- 16 bytes: the deterministic id (riposte_domain::id) unhexed
    decoder     TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    severity    INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    doc         BLOB NOT NULL               -- the record as JSON (LZ4), original payload and origin included
);

CREATE TABLE events (
    id          BLOB PRIMARY KEY NOT NULL,
    decoder     TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    doc         BLOB NOT NULL
);

-- Records a decoder refused, kept byte for byte so they can be fixed and re-ingested.
CREATE TABLE dead_letters (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    decoder       TEXT NOT NULL,
    record_index  INTEGER NOT NULL,
    field         TEXT NOT NULL,
    reason        TEXT NOT NULL,
    raw           BLOB NOT NULL,
    origin        TEXT NOT NULL,
    received_ms   INTEGER NOT NULL,
    reingested_ms INTEGER,
    reingested_as TEXT
);

CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    hash        BLOB NOT NULL UNIQUE,       -- SHA-256 of the secret; the secret is never stored
    created_ms  INTEGER NOT NULL,
    revoked_ms  INTEGER
);

-- The hash-chained audit log (riposte_domain::audit). `body` is hashed byte for byte.
CREATE TABLE audit (
    seq   INTEGER PRIMARY KEY NOT NULL,
    prev  BLOB NOT NULL,
    hash  BLOB NOT NULL,
    body  BLOB NOT NULL
);

-- The chain's head, written in the same transaction as each record: a removed last record
-- is found by comparing the last record with it.
CREATE TABLE audit_head (
    one   INTEGER PRIMARY KEY CHECK (one = 1),
    seq   INTEGER NOT NULL,
    hash  BLOB NOT NULL
);
