package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/vigil-ti/vigil"
)

// pointReads is the writer's fast path of LiveDocument: two primary-key
// reads (the live row, then the block that holds the document) instead of
// one statement that joins the dataset's name and looks the block up with
// a subquery, which cost SQLite about three times as much. What it needs
// besides is kept in memory: the ids of the live datasets (a row of
// live_datasets is never deleted nor changed) and the block starts of the
// segments read (segment ids are never reused, and a segment's blocks never
// change). Anything else (a key not merged yet, a pruned segment, a segment
// of the first schema) goes to the general path.
//
// The blocks column is read through the writer's connection too, which
// maps the file: the column comes after the entry list in a segment's row,
// so reading it walks the list's overflow pages (about half a megabyte per
// segment). Through the mapping SQLite reads each page's link in place;
// through a reader's connection it copied each page whole (pread), about
// 0.5 GB for 1M events at 10M indicators, where the ~9,000 alerts touch
// nearly every one of the 1,001 segments; those copies also pushed the
// index out of the CPU caches. The pages walked stay mapped: clean file
// pages, which the kernel reclaims like the page cache, but which count in
// the resident size (about 0.5 GB more at 10M indicators). Finding and
// reading a block took 43.7 instead of 52.3 us there, 21 us either way at
// 1M, and `vigil match` over 1M events took 15-20 % less CPU at 10M.
type pointReads struct {
	mu     sync.Mutex
	ds     map[[2]string]int64
	starts map[int64][]int64 // per segment, the plain offset of each block, ascending

	live, block, dsID, segBlocks *sql.Stmt
	plain                        sync.Pool // *[]byte: a decoded block
}

// maxPointSegments bounds the segments whose block starts are kept; past
// it, the map starts over.
const maxPointSegments = 1 << 14

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
	block := prep(rw, `SELECT data FROM raw_blocks WHERE id = ?`)
	dsID := prep(rw, `SELECT id FROM live_datasets WHERE view = ? AND dataset = ?`)
	segBlocks := prep(rw, `SELECT blocks FROM raw_segments WHERE id = ?`)
	if err != nil {
		for _, st := range []*sql.Stmt{live, block, dsID, segBlocks} {
			if st != nil {
				st.Close()
			}
		}
		return
	}
	p.live, p.block, p.dsID, p.segBlocks = live, block, dsID, segBlocks
	p.ds = map[[2]string]int64{}
	p.starts = map[int64][]int64{}
}

// close releases the statements.
func (p *pointReads) close() {
	for _, st := range []*sql.Stmt{p.live, p.block, p.dsID, p.segBlocks} {
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
	start, ok := p.blockStart(ctx, seg, off)
	if !ok {
		return d, false
	}
	src, ok := p.blockDoc(ctx, seg, start, off, n)
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

// blockDoc reads the document at [off, off+n) of segment seg from its
// block starting at start. The block is read in place (not copied out of
// SQLite) and decoded into a reused buffer, and the document copied out:
// a few hundred bytes kept instead of a 32 KiB block.
func (p *pointReads) blockDoc(ctx context.Context, seg, start, off, n int64) ([]byte, bool) {
	rows, err := p.block.QueryContext(ctx, blockID(seg, start))
	if err != nil {
		return nil, false
	}
	defer rows.Close()
	var data sql.RawBytes
	if !rows.Next() || rows.Scan(&data) != nil {
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

// blockStart returns the start of the block of segment seg that holds
// offset off: its last block starting at or before off.
func (p *pointReads) blockStart(ctx context.Context, seg, off int64) (int64, bool) {
	p.mu.Lock()
	starts, ok := p.starts[seg]
	p.mu.Unlock()
	if !ok {
		var list []byte
		if err := p.segBlocks.QueryRowContext(ctx, seg).Scan(&list); err != nil || list == nil {
			return 0, false // gone, or of the first schema
		}
		spans, err := readBlocks(list)
		if err != nil {
			return 0, false
		}
		starts = make([]int64, len(spans))
		for i, s := range spans {
			starts[i] = int64(s.plain)
		}
		p.mu.Lock()
		if len(p.starts) >= maxPointSegments {
			clear(p.starts)
		}
		p.starts[seg] = starts
		p.mu.Unlock()
	}
	i := sort.Search(len(starts), func(i int) bool { return starts[i] > off }) - 1
	if i < 0 {
		return 0, false
	}
	return starts[i], true
}
