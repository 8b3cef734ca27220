-- Raw documents, grouped into one compressed segment per written page.
-- Segments are pruned whole once their ingest time is older than the
-- retention.
CREATE TABLE raw_segments (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL,
    dataset     TEXT    NOT NULL,
    ingested_at INTEGER NOT NULL, -- Unix milliseconds (event.ingested)
    docs        INTEGER NOT NULL, -- documents in the segment
    errors      INTEGER NOT NULL, -- pipeline_error documents among them
    body        BLOB    NOT NULL  -- s2-compressed NDJSON of ECS documents
);
CREATE INDEX raw_segments_ingested ON raw_segments (ingested_at);
CREATE INDEX raw_segments_dataset ON raw_segments (dataset, ingested_at);

-- Live views: the newest document per (view, dataset, key).
-- A row whose expires_at has passed is no longer in the view; it stays as a
-- tombstone until the retention has also passed, so that an older copy of
-- the same record cannot bring it back.
CREATE TABLE live (
    view       TEXT    NOT NULL,
    dataset    TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    ts         INTEGER NOT NULL, -- @timestamp, Unix milliseconds
    expires_at INTEGER NOT NULL, -- Unix milliseconds
    updated_at INTEGER NOT NULL, -- when this row was last written
    doc        BLOB    NOT NULL, -- the ECS document (JSON)
    PRIMARY KEY (view, dataset, key)
) WITHOUT ROWID;
CREATE INDEX live_expires ON live (expires_at);

-- Collector cursors, written in the same transaction as the page they cover.
CREATE TABLE cursors (
    source     TEXT    NOT NULL,
    dataset    TEXT    NOT NULL,
    state      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, dataset)
) WITHOUT ROWID;
