package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/vigil-ti/vigil"
)

// A segment's entry list describes its live-eligible documents, in page
// order:
//
//	byte     version (1)
//	uvarint  number of groups, then per group:
//	         uvarint len, view; uvarint len, dataset
//	uvarint  number of entries, then per entry:
//	         uvarint group; uvarint len, key; uvarint len, type;
//	         varint @timestamp and varint expiry (Unix ms, MaxInt64: never);
//	         uvarint offset and uvarint length of the document in the
//	         segment's NDJSON
const entriesVersion = 1

// maxPendingBytes bounds the entry lists the writer keeps in memory for
// the next merge (when merges fail, or WritePage's are turned off). Past
// it, the copies are dropped and the merge reads the entry lists back.
const maxPendingBytes = 64 << 20

// MergeStats counts what a merge did.
type MergeStats struct {
	Segments   int // raw segments merged
	Docs       int // live-eligible documents in them
	Superseded int // documents a newer one of the same key in the same batch replaced
	Live       int // live rows inserted or replaced
	Stale      int // documents older than the live row they would replace
	Inserted   int // live rows of keys new to the live table
}

func (s *MergeStats) add(o MergeStats) {
	s.Segments += o.Segments
	s.Docs += o.Docs
	s.Superseded += o.Superseded
	s.Live += o.Live
	s.Stale += o.Stale
	s.Inserted += o.Inserted
}

// memSeg is a raw segment after the watermark, as the merge needs it: its
// entry list. A merge never reads documents.
type memSeg struct {
	id   int64
	docs int    // live-eligible documents
	live []byte // the entry list
}

// pending is what the writer knows of the segments after the watermark.
type pending struct {
	docs    int       // live-eligible documents in them
	segs    []*memSeg // the segments themselves, when valid
	bytes   int       // entry lists held by segs
	valid   bool      // segs are exactly the segments after the watermark
	retryAt int       // after a failed automatic merge, docs to wait for
}

// add records a committed segment with live-eligible documents.
func (p *pending) add(s *memSeg) {
	p.docs += s.docs
	if !p.valid || p.bytes+len(s.live) > maxPendingBytes {
		p.drop()
		return
	}
	p.segs = append(p.segs, s)
	p.bytes += len(s.live)
}

// drop forgets the segments held: the next merge reads them back.
func (p *pending) drop() {
	p.bytes = 0
	clear(p.segs)
	p.segs = p.segs[:0]
	p.valid = false
}

// merged records that every segment up to the watermark is merged and none
// is left.
func (p *pending) merged() {
	p.drop()
	p.valid = true
	p.docs = 0
	p.retryAt = 0
}

// holds reports whether segs are exactly the n segments after the
// watermark wm, the last being maxID.
func (p *pending) holds(wm, n, maxID int64) bool {
	if !p.valid || int64(len(p.segs)) != n || n == 0 {
		return false
	}
	return p.segs[0].id > wm && p.segs[len(p.segs)-1].id == maxID
}

