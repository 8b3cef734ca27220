package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-ti/vigil"
)

// The outbox (migration 0005) is the persisted queue of deliveries. *DB
// implements vigil.Outbox on it; internal/notify delivers it.

var _ vigil.Outbox = (*DB)(nil)

// maxReasonLen bounds the last error kept per delivery.
const maxReasonLen = 1000

// Enqueue queues deliveries, due at once, in one transaction. A delivery
// whose (Key, Connector) is already queued or was delivered (and not pruned
// since) is skipped.
func (db *DB) Enqueue(ctx context.Context, ds []vigil.Delivery) error {
	if db.rw == nil {
		return errors.New("store: opened read-only")
	}
	if len(ds) == 0 {
		return nil
	}
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	defer tx.Rollback()
	if err := db.enqueueTx(ctx, tx, ds); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	return nil
}

// enqueueTx queues deliveries within the caller's transaction, so that a
// store method that saves what is delivered (an alert) queues its
// deliveries atomically with it. The deliveries are due at once.
func (db *DB) enqueueTx(ctx context.Context, tx *sql.Tx, ds []vigil.Delivery) error {
	for i, d := range ds {
		switch {
		case d.Key == "":
			return fmt.Errorf("store: enqueue: delivery %d to %q has no key", i, d.Connector)
		case d.Connector == "":
			return fmt.Errorf("store: enqueue: delivery %q has no connector", d.Key)
		}
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO outbox (key, connector, subject, body, created_at, next_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (key, connector) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("store: enqueue: %w", err)
	}
	defer st.Close()
	now := db.clock.Now().UnixMilli()
	for _, d := range ds {
		body := d.Body
		if body == nil {
			body = []byte{}
		}
		if _, err := st.ExecContext(ctx, d.Key, d.Connector, d.Subject, body, now, now); err != nil {
			return fmt.Errorf("store: enqueue %q for %q: %w", d.Key, d.Connector, err)
		}
	}
	return nil
}

// DueDeliveries returns up to limit queued deliveries due at now (limit <=
// 0: all of them), oldest first.
func (db *DB) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]vigil.Delivery, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := db.ro.QueryContext(ctx, `SELECT id, key, connector, attempts, subject, body FROM outbox
WHERE done_at IS NULL AND next_at <= ? ORDER BY id LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("store: read the outbox: %w", err)
	}
	defer rows.Close()
	var out []vigil.Delivery
	for rows.Next() {
		var d vigil.Delivery
		if err := rows.Scan(&d.ID, &d.Key, &d.Connector, &d.Attempts, &d.Subject, &d.Body); err != nil {
			return nil, fmt.Errorf("store: read the outbox: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read the outbox: %w", err)
	}
	return out, nil
}

// DeliveryDone marks a delivery done at at and drops its body; the row
// stays so that the same (key, connector) is not queued again. Marking a
// delivery done twice is not an error.
func (db *DB) DeliveryDone(ctx context.Context, id int64, at time.Time) error {
	if db.rw == nil {
		return errors.New("store: opened read-only")
	}
	res, err := db.rw.ExecContext(ctx, `UPDATE outbox SET done_at = ?, body = x'', last_error = '' WHERE id = ? AND done_at IS NULL`, at.UnixMilli(), id)
	if err != nil {
		return fmt.Errorf("store: mark delivery %d done: %w", id, err)
	}
	return db.checkDelivery(ctx, res, id)
}

// DeliveryFailed counts a failed attempt, keeps its reason and makes the
// delivery due again at next. A delivery already done is left done.
func (db *DB) DeliveryFailed(ctx context.Context, id int64, next time.Time, reason string) error {
	if db.rw == nil {
		return errors.New("store: opened read-only")
	}
	res, err := db.rw.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_attempt_at = ?, last_error = ? WHERE id = ? AND done_at IS NULL`,
		next.UnixMilli(), db.clock.Now().UnixMilli(), truncate(reason, maxReasonLen), id)
	if err != nil {
		return fmt.Errorf("store: record failed delivery %d: %w", id, err)
	}
	return db.checkDelivery(ctx, res, id)
}

// checkDelivery turns an update of no row into an error when the delivery
// does not exist (an update of a delivery already done changes no row
// either, and is fine).
func (db *DB) checkDelivery(ctx context.Context, res sql.Result, id int64) error {
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return nil
	}
	var one int
	err := db.rw.QueryRowContext(ctx, `SELECT 1 FROM outbox WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: no delivery %d in the outbox", id)
	}
	if err != nil {
		return fmt.Errorf("store: read delivery %d: %w", id, err)
	}
	return nil
}

// PruneOutbox removes the deliveries done before before, and returns how
// many it removed. Their (key, connector) may then be queued again.
func (db *DB) PruneOutbox(ctx context.Context, before time.Time) (int64, error) {
	if db.rw == nil {
		return 0, errors.New("store: opened read-only")
	}
	res, err := db.rw.ExecContext(ctx, `DELETE FROM outbox WHERE done_at IS NOT NULL AND done_at < ?`, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("store: prune the outbox: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// OutboxStats describes one connector's deliveries.
type OutboxStats struct {
	Connector string
	Queued    int64 // not delivered yet
	Failing   int64 // queued, with at least one failed attempt
	Done      int64 // delivered (and not pruned yet)
	// OldestQueued is when the oldest queued delivery was queued (zero
	// when none is).
	OldestQueued time.Time
	// LastError is the reason of the most recent failed attempt of a
	// delivery still queued, and LastErrorAt its time.
	LastError   string
	LastErrorAt time.Time
}

// OutboxStats returns the outbox's counts per connector, by name.
func (db *DB) OutboxStats(ctx context.Context) ([]OutboxStats, error) {
	rows, err := db.ro.QueryContext(ctx, `SELECT connector,
    SUM(done_at IS NULL), SUM(done_at IS NULL AND attempts > 0), SUM(done_at IS NOT NULL),
    MIN(CASE WHEN done_at IS NULL THEN created_at END),
    (SELECT o.last_error FROM outbox o WHERE o.connector = outbox.connector AND o.done_at IS NULL AND o.attempts > 0
        ORDER BY o.last_attempt_at DESC LIMIT 1),
    MAX(CASE WHEN done_at IS NULL THEN last_attempt_at END)
FROM outbox GROUP BY connector ORDER BY connector`)
	if err != nil {
		return nil, fmt.Errorf("store: outbox stats: %w", err)
	}
	defer rows.Close()
	var out []OutboxStats
	for rows.Next() {
		var s OutboxStats
		var oldest, lastAt sql.NullInt64
		var lastErr sql.NullString
		if err := rows.Scan(&s.Connector, &s.Queued, &s.Failing, &s.Done, &oldest, &lastErr, &lastAt); err != nil {
			return nil, fmt.Errorf("store: outbox stats: %w", err)
		}
		if oldest.Valid {
			s.OldestQueued = time.UnixMilli(oldest.Int64).UTC()
		}
		if lastAt.Valid && s.Failing > 0 {
			s.LastError, s.LastErrorAt = lastErr.String, time.UnixMilli(lastAt.Int64).UTC()
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: outbox stats: %w", err)
	}
	return out, nil
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "")
}
