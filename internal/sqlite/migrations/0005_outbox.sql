-- The outbox: the persisted queue of deliveries of alerts and warnings to
-- the configured connectors (internal/notify delivers it). A row is queued
-- until it is delivered, across restarts; a failed attempt makes it due
-- again after a backoff. A delivered row stays, without its body, so that
-- the same (key, connector) is not queued again, until it is pruned after
-- the retention.
--
-- IF NOT EXISTS: the migrations are counted, and a database made by a
-- build that numbered them differently must not fail here.
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT    NOT NULL, -- the stable id, sent as Idempotency-Key
    connector       TEXT    NOT NULL, -- connectors[].name
    subject         TEXT    NOT NULL,
    body            BLOB    NOT NULL, -- the document as JSON; emptied once done
    created_at      INTEGER NOT NULL, -- Unix milliseconds
    next_at         INTEGER NOT NULL, -- when the delivery is due (Unix ms)
    attempts        INTEGER NOT NULL DEFAULT 0, -- failed attempts
    last_attempt_at INTEGER,          -- Unix ms of the last failed attempt
    last_error      TEXT    NOT NULL DEFAULT '',
    done_at         INTEGER,          -- Unix ms; NULL while queued
    UNIQUE (key, connector)
);
-- The queued rows by due time: the deliverer's query reads only them.
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_at) WHERE done_at IS NULL;
-- Pruning finds the delivered rows by their delivery time.
CREATE INDEX IF NOT EXISTS outbox_done ON outbox (done_at) WHERE done_at IS NOT NULL;
