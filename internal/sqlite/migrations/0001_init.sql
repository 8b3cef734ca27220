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
--
-- A rowid table with a separate unique index, not a WITHOUT ROWID table
-- clustered on the key: documents are 1 to 3 KB, so a clustered table keeps
-- only two or three of them per page, spills most into overflow pages, and
-- every write of a page of random keys rewrites nearly every leaf. Here new
-- rows are appended, and only the small (view, dataset, key) index entries
-- land at random places.
CREATE TABLE live (
    id         INTEGER PRIMARY KEY,
    view       TEXT    NOT NULL,
    dataset    TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    -- The columns below are never NULL; the store binds no NULL. They have
    -- no NOT NULL constraint because an upsert that updates a column with
    -- one needs a statement journal (a copy of every page it touches).
    type       TEXT,
    ts         INTEGER, -- @timestamp, Unix milliseconds
    expires_at INTEGER, -- Unix milliseconds
    updated_at INTEGER, -- when this row was last written
    doc        BLOB,    -- the ECS document (JSON)
    UNIQUE (view, dataset, key)
);
-- Prune finds expired rows by the day they expire (Unix milliseconds / 86400000).
-- Within a day, entries sort by rowid, so new rows land at the end of their
-- day's run: a page of documents whose expiry dates are spread over months
-- touches a few dozen index pages, where an index on expires_at itself would
-- put nearly every row on a page of its own.
CREATE INDEX live_expires_day ON live (expires_at / 86400000);

-- Collector cursors, written in the same transaction as the page they cover.
CREATE TABLE cursors (
    source     TEXT    NOT NULL,
    dataset    TEXT    NOT NULL,
    state      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, dataset)
) WITHOUT ROWID;
