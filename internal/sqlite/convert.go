package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/vigil-ti/vigil"
)

// migrateData runs the part of a migration that SQL cannot do, in the
// migration's transaction.
func (db *DB) migrateData(ctx context.Context, tx *sql.Tx, name string) error {
	switch name {
	case "migrations/0002_live_refs.sql":
		return db.convertLiveV1(ctx, tx)
	case "migrations/0007_sighting_runs.sql":
		return convertSightingsV1(ctx, tx)
	}
	return nil
}

// convertSightingsV1 writes the rows of the sightings table (one per day,
// kind and key) as one run a day, and drops the table. A day's rows are
// read before its run is written.
func convertSightingsV1(ctx context.Context, tx *sql.Tx) error {
	var days []int64
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT day FROM sightings ORDER BY day`)
	if err != nil {
		return fmt.Errorf("read the old sightings: %w", err)
	}
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return fmt.Errorf("read the old sightings: %w", err)
		}
		days = append(days, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the old sightings: %w", err)
	}
	for _, day := range days {
		var ents []sEntry
		// kind, then key: the order of sighting keys (no kind is a prefix
		// of another).
		rows, err := tx.QueryContext(ctx, `SELECT kind, key, first_seen, last_seen, count, field, event, event_time FROM sightings WHERE day = ? ORDER BY kind, key`, day)
		if err != nil {
			return fmt.Errorf("read the old sightings: %w", err)
		}
		for rows.Next() {
			var e sEntry
			var kind string
			var key []byte
			if err := rows.Scan(&kind, &key, &e.first, &e.last, &e.count, &e.field, &e.event, &e.evTime); err != nil {
				rows.Close()
				return fmt.Errorf("read the old sightings: %w", err)
			}
			e.sk = sightingKey(nil, kind, string(key))
			ents = append(ents, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read the old sightings: %w", err)
		}
		w, err := newRunWriter(ctx, tx, day)
		if err != nil {
			return fmt.Errorf("write the old sightings as runs: %w", err)
		}
		for i := range ents {
			if err := w.add(&ents[i]); err != nil {
				return fmt.Errorf("write the old sightings as runs: %w", err)
			}
		}
		if err := w.close(); err != nil {
			return fmt.Errorf("write the old sightings as runs: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE sightings`); err != nil {
		return fmt.Errorf("drop the old sightings table: %w", err)
	}
	return nil
}

// convertPage is how many documents of the old live table go into one
// raw segment.
const convertPage = 1000

// convertLiveV1 writes the rows of the first schema's live table, which
// held a copy of each document, as raw segments after the watermark, and
// drops the table. The store's open merges them into the new live table
// like any page written: the newest @timestamp per key wins, and rows that
// had expired come back as tombstones. The segments are dated now, so they
// count as raw documents for one retention.
func (db *DB) convertLiveV1(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT d.view, d.dataset, l.key, l.type, l.ts, l.expires_at, l.doc
FROM live_v1 l JOIN live_datasets d ON d.id = l.ds ORDER BY l.ds, l.id`)
	if err != nil {
		return fmt.Errorf("read the old live table: %w", err)
	}
	var docs []vigil.Document
	var pages [][]vigil.Document
	for rows.Next() {
		var d vigil.Document
		var view string
		var ts, exp int64
		if err := rows.Scan(&view, &d.Dataset, &d.Key, &d.Type, &ts, &exp, &d.Source); err != nil {
			rows.Close()
			return fmt.Errorf("read the old live table: %w", err)
		}
		d.View = vigil.View(view)
		d.Timestamp = time.UnixMilli(ts).UTC()
		if exp != math.MaxInt64 {
			d.ExpiresAt = time.UnixMilli(exp).UTC()
		}
		if len(docs) > 0 && (len(docs) == convertPage || docs[0].Dataset != d.Dataset) {
			pages = append(pages, docs)
			docs = nil
		}
		docs = append(docs, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the old live table: %w", err)
	}
	if len(docs) > 0 {
		pages = append(pages, docs)
	}
	now := db.clock.Now().UnixMilli()
	for _, page := range pages {
		var st vigil.WriteStats
		seg, err := db.encodeSegment(page, nil, &st)
		if err != nil {
			return err
		}
		if err := db.insertSegment(ctx, tx, seg, segmentRow{source: "vigil", dataset: page[0].Dataset, ingested: now, docs: len(page), blocksV1: true}); err != nil {
			return fmt.Errorf("write the old live rows as raw segments: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE live_v1`); err != nil {
		return fmt.Errorf("drop the old live table: %w", err)
	}
	return nil
}
