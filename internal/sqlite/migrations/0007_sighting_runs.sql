-- Sightings as sorted runs, in place of one row per (day, kind, key): a
-- recorder's batch of a day's sightings is written as one run of sorted,
-- s2-encoded blocks, and a new run takes in the runs of its day before it
-- while each is no larger than what it has taken so far (like the bits of
-- a binary counter), so a day holds a few runs of growing size. Upserting each sighting into one table of random keys
-- rewrote more of the table with every batch as it grew (12 µs a sighting
-- at 2 million); a run costs a sort and an encoding, and a sighting is
-- rewritten by a merge a few times over its day.
--
-- The rows of the sightings table are written as runs by the migration
-- (see internal/sqlite/convert.go), and the table is dropped.
CREATE TABLE sighting_runs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    day        INTEGER NOT NULL, -- UTC day of the events: Unix ms / 86400000
    entries    INTEGER NOT NULL, -- (kind, key) entries, each once in the run
    first_seen INTEGER NOT NULL, -- the least first_seen of its entries, Unix ms
    last_seen  INTEGER NOT NULL  -- the greatest last_seen
);
CREATE INDEX sighting_runs_day ON sighting_runs (day, id);

-- A run's blocks: entries in (kind, key) order, about 32 KiB of them a
-- block before encoding; first is the block's first (kind, key), as the
-- entries encode it (kind, a 0 byte, key), so that a lookup seeks the
-- block that may hold a key.
-- A rowid table: a block is written once, at the end of the table, and
-- its data stays in the table's leaf; the (run, first) index holds the keys
-- alone.
CREATE TABLE sighting_blocks (
    id    INTEGER PRIMARY KEY,
    run   INTEGER NOT NULL, -- sighting_runs.id
    first BLOB    NOT NULL,
    data  BLOB    NOT NULL
);
CREATE UNIQUE INDEX sighting_blocks_run ON sighting_blocks (run, first);
