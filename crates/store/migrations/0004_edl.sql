-- External dynamic lists riposte serves to firewalls (`GET /edl/{name}.txt`): one row per
-- entry, a list is the set of its rows (an empty list has none). Every change is audited.
CREATE TABLE edl_entries (
    list      TEXT NOT NULL,
    value     TEXT NOT NULL,
    added_ms  INTEGER NOT NULL,
    PRIMARY KEY (list, value)
) WITHOUT ROWID;
