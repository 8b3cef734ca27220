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
	"database/sql/driver"
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
	"sync"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/mattn/go-sqlite3"

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

	// wmu guards what WritePage reuses from page to page. The single rw
	// connection serializes writes anyway.
	wmu     sync.Mutex
	upserts map[int]*sql.Stmt // multi-row live upserts by row count
	args    []any
	raw     []byte // a page's NDJSON
	seg     []byte // its s2 encoding
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
		rw := sql.OpenDB(connector{dsn: dsn(path, false)})
		rw.SetMaxOpenConns(1)
		rw.SetConnMaxLifetime(0)
		db.rw = rw
		if err := db.migrate(ctx); err != nil {
			rw.Close()
			return nil, err
		}
	}
	ro := sql.OpenDB(connector{dsn: dsn(path, true), readOnly: true})
	ro.SetMaxOpenConns(4)
	db.ro = ro
	if opts.ReadOnly {
		if err := db.checkVersion(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return db, nil
	}
	db.upserts = map[int]*sql.Stmt{}
	return db, nil
}

// Tuning of the connections. Durability stays WAL with synchronous=NORMAL:
// a commit is atomic and survives a killed process; a power cut can lose
// the last commits, never corrupt the file.
const (
	// cacheKiB is the writer's page cache (SQLite's default is 2 MiB;
	// readers keep it). A page of 1000 documents dirties about 1400 pages
	// (5.5 MiB): with 2 MiB SQLite spilled them to the WAL in the middle of
	// the transaction and read back from the OS the index pages it had
	// just evicted. It is most of the writer's memory: 64 MiB of the
	// 100 MiB peak RSS of a pull of a million IOCs.
	cacheKiB = 64 << 10
	// walCheckpointPages is how large the WAL grows (in 4 KiB pages) before
	// a commit checkpoints it (SQLite's default is 1000, 4 MiB, less than
	// one page of 1000 documents, so every commit checkpointed and synced
	// twice). Index pages that many commits touch are copied back once.
	walCheckpointPages = 16 << 10 // 64 MiB
	// walSizeLimit truncates the WAL back to this size after a checkpoint.
	walSizeLimit = 64 << 20
)

// connector opens connections with vigil's settings; the writer's pragmas
// are set again on every new connection (database/sql may replace one).
type connector struct {
	dsn      string
	readOnly bool
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	return c.Driver().Open(c.dsn)
}

func (c connector) Driver() driver.Driver {
	if c.readOnly {
		return &sqlite3.SQLiteDriver{}
	}
	return &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		_, err := conn.Exec(fmt.Sprintf("PRAGMA cache_size = -%d; PRAGMA wal_autocheckpoint = %d; PRAGMA journal_size_limit = %d; PRAGMA temp_store = MEMORY;",
			cacheKiB, walCheckpointPages, walSizeLimit), nil)
		return err
	}}
}

// upsertRows is the number of documents per live-view upsert statement:
// one statement per document costs about 2 µs more per document, in
// database/sql, the driver and SQLite.
const upsertRows = 100