// encodeSegment builds a page's NDJSON (in db.raw), its s2 encoding in
// blocks (in db.seg, listed in db.blocks) and its entry list (in the returned segment), and counts the
// documents. Call with wmu held.
func (db *DB) encodeSegment(docs []vigil.Document, ndjson []byte, st *vigil.WriteStats) (*memSeg, error) {
	// The caller's NDJSON when it holds the documents (an arena's), else
	// a copy in db.raw.
	given := holdsDocs(ndjson, docs)
	raw := db.raw[:0]
	if given {
		raw = ndjson[:0]
	} else {
		size := 0
		for i := range docs {
			size += len(docs[i].Source) + 1
		}
		if cap(raw) < size {
			raw = make([]byte, 0, size+size/8)
		}
	}
	type group struct {
		view    vigil.View
		dataset string
	}
	var groups []group
	ents := db.ents[:0]
	db.ends = db.ends[:0]
	n := 0
	for i := range docs {
		d := &docs[i]
		off := len(raw)
		if given {
			raw = raw[:off+len(d.Source)+1]
		} else {
			raw = append(raw, d.Source...)
			raw = append(raw, '\n')
		}
		db.ends = append(db.ends, len(raw))
		switch {
		case d.Error != "":
			st.Rejected++
			continue
		case d.Key == "":
			st.Unkeyed++
			continue
		case d.Source == nil:
			return nil, fmt.Errorf("store: write live view: document %q of %s has no source", d.Key, d.Dataset)
		}
		g := -1
		for j := range groups {
			if groups[j].view == d.View && groups[j].dataset == d.Dataset {
				g = j
				break
			}
		}
		if g < 0 {
			g = len(groups)
			groups = append(groups, group{d.View, d.Dataset})
		}
		ents = binary.AppendUvarint(ents, uint64(g))
		ents = binary.AppendUvarint(ents, uint64(len(d.Key)))
		ents = append(ents, d.Key...)
		ents = binary.AppendUvarint(ents, uint64(len(d.Type)))
		ents = append(ents, d.Type...)
		ents = binary.AppendVarint(ents, ms(d.Timestamp))
		ents = binary.AppendVarint(ents, ms(d.ExpiresAt))
		ents = binary.AppendUvarint(ents, uint64(off))
		ents = binary.AppendUvarint(ents, uint64(len(d.Source)))
		n++
	}
	db.ents = ents
	if n >= maxEntries {
		return nil, fmt.Errorf("store: a page holds %d live-eligible documents; at most %d are allowed", n, maxEntries-1)
	}
	st.Raw = len(docs)
	st.Live = n
	db.seg, db.blocks = encodeBlocks(db.seg, db.blocks, raw, db.ends)
	if !given {
		db.raw = raw[:0]
	}
	seg := &memSeg{docs: n}
	if n > 0 {
		live := make([]byte, 0, 16+len(ents)+len(groups)*48)
		live = append(live, entriesVersion)
		live = binary.AppendUvarint(live, uint64(len(groups)))
		for _, g := range groups {
			live = binary.AppendUvarint(live, uint64(len(g.view)))
			live = append(live, g.view...)
			live = binary.AppendUvarint(live, uint64(len(g.dataset)))
			live = append(live, g.dataset...)
		}
		live = binary.AppendUvarint(live, uint64(n))
		seg.live = append(live, ents...)
	}
	return seg, nil
}

// holdsDocs reports whether ndjson is exactly the documents' Sources end to
// end, each followed by a newline, with each Source being the bytes of
// ndjson at its place (not a copy): what an ecs.Arena hands out. Any other
// ndjson is ignored, and the documents are copied.
func holdsDocs(ndjson []byte, docs []vigil.Document) bool {
	if ndjson == nil {
		return false
	}
	off := 0
	for i := range docs {
		src := docs[i].Source
		end := off + len(src)
		if end >= len(ndjson) || ndjson[end] != '\n' || len(src) > 0 && unsafe.SliceData(src) != &ndjson[off] {
			return false
		}
		off = end + 1
	}
	return off == len(ndjson)
}

// entry is one decoded entry. key and typ point into the entry list.
type entry struct {
	group    int
	key, typ []byte
	ts, exp  int64
	off, n   int
}

// entryReader decodes an entry list.
type entryReader struct {
	b      []byte
	groups [][2]string // view, dataset
	left   int
}

var errCorrupt = errors.New("entry list is corrupt")

func (r *entryReader) reset(b []byte) error {
	*r = entryReader{groups: r.groups[:0]}
	if len(b) == 0 || b[0] != entriesVersion {
		return errCorrupt
	}
	r.b = b[1:]
	ng, ok := r.uvarint()
	if !ok {
		return errCorrupt
	}
	for range ng {
		v, ok1 := r.bytes()
		d, ok2 := r.bytes()
		if !ok1 || !ok2 {
			return errCorrupt
		}
		r.groups = append(r.groups, [2]string{string(v), string(d)})
	}
	n, ok := r.uvarint()
	if !ok {
		return errCorrupt
	}
	r.left = int(n)
	return nil
}

func (r *entryReader) uvarint() (uint64, bool) {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		return 0, false
	}
	r.b = r.b[n:]
	return v, true
}

func (r *entryReader) varint() (int64, bool) {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		return 0, false
	}
	r.b = r.b[n:]
	return v, true
}

