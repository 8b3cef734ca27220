-- raw_blocks becomes a rowid table keyed by seg * 2^32 + start (see
-- blockID in internal/sqlite/blocks.go). A WITHOUT ROWID table is one index
-- B-tree, and an index B-tree keeps whole rows (blocks of several KiB) in
-- its interior pages and balances an append across siblings: each page's
-- commit wrote its blocks' leaves about twice into the WAL. Rowids that
-- only grow fill the last leaf and start a new one, so each block is
-- written once, and a block is still found by one key.
CREATE TABLE raw_blocks_v2 (
    id   INTEGER PRIMARY KEY, -- raw_segments.id * 4294967296 + where the block starts in the segment's NDJSON
    data BLOB    NOT NULL     -- s2-encoded NDJSON
);
INSERT INTO raw_blocks_v2 (id, data) SELECT seg * 4294967296 + start, data FROM raw_blocks ORDER BY seg, start;
DROP TABLE raw_blocks;
ALTER TABLE raw_blocks_v2 RENAME TO raw_blocks;
