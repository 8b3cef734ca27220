package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigil-ti/vigil"
)

// AddDetections stores alerts and queues their deliveries in the outbox,
// in one transaction, so that no stored alert misses its deliveries, and
// returns how many alerts were new. An alert whose ID is already stored is
// left as it is, and a delivery already queued or done is skipped, so
// storing the same alerts again adds nothing.
func (db *DB) AddDetections(ctx context.Context, dets []vigil.Detection, deliveries []vigil.Delivery) (added int, err error) {
	if db.rw == nil {
		return 0, errors.New("store: opened read-only")
	}
	if len(dets) == 0 {
		return 0, nil
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: add detections: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO detections (id, rule_id, rule_name, ts, actions, doc) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("store: add detections: %w", err)
	}
	defer st.Close()
	// As in WritePage: statements without a cancellable context, ctx
	// checked between them.
	sctx := context.WithoutCancel(ctx)
	for i := range dets {
		d := &dets[i]
		if d.ID == "" {
			return 0, fmt.Errorf("store: add detections: detection %d of rule %q has no ID", i, d.RuleID)
		}
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("store: add detections: %w", err)
		}
		actions := d.Actions
		if actions == nil {
			actions = []string{}
		}
		aj, err := json.Marshal(actions)
		if err != nil {
			return 0, fmt.Errorf("store: add detections: %w", err)
		}
		res, err := st.ExecContext(sctx, d.ID, d.RuleID, d.RuleName, d.Timestamp.UnixMilli(), string(aj), d.Source)
		if err != nil {
			return 0, fmt.Errorf("store: add detection %s: %w", d.ID, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			added++
		}
	}
	if err := db.enqueueTx(sctx, tx, deliveries); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: add detections: %w", err)
	}
	return added, nil
}

// DetectionFilter selects stored detections.
type DetectionFilter struct {
	RuleID string // empty: every rule
	Limit  int    // 0: no limit
}

