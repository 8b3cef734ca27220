// Package sqlite is vigil's embedded store: raw documents, live views and
// collector cursors in one SQLite database in the data directory.
//
// SQLite (through github.com/mattn/go-sqlite3) is the embedded default
// because it is the most widely deployed embedded database, it gives ACID
// transactions with one writer and many concurrent readers in WAL mode (so
// `vigil get` works while `vigil serve` writes), its file survives a killed
// process without repair, and SQL serves the filters the CLI, the API and the
// feeds need.
package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"
	_ "github.com/mattn/go-sqlite3" // the SQLite driver

	"github.com/vigil-ti/vigil"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file's name inside the data directory.
const FileName = "vigil.db"

// Options configure a store.
type Options struct {
	// Retention is how long raw documents are kept (and how long expired
	// live rows stay as tombstones).
	Retention time.Duration
	// Clock tells the time; the wall clock by default.
	Clock vigil.Clock
	// ReadOnly opens an existing database for reading only. It never
	// creates or migrates the database.
	ReadOnly bool
}

// DB is the SQLite store. It is safe for concurrent use.
type DB struct {
	rw    *sql.DB // one connection: SQLite has a single writer
	ro    *sql.DB // a pool of read-only connections
	clock vigil.Clock
	opts  Options
	path  string

	upsert *sql.Stmt
}

var _ vigil.Store = (*DB)(nil)

// ErrNoData is returned by a read-only open of a data directory that holds
// no database yet.
var ErrNoData = errors.New("no database yet")

// Open opens (and, unless read-only, creates and migrates) the database in
// dir.
func Open(ctx context.Context, dir string, opts Options) (*DB, error) {
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.Retention <= 0 {
		opts.Retention = 5 * 24 * time.Hour
	}
	path := filepath.Join(dir, FileName)
	db := &DB{clock: opts.Clock, opts: opts, path: path}
	if opts.ReadOnly {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: %s: %w (run `vigil pull` or `vigil serve` first)", path, ErrNoData)
		}
	} else {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: create data dir: %w", err)
		}
		rw, err := sql.Open("sqlite3", dsn(path, false))
		if err != nil {
			return nil, fmt.Errorf("store: open: %w", err)
		}
		rw.SetMaxOpenConns(1)
		rw.SetConnMaxLifetime(0)
		db.rw = rw
		if err := db.migrate(ctx); err != nil {
			rw.Close()
			return nil, err
		}
	}
	ro, err := sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open: %w", err)
	}
	ro.SetMaxOpenConns(4)
	db.ro = ro
	if opts.ReadOnly {
		if err := db.checkVersion(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	db.upsert, err = db.rw.PrepareContext(ctx, `
INSERT INTO live (view, dataset, key, type, ts, expires_at, updated_at, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (view, dataset, key) DO UPDATE SET
    type = excluded.type, ts = excluded.ts, expires_at = excluded.expires_at,
    updated_at = excluded.updated_at, doc = excluded.doc
WHERE excluded.ts >= live.ts`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	return db, nil
}

func dsn(path string, readOnly bool) string {
	q := "_busy_timeout=10000&_foreign_keys=1"
	if readOnly {
		q += "&mode=ro&_query_only=1"
	} else {
		q += "&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"
	}
	return "file:" + path + "?" + q
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close closes the database.
func (db *DB) Close() error {
	var errs []error
	if db.upsert != nil {
		errs = append(errs, db.upsert.Close())
	}
	if db.ro != nil {
		errs = append(errs, db.ro.Close())
	}
	if db.rw != nil {
		errs = append(errs, db.rw.Close())
	}
	return errors.Join(errs...)
}

func migrationFiles() ([]string, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// migrate applies the embedded migrations not yet applied, each in its own
// transaction. PRAGMA user_version counts the applied ones.
func (db *DB) migrate(ctx context.Context) error {
	names, err := migrationFiles()
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	var version int
	if err := db.rw.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("store: %s has schema version %d, newer than this vigil knows (%d): upgrade vigil", db.path, version, len(names))
	}
	for i := version; i < len(names); i++ {
		body, err := migrations.ReadFile(names[i])
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", names[i], err)
		}
		tx, err := db.rw.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", names[i], err)
		}
		if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", names[i], err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migration %s: %w", names[i], err)
		}
	}
	return nil
}

