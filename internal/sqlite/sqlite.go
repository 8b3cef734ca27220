// Package sqlite is vigil's embedded store: raw documents, live views and
// collector cursors in one SQLite database in the data directory.
//
// SQLite (through github.com/mattn/go-sqlite3) is the embedded default
// because it is the most widely deployed embedded database, it gives ACID
// transactions with one writer and many concurrent readers in WAL mode (so
// `vigil get` works while `vigil serve` writes), its file survives a killed
// process without repair, and SQL serves the filters the CLI, the API and the
// feeds need.
//
// # Staged live views
//
// The live views are built the way Elastic's "latest" transforms build
// theirs: the ingest only appends, and a merge folds what was appended into
// the live table in large batches.
//
//   - WritePage appends one raw segment (the page's documents as
//     s2-compressed NDJSON), with the list of its live-eligible documents
//     (view, dataset, key, type, @timestamp, expiry and where the document
//     sits in the segment), and saves the cursor, in one transaction. It
//     writes no live row: a page of random keys no longer dirties an index
//     leaf per document.
//   - A merge reads the entry lists of the segments after the live
//     watermark (the id of the last segment merged), keeps the newest
//     entry per (view, dataset, key) of the batch, sorts the batch by key
//     and upserts it into the live table with the newest-@timestamp-wins
//     rule, then moves the watermark, in one transaction. A live row holds
//     no document: it points at its entry in its segment, and live_masks
//     marks per segment which entries are live (the upsert returns where
//     the document it replaced sat, whose bit the merge clears). Sorted
//     keys touch each leaf of the live table once per batch.
//   - Merges run when the documents waiting reach Options.MergeDocs
//     (inside WritePage, after the page is committed), when a writer
//     opens the store (a writer killed before its merge is caught up), on
//     Sync (the collectors call it at the end of every pull) and before
//     Prune.
//
// Readers never wait for a merge: Live overlays the documents waiting in
// the segments after the watermark on the live table, in the same
// snapshot, so a reader in any process sees every committed page; the cost
// is that a Live call reads the entry lists of the waiting segments, and
// decompresses those holding documents it returns. What lags is the live
// table itself, by one batch at most while merges succeed: Stats counts
// its rows, and reports the documents waiting as Pending.
//
// A crash at any point converges: a page and its cursor commit together,
// a merge and its watermark commit together, and merging a segment twice
// is impossible because the watermark moves in the merge's transaction.
// Segment ids are AUTOINCREMENT, so an id is never reused after a prune.
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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/vigil-ti/vigil"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file's name inside the data directory.
const FileName = "vigil.db"

// DefaultMergeDocs is the default of Options.MergeDocs. A merge holds the
// entry lists of the documents waiting (a few dozen bytes each), not the
// documents, and rewrites the leaves of the live table its sorted keys
// fall in, which random keys spread over nearly all of them: with 65,536
// instead of 32,768, a 300,000-IOC ingest wrote 11 % fewer bytes to the
// WAL and the database file (696 MB instead of 784), and on this kind of
// virtual machine the kernel's copying of written pages is about a quarter
// of the ingest's CPU time.
const DefaultMergeDocs = 65536

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
	// MergeDocs is how many live-eligible documents may wait in raw
	// segments before WritePage merges them into the live table, and the
	// size of a merge batch (a batch also ends at mergeBytes of
	// documents). Larger batches rewrite each index leaf fewer times per
	// document; the writer keeps the documents waiting in memory, to merge
	// them without reading them back. 0 means DefaultMergeDocs; a negative
	// value turns the automatic merges of WritePage off (Open, Sync,
	// Materialize and Prune still merge).
	MergeDocs int
	// Beside opens the store for writing beside the writer that holds the
	// data directory (vigil import while serve runs). SQLite serializes
	// the two: each transaction waits for the other's (up to
	// besideBusyTimeout). A store opened beside never migrates (the schema
	// must be the one this build knows), and its merges stay at
	// MergeDocs a batch, so that it holds the write lock briefly. Pages it
	// writes are merged by whichever of the two merges next.
	Beside bool
	// CacheKiB is the writer's page cache, in KiB; 0 means the default
	// (64 MiB), which merges into a large live table need. A writer that
	// merges little and reads documents at random (vigil match, whose
	// alerts read their indicators) is better off with a small one: the
	// cache grows into fresh memory, a page fault per 4 KiB, and random
	// reads over a large store hit it rarely.
	CacheKiB int
}

