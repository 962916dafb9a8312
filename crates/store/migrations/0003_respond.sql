-- The response stage (riposte_respond): playbook versions runs follow, runs, actions, and
-- the keys of case changes playbooks applied. Each document is the record as JSON (LZ4, see
-- riposte_store::compress_doc); the columns are what ticks, inboxes and look-ups filter on.
-- Writes are compare-and-set on `version` and go with their audit record in one transaction.

CREATE TABLE playbook_versions (
    hash        TEXT PRIMARY KEY NOT NULL,  -- SHA-256 of the playbook file: a version is immutable
    id          TEXT NOT NULL,
    version     TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    doc         BLOB NOT NULL
);

CREATE TABLE runs (
    id            TEXT PRIMARY KEY NOT NULL,  -- derived from playbook and event
    playbook_id   TEXT NOT NULL,
    playbook_hash TEXT NOT NULL,
    case_id       TEXT,
    status        TEXT NOT NULL,              -- running | waiting | succeeded | failed
    wake_ms       INTEGER,
    version       INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    doc           BLOB NOT NULL
);
CREATE INDEX runs_open ON runs (status, wake_ms) WHERE status IN ('running', 'waiting');
CREATE INDEX runs_open_by_case ON runs (case_id) WHERE status IN ('running', 'waiting');

CREATE TABLE actions (
    id          TEXT PRIMARY KEY NOT NULL,    -- also the idempotency key sent with the call
    run_id      TEXT,
    case_id     TEXT,
    connector   TEXT NOT NULL,
    operation   TEXT NOT NULL,
    class       TEXT NOT NULL,                -- auto | approve | review
    state       TEXT NOT NULL,                -- awaiting_approval | ready | sending | …
    open        INTEGER NOT NULL,             -- ActionRecord::is_open
    expires_ms  INTEGER,
    version     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL,
    doc         BLOB NOT NULL
);
CREATE INDEX actions_by_run ON actions (run_id);
CREATE INDEX actions_open ON actions (open) WHERE open = 1;
CREATE INDEX actions_by_case ON actions (case_id);

-- A playbook's case change is applied once, whatever resumes its run.
CREATE TABLE case_changes_applied (
    key         TEXT PRIMARY KEY NOT NULL,
    case_id     TEXT NOT NULL,
    applied_ms  INTEGER NOT NULL
) WITHOUT ROWID;

-- Tags and notes playbooks (and later analysts) add to a case. Kept beside the document
-- because the case stage rewrites the document on every change; merged into it on write.
ALTER TABLE cases ADD COLUMN tags TEXT;     -- JSON array of strings
ALTER TABLE cases ADD COLUMN notes TEXT;    -- JSON array of {text, by, at}
