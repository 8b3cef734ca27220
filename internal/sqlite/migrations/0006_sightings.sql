-- Sightings, for retro-hunts: the values of detection rules' event fields
-- that events carried and that matched no indicator when they were read,
-- one row per (UTC day of the events' @timestamp, kind, value). Events are
-- not kept: a row counts them and refers to one of them. Keyed by day
-- first, so that pruning a day is one range of the table and a lookup of a
-- value is one seek per day of the window.
--
-- IF NOT EXISTS: the migrations are counted, and a database made by a
-- build that numbered them differently must not fail here.
CREATE TABLE IF NOT EXISTS sightings (
    day        INTEGER NOT NULL, -- UTC day of the events: Unix ms / 86400000
    kind       TEXT    NOT NULL, -- ip, hash, url, registry, email, cve, domain
    key        BLOB    NOT NULL, -- the value in normal form (internal/detect encodes it)
    first_seen INTEGER NOT NULL, -- @timestamp of the day's first event with the value, Unix ms
    last_seen  INTEGER NOT NULL, -- @timestamp of the day's last one
    count      INTEGER NOT NULL, -- events that carried it that day
    field      TEXT    NOT NULL, -- the event field of the event referred to
    event      TEXT    NOT NULL, -- the event referred to: "event.id:…" or "line:…"
    event_time INTEGER NOT NULL, -- its @timestamp, Unix ms
    PRIMARY KEY (day, kind, key)
) WITHOUT ROWID;

-- The retro-hunt watermark: the id of the last raw segment whose
-- indicators a retro-hunt has checked against the sightings. It moves only
-- after the hunt's alerts are stored, so a crash makes the next hunt check
-- the same indicators again (alert ids are stable: nothing is doubled).
-- It starts after the segments already written: no sighting predates this
-- table, so the indicators they hold have nothing to be hunted against.
CREATE TABLE IF NOT EXISTS retrohunt_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    segment    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL -- Unix ms
);
INSERT OR IGNORE INTO retrohunt_state (id, segment, updated_at)
    VALUES (1, (SELECT COALESCE(MAX(id), 0) FROM raw_segments), 0);
