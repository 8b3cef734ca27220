-- Live rows point at their documents in the raw segments instead of
-- holding a copy: a merge writes a row of a few dozen bytes per document,
-- and a reader of a whole view decompresses each segment once.
--
-- The rows of the previous live table are written again as raw segments
-- by the store when it opens (see convertLiveV1 in internal/sqlite), then
-- live_v1 is dropped.
DROP INDEX live_expires_day;

-- A segment's NDJSON is cut into separately encoded blocks, rows of
-- raw_blocks listed by the blocks column, so that one document is read by
-- reading and decoding its block alone (see internal/sqlite/blocks.go).
-- blocks NULL: the first schema's segment, its NDJSON in body as one block.
ALTER TABLE raw_segments ADD COLUMN blocks BLOB;
-- 1: a compacted segment, which holds live documents copied out of raw
-- segments past the retention (not raw records); it goes once none of its
-- documents is live.
ALTER TABLE raw_segments ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0;
CREATE TABLE raw_blocks (
    seg   INTEGER NOT NULL, -- raw_segments.id
    start INTEGER NOT NULL, -- where the block starts in the segment's NDJSON
    data  BLOB    NOT NULL, -- s2-encoded NDJSON
    PRIMARY KEY (seg, start)
) WITHOUT ROWID;

ALTER TABLE live RENAME TO live_v1;

-- The newest document per (view, dataset, key), as of the last merge of
-- the raw segments (readers add the segments not merged yet). A row whose
-- expires_at has passed is no longer in the view; it stays as a tombstone
-- until the retention has also passed, so that an older copy of the same
-- record cannot bring it back. Keyed by (ds, key) without a rowid: one
-- B-tree, and a merge's sorted batch touches each leaf once.
--
-- The columns below the key are never NULL; they have no NOT NULL
-- constraint because an upsert that updates a column with one needs a
-- statement journal (a copy of every page it touches).
CREATE TABLE live (
    ds         INTEGER NOT NULL, -- live_datasets.id
    key        TEXT    NOT NULL,
    ts         INTEGER, -- @timestamp, Unix milliseconds
    expires_at INTEGER, -- Unix milliseconds
    seg        INTEGER, -- raw_segments.id of the document
    pos        INTEGER, -- its entry number in the segment's entry list
    off        INTEGER, -- where the document starts in the segment's NDJSON
    len        INTEGER, -- its length
    -- Set by the merge that last replaced the row: where the replaced
    -- document sat (seg * 1048576 + pos), -1 for a new key.
    prev       INTEGER,
    PRIMARY KEY (ds, key)
) WITHOUT ROWID;

-- Which documents of a merged segment are their key's live row: bit i
-- (byte i/8, bit i%8) for entry i of the segment's entry list. A segment
-- with no live document has no row. A reader of a view walks the masks in
-- segment order, and decompresses each segment it needs once; the prune
-- keeps a segment past the retention while a bit of an unexpired document
-- is set.
-- How many rows the live table holds, kept by the merges and the prune
-- (a merge's batch grows with the table: see batchDocs).
ALTER TABLE live_watermark ADD COLUMN live_rows INTEGER NOT NULL DEFAULT 0;

CREATE TABLE live_masks (
    seg  INTEGER PRIMARY KEY, -- raw_segments.id
    mask BLOB    NOT NULL
);