func (r *entryReader) bytes() ([]byte, bool) {
	n, ok := r.uvarint()
	if !ok || n > uint64(len(r.b)) {
		return nil, false
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b, true
}

// matchGroups sets match[g] for each group g of the entry list that is of
// f's view and dataset, and reports whether one is.
func (r *entryReader) matchGroups(match []bool, f vigil.LiveFilter) ([]bool, bool) {
	match = match[:0]
	found := false
	for _, g := range r.groups {
		m := g[0] == string(f.View) && (f.Dataset == "" || g[1] == f.Dataset)
		match = append(match, m)
		found = found || m
	}
	return match, found
}

// next decodes the next entry into e; it returns false at the end.
func (r *entryReader) next(e *entry, rawLen int) (bool, error) {
	if r.left == 0 {
		return false, nil
	}
	r.left--
	g, ok := r.uvarint()
	if !ok || g >= uint64(len(r.groups)) {
		return false, errCorrupt
	}
	e.group = int(g)
	var ok1, ok2, ok3, ok4, ok5, ok6 bool
	var off, n uint64
	e.key, ok1 = r.bytes()
	e.typ, ok2 = r.bytes()
	e.ts, ok3 = r.varint()
	e.exp, ok4 = r.varint()
	off, ok5 = r.uvarint()
	n, ok6 = r.uvarint()
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || off > uint64(rawLen) || n > uint64(rawLen)-off {
		return false, errCorrupt
	}
	e.off, e.n = int(off), int(n)
	return true, nil
}

// mergeEnt is a document of a merge batch: where it sits and its dates.
type mergeEnt struct {
	seg     int64 // its raw segment
	pos     int32 // its entry number in the segment's entry list
	off, n  int   // where it sits in the segment's NDJSON
	ts, exp int64
}

// sortKey orders a batch as the live table does, by (ds, key), and by
// write order within a key.
type sortKey struct {
	key []byte
	pre uint64 // the key's first 8 bytes, big-endian, zero-padded
	ds  int64
	i   int32 // index in mergeBuf.ents, in write order
}

// keyPrefix returns the first 8 bytes of key as a big-endian number, zero
// padded: comparing prefixes first orders keys as bytes.Compare does.
func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// mergeBuf holds what a merge reuses from batch to batch.
type mergeBuf struct {
	ents   []mergeEnt
	keys   []sortKey
	groups [][2]string // view, dataset
	ids    []int64     // their live_datasets ids
	gmap   []int32
	rd     entryReader
	nv     []driver.NamedValue // liveInserter's
}

// maxEntries bounds the live-eligible documents of one page: a live row
// packs a segment id and an entry number into one integer (see live.prev).
const maxEntries = 1 << 20

// upsertRows is the number of documents per live-view upsert statement:
// one statement per document costs about 2 µs more per document, in
// database/sql, the driver and SQLite.
const upsertRows = 250

// upsertSQL is the statement that upserts n documents into the live view.
//
// SQLite applies the rows in order, each one seeing those before it. The
// newest @timestamp wins; a document as new as the live row replaces it.
// RETURNING reports each row inserted or replaced, with where the document
// it replaced sat (prev, -1 for a new key), so that the merge can move the
// documents' bits in live_masks. The statement needs no statement journal
// (a copy of every page it touches, taken in case it fails half-way): OR
// FAIL lets a failing row keep the rows before it, and the columns the
// upsert updates have no NOT NULL constraint (the merge binds no NULL), so
// the statement cannot abort after changing something; a failed statement
// fails the merge, which rolls the whole batch back.
func upsertSQL(n int) string {
	return liveInsertSQL("OR FAIL", n) + `
ON CONFLICT (ds, key) DO UPDATE SET
    ts = excluded.ts, expires_at = excluded.expires_at, seg = excluded.seg, pos = excluded.pos,
    off = excluded.off, len = excluded.len, prev = live.seg * 1048576 + live.pos
WHERE excluded.ts >= live.ts
RETURNING seg, pos, prev`
}

// liveInsertSQL inserts n documents into the live view, with the conflict
// clause or (e.g. "OR IGNORE").
func liveInsertSQL(or string, n int) string {
	var q strings.Builder
	q.WriteString("INSERT " + or + " INTO live (ds, key, ts, expires_at, seg, pos, off, len, prev) VALUES ")
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?,?,?,?,-1)")
	}
	return q.String()
}

// upsertArgs is the number of parameters of one document in upsertSQL and
// insertSQL.
const upsertArgs = 8

// insertSQL inserts n documents whose keys are not in the live view yet;
// a key that is there is left alone.
func insertSQL(n int) string { return liveInsertSQL("OR IGNORE", n) }

// insertChunk inserts the n documents of args (as upsertSQL binds them)
// with insertSQL, and reports whether every one went in.
func (db *DB) insertChunk(ctx context.Context, tx *sql.Tx, li *liveInserter, n int, args []any) (bool, error) {
	if err := li.insert(ctx, args); err != nil {
		return false, err
	}
	var changed int
	if err := tx.QueryRowContext(ctx, `SELECT changes()`).Scan(&changed); err != nil {
		return false, err
	}
	return changed == n, nil
}

