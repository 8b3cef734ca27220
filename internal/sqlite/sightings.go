package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/vigil-ti/vigil"
)

// The retro-hunt watermark (migration 0006), and the helpers of the
// sightings (sightingruns.go).

// dayOf returns the UTC day of t (Unix milliseconds / 86400000, rounded
// down).
func dayOf(ms int64) int64 {
	d := ms / msPerDay
	if ms%msPerDay < 0 {
		d--
	}
	return d
}

// unsafeBytes views s as bytes, for a parameter bound as a BLOB (the
// driver copies it).
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// prefixEnd returns the least key greater than every key that starts with
// p, and false when there is none (p is empty or all 0xff bytes).
func prefixEnd(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// SightingStats counts the stored sightings.
type SightingStats struct {
	Rows              int64     // (day, kind, value) entries; one seen in two runs not merged yet counts twice
	Oldest, Newest    time.Time // the first and last seen of them all; zero when none
	RetroHuntMark     int64     // the retro-hunt watermark
	RetroHuntMarkedAt time.Time // when it last moved; zero if never
}

// SightingStats returns what the sightings table holds. It works on a
// store opened read-only.
func (db *DB) SightingStats(ctx context.Context) (SightingStats, error) {
	var st SightingStats
	var oldest, newest sql.NullInt64
	if err := db.ro.QueryRowContext(ctx, `SELECT COALESCE(SUM(entries), 0), min(first_seen), max(last_seen) FROM sighting_runs`).Scan(&st.Rows, &oldest, &newest); err != nil {
		return st, fmt.Errorf("store: read sightings: %w", err)
	}
	if oldest.Valid {
		st.Oldest, st.Newest = time.UnixMilli(oldest.Int64).UTC(), time.UnixMilli(newest.Int64).UTC()
	}
	var at int64
	if err := db.ro.QueryRowContext(ctx, `SELECT segment, updated_at FROM retrohunt_state WHERE id = 1`).Scan(&st.RetroHuntMark, &at); err != nil {
		return st, fmt.Errorf("store: read the retro-hunt watermark: %w", err)
	}
	if at > 0 {
		st.RetroHuntMarkedAt = time.UnixMilli(at).UTC()
	}
	return st, nil
}

// RetroHuntMark returns the retro-hunt watermark: the id of the last raw
// segment whose indicators were hunted.
func (db *DB) RetroHuntMark(ctx context.Context) (int64, error) {
	var seg int64
	if err := db.ro.QueryRowContext(ctx, `SELECT segment FROM retrohunt_state WHERE id = 1`).Scan(&seg); err != nil {
		return 0, fmt.Errorf("store: read the retro-hunt watermark: %w", err)
	}
	return seg, nil
}

// SetRetroHuntMark moves the retro-hunt watermark to seg.
func (db *DB) SetRetroHuntMark(ctx context.Context, seg int64) error {
	if db.rw == nil {
		return errors.New("store: opened read-only")
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if _, err := db.rw.ExecContext(ctx, `UPDATE retrohunt_state SET segment = ?, updated_at = ? WHERE id = 1`, seg, db.clock.Now().UnixMilli()); err != nil {
		return fmt.Errorf("store: move the retro-hunt watermark: %w", err)
	}
	return nil
}

// LiveAfter calls fn for each unexpired document of the indicator and
// vulnerability views that is its key's live row and was written in a raw
// segment after segment after, up to the live watermark (merge first, with
// Sync, to reach every page written). It returns the live watermark: the
// segment to pass next time. A document's Source is valid during fn only.
func (db *DB) LiveAfter(ctx context.Context, after int64, fn func(vigil.Document) error) (int64, error) {
	now := db.clock.Now().UnixMilli()
	tx, err := db.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("store: read new live documents: %w", err)
	}
	defer tx.Rollback()
	var wm int64
	if err := tx.QueryRowContext(ctx, `SELECT segment FROM live_watermark`).Scan(&wm); err != nil {
		return 0, fmt.Errorf("store: read new live documents: %w", err)
	}
	var rd entryReader
	var e entry
	var wanted []bool
	last := after
	for {
		rows, err := tx.QueryContext(ctx, `SELECT m.seg, m.mask, s.live FROM live_masks m JOIN raw_segments s ON s.id = m.seg
WHERE m.seg > ? AND m.seg <= ? ORDER BY m.seg LIMIT ?`, last, wm, liveChunk)
		if err != nil {
			return 0, fmt.Errorf("store: read new live documents: %w", err)
		}
		var sels []liveSel
		var ents []liveEnt
		n := 0
		for rows.Next() {
			n++
			var mask, live []byte
			if err := rows.Scan(&last, &mask, &live); err != nil {
				rows.Close()
				return 0, fmt.Errorf("store: read new live documents: %w", err)
			}
			if err := rd.reset(live); err != nil {
				rows.Close()
				return 0, fmt.Errorf("store: raw segment %d: %w", last, err)
			}
			wanted = wanted[:0]
			for _, g := range rd.groups {
				wanted = append(wanted, g[0] == string(vigil.ViewIndicators) || g[0] == string(vigil.ViewVulnerabilities))
			}
			sel := liveSel{seg: last, a: len(ents)}
			for pos := 0; ; pos++ {
				ok, err := rd.next(&e, math.MaxInt)
				if err != nil {
					rows.Close()
					return 0, fmt.Errorf("store: raw segment %d: %w", last, err)
				}
				if !ok {
					break
				}
				if pos/8 >= len(mask) || mask[pos/8]&(1<<(pos%8)) == 0 || !wanted[e.group] || e.exp <= now {
					continue
				}
				// The view rides in the dataset field; split below.
				ents = append(ents, liveEnt{dataset: rd.groups[e.group][0] + "\x00" + rd.groups[e.group][1],
					key: string(e.key), typ: string(e.typ), ts: e.ts, exp: e.exp, off: e.off, n: e.n})
			}
			if sel.b = len(ents); sel.b > sel.a {
				sels = append(sels, sel)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, fmt.Errorf("store: read new live documents: %w", err)
		}
		for _, sel := range sels {
			plain, err := readSegmentBody(ctx, tx, sel.seg)
			if err != nil {
				return 0, err
			}
			for _, le := range ents[sel.a:sel.b] {
				if le.off > len(plain) || le.n > len(plain)-le.off {
					return 0, fmt.Errorf("store: raw segment %d: %w", sel.seg, errCorrupt)
				}
				view, dataset, _ := strings.Cut(le.dataset, "\x00")
				d := vigil.Document{View: vigil.View(view), Dataset: dataset, Key: le.key, Type: le.typ,
					Timestamp: time.UnixMilli(le.ts).UTC(), Source: plain[le.off : le.off+le.n : le.off+le.n]}
				if le.exp != math.MaxInt64 {
					d.ExpiresAt = time.UnixMilli(le.exp).UTC()
				}
				if err := fn(d); err != nil {
					return 0, err
				}
			}
		}
		if n < liveChunk {
			return max(wm, after), nil
		}
	}
}