// Detections calls fn for each stored detection that matches f, newest
// first. It works on a store opened read-only, while a writer runs.
func (db *DB) Detections(ctx context.Context, f DetectionFilter, fn func(vigil.Detection) error) error {
	q := `SELECT id, rule_id, rule_name, ts, actions, doc FROM detections`
	var args []any
	if f.RuleID != "" {
		q += ` WHERE rule_id = ?`
		args = append(args, f.RuleID)
	}
	q += ` ORDER BY ts DESC, seq DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := db.ro.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: read detections: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d vigil.Detection
		var ts int64
		var actions string
		if err := rows.Scan(&d.ID, &d.RuleID, &d.RuleName, &ts, &actions, &d.Source); err != nil {
			return fmt.Errorf("store: read detections: %w", err)
		}
		d.Timestamp = time.UnixMilli(ts).UTC()
		if err := json.Unmarshal([]byte(actions), &d.Actions); err != nil {
			return fmt.Errorf("store: detection %s: actions: %w", d.ID, err)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read detections: %w", err)
	}
	return nil
}

// liveDocumentSQL reads a live document by key: its live row and the block
// that holds it, the segment's last one starting at or before it.
const liveDocumentSQL = `SELECT l.ts, l.expires_at, l.seg, l.off, l.len, b.id - l.seg * 4294967296, b.data
FROM live_datasets ds JOIN live l ON l.ds = ds.id
LEFT JOIN raw_blocks b ON b.id = (SELECT MAX(id) FROM raw_blocks WHERE id BETWEEN l.seg * 4294967296 AND l.seg * 4294967296 + l.off)
WHERE ds.view = ? AND ds.dataset = ? AND l.key = ?`

// pointInit readies the writer's point reads (LiveDocument, LiveDocumentAt)
// once.
func (db *DB) pointInit(ctx context.Context) {
	db.pointOnce.Do(func() {
		db.rw.ExecContext(ctx, fmt.Sprintf("PRAGMA mmap_size = %d", liveDocMmap))
		db.pointStmt, _ = db.rw.PrepareContext(ctx, liveDocumentSQL) // on failure, LiveDocument prepares each time
		db.point.prepare(ctx, db.rw)
	})
}

// LiveDocumentAt reads back the source of the document at loc, which Live
// set: that version of the document, whatever its live view holds now. It
// returns false when loc is zero or its segment is gone (pruned, or
// compacted into another): the caller then reads the document by key
// (LiveDocument). Detection enriches its alerts this way, with one
// primary-key read instead of three.
func (db *DB) LiveDocumentAt(ctx context.Context, loc vigil.Loc) ([]byte, bool, error) {
	if !loc.Valid() {
		return nil, false, nil
	}
	seg, start, off, n := loc.Seg, int64(loc.Block), int64(loc.Off), int64(loc.Len)
	if db.rw != nil {
		db.pointInit(ctx)
		if db.point.block != nil {
			src, ok := db.point.blockDoc(context.WithoutCancel(ctx), seg, start, off, n)
			return src, ok, ctx.Err()
		}
	}
	var data []byte
	err := db.ro.QueryRowContext(ctx, `SELECT data FROM raw_blocks WHERE id = ?`, blockID(seg, start)).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("store: read raw segment %d: %w", seg, err)
	}
	src, err := blockDoc(seg, start, data, off, n)
	if err != nil {
		return nil, false, nil // as the writer's point read: read by key, which reports it
	}
	return src, true, nil
}

// liveDocMmap is how much of the database file LiveDocument maps.
const liveDocMmap = 64 << 30

// LiveDocument returns the document of (view, dataset, key) in the live
// view, expired or not (an expired row stays until it is pruned, while its
// raw segment is kept), and whether there is one. Detection reads the
// indicators it matched with it. It reads the live row, then only the block
// of the raw segment that holds the document (a writer with two
// primary-key reads: see pointReads); a key found only in documents
// not merged yet is looked up among those, which costs a read of the
// dataset's waiting documents (a writer merges them all when it opens the
// store and at the end of every pull). The Document's Type is not set.
func (db *DB) LiveDocument(ctx context.Context, view vigil.View, dataset, key string) (vigil.Document, bool, error) {
	d := vigil.Document{View: view, Dataset: dataset, Key: key}
	var ts, exp, seg, off, n int64
	var start sql.NullInt64
	var data []byte
	// A writer reads through its own connection, with the file mapped
	// into memory and the statement prepared once: a point read then
	// touches a few pages of the mapping instead of copying whole 64 KiB
	// database pages through the page cache.
	var conn queryer = db.ro
	if db.rw != nil {
		conn = db.rw
		db.pointInit(ctx)
		if fd, ok := db.point.read(ctx, view, dataset, key); ok {
			return fd, true, nil
		}
	}
	var row *sql.Row
	if db.pointStmt != nil {
		row = db.pointStmt.QueryRowContext(ctx, string(view), dataset, key)
	} else {
		row = conn.QueryRowContext(ctx, liveDocumentSQL, string(view), dataset, key)
	}
	err := row.Scan(&ts, &exp, &seg, &off, &n, &start, &data)
	switch {
	case err == nil:
		if start.Valid {
			d.Source, err = blockDoc(seg, start.Int64, data, off, n)
		} else {
			d.Source, err = legacyDoc(ctx, conn, seg, off, n)
		}
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				break // the segment is pruned: the row is a tombstone
			}
			return d, false, err
		}
		d.Timestamp = time.UnixMilli(ts).UTC()
		if exp != math.MaxInt64 {
			d.ExpiresAt = time.UnixMilli(exp).UTC()
		}
		return d, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return d, false, fmt.Errorf("store: read %s %s %q: %w", view, dataset, key, err)
	}
	tx, err := db.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return d, false, fmt.Errorf("store: read %s %s %q: %w", view, dataset, key, err)
	}
	defer tx.Rollback()
	ov, err := readOverlay(ctx, tx, vigil.LiveFilter{View: view, Dataset: dataset}, math.MinInt64)
	if err != nil {
		return d, false, err
	}
	for _, od := range ov.docs() {
		if od.Key == key {
			return od, true, nil
		}
	}
	return d, false, nil
}
