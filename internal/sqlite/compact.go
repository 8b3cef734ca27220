package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/vigil-ti/vigil"
)

// compactLocked keeps the live views whole across the retention of raw
// records: it copies the unexpired live documents of each raw segment
// ingested before cutoff into compacted segments, then merges. The copies
// are as new as the live rows, so the merge points the rows at them (on a
// tie the later write wins) and clears the old segments' bits; the prune
// that follows removes the raw segments. Compacted segments are not raw
// records (RawDocs and Stats leave them out); they go once none of their
// documents is live.
//
// The live documents of consecutive segments of one source and dataset
// are packed together, up to compactDocs per compacted segment, so that
// a page of which a few documents stay live does not leave a segment of
// its own behind. Compacted segments are packed again the same way when
// they have become sparse (fewer than half of their documents still live,
// as later pages replace or expire them) or small: without that, a store
// that runs for months would keep more and more segments, mostly dead,
// and every reader of a whole view (the matcher's index build) would
// decode them all. It returns how many documents it copied out of raw
// segments. Call with wmu held.
func (db *DB) compactLocked(ctx context.Context, cutoff, now int64) (int64, error) {
	var cands []candidate
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: compact: %w", err)
	}
	err = liveCandidates(ctx, tx, `((s.ingested_at < ? AND s.compacted = 0) OR s.compacted = 1)`, cutoff, func(c candidate) error {
		if len(c.live) > 0 && (!c.compacted || recompact(c)) {
			cands = append(cands, c)
		}
		return nil
	}, now)
	tx.Rollback()
	if err != nil || len(cands) == 0 {
		return 0, err
	}
	var copied int64
	for _, group := range packCandidates(cands) {
		if err := ctx.Err(); err != nil {
			return copied, fmt.Errorf("store: compact: %w", err)
		}
		n, err := db.compactSegments(ctx, group, now)
		if err != nil {
			return copied, err
		}
		copied += n
	}
	if _, err := db.mergeLocked(ctx); err != nil {
		return copied, err
	}
	return copied, nil
}

// compactDocs is how many live documents a compacted segment is packed
// with, at most (unless one segment alone has more): about the size of an
// API page of documents.
const compactDocs = 4096

// recompact reports whether the compacted segment c is worth copying
// again: fewer than half of its documents are live, or fewer than a
// quarter of compactDocs, so that it can be packed with others.
func recompact(c candidate) bool {
	return sparse(c) || len(c.live) < compactDocs/4
}

// sparse reports whether fewer than half of segment c's documents are live.
func sparse(c candidate) bool { return int64(len(c.live))*2 < c.docs }

// packCandidates groups the segments to compact: consecutive segments (in
// id order) of one source and dataset, up to compactDocs live documents a
// group. A group that is one compacted segment that is not sparse is left
// out: copying it alone would change nothing.
func packCandidates(cands []candidate) [][]candidate {
	type origin struct{ source, dataset string }
	open := map[origin]int{} // index in groups of the group being filled
	var groups [][]candidate
	var live []int // live documents by group
	for _, c := range cands {
		o := origin{c.source, c.dataset}
		g, ok := open[o]
		if !ok || live[g]+len(c.live) > compactDocs {
			g = len(groups)
			groups, live = append(groups, nil), append(live, 0)
			open[o] = g
		}
		groups[g] = append(groups[g], c)
		live[g] += len(c.live)
	}
	out := groups[:0]
	for _, g := range groups {
		if len(g) == 1 && g[0].compacted && !sparse(g[0]) {
			continue
		}
		out = append(out, g)
	}
	return out
}

// compactSegments writes the live entries of segments of one source and
// dataset as one compacted segment, in one transaction.
func (db *DB) compactSegments(ctx context.Context, group []candidate, now int64) (int64, error) {
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: compact: %w", err)
	}
	defer tx.Rollback()
	sctx := context.WithoutCancel(ctx)
	var docs []vigil.Document
	for _, c := range group {
		if docs, err = appendLiveDocs(sctx, tx, docs, c); err != nil {
			return 0, err
		}
	}
	var st vigil.WriteStats
	seg, err := db.encodeSegment(docs, nil, &st)
	if err != nil {
		return 0, err
	}
	if err := db.insertSegment(sctx, tx, seg, segmentRow{source: group[0].source, dataset: group[0].dataset, ingested: now, docs: len(docs), compacted: true}); err != nil {
		return 0, fmt.Errorf("store: compact segment %d: %w", group[0].id, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: compact segment %d: %w", group[0].id, err)
	}
	db.pend.add(seg)
	var copied int64
	for _, c := range group {
		if !c.compacted {
			copied += int64(len(c.live))
		}
	}
	return copied, nil
}

// appendLiveDocs appends the live documents of segment c to docs.
func appendLiveDocs(ctx context.Context, tx *sql.Tx, docs []vigil.Document, c candidate) ([]vigil.Document, error) {
	var live, body, blocks []byte
	if err := tx.QueryRowContext(ctx, `SELECT live, body, blocks FROM raw_segments WHERE id = ?`, c.id).Scan(&live, &body, &blocks); err != nil {
		return nil, fmt.Errorf("store: compact segment %d: %w", c.id, err)
	}
	plain, err := segmentPlain(ctx, tx, c.id, body, blocks)
	if err != nil {
		return nil, err
	}
	var rd entryReader
	var e entry
	if err := rd.reset(live); err != nil {
		return nil, fmt.Errorf("store: raw segment %d: %w", c.id, err)
	}
	next := 0
	for pos := 0; next < len(c.live); pos++ {
		ok, err := rd.next(&e, len(plain))
		if err != nil || !ok {
			return nil, fmt.Errorf("store: raw segment %d: %w", c.id, errCorrupt)
		}
		if pos != c.live[next] {
			continue
		}
		next++
		g := rd.groups[e.group]
		d := vigil.Document{View: vigil.View(g[0]), Dataset: g[1], Key: string(e.key), Type: string(e.typ),
			Timestamp: time.UnixMilli(e.ts).UTC(), Source: plain[e.off : e.off+e.n]}
		if e.exp != math.MaxInt64 {
			d.ExpiresAt = time.UnixMilli(e.exp).UTC()
		}
		docs = append(docs, d)
	}
	return docs, nil
}