// besideBusyTimeout is how long a store opened beside another writer waits
// for that writer's transaction: a merge of the other writer's may run for
// seconds.
const besideBusyTimeout = 2 * time.Minute

// DB is the SQLite store. It is safe for concurrent use.
type DB struct {
	rw    *sql.DB // one connection: SQLite has a single writer
	ro    *sql.DB // a pool of read-only connections
	clock vigil.Clock
	opts  Options
	path  string

	// wmu guards the writer's state below. The single rw connection
	// serializes writes anyway.
	wmu      sync.Mutex
	liveRows int64             // rows of the live table (live_watermark.live_rows)
	upserts  map[int]*sql.Stmt // multi-row live upserts by row count
	args     []any
	raw      []byte // a page's NDJSON
	seg      []byte // a page's s2 encoding, in blocks
	blocks   []byte // its block list
	ends     []int  // where each document of the page ends in raw
	ents     []byte // a page's entry list, before its header
	pend     pending
	merge    mergeBuf
	// pointOnce maps the database for the writer's point reads and
	// prepares pointStmt (LiveDocument).
	pointOnce sync.Once
	pointStmt *sql.Stmt
	point     pointReads // LiveDocument's fast path (pointread.go)
}

var _ vigil.Store = (*DB)(nil)

// ErrNoData is returned by a read-only open of a data directory that holds
// no database yet.
var ErrNoData = errors.New("no database yet")

