package sqlite

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/vigil-ti/vigil"
)

// compactLocked keeps the live views whole across the retention of raw
// records: it copies the unexpired live documents of each raw segment
// ingested before cutoff into a compacted segment of their own (one per raw
// segment), then merges. The copies are as new as the live rows, so the
// merge points the rows at them (on a tie the later write wins) and clears
// the raw segment's bits; the prune that follows removes the raw segment.
// Compacted segments are not raw records (RawDocs and Stats leave them
// out); they go once none of their documents is live. It returns how many
// documents it copied. Call with wmu held.
func (db *DB) compactLocked(ctx context.Context, cutoff, now int64) (int64, error) {
	var todo []candidate
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: compact: %w", err)
	}
	err = liveCandidates(ctx, tx, `s.ingested_at < ? AND s.compacted = 0`, cutoff, func(c candidate) error {
		if len(c.live) > 0 {
			todo = append(todo, c)
		}
		return nil
	}, now)
	tx.Rollback()
	if err != nil || len(todo) == 0 {
		return 0, err
	}
	var copied int64
	for _, c := range todo {
		if err := ctx.Err(); err != nil {
			return copied, fmt.Errorf("store: compact: %w", err)
		}
		n, err := db.compactSegment(ctx, c, now)
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

// compactSegment writes the live entries of one raw segment as a compacted
// segment, in one transaction.
func (db *DB) compactSegment(ctx context.Context, c candidate, now int64) (int64, error) {
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: compact: %w", err)
	}
	defer tx.Rollback()
	sctx := context.WithoutCancel(ctx)
	var source, dataset string
	var live, body, blocks []byte
	if err := tx.QueryRowContext(sctx, `SELECT source, dataset, live, body, blocks FROM raw_segments WHERE id = ?`, c.id).Scan(&source, &dataset, &live, &body, &blocks); err != nil {
		return 0, fmt.Errorf("store: compact segment %d: %w", c.id, err)
	}
	plain, err := segmentPlain(sctx, tx, c.id, body, blocks)
	if err != nil {
		return 0, err
	}
	var rd entryReader
	var e entry
	if err := rd.reset(live); err != nil {
		return 0, fmt.Errorf("store: raw segment %d: %w", c.id, err)
	}
	docs := make([]vigil.Document, 0, len(c.live))
	next := 0
	for pos := 0; next < len(c.live); pos++ {
		ok, err := rd.next(&e, len(plain))
		if err != nil || !ok {
			return 0, fmt.Errorf("store: raw segment %d: %w", c.id, errCorrupt)
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
	var st vigil.WriteStats
	seg, err := db.encodeSegment(docs, &st)
	if err != nil {
		return 0, err
	}
	if err := db.insertSegment(sctx, tx, seg, segmentRow{source: source, dataset: dataset, ingested: now, docs: len(docs), compacted: true}); err != nil {
		return 0, fmt.Errorf("store: compact segment %d: %w", c.id, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: compact segment %d: %w", c.id, err)
	}
	db.pend.add(seg)
	return int64(len(docs)), nil
}