// chunkStmt returns the statement for a chunk of n documents: full (made
// for upsertRows) in tx, or one made by sqlFor(n) for a shorter chunk.
// Call done when the statement has run.
func (db *DB) chunkStmt(ctx context.Context, tx *sql.Tx, full *sql.Stmt, n int, sqlFor func(int) string) (*sql.Stmt, func(), error) {
	if n == upsertRows {
		return tx.StmtContext(ctx, full), func() {}, nil
	}
	stmt, err := tx.PrepareContext(ctx, sqlFor(n))
	if err != nil {
		return nil, nil, err
	}
	return stmt, func() { stmt.Close() }, nil
}

// upsertStmt returns the statement that upserts upsertRows documents,
// preparing it on first use (so not while a transaction holds the only
// connection). Call with wmu held.
func (db *DB) upsertStmt(ctx context.Context) (*sql.Stmt, error) {
	if st, ok := db.upserts[upsertRows]; ok {
		return st, nil
	}
	st, err := db.rw.PrepareContext(ctx, upsertSQL(upsertRows))
	if err != nil {
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	db.upserts[upsertRows] = st
	return st, nil
}

// mergeLocked merges every segment after the watermark, one transaction
// per batch. Call with wmu held.
func (db *DB) mergeLocked(ctx context.Context) (MergeStats, error) {
	var total MergeStats
	for {
		st, more, err := db.mergeBatch(ctx)
		total.add(st)
		if err != nil {
			return total, err
		}
		if !more {
			return total, nil
		}
	}
}

// batchDocs is the size of a merge batch, and the number of documents
// waiting at which WritePage merges: Options.MergeDocs, or a sixteenth of
// the live table's rows when that is more (at most maxBatchDocs). A merge
// rewrites the leaves of the live table that its sorted keys fall in;
// random keys reach nearly every leaf once the batch has more keys than
// the table has leaves, so a batch that grows with the table keeps the
// leaves rewritten per document bounded (a 10M-row table has about 15,000
// leaves of 64 KiB).
func (db *DB) batchDocs() int {
	n := db.opts.MergeDocs
	if n <= 0 {
		n = DefaultMergeDocs
	}
	if db.opts.Beside {
		return n
	}
	return max(n, min(int(db.liveRows/16), maxBatchDocs))
}

// maxBatchDocs bounds batchDocs: about 64 MiB of entries held for a merge.
const maxBatchDocs = 1 << 20

// mergeBatch merges one batch of segments after the watermark: those the
// writer holds in memory if they are all of them, else up to batchDocs
// documents read back from the database. more reports that segments are
// left.
func (db *DB) mergeBatch(ctx context.Context) (st MergeStats, more bool, err error) {
	if err := ctx.Err(); err != nil {
		return st, false, fmt.Errorf("store: merge live views: %w", err)
	}
	full, err := db.upsertStmt(ctx)
	if err != nil {
		return st, false, err
	}
	// A connection of its own, for the inserts that upsertBatch runs on
	// the driver's connection (liveInserter).
	conn, err := db.rw.Conn(ctx)
	if err != nil {
		return st, false, fmt.Errorf("store: merge live views: %w", err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return st, false, fmt.Errorf("store: merge live views: %w", err)
	}
	defer tx.Rollback()
	// As in WritePage: uncancellable statements, ctx checked between them.
	sctx := context.WithoutCancel(ctx)
	var wm, n, maxID int64
	// live_rows as well: a writer opened beside this one may have added
	// rows.
	if err := tx.QueryRowContext(sctx, `SELECT segment, live_rows FROM live_watermark`).Scan(&wm, &db.liveRows); err != nil {
		return st, false, fmt.Errorf("store: merge live views: read watermark: %w", err)
	}
	if err := tx.QueryRowContext(sctx, `SELECT COUNT(*), COALESCE(MAX(id), 0) FROM raw_segments WHERE id > ? AND live IS NOT NULL`, wm).Scan(&n, &maxID); err != nil {
		return st, false, fmt.Errorf("store: merge live views: %w", err)
	}
	if n == 0 {
		db.pend.merged()
		return st, false, nil
	}
	segs := db.pend.segs
	if !db.pend.holds(wm, n, maxID) {
		// Not what this writer wrote since its last merge (it just
		// opened the store, or dropped its copies): read them back.
		db.pend.drop()
		if segs, more, err = loadSegments(sctx, tx, wm, db.batchDocs()); err != nil {
			return st, false, err
		}
	}
	if err := ctx.Err(); err != nil {
		return st, false, fmt.Errorf("store: merge live views: %w", err)
	}
	if err := db.upsertBatch(ctx, sctx, conn, tx, full, segs, &st); err != nil {
		return st, false, err
	}
	last := segs[len(segs)-1].id
	if _, err := tx.ExecContext(sctx, `UPDATE live_watermark SET segment = ?, live_rows = live_rows + ? WHERE id = 1`, last, st.Inserted); err != nil {
		return st, false, fmt.Errorf("store: merge live views: move watermark: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return st, false, fmt.Errorf("store: merge live views: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return st, false, fmt.Errorf("store: merge live views: commit: %w", err)
	}
	db.liveRows += int64(st.Inserted)
	if more {
		db.pend.docs = max(0, db.pend.docs-st.Docs)
	} else {
		db.pend.merged()
	}
	return st, more, nil
}

// loadSegments reads back the entry lists of segments after the
// watermark, up to limit documents or maxPendingBytes of entries (at least
// one segment).
func loadSegments(ctx context.Context, tx *sql.Tx, wm int64, limit int) (segs []*memSeg, more bool, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, live_docs, live FROM raw_segments WHERE id > ? AND live IS NOT NULL ORDER BY id`, wm)
	if err != nil {
		return nil, false, fmt.Errorf("store: merge live views: read segments: %w", err)
	}
	defer rows.Close()
	docs, size := 0, 0
	for rows.Next() {
		if docs >= limit || size >= maxPendingBytes {
			more = true
			break
		}
		s := &memSeg{}
		if err := rows.Scan(&s.id, &s.docs, &s.live); err != nil {
			return nil, false, fmt.Errorf("store: merge live views: read segments: %w", err)
		}
		docs += s.docs
		size += len(s.live)
		segs = append(segs, s)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("store: merge live views: read segments: %w", err)
	}
	return segs, more, nil
}

// datasetID returns the live_datasets id of (view, dataset), adding it if
// it is new.
func datasetID(ctx context.Context, tx *sql.Tx, view, dataset string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM live_datasets WHERE view = ? AND dataset = ?`, view, dataset).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		res, err := tx.ExecContext(ctx, `INSERT INTO live_datasets (view, dataset) VALUES (?, ?)`, view, dataset)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	}
	return id, err
}

// upsertBatch keeps the newest document per (view, dataset, key) of the
// segments, sorts them by key, upserts them, upsertRows per statement, and
// moves the bits of live_masks: set for the documents that became live,
// cleared for those they replaced.
func (db *DB) upsertBatch(ctx, sctx context.Context, conn *sql.Conn, tx *sql.Tx, full *sql.Stmt, segs []*memSeg, st *MergeStats) (err error) {
	b := &db.merge
	li := &liveInserter{conn: conn, nv: b.nv}
	defer func() {
		err = errors.Join(err, li.close())
		b.nv = li.nv
	}()
	b.ents, b.keys = b.ents[:0], b.keys[:0]
	b.groups, b.ids = b.groups[:0], b.ids[:0]
	defer func() {
		// Drop the references to the entry lists.
		clear(b.keys)
	}()
	masks := make(map[int64][]byte, len(segs)) // the batch's segments
	// Room for the batch at once, rather than growing (and copying, and
	// faulting in) the arrays as the entries come.
	docs := 0
	for _, s := range segs {
		docs += s.docs
	}
	b.keys, b.ents = slices.Grow(b.keys, docs), slices.Grow(b.ents, docs)
	var e entry
	for _, s := range segs {
		st.Segments++
		if err := b.rd.reset(s.live); err != nil {
			return fmt.Errorf("store: raw segment %d: %w", s.id, err)
		}
		masks[s.id] = make([]byte, (b.rd.left+7)/8)
		// The segment's groups, as live_datasets ids.
		b.gmap = b.gmap[:0]
		for _, g := range b.rd.groups {
			i := slices.Index(b.groups, g)
			if i < 0 {
				id, err := datasetID(sctx, tx, g[0], g[1])
				if err != nil {
					return fmt.Errorf("store: merge live views: %w", err)
				}
				i = len(b.groups)
				b.groups = append(b.groups, g)
				b.ids = append(b.ids, id)
			}
			b.gmap = append(b.gmap, int32(i))
		}
		for pos := int32(0); ; pos++ {
			ok, err := b.rd.next(&e, math.MaxInt)
			if err != nil {
				return fmt.Errorf("store: raw segment %d: %w", s.id, err)
			}
			if !ok {
				break
			}
			b.keys = append(b.keys, sortKey{key: e.key, pre: keyPrefix(e.key), ds: b.ids[b.gmap[e.group]], i: int32(len(b.ents))})
			b.ents = append(b.ents, mergeEnt{seg: s.id, pos: pos, off: e.off, n: e.n, ts: e.ts, exp: e.exp})
		}
	}
	st.Docs += len(b.ents)
	keys, ents := b.keys, b.ents
	sortKeys(keys)

	clears := map[int64][]int32{} // documents replaced, by segment
	args := db.args[:0]
	rows, upserted, won := 0, 0, 0
	defer func() {
		clear(args)
		db.args = args[:0]
	}()
	// tryInsert: the chunk is first inserted without RETURNING (INSERT OR
	// IGNORE), which costs about 1.5 µs a document less than the upsert
	// (BenchmarkWritePage/fresh); when every row went in, the rows are
	// the chunk's, as bound. Otherwise the upsert runs on the chunk, and
	// reports the rows the insert added as replacing themselves. A chunk
	// tries the insert first while the one before it was new keys only.
	setLive := func(seg, pos int64) {
		if m := masks[seg]; pos >= 0 && int(pos) < len(m)*8 {
			m[pos/8] |= 1 << (pos % 8)
		}
	}
	// upsertChunk upserts the chunk in args and reports whether every row
	// was a new key.
	upsertChunk := func() (bool, error) {
		stmt, done, err := db.chunkStmt(sctx, tx, full, rows, upsertSQL)
		if err != nil {
			return false, fmt.Errorf("prepare: %w", err)
		}
		defer done()
		res, err := stmt.QueryContext(sctx, args...)
		if err != nil {
			return false, err
		}
		defer res.Close()
		fresh := 0
		for res.Next() {
			var seg, pos, prev int64
			if err := res.Scan(&seg, &pos, &prev); err != nil {
				return false, err
			}
			won++
			if prev == seg*maxEntries+pos {
				// Inserted by the INSERT OR IGNORE before.
				prev = -1
			}
			setLive(seg, pos)
			if prev < 0 {
				st.Inserted++
				fresh++
				continue
			}
			ps := prev / maxEntries
			clears[ps] = append(clears[ps], int32(prev%maxEntries))
		}
		return fresh == rows, res.Err()
	}
	tryInsert := true
	flush := func() error {
		if rows == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: merge live views: %w", err)
		}
		allNew := false
		if tryInsert {
			var err error
			if allNew, err = db.insertChunk(sctx, tx, li, rows, args); err != nil {
				return fmt.Errorf("store: merge live views: %w", err)
			}
			if allNew {
				// The rows are the chunk's, as bound.
				for r := range rows {
					setLive(args[r*upsertArgs+4].(int64), args[r*upsertArgs+5].(int64))
				}
				st.Inserted += rows
				won += rows
			}
		}
		if !allNew {
			var err error
			if allNew, err = upsertChunk(); err != nil {
				return fmt.Errorf("store: merge live views: %w", err)
			}
		}
		tryInsert = allNew
		upserted += rows
		clear(args)
		args = args[:0]
		rows = 0
		return nil
	}
	for i := 0; i < len(keys); {
		k := keys[i]
		best := k.i
		j := i + 1
		for ; j < len(keys) && keys[j].ds == k.ds && bytes.Equal(keys[j].key, k.key); j++ {
			// In write order: on a tie the later one wins.
			if ents[keys[j].i].ts >= ents[best].ts {
				best = keys[j].i
			}
		}
		st.Superseded += j - i - 1
		i = j
		d := &ents[best]
		args = append(args, k.ds, unsafeString(k.key), d.ts, d.exp, d.seg, int64(d.pos), int64(d.off), int64(d.n))
		rows++
		if rows == upsertRows {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	st.Live += won
	st.Stale += upserted - won
	return db.writeMasks(sctx, tx, masks, clears)
}

// writeMasks adds the masks of a batch's segments (those with a live
// document) and clears the bits of the documents the batch replaced in
// older segments.
func (db *DB) writeMasks(ctx context.Context, tx *sql.Tx, masks map[int64][]byte, clears map[int64][]int32) error {
	ids := slices.Sorted(maps.Keys(clears))
	for _, seg := range ids {
		m, inBatch := masks[seg]
		if !inBatch {
			if err := tx.QueryRowContext(ctx, `SELECT mask FROM live_masks WHERE seg = ?`, seg).Scan(&m); errors.Is(err, sql.ErrNoRows) {
				continue // pruned
			} else if err != nil {
				return fmt.Errorf("store: merge live views: read mask: %w", err)
			}
		}
		for _, pos := range clears[seg] {
			if int(pos) < len(m)*8 {
				m[pos/8] &^= 1 << (pos % 8)
			}
		}
		if !inBatch {
			if _, err := tx.ExecContext(ctx, `UPDATE live_masks SET mask = ? WHERE seg = ?`, m, seg); err != nil {
				return fmt.Errorf("store: merge live views: write mask: %w", err)
			}
		}
	}
	for _, seg := range slices.Sorted(maps.Keys(masks)) {
		m := masks[seg]
		if !slices.ContainsFunc(m, func(b byte) bool { return b != 0 }) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO live_masks (seg, mask) VALUES (?, ?)`, seg, m); err != nil {
			return fmt.Errorf("store: merge live views: write mask: %w", err)
		}
	}
	return nil
}

// unsafeString returns b as a string without copying; the string must not
// outlive b. The driver copies what it binds.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// overlay is what Live adds to the live table: the newest document waiting
// per key of the view, when it is at least as new as the key's live row.
type overlay struct {
	over []ovEnt             // sorted by (dataset, key): they replace their live rows
	emit []ovEnt             // those of them to show (unexpired, of the type asked)
	keys map[string]struct{} // dataset "\x00" key of over, built on first use
	view vigil.View
	wm   int64 // the watermark: segments up to it are merged
}

type ovEnt struct {
	dataset, key, typ string
	ts, exp           int64
	seq               int
	seg               int64
	off, n            int
	doc               []byte
}

func cmpDK(d1, k1, d2, k2 string) int {
	return cmp.Or(strings.Compare(d1, d2), strings.Compare(k1, k2))
}

// replaces reports whether a waiting document replaces the live row of
// (dataset, key).
func (o *overlay) replaces(dataset, key []byte) bool {
	if len(o.over) == 0 {
		return false
	}
	if o.keys == nil {
		o.keys = make(map[string]struct{}, len(o.over))
		for _, e := range o.over {
			o.keys[e.dataset+"\x00"+e.key] = struct{}{}
		}
	}
	k := make([]byte, 0, len(dataset)+1+len(key))
	k = append(append(append(k, dataset...), 0), key...)
	_, ok := o.keys[unsafeString(k)]
	return ok
}

// docs returns the waiting documents to show.
func (o *overlay) docs() []vigil.Document {
	out := make([]vigil.Document, 0, len(o.emit))
	for _, e := range o.emit {
		d := vigil.Document{View: o.view, Dataset: e.dataset, Key: e.key, Type: e.typ, Timestamp: time.UnixMilli(e.ts).UTC(), Source: e.doc}
		if e.exp != math.MaxInt64 {
			d.ExpiresAt = time.UnixMilli(e.exp).UTC()
		}
		out = append(out, d)
	}
	return out
}

// readOverlay reads the documents of the view waiting in the segments after
// the watermark, in the snapshot of tx.
func readOverlay(ctx context.Context, tx *sql.Tx, f vigil.LiveFilter, now int64) (*overlay, error) {
	o := &overlay{view: f.View}
	if err := tx.QueryRowContext(ctx, `SELECT segment FROM live_watermark`).Scan(&o.wm); err != nil {
		return nil, fmt.Errorf("store: read live view: %w", err)
	}
	wm := o.wm
	rows, err := tx.QueryContext(ctx, `SELECT id, live FROM raw_segments WHERE id > ? AND live IS NOT NULL ORDER BY id`, wm)
	if err != nil {
		return nil, fmt.Errorf("store: read live view: %w", err)
	}
	defer rows.Close()
	var all []ovEnt
	var rd entryReader
	var e entry
	var match []bool
	for rows.Next() {
		var id int64
		var live []byte
		if err := rows.Scan(&id, &live); err != nil {
			return nil, fmt.Errorf("store: read live view: %w", err)
		}
		if err := rd.reset(live); err != nil {
			return nil, fmt.Errorf("store: raw segment %d: %w", id, err)
		}
		var found bool
		if match, found = rd.matchGroups(match, f); !found {
			continue
		}
		for {
			// Offsets are checked against the plain body when it is read.
			ok, err := rd.next(&e, math.MaxInt)
			if err != nil {
				return nil, fmt.Errorf("store: raw segment %d: %w", id, err)
			}
			if !ok {
				break
			}
			if !match[e.group] {
				continue
			}
			all = append(all, ovEnt{dataset: rd.groups[e.group][1], key: string(e.key), typ: string(e.typ), ts: e.ts, exp: e.exp, seq: len(all), seg: id, off: e.off, n: e.n})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read live view: %w", err)
	}
	rows.Close()
	if len(all) == 0 {
		return o, nil
	}
	// The newest per key; on a tie, the later.
	slices.SortFunc(all, func(x, y ovEnt) int {
		return cmp.Or(cmpDK(x.dataset, x.key, y.dataset, y.key), cmp.Compare(x.seq, y.seq))
	})
	win := all[:0]
	for i := 0; i < len(all); {
		best := i
		j := i + 1
		for ; j < len(all) && all[j].dataset == all[i].dataset && all[j].key == all[i].key; j++ {
			if all[j].ts >= all[best].ts {
				best = j
			}
		}
		win = append(win, all[best])
		i = j
	}
	// Drop those older than their live row (expired or not: a tombstone
	// keeps an older copy out).
	liveTS, err := liveTimestamps(ctx, tx, f.View, win)
	if err != nil {
		return nil, err
	}
	for i := range win {
		if ts, ok := liveTS[[2]string{win[i].dataset, win[i].key}]; ok && win[i].ts < ts {
			continue
		}
		o.over = append(o.over, win[i])
	}
	for _, w := range o.over {
		if w.exp > now && (f.Type == "" || w.typ == f.Type) {
			o.emit = append(o.emit, w)
		}
	}
	// In the order written, as they will be once merged.
	slices.SortFunc(o.emit, func(x, y ovEnt) int { return cmp.Compare(x.seq, y.seq) })
	return o, readOverlayDocs(ctx, tx, o.emit)
}

// liveTimestamps returns the @timestamp of the live rows of the entries'
// keys, expired or not.
func liveTimestamps(ctx context.Context, tx *sql.Tx, view vigil.View, ents []ovEnt) (map[[2]string]int64, error) {
	out := map[[2]string]int64{}
	for i := 0; i < len(ents); {
		// One query per dataset: the keys go as a JSON array of hex
		// strings (any bytes survive), looked up in the unique index.
		ds := ents[i].dataset
		arr := []byte{'['}
		j := i
		for ; j < len(ents) && ents[j].dataset == ds; j++ {
			if j > i {
				arr = append(arr, ',')
			}
			arr = append(arr, '"')
			arr = hex.AppendEncode(arr, []byte(ents[j].key))
			arr = append(arr, '"')
		}
		arr = append(arr, ']')
		i = j
		rows, err := tx.QueryContext(ctx, `SELECT l.key, l.ts FROM live_datasets d JOIN live l ON l.ds = d.id
WHERE d.view = ? AND d.dataset = ? AND l.key IN (SELECT CAST(unhex(value) AS TEXT) FROM json_each(?))`, string(view), ds, string(arr))
		if err != nil {
			return nil, fmt.Errorf("store: read live view: %w", err)
		}
		for rows.Next() {
			var k string
			var ts int64
			if err := rows.Scan(&k, &ts); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: read live view: %w", err)
			}
			out[[2]string{ds, k}] = ts
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: read live view: %w", err)
		}
	}
	return out, nil
}

// readOverlayDocs reads the documents of the entries from their segments.
func readOverlayDocs(ctx context.Context, tx *sql.Tx, ents []ovEnt) error {
	bySeg := map[int64][]int{}
	var ids []int64
	for i := range ents {
		if _, ok := bySeg[ents[i].seg]; !ok {
			ids = append(ids, ents[i].seg)
		}
		bySeg[ents[i].seg] = append(bySeg[ents[i].seg], i)
	}
	slices.Sort(ids)
	for _, id := range ids {
		plain, err := readSegmentBody(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, i := range bySeg[id] {
			e := &ents[i]
			if e.off > len(plain) || e.n > len(plain)-e.off {
				return fmt.Errorf("store: raw segment %d: %w", id, errCorrupt)
			}
			e.doc = plain[e.off : e.off+e.n : e.off+e.n]
		}
	}
	return nil
}
