-- Detections: the alerts that detection rules raised, one row per alert.
-- id is the alert's stable id (the same rule, event and indicators always
-- give the same id), so storing an alert twice keeps the first.
CREATE TABLE detections (
    seq       INTEGER PRIMARY KEY, -- insertion order
    id        TEXT    NOT NULL UNIQUE,
    rule_id   TEXT    NOT NULL,
    rule_name TEXT    NOT NULL,
    ts        INTEGER NOT NULL,    -- when the alert was raised, Unix milliseconds
    actions   TEXT    NOT NULL,    -- JSON array of connector names
    doc       BLOB    NOT NULL     -- the alert document (JSON)
);
CREATE INDEX detections_ts ON detections (ts);
