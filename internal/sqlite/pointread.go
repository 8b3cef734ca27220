package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"math"
	"sync"
	"time"

	"github.com/vigil-ti/vigil"
)

// pointReads is the writer's fast path of LiveDocument: two primary-key
// reads (the live row, then the block that holds the document: the
// segment's last block starting at or before it, found by a descending
// search of raw_blocks' key) instead of one statement that joins the
// dataset's name and looks the block up with a subquery, which cost SQLite
// about three times as much. The ids of the live datasets are kept in
// memory (a row of live_datasets is never deleted nor changed). Anything
// else (a key not merged yet, a pruned segment, a segment of the first
// schema, whose documents have no blocks) goes to the general path.
//
// The block is not found from the segment's list of block starts (the
// blocks column of raw_segments): that column comes after the entry list
// in a segment's row, so reading it walks the list's overflow pages, half
// a megabyte per segment, where the search touches the pages the block
// read needs anyway.
type pointReads struct {
	mu sync.Mutex
	ds map[[2]string]int64

	live, block, dsID *sql.Stmt
	plain             sync.Pool // *[]byte: a decoded block
}

// prepare prepares the statements on the writer's connection; on failure,
// the fast path stays off.
func (p *pointReads) prepare(ctx context.Context, rw *sql.DB) {
	var err error
	prep := func(db *sql.DB, q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.PrepareContext(ctx, q)
		return st
	}
	live := prep(rw, `SELECT ts, expires_at, seg, off, len FROM live WHERE ds = ? AND key = ?`)
	block := prep(rw, `SELECT start, data FROM raw_blocks WHERE seg = ? AND start <= ? ORDER BY start DESC LIMIT 1`)
	dsID := prep(rw, `SELECT id FROM live_datasets WHERE view = ? AND dataset = ?`)
	if err != nil {
		for _, st := range []*sql.Stmt{live, block, dsID} {
			if st != nil {
				st.Close()
			}
		}
		return
	}
	p.live, p.block, p.dsID = live, block, dsID
	p.ds = map[[2]string]int64{}
}

// close releases the statements.
func (p *pointReads) close() {
	for _, st := range []*sql.Stmt{p.live, p.block, p.dsID} {
		if st != nil {
			st.Close()
		}
	}
}

// read returns the live document of (view, dataset, key) and true when the
// fast path could read it, false when the general path must.
func (p *pointReads) read(ctx context.Context, view vigil.View, dataset, key string) (vigil.Document, bool) {
	d := vigil.Document{View: view, Dataset: dataset, Key: key}
	if p.live == nil || ctx.Err() != nil {
		return d, false
	}
	// As in AddDetections: statements without a cancellable context (the
	// driver would watch each one from a goroutine of its own), ctx
	// checked before them; these take microseconds.
	ctx = context.WithoutCancel(ctx)
	ds, ok := p.datasetID(ctx, view, dataset)
	if !ok {
		return d, false
	}
	var ts, exp, seg, off, n int64
	if err := p.live.QueryRowContext(ctx, ds, key).Scan(&ts, &exp, &seg, &off, &n); err != nil {
		return d, false
	}
	src, ok := p.blockDoc(ctx, seg, off, n)
	if !ok {
		return d, false
	}
	d.Source = src
	d.Timestamp = time.UnixMilli(ts).UTC()
	if exp != math.MaxInt64 {
		d.ExpiresAt = time.UnixMilli(exp).UTC()
	}
	return d, true
}

// blockDoc reads the document at [off, off+n) of segment seg from the
// block that holds it. The block is read in place (not copied out of
// SQLite) and decoded into a reused buffer, and the document copied out:
// a few hundred bytes kept instead of a 32 KiB block.
func (p *pointReads) blockDoc(ctx context.Context, seg, off, n int64) ([]byte, bool) {
	rows, err := p.block.QueryContext(ctx, seg, off)
	if err != nil {
		return nil, false
	}
	defer rows.Close()
	var start int64
	var data sql.RawBytes
	if !rows.Next() || rows.Scan(&start, &data) != nil {
		return nil, false
	}
	buf, _ := p.plain.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	defer p.plain.Put(buf)
	doc, plain, err := blockDocInto(*buf, seg, start, data, off, n)
	if plain != nil {
		*buf = plain
	}
	if err != nil {
		return nil, false
	}
	return bytes.Clone(doc), true
}

// datasetID returns the live_datasets id of (view, dataset).
func (p *pointReads) datasetID(ctx context.Context, view vigil.View, dataset string) (int64, bool) {
	k := [2]string{string(view), dataset}
	p.mu.Lock()
	id, ok := p.ds[k]
	p.mu.Unlock()
	if ok {
		return id, true
	}
	if err := p.dsID.QueryRowContext(ctx, string(view), dataset).Scan(&id); err != nil {
		return 0, false
	}
	p.mu.Lock()
	p.ds[k] = id
	p.mu.Unlock()
	return id, true
}
