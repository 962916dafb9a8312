-- Cases: formed by the case stage, changed by analysts. The document is the case as JSON
-- (LZ4, see riposte_store::compress_doc); the columns are what lists filter and sort on.

CREATE TABLE cases (
    id          TEXT PRIMARY KEY NOT NULL,
    tier        TEXT NOT NULL,              -- low | medium | high | validated
    status      TEXT NOT NULL,              -- open | closed | merged …
    risk        REAL NOT NULL,
    first_ms    INTEGER NOT NULL,
    last_ms     INTEGER NOT NULL,
    assignee    TEXT,
    verdict     TEXT,                       -- true_positive | false_positive | benign
    updated_ms  INTEGER NOT NULL,
    doc         BLOB NOT NULL
);
CREATE INDEX cases_by_risk ON cases (risk DESC, id);

-- Which entities a case holds, for `GET /api/v1/cases?entity=user:alice`.
CREATE TABLE case_entities (
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    case_id TEXT NOT NULL,
    PRIMARY KEY (kind, value, case_id)
) WITHOUT ROWID;
CREATE INDEX case_entities_by_case ON case_entities (case_id);
