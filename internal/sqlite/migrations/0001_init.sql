-- Raw documents, grouped into one compressed segment per written page.
-- Segments are pruned whole once their ingest time is older than the
-- retention, and once they are merged into the live views.
--
-- A segment is also the staging area of the live views: live lists its
-- live-eligible documents (view, dataset, key, type, @timestamp, expiry and
-- where each one sits in the NDJSON; see internal/sqlite/merge.go), which a
-- merge folds into the live table. The ids are AUTOINCREMENT, so that a
-- pruned id is never given again to a segment the watermark has passed.
CREATE TABLE raw_segments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT    NOT NULL,
    dataset     TEXT    NOT NULL,
    ingested_at INTEGER NOT NULL, -- Unix milliseconds (event.ingested)
    docs        INTEGER NOT NULL, -- documents in the segment
    errors      INTEGER NOT NULL, -- pipeline_error documents among them
    live_docs   INTEGER NOT NULL, -- live-eligible documents among them
    -- live comes before body, so that reading it does not walk through
    -- body's overflow pages.
    live        BLOB,             -- entry list of the live_docs; NULL if none
    body        BLOB    NOT NULL  -- s2-compressed NDJSON of ECS documents
);
CREATE INDEX raw_segments_ingested ON raw_segments (ingested_at);
CREATE INDEX raw_segments_dataset ON raw_segments (dataset, ingested_at);

-- Live views: the newest document per (view, dataset, key), as of the last
-- merge of the raw segments (readers add the segments not merged yet).
-- A row whose expires_at has passed is no longer in the view; it stays as a
-- tombstone until the retention has also passed, so that an older copy of
-- the same record cannot bring it back.
--
-- A rowid table with a separate unique index, not a WITHOUT ROWID table
-- clustered on the key: documents are 1 to 3 KB, and a merge inserts a
-- sorted batch of keys spread over the whole key space, so a clustered
-- table would rewrite nearly every leaf of the table on every merge. Here
-- new rows are appended, and only the small (ds, key) index entries land
-- all over the index, each leaf being written once per batch. A merge
-- rewrites the leaves of that index that its keys fall in, so its entries
-- name the view and dataset by a small integer (live_datasets): half the
-- size of an entry with both names, twice as many entries per leaf.
CREATE TABLE live_datasets (
    id      INTEGER PRIMARY KEY,
    view    TEXT NOT NULL,
    dataset TEXT NOT NULL,
    UNIQUE (view, dataset)
);
CREATE TABLE live (
    id         INTEGER PRIMARY KEY,
    ds         INTEGER NOT NULL, -- live_datasets.id
    key        TEXT    NOT NULL,
    -- The columns below are never NULL; the store binds no NULL. They have
    -- no NOT NULL constraint because an upsert that updates a column with
    -- one needs a statement journal (a copy of every page it touches).
    type       TEXT,
    ts         INTEGER, -- @timestamp, Unix milliseconds
    expires_at INTEGER, -- Unix milliseconds
    updated_at INTEGER, -- when this row was last written
    doc        BLOB,    -- the ECS document (JSON)
    UNIQUE (ds, key)
);
-- Prune finds expired rows by the day they expire (Unix milliseconds / 86400000).
-- Within a day, entries sort by rowid, so new rows land at the end of their
-- day's run: a page of documents whose expiry dates are spread over months
-- touches a few dozen index pages, where an index on expires_at itself would
-- put nearly every row on a page of its own.
CREATE INDEX live_expires_day ON live (expires_at / 86400000);

-- The live watermark: the id of the last raw segment merged into the live
-- table. It moves in the merge's transaction.
CREATE TABLE live_watermark (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    segment INTEGER NOT NULL
);
INSERT INTO live_watermark (id, segment) VALUES (1, 0);

-- Collector cursors, written in the same transaction as the page they cover.
CREATE TABLE cursors (
    source     TEXT    NOT NULL,
    dataset    TEXT    NOT NULL,
    state      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, dataset)
) WITHOUT ROWID;