// upsertStmt returns the statement that upserts n documents into the live
// view, preparing it on first use (so not while a transaction holds the
// connection). Call with wmu held.
//
// SQLite applies the rows in order, each one seeing those before it, so a
// key given twice in one statement ends as if written by two statements.
// The newest @timestamp wins; a document as new as the live row replaces
// it. The statement needs no statement journal (a copy of every page it
// touches, taken in case it fails half-way, which cost 3 µs per document):
// OR FAIL lets a failing row keep the rows before it, and the columns the
// upsert updates have no NOT NULL constraint (upsertLive binds no NULL),
// so the statement cannot abort after changing something; a failed
// statement fails WritePage, which rolls the whole page back.
func (db *DB) upsertStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if st, ok := db.upserts[n]; ok {
		return st, nil
	}
	var q strings.Builder
	q.WriteString("INSERT OR FAIL INTO live (view, dataset, key, type, ts, expires_at, updated_at, doc) VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?)")
	}
	q.WriteString(`
ON CONFLICT (view, dataset, key) DO UPDATE SET
    type = excluded.type, ts = excluded.ts, expires_at = excluded.expires_at,
    updated_at = excluded.updated_at, doc = excluded.doc
WHERE excluded.ts >= live.ts`)
	st, err := db.rw.PrepareContext(ctx, q.String())
	if err != nil {
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	db.upserts[n] = st
	return st, nil
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
	db.wmu.Lock()
	for _, st := range db.upserts {
		errs = append(errs, st.Close())
	}
	db.wmu.Unlock()
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

// msPerDay is the unit of the live_expires_day index.
const msPerDay = 24 * 60 * 60 * 1000

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
	db.wmu.Lock()
	defer db.wmu.Unlock()
	// Prepare the upserts this page needs before the transaction takes the
	// only connection.
	live := 0
	for i := range p.Docs {
		if p.Docs[i].Live() {
			live++
		}
	}
	for _, n := range []int{min(live, upsertRows), live % upsertRows} {
		if n > 0 {
			if _, err := db.upsertStmt(ctx, n); err != nil {
				return st, err
			}
		}
	}
	now := db.clock.Now()
	nowMS := now.UnixMilli()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("store: begin: %w", err)
	}
	defer tx.Rollback()
	// The statements run with a context that cannot be cancelled: for one
	// that can, the driver runs every statement on a new goroutine to
	// watch it. ctx is checked between statements, and cancelling it
	// rolls the transaction back.
	sctx := context.WithoutCancel(ctx)
	if len(p.Docs) > 0 {
		raw := db.raw[:0]
		errCount := 0
		for i := range p.Docs {
			d := &p.Docs[i]
			raw = append(raw, d.Source...)
			raw = append(raw, '\n')
			if d.Error != "" {
				errCount++
			}
		}
		db.raw = raw
		if n := s2.MaxEncodedLen(len(raw)); cap(db.seg) < n {
			db.seg = make([]byte, n)
		}
		body := s2.Encode(db.seg[:cap(db.seg)], raw)
		if _, err := tx.ExecContext(sctx, `INSERT INTO raw_segments (source, dataset, ingested_at, docs, errors, body) VALUES (?, ?, ?, ?, ?, ?)`,
			p.Source, p.Dataset, nowMS, len(p.Docs), errCount, body); err != nil {
			return st, fmt.Errorf("store: write raw documents: %w", err)
		}
		st.Raw = len(p.Docs)
		st.Rejected = errCount
		if err := db.upsertLive(ctx, sctx, tx, p.Docs, nowMS, &st); err != nil {
			return st, err
		}
	}
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("store: %w", err)
	}
	if p.Cursor != nil {
		if _, err := tx.ExecContext(sctx, `INSERT INTO cursors (source, dataset, state, updated_at) VALUES (?, ?, ?, ?)
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

// upsertLive writes the live-eligible documents into their live views,
// upsertRows per statement. Call with wmu held.
func (db *DB) upsertLive(ctx, sctx context.Context, tx *sql.Tx, docs []vigil.Document, nowMS int64, st *vigil.WriteStats) error {
	args := db.args[:0]
	rows := 0
	flush := func() error {
		if rows == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		stmt := db.upserts[rows] // prepared by WritePage
		res, err := tx.StmtContext(sctx, stmt).ExecContext(sctx, args...)
		if err != nil {
			return fmt.Errorf("store: write live view: %w", err)
		}
		// A row counts as a change when it was inserted or replaced,
		// not when the live row was newer.
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("store: write live view: %w", err)
		}
		st.Live += int(n)
		st.Stale += rows - int(n)
		clear(args)
		args = args[:0]
		rows = 0
		return nil
	}
	defer func() { db.args = args[:0] }()
	for i := range docs {
		d := &docs[i]
		if d.Error != "" {
			continue
		}
		if d.Key == "" {
			st.Unkeyed++
			continue
		}
		if d.Source == nil {
			// The driver would bind NULL, which the schema does not refuse.
			return fmt.Errorf("store: write live view: document %q of %s has no source", d.Key, d.Dataset)
		}
		args = append(args, string(d.View), d.Dataset, d.Key, d.Type, ms(d.Timestamp), ms(d.ExpiresAt), nowMS, d.Source)
		rows++
		if rows == upsertRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
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
	// The day condition lets the live_expires_day index find the rows.
	res, err := tx.ExecContext(ctx, `DELETE FROM live WHERE expires_at / 86400000 <= ? AND expires_at < ?`, cutoff/msPerDay, cutoff)
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