// Open opens (and, unless read-only, creates and migrates) the database in
// dir. A writer then merges the documents a previous writer left unmerged.
func Open(ctx context.Context, dir string, opts Options) (*DB, error) {
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.Retention <= 0 {
		opts.Retention = 5 * 24 * time.Hour
	}
	if opts.MergeDocs == 0 {
		opts.MergeDocs = DefaultMergeDocs
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
		rdsn := dsn(path, false)
		if opts.Beside {
			rdsn = strings.Replace(rdsn, "_busy_timeout=10000", "_busy_timeout="+strconv.FormatInt(besideBusyTimeout.Milliseconds(), 10), 1)
		}
		rw := sql.OpenDB(connector{dsn: rdsn, cacheKiB: opts.CacheKiB})
		rw.SetMaxOpenConns(1)
		rw.SetConnMaxLifetime(0)
		db.rw = rw
		if !opts.Beside {
			if err := db.migrate(ctx); err != nil {
				rw.Close()
				return nil, err
			}
		}
	}
	ro := sql.OpenDB(connector{dsn: dsn(path, true), readOnly: true})
	ro.SetMaxOpenConns(4)
	db.ro = ro
	if opts.ReadOnly || opts.Beside {
		if err := db.checkVersion(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	if opts.ReadOnly {
		return db, nil
	}
	db.upserts = map[int]*sql.Stmt{}
	if err := db.rw.QueryRowContext(ctx, `SELECT live_rows FROM live_watermark`).Scan(&db.liveRows); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: read the live table's size: %w", err)
	}
	// Catch up: merge what a writer killed before its merge left behind.
	db.wmu.Lock()
	_, err := db.mergeLocked(ctx)
	db.wmu.Unlock()
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Tuning of the connections. Durability stays WAL with synchronous=NORMAL:
// a commit is atomic and survives a killed process; a power cut can lose
// the last commits, never corrupt the file.
const (
	// pageSize is the database page size, set when the file is created.
	// The writes are appends (raw segments) and sorted runs (a merge
	// rewrites the leaves of the live table its keys fall in, in order),
	// and SQLite makes two write system calls per page in the WAL and two
	// more at the checkpoint: on a virtual machine a system call costs
	// more than copying 4 KiB, and 64 KiB pages made the merges about
	// twice as cheap as 4 KiB ones.
	pageSize = 64 << 10
	// cacheKiB is the writer's page cache (SQLite's default is 2 MiB;
	// readers keep it). It holds the live table of about a million keys
	// (rows of a few dozen bytes), which every merge walks.
	cacheKiB = 64 << 10
	// walCheckpointPages is how large the WAL grows (in pages) before a
	// commit checkpoints it: 64 MiB (SQLite's default is 1000 pages).
	walCheckpointPages = (64 << 20) / pageSize
	// walSizeLimit truncates the WAL back to this size after a checkpoint.
	walSizeLimit = 64 << 20
)

// stmtCacheSize is how many statements the writer's connection keeps
// prepared, by their SQL text, for the statements run with arguments
// (database/sql prepares, runs and closes one for each such call): a page
// inserts a raw_blocks row per block, and preparing its INSERT each time
// cost about as much as running it.
const stmtCacheSize = 32

// connector opens connections with vigil's settings; the writer's pragmas
// are set again on every new connection (database/sql may replace one).
type connector struct {
	dsn      string
	readOnly bool
	cacheKiB int // the writer's page cache; 0: cacheKiB
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	return c.Driver().Open(c.dsn)
}

func (c connector) Driver() driver.Driver {
	if c.readOnly {
		return &sqlite3.SQLiteDriver{}
	}
	// page_size applies to a database that has no page yet, so it comes
	// before journal_mode, which writes the first one.
	cache := c.cacheKiB
	if cache <= 0 {
		cache = cacheKiB
	}
	return &sqlite3.SQLiteDriver{ConnectHook: func(conn *sqlite3.SQLiteConn) error {
		_, err := conn.Exec(fmt.Sprintf("PRAGMA page_size = %d; PRAGMA journal_mode = WAL; PRAGMA cache_size = -%d; PRAGMA wal_autocheckpoint = %d; PRAGMA journal_size_limit = %d; PRAGMA temp_store = MEMORY;",
			pageSize, cache, walCheckpointPages, walSizeLimit), nil)
		return err
	}}
}

func dsn(path string, readOnly bool) string {
	q := "_busy_timeout=10000&_foreign_keys=1"
	if readOnly {
		q += "&mode=ro&_query_only=1"
	} else {
		q += "&_synchronous=NORMAL&_txlock=immediate&_stmt_cache_size=" + strconv.Itoa(stmtCacheSize)
	}
	return "file:" + path + "?" + q
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close closes the database. It does not merge: documents still waiting
// are merged by the next writer's Open (and readers see them meanwhile).
func (db *DB) Close() error {
	var errs []error
	db.wmu.Lock()
	for _, st := range db.upserts {
		errs = append(errs, st.Close())
	}
	if db.pointStmt != nil {
		errs = append(errs, db.pointStmt.Close())
	}
	db.point.close()
	db.upserts = nil
	db.pend.drop()
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

// migrate applies the embedded migrations not yet applied, in name order,
// each in its own transaction. The table schema_migrations names the
// applied ones (a database from before it counted them in user_version, the
// first N files); PRAGMA user_version counts them, for readers to check.
func (db *DB) migrate(ctx context.Context) error {
	names, err := migrationFiles()
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	var version int
	if err := db.rw.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if _, err := db.rw.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	applied := map[string]bool{}
	rows, err := db.rw.QueryContext(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("store: migrations: %w", err)
		}
		applied[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	if len(applied) == 0 {
		for _, n := range names[:min(version, len(names))] {
			applied[n] = true
		}
	}
	for n := range applied {
		if !slices.Contains(names, n) {
			return fmt.Errorf("store: %s has migration %s, which this vigil does not know: upgrade vigil", db.path, n)
		}
	}
	now := db.clock.Now().UnixMilli()
	for _, name := range names {
		if applied[name] {
			continue
		}
		if err := db.applyMigration(ctx, name, len(applied)+1, now); err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
		applied[name] = true
	}
	// A database from before schema_migrations gets its rows once.
	for name := range applied {
		if _, err := db.rw.ExecContext(ctx, `INSERT OR IGNORE INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, now); err != nil {
			return fmt.Errorf("store: migrations: %w", err)
		}
	}
	return nil
}

// applyMigration runs one migration file, its data step, and records it,
// in one transaction; version is the count of migrations applied after it.
func (db *DB) applyMigration(ctx context.Context, name string, version int, now int64) error {
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if err := db.migrateData(ctx, tx, name); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, now); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(version)); err != nil {
		return err
	}
	return tx.Commit()
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
		return fmt.Errorf("store: %s has schema version %d; run a command that writes (`vigil serve`, `vigil pull`, `vigil import` or `vigil prune`) once to migrate it to %d", db.path, version, len(names))
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

// WritePage appends the page's documents as one raw segment, with the list
// of its live-eligible documents, and saves its cursor, in one transaction.
// The documents reach the live table at the next merge; Live shows them at
// once. When the documents waiting reach Options.MergeDocs (or 64 MiB),
// WritePage then merges them. A failed merge does not fail the page, which is committed:
// it is tried again by a later WritePage, and Sync reports it.
//
// Stats: Live counts the page's live-eligible documents with a key, Stale
// is always 0 (whether a document is older than its live row is settled by
// the merge; Materialize counts it).
func (db *DB) WritePage(ctx context.Context, p vigil.Page) (vigil.WriteStats, error) {
	var st vigil.WriteStats
	if db.rw == nil {
		return st, errors.New("store: opened read-only")
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if err := ctx.Err(); err != nil {
		return st, fmt.Errorf("store: %w", err)
	}
	now := db.clock.Now()
	nowMS := now.UnixMilli()
	var seg *memSeg
	if len(p.Docs) > 0 {
		var err error
		if seg, err = db.encodeSegment(p.Docs, p.NDJSON, &st); err != nil {
			return st, err
		}
	}
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
	if seg != nil {
		if err := db.insertSegment(sctx, tx, seg, segmentRow{source: p.Source, dataset: p.Dataset, ingested: nowMS, docs: len(p.Docs), errors: st.Rejected}); err != nil {
			return st, fmt.Errorf("store: write raw documents: %w", err)
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
	if seg != nil && seg.docs > 0 {
		db.pend.add(seg)
	}
	if db.opts.MergeDocs > 0 && db.pend.docs >= db.batchDocs() && db.pend.docs >= db.pend.retryAt {
		if _, err := db.mergeLocked(ctx); err != nil {
			// Try again once another batch has come in.
			db.pend.retryAt = db.pend.docs + db.batchDocs()
		}
	}
	return st, nil
}

// segmentRow is what raw_segments says of a segment besides its documents.
type segmentRow struct {
	source, dataset string
	ingested        int64 // Unix ms
	docs, errors    int
	compacted       bool
	// blocksV1: raw_blocks is still migration 0002's table, keyed by
	// (seg, start); 0002's own conversion writes it, before 0008.
	blocksV1 bool
}

// insertSegment writes a segment that encodeSegment built (its blocks are
// in db.seg and db.blocks) and sets seg.id.
func (db *DB) insertSegment(ctx context.Context, tx *sql.Tx, seg *memSeg, r segmentRow) error {
	var live any // NULL when no document is live-eligible
	if seg.docs > 0 {
		live = seg.live
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO raw_segments (source, dataset, ingested_at, docs, errors, live_docs, body, blocks, live, compacted) VALUES (?, ?, ?, ?, ?, ?, x'', ?, ?, ?)`,
		r.source, r.dataset, r.ingested, r.docs, r.errors, seg.docs, db.blocks, live, r.compacted)
	if err != nil {
		return err
	}
	if seg.id, err = res.LastInsertId(); err != nil {
		return err
	}
	return insertBlocks(ctx, tx, seg.id, db.seg, db.blocks, r.blocksV1)
}

// Sync merges every document written so far into the live table.
func (db *DB) Sync(ctx context.Context) error {
	_, err := db.Materialize(ctx)
	return err
}

// Materialize merges the documents waiting in raw segments into the live
// table, in batches of Options.MergeDocs documents (one transaction each),
// and returns what it did.
func (db *DB) Materialize(ctx context.Context) (MergeStats, error) {
	if db.rw == nil {
		return MergeStats{}, errors.New("store: opened read-only")
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.mergeLocked(ctx)
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

// Live calls fn for each unexpired document of the view matching f, each
// key once: the merged documents in the order they were written (segment by
// segment, each decompressed once), then the documents written but not
// merged yet. It reads the live table's masks and the waiting segments in
// one snapshot, so it reflects every committed page. fn may keep the
// documents.
func (db *DB) Live(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error {
	now := db.clock.Now().UnixMilli()
	tx, err := db.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: read live view: %w", err)
	}
	defer tx.Rollback()
	ov, err := readOverlay(ctx, tx, f, now)
	if err != nil {
		return err
	}
	emitted := 0
	full := func() bool { return f.Limit > 0 && emitted >= f.Limit }
	emit := func(d vigil.Document) error {
		emitted++
		return fn(d)
	}
	if err := db.liveSegments(ctx, tx, f, now, ov, full, emit); err != nil {
		return err
	}
	for _, d := range ov.docs() {
		if full() {
			break
		}
		if err := emit(d); err != nil {
			return err
		}
	}
	return nil
}

// liveChunk is how many segments' masks and entry lists liveSegments reads
// at a time.
const liveChunk = 64

// liveSel is a segment's documents that a read shows: ents[a:b] of its
// chunk.
type liveSel struct {
	seg  int64
	a, b int
}

type liveEnt struct {
	dataset  string
	key, typ string
	ts, exp  int64
	off, n   int
}

// liveSegments calls emit for the merged documents of the view matching f
// that no waiting document replaces, segment by segment.
func (db *DB) liveSegments(ctx context.Context, tx *sql.Tx, f vigil.LiveFilter, now int64, ov *overlay, full func() bool, emit func(vigil.Document) error) error {
	var rd entryReader
	var e entry
	var match []bool
	last := int64(0)
	// What a chunk of segments needs, reused from chunk to chunk: its
	// documents' entries, and the documents' types (a handful of
	// strings, interned); with f.Transient, the decoded segment too.
	var sels []liveSel
	var ents []liveEnt
	types := map[string]string{}
	var plainBuf []byte
	for !full() {
		rows, err := tx.QueryContext(ctx, `SELECT m.seg, m.mask, s.live FROM live_masks m JOIN raw_segments s ON s.id = m.seg
WHERE m.seg > ? AND m.seg <= ? ORDER BY m.seg LIMIT ?`, last, ov.wm, liveChunk)
		if err != nil {
			return fmt.Errorf("store: read live view: %w", err)
		}
		sels, ents = sels[:0], ents[:0]
		n := 0
		for rows.Next() {
			n++
			// Views of the row, valid until the next: what is kept of
			// them is copied.
			var mask, live sql.RawBytes
			if err := rows.Scan(&last, &mask, &live); err != nil {
				rows.Close()
				return fmt.Errorf("store: read live view: %w", err)
			}
			if err := rd.reset(live); err != nil {
				rows.Close()
				return fmt.Errorf("store: raw segment %d: %w", last, err)
			}
			var found bool
			if match, found = rd.matchGroups(match, f); !found {
				continue
			}
			sel := liveSel{seg: last, a: len(ents)}
			for pos := 0; ; pos++ {
				ok, err := rd.next(&e, math.MaxInt)
				if err != nil {
					rows.Close()
					return fmt.Errorf("store: raw segment %d: %w", last, err)
				}
				if !ok {
					break
				}
				if pos/8 >= len(mask) || mask[pos/8]&(1<<(pos%8)) == 0 || !match[e.group] || e.exp <= now {
					continue
				}
				if f.Type != "" && string(e.typ) != f.Type {
					continue
				}
				ds := rd.groups[e.group][1]
				if ov.replaces([]byte(ds), e.key) {
					continue
				}
				typ, ok := types[string(e.typ)]
				if !ok {
					typ = string(e.typ)
					types[typ] = typ
				}
				ents = append(ents, liveEnt{dataset: ds, key: string(e.key), typ: typ, ts: e.ts, exp: e.exp, off: e.off, n: e.n})
			}
			if sel.b = len(ents); sel.b > sel.a {
				sels = append(sels, sel)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read live view: %w", err)
		}
		if n == 0 {
			return nil
		}
		for _, sel := range sels {
			if full() {
				return nil
			}
			plain, spans, err := readSegment(ctx, tx, sel.seg, plainBuf)
			if err != nil {
				return err
			}
			if f.Transient {
				plainBuf = plain
			}
			for _, le := range ents[sel.a:sel.b] {
				if full() {
					return nil
				}
				if le.off > len(plain) || le.n > len(plain)-le.off {
					return fmt.Errorf("store: raw segment %d: %w", sel.seg, errCorrupt)
				}
				d := vigil.Document{View: f.View, Dataset: le.dataset, Key: le.key, Type: le.typ,
					Timestamp: time.UnixMilli(le.ts).UTC(), Source: plain[le.off : le.off+le.n : le.off+le.n],
					Loc: docLoc(sel.seg, spans, le.off, le.n)}
				if le.exp != math.MaxInt64 {
					d.ExpiresAt = time.UnixMilli(le.exp).UTC()
				}
				if err := emit(d); err != nil {
					return err
				}
			}
		}
		if n < liveChunk {
			return nil
		}
	}
	return nil
}

// readSegmentBody returns a raw segment's NDJSON, in a buffer of its own.
func readSegmentBody(ctx context.Context, tx *sql.Tx, id int64) ([]byte, error) {
	plain, _, err := readSegment(ctx, tx, id, nil)
	return plain, err
}

// readSegment is readSegmentBody that also returns the segment's blocks,
// decoding into buf when it is large enough.
func readSegment(ctx context.Context, tx *sql.Tx, id int64, buf []byte) ([]byte, []blockSpan, error) {
	var body, blocks []byte
	if err := tx.QueryRowContext(ctx, `SELECT body, blocks FROM raw_segments WHERE id = ?`, id).Scan(&body, &blocks); err != nil {
		return nil, nil, fmt.Errorf("store: read live view: segment %d: %w", id, err)
	}
	return segmentPlainSpans(ctx, tx, id, body, blocks, buf)
}

// docLoc returns the Loc of the document at [off, off+n) of segment seg,
// whose blocks are spans: zero when it has none (a segment of the first
// schema) or the document does not lie in one block.
func docLoc(seg int64, spans []blockSpan, off, n int) vigil.Loc {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].plainEnd > off })
	if i == len(spans) || spans[i].plain > off || off+n > spans[i].plainEnd || spans[i].plain > maxBlockStart || off+n > math.MaxUint32 {
		return vigil.Loc{}
	}
	return vigil.Loc{Seg: seg, Block: uint32(spans[i].plain), Off: uint32(off), Len: uint32(n)}
}

// Prune merges the documents waiting, then removes raw segments ingested
// before now - retention, and live rows that expired before now - retention
// (until then they are tombstones that reads skip). A segment is never
// removed before it is merged.
func (db *DB) Prune(ctx context.Context) (vigil.PruneStats, error) {
	var st vigil.PruneStats
	if db.rw == nil {
		return st, errors.New("store: opened read-only")
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	// Merged first, a waiting document meets the tombstones that are
	// about to go, as it would have when it was written.
	if _, err := db.mergeLocked(ctx); err != nil {
		return st, err
	}
	now := db.clock.Now()
	cutoff := now.Add(-db.opts.Retention).UnixMilli()
	n, err := db.compactLocked(ctx, cutoff, now.UnixMilli())
	st.Compacted = n
	if err != nil {
		return st, err
	}
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return st, fmt.Errorf("store: prune: %w", err)
	}
	defer tx.Rollback()
	ids, err := prunableSegments(ctx, tx, cutoff, now.UnixMilli(), &st)
	if err != nil {
		return st, err
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM raw_segments WHERE id = ?`, id); err != nil {
			return st, fmt.Errorf("store: prune raw documents: %w", err)
		}
		lo, hi := segmentBlocks(id)
		if _, err := tx.ExecContext(ctx, `DELETE FROM raw_blocks WHERE id BETWEEN ? AND ?`, lo, hi); err != nil {
			return st, fmt.Errorf("store: prune raw documents: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM live_masks WHERE seg = ?`, id); err != nil {
			return st, fmt.Errorf("store: prune raw documents: %w", err)
		}
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM live WHERE expires_at < ?`, cutoff)
	if err != nil {
		return st, fmt.Errorf("store: prune live views: %w", err)
	}
	st.Expired, _ = res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `UPDATE live_watermark SET live_rows = max(0, live_rows - ?) WHERE id = 1`, st.Expired); err != nil {
		return st, fmt.Errorf("store: prune live views: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("store: prune: %w", err)
	}
	db.liveRows = max(0, db.liveRows-st.Expired)
	return st, nil
}

// prunableSegments returns the merged segments that can go, and counts
// them (and their raw documents) in st: raw segments ingested before cutoff,
// and compacted segments of any age, that hold no unexpired live document.
func prunableSegments(ctx context.Context, tx *sql.Tx, cutoff, now int64, st *vigil.PruneStats) ([]int64, error) {
	var ids []int64
	err := liveCandidates(ctx, tx, `(s.ingested_at < ? OR s.compacted = 1)`, cutoff, func(c candidate) error {
		if len(c.live) > 0 {
			return nil
		}
		ids = append(ids, c.id)
		if !c.compacted {
			st.RawSegments++
			st.RawDocs += c.docs
		}
		return nil
	}, now)
	return ids, err
}

// candidate is a merged segment and its unexpired live entries.
type candidate struct {
	id, docs        int64
	source, dataset string
	compacted       bool
	live            []int // entry numbers
}

// liveCandidates calls fn for each merged segment matching cond (on the
// raw_segments row s, with arg), with its unexpired live entries.
func liveCandidates(ctx context.Context, tx *sql.Tx, cond string, arg any, fn func(candidate) error, now int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT s.id, s.docs, s.source, s.dataset, s.compacted, m.mask, s.live FROM raw_segments s LEFT JOIN live_masks m ON m.seg = s.id
WHERE `+cond+` AND s.id <= (SELECT segment FROM live_watermark) ORDER BY s.id`, arg)
	if err != nil {
		return fmt.Errorf("store: prune: %w", err)
	}
	var cands []candidate
	var rd entryReader
	var e entry
	for rows.Next() {
		var c candidate
		var mask, live []byte
		if err := rows.Scan(&c.id, &c.docs, &c.source, &c.dataset, &c.compacted, &mask, &live); err != nil {
			rows.Close()
			return fmt.Errorf("store: prune: %w", err)
		}
		if mask != nil {
			if err := rd.reset(live); err != nil {
				rows.Close()
				return fmt.Errorf("store: raw segment %d: %w", c.id, err)
			}
			for pos := 0; ; pos++ {
				ok, err := rd.next(&e, math.MaxInt)
				if err != nil {
					rows.Close()
					return fmt.Errorf("store: raw segment %d: %w", c.id, err)
				}
				if !ok {
					break
				}
				if pos/8 < len(mask) && mask[pos/8]&(1<<(pos%8)) != 0 && e.exp > now {
					c.live = append(c.live, pos)
				}
			}
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: prune: %w", err)
	}
	for _, c := range cands {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// DatasetStats describes one dataset's holdings.
type DatasetStats struct {
	View      vigil.View
	Dataset   string
	Live      int64 // unexpired rows of the live table
	Expired   int64 // tombstones awaiting pruning
	Pending   int64 // live-eligible documents written but not merged yet
	RawDocs   int64
	RawErrors int64
	LastWrite time.Time
}

// Stats returns per-dataset counts. Live and Expired count the rows of the
// live table, which lags the pages written by the Pending documents until
// the next merge.
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
	tx, err := db.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT d.view, d.dataset, SUM(l.expires_at > ?), SUM(l.expires_at <= ?)
FROM live l JOIN live_datasets d ON d.id = l.ds GROUP BY l.ds`, now, now)
	if err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	for rows.Next() {
		var view, ds string
		var live, exp int64
		if err := rows.Scan(&view, &ds, &live, &exp); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: stats: %w", err)
		}
		s := get(view, ds)
		s.Live, s.Expired = live, exp
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT dataset, SUM(docs), SUM(errors), MAX(ingested_at),
    SUM(CASE WHEN id > (SELECT segment FROM live_watermark) THEN live_docs ELSE 0 END)
FROM raw_segments WHERE compacted = 0 GROUP BY dataset`)
	if err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ds string
		var docs, errs, last, pending int64
		if err := rows.Scan(&ds, &docs, &errs, &last, &pending); err != nil {
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
		s.RawDocs, s.RawErrors, s.Pending = docs, errs, pending
		if t := time.UnixMilli(last).UTC(); t.After(s.LastWrite) {
			s.LastWrite = t
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	out := make([]DatasetStats, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dataset < out[j].Dataset })
	return out, nil
}

// RawDocs calls fn with each raw document of the dataset ("" for all), oldest
// segment first, in one snapshot.
func (db *DB) RawDocs(ctx context.Context, dataset string, fn func(doc []byte) error) error {
	tx, err := db.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: read raw documents: %w", err)
	}
	defer tx.Rollback()
	q := `SELECT id FROM raw_segments WHERE compacted = 0`
	var args []any
	if dataset != "" {
		q += ` AND dataset = ?`
		args = append(args, dataset)
	}
	q += ` ORDER BY id`
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: read raw documents: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("store: read raw documents: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read raw documents: %w", err)
	}
	for _, id := range ids {
		plain, err := readSegmentBody(ctx, tx, id)
		if err != nil {
			return err
		}
		for line := range bytes.Lines(plain) {
			if err := fn(bytes.TrimSuffix(line, []byte("\n"))); err != nil {
				return err
			}
		}
	}
	return nil
}

// SourceSegments returns the last raw segment that source wrote after the
// segment after (after itself when none), and the live-eligible documents
// of its segments after after: serve finds there the pages that a `vigil
// import` beside it wrote. It reads the segments after after only.
func (db *DB) SourceSegments(ctx context.Context, source string, after int64) (last, liveDocs int64, err error) {
	err = db.ro.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), ?), COALESCE(SUM(live_docs), 0) FROM raw_segments WHERE id > ? AND source = ? AND compacted = 0`,
		after, after, source).Scan(&last, &liveDocs)
	if err != nil {
		return 0, 0, fmt.Errorf("store: read the segments of %s: %w", source, err)
	}
	return last, liveDocs, nil
}