func (db *DB) checkVersion(ctx context.Context) error {
	names, err := migrationFiles()
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	var version int
	if err := db.ro.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("store: read schema version of %s: %w", db.path, err)
	}
	switch {
	case version == 0:
		return fmt.Errorf("store: %s: %w (run `vigil pull` or `vigil serve` first)", db.path, ErrNoData)
	case version < len(names):
		return fmt.Errorf("store: %s has schema version %d; run `vigil pull` or `vigil serve` once to migrate it to %d", db.path, version, len(names))
	case version > len(names):
		return fmt.Errorf("store: %s has schema version %d, newer than this vigil knows (%d): upgrade vigil", db.path, version, len(names))
	}
	return nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return math.MaxInt64
	}
	return t.UnixMilli()
}

// WritePage writes the page's documents and cursor in one transaction.
func (db *DB) WritePage(ctx context.Context, p vigil.Page) (vigil.WriteStats, error) {
	var st vigil.WriteStats
	if db.rw == nil {
		return st, errors.New("store: opened read-only")
	}
	now := db.clock.Now()
	nowMS := now.UnixMilli()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	if len(p.Docs) > 0 {
		var raw bytes.Buffer
		errCount := 0
		for i := range p.Docs {
			d := &p.Docs[i]
			raw.Write(d.Source)
			raw.WriteByte('\n')
			if d.Error != "" {
				errCount++
			}
		}
		body := s2.Encode(nil, raw.Bytes())
		if _, err := tx.ExecContext(ctx, `INSERT INTO raw_segments (source, dataset, ingested_at, docs, errors, body) VALUES (?, ?, ?, ?, ?, ?)`,
			p.Source, p.Dataset, nowMS, len(p.Docs), errCount, body); err != nil {
			return st, fmt.Errorf("store: write raw documents: %w", err)
		}
		st.Raw = len(p.Docs)
		st.Rejected = errCount
		upsert := tx.StmtContext(ctx, db.upsert)
		for i := range p.Docs {
			d := &p.Docs[i]
			if d.Error != "" {
				continue
			}
			if d.Key == "" {
				st.Unkeyed++
				continue
			}
			res, err := upsert.ExecContext(ctx, string(d.View), d.Dataset, d.Key, d.Type, ms(d.Timestamp), ms(d.ExpiresAt), nowMS, d.Source)
			if err != nil {
				return st, fmt.Errorf("store: write live view: %w", err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				st.Live++
			} else {
				st.Stale++
			}
		}
	}
	if p.Cursor != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cursors (source, dataset, state, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (source, dataset) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
			p.Source, p.Dataset, p.Cursor, nowMS); err != nil {
			return st, fmt.Errorf("store: save cursor: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("store: commit: %w", err)
	}
	return st, nil
}

// Cursor returns the saved cursor of (source, dataset), or nil when there is
// none.
func (db *DB) Cursor(ctx context.Context, source, dataset string) ([]byte, error) {
	var state []byte
	err := db.ro.QueryRowContext(ctx, `SELECT state FROM cursors WHERE source = ? AND dataset = ?`, source, dataset).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read cursor: %w", err)
	}
	return state, nil
}

// Live calls fn for each unexpired document of the view matching f, in
// (dataset, key) order.
func (db *DB) Live(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error {
	q := strings.Builder{}
	q.WriteString(`SELECT dataset, key, type, ts, expires_at, doc FROM live WHERE view = ? AND expires_at > ?`)
	args := []any{string(f.View), db.clock.Now().UnixMilli()}
	if f.Dataset != "" {
		q.WriteString(` AND dataset = ?`)
		args = append(args, f.Dataset)
	}
	if f.Type != "" {
		q.WriteString(` AND type = ?`)
		args = append(args, f.Type)
	}
	q.WriteString(` ORDER BY dataset, key`)
	if f.Limit > 0 {
		q.WriteString(` LIMIT ?`)
		args = append(args, f.Limit)
	}
	rows, err := db.ro.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return fmt.Errorf("store: read live view: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d vigil.Document
		var ts, exp int64
		if err := rows.Scan(&d.Dataset, &d.Key, &d.Type, &ts, &exp, &d.Source); err != nil {
			return fmt.Errorf("store: read live view: %w", err)
		}
		d.View = f.View
		d.Timestamp = time.UnixMilli(ts).UTC()
		if exp != math.MaxInt64 {
			d.ExpiresAt = time.UnixMilli(exp).UTC()
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read live view: %w", err)
	}
	return nil
}

// Prune removes raw segments ingested before now - retention, and live rows
// that expired before now - retention (until then they are tombstones that
// reads skip).
func (db *DB) Prune(ctx context.Context) (vigil.PruneStats, error) {
	var st vigil.PruneStats
	if db.rw == nil {
		return st, errors.New("store: opened read-only")
	}
	cutoff := db.clock.Now().Add(-db.opts.Retention).UnixMilli()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("store: prune: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(docs), 0) FROM raw_segments WHERE ingested_at < ?`, cutoff).Scan(&st.RawSegments, &st.RawDocs); err != nil {
		return st, fmt.Errorf("store: prune: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM raw_segments WHERE ingested_at < ?`, cutoff); err != nil {
		return st, fmt.Errorf("store: prune raw documents: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM live WHERE expires_at < ?`, cutoff)
	if err != nil {
		return st, fmt.Errorf("store: prune live views: %w", err)
	}
	st.Expired, _ = res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("store: prune: %w", err)
	}
	return st, nil
}

// DatasetStats describes one dataset's holdings.
type DatasetStats struct {
	View      vigil.View
	Dataset   string
	Live      int64 // unexpired live rows
	Expired   int64 // tombstones awaiting pruning
	RawDocs   int64
	RawErrors int64
	LastWrite time.Time
}

// Stats returns per-dataset counts.
func (db *DB) Stats(ctx context.Context) ([]DatasetStats, error) {
	now := db.clock.Now().UnixMilli()
	byKey := map[string]*DatasetStats{}
	get := func(view, dataset string) *DatasetStats {
		k := view + "\x00" + dataset
		if s, ok := byKey[k]; ok {
			return s
		}
		s := &DatasetStats{View: vigil.View(view), Dataset: dataset}
		byKey[k] = s
		return s
	}
	rows, err := db.ro.QueryContext(ctx, `SELECT view, dataset, SUM(expires_at > ?), SUM(expires_at <= ?), MAX(updated_at) FROM live GROUP BY view, dataset`, now, now)
	if err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	for rows.Next() {
		var view, ds string
		var live, exp, last int64
		if err := rows.Scan(&view, &ds, &live, &exp, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: stats: %w", err)
		}
		s := get(view, ds)
		s.Live, s.Expired, s.LastWrite = live, exp, time.UnixMilli(last).UTC()
	}
	rows.Close()
	rows, err = db.ro.QueryContext(ctx, `SELECT dataset, SUM(docs), SUM(errors), MAX(ingested_at) FROM raw_segments GROUP BY dataset`)
	if err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ds string
		var docs, errs, last int64
		if err := rows.Scan(&ds, &docs, &errs, &last); err != nil {
			return nil, fmt.Errorf("store: stats: %w", err)
		}
		var s *DatasetStats
		for _, v := range byKey {
			if v.Dataset == ds {
				s = v
			}
		}
		if s == nil {
			s = get("", ds)
		}
		s.RawDocs, s.RawErrors = docs, errs
		if t := time.UnixMilli(last).UTC(); t.After(s.LastWrite) {
			s.LastWrite = t
		}
	}
	out := make([]DatasetStats, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dataset < out[j].Dataset })
	return out, rows.Err()
}

// RawDocs calls fn with each raw document of the dataset ("" for all), oldest
// segment first.
func (db *DB) RawDocs(ctx context.Context, dataset string, fn func(doc []byte) error) error {
	q := `SELECT body FROM raw_segments`
	var args []any
	if dataset != "" {
		q += ` WHERE dataset = ?`
		args = append(args, dataset)
	}
	q += ` ORDER BY id`
	rows, err := db.ro.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: read raw documents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return fmt.Errorf("store: read raw documents: %w", err)
		}
		plain, err := s2.Decode(nil, body)
		if err != nil {
			return fmt.Errorf("store: raw segment is corrupt: %w", err)
		}
		for line := range bytes.Lines(plain) {
			if err := fn(bytes.TrimSuffix(line, []byte("\n"))); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}
