-- raw_blocks becomes a rowid table, with (seg, start) as a unique index
-- beside it. A WITHOUT ROWID table is one index B-tree, and an index B-tree
-- keeps whole rows (blocks of several KiB) in its interior pages and
-- balances an append across siblings: each page's commit wrote its blocks'
-- leaves about twice into the WAL. Appended rowids fill the last leaf and
-- start a new one, so each block is written once; the index of small keys
-- beside it costs a few bytes a block. The queries are unchanged.
CREATE TABLE raw_blocks_v2 (
    seg   INTEGER NOT NULL, -- raw_segments.id
    start INTEGER NOT NULL, -- where the block starts in the segment's NDJSON
    data  BLOB    NOT NULL  -- s2-encoded NDJSON
);
INSERT INTO raw_blocks_v2 (seg, start, data) SELECT seg, start, data FROM raw_blocks ORDER BY seg, start;
DROP TABLE raw_blocks;
ALTER TABLE raw_blocks_v2 RENAME TO raw_blocks;
CREATE UNIQUE INDEX raw_blocks_seg_start ON raw_blocks (seg, start);
