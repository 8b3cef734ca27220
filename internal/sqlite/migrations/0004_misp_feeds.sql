-- MISP feeds: the devices (MISP instances) that pull IOC groups, what each
-- device was given of each group, and the events published to it.

-- Devices. Configured devices (source 'config') are synced from the
-- configuration file when a writer starts; their password stays there.
-- Runtime devices (source 'runtime') were added with `vigil device add` or
-- the API; key_hash is the SHA-256 of their generated key.
-- Times are Unix milliseconds; NULL means never.
CREATE TABLE misp_devices (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    source      TEXT    NOT NULL CHECK (source IN ('config', 'runtime')),
    username    TEXT    NOT NULL UNIQUE,
    key_hash    BLOB,
    lim         INTEGER NOT NULL CHECK (lim > 0),
    groups      TEXT    NOT NULL, -- JSON array of group names
    created_at  INTEGER NOT NULL,
    last_pull   INTEGER,          -- last authenticated manifest request
    warned_for  INTEGER           -- the silence the 48 h warning was raised for
);

-- What a device was given of a group: the group's IOC set at its previous
-- pull, as sorted 64-bit hashes of "misp type|value" (8 bytes each, big
-- endian). The next pull delivers the IOCs not in it.
CREATE TABLE misp_group_state (
    device    INTEGER NOT NULL REFERENCES misp_devices (id) ON DELETE CASCADE,
    grp       TEXT    NOT NULL,
    seen      BLOB    NOT NULL,
    pulled_at INTEGER NOT NULL,
    PRIMARY KEY (device, grp)
) WITHOUT ROWID;

-- Published events: one per (device, group, UTC day), created with its
-- first attribute. updated_at is Event.timestamp (Unix seconds); it grows
-- by at least one second with every change, so that MISP downloads the
-- event again.
CREATE TABLE misp_events (
    id           INTEGER PRIMARY KEY,
    device       INTEGER NOT NULL REFERENCES misp_devices (id) ON DELETE CASCADE,
    grp          TEXT    NOT NULL,
    day          TEXT    NOT NULL, -- YYYY-MM-DD
    uuid         TEXT    NOT NULL UNIQUE,
    attributes   INTEGER NOT NULL,
    threat_level INTEGER NOT NULL, -- MISP threat_level_id, 1 (high) to 4 (undefined)
    tlp          INTEGER NOT NULL, -- most restrictive TLP of the attributes (0 none)
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (device, grp, day)
);

-- The attributes of each event, as their MISP JSON, by type and value.
CREATE TABLE misp_attributes (
    event INTEGER NOT NULL REFERENCES misp_events (id) ON DELETE CASCADE,
    type  TEXT    NOT NULL,
    value TEXT    NOT NULL,
    body  BLOB    NOT NULL,
    PRIMARY KEY (event, type, value)
) WITHOUT ROWID;
