package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/vigil-ti/vigil"
)

// Sightings and the retro-hunt watermark (migration 0006). A sighting row
// is keyed by (day, kind, key): day is the UTC day of the events'
// @timestamp, so that a prune drops whole days from the front of the table
// and a lookup seeks each day of the window.

// sightingKeys is how many exact keys one lookup statement asks for.
const sightingKeys = 256

// sightingRows is how many rows one upsert statement writes: more rows per
// statement bind as many parameters and gain nothing past 64.
const sightingRows = 64

// dayOf returns the UTC day of t (Unix milliseconds / 86400000, rounded
// down).
func dayOf(ms int64) int64 {
	d := ms / msPerDay
	if ms%msPerDay < 0 {
		d--
	}
	return d
}

// sightingRow is a sighting with its day and the first bytes of its kind
// and key (see keyPrefix), for sorting.
type sightingRow struct {
	day       int64
	kind, pre uint64
	s         *vigil.Sighting
}

// AddSightings merges sightings into the store, in one transaction: a
// sighting of a (day, kind, key) already stored widens its first and last
// seen, adds its count, and refers to its event when it was seen last.
// Every sighting's FirstSeen and LastSeen must fall on the same UTC day.
// Large batches cost less per sighting: a batch rewrites each page of the
// table its keys fall in once.
func (db *DB) AddSightings(ctx context.Context, ss []vigil.Sighting) error {
	if db.rw == nil {
		return errors.New("store: opened read-only")
	}
	if len(ss) == 0 {
		return nil
	}
	rows := make([]sightingRow, len(ss))
	for i := range ss {
		s := &ss[i]
		if s.Kind == "" || s.Key == "" {
			return fmt.Errorf("store: add sightings: sighting %d has no kind or key", i)
		}
		d1, d2 := dayOf(s.FirstSeen.UnixMilli()), dayOf(s.LastSeen.UnixMilli())
		if d1 != d2 {
			return fmt.Errorf("store: add sightings: %s sighting seen first and last on two days (%s, %s)", s.Kind, s.FirstSeen.Format(time.RFC3339), s.LastSeen.Format(time.RFC3339))
		}
		rows[i] = sightingRow{day: d1, kind: keyPrefix(unsafeBytes(s.Kind)), pre: keyPrefix(unsafeBytes(s.Key)), s: s}
	}
	// In key order: each leaf of the table is written once per batch. The
	// kind and the first 8 bytes of the key, packed, settle most
	// comparisons without following the pointer.
	slices.SortFunc(rows, func(a, b sightingRow) int {
		if c := cmp.Or(cmp.Compare(a.day, b.day), cmp.Compare(a.kind, b.kind), cmp.Compare(a.pre, b.pre)); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.s.Kind, b.s.Kind), strings.Compare(a.s.Key, b.s.Key))
	})
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: add sightings: %w", err)
	}
	defer tx.Rollback()
	var full *sql.Stmt
	if len(rows) >= sightingRows {
		if full, err = tx.PrepareContext(ctx, sightingUpsertSQL(sightingRows)); err != nil {
			return fmt.Errorf("store: add sightings: %w", err)
		}
		defer full.Close()
	}
	args := make([]any, 0, 9*sightingRows)
	for len(rows) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: add sightings: %w", err)
		}
		n := min(len(rows), sightingRows)
		args = args[:0]
		for _, r := range rows[:n] {
			s := r.s
			args = append(args, r.day, s.Kind, unsafeBytes(s.Key), s.FirstSeen.UnixMilli(), s.LastSeen.UnixMilli(), s.Count,
				s.Field, s.Event, s.EventTime.UnixMilli())
		}
		// Run as a query: the driver binds a query's parameters in one
		// call into SQLite, and an Exec's one call each (a third of the
		// cost of a sighting).
		var res *sql.Rows
		if n == sightingRows {
			res, err = full.QueryContext(ctx, args...)
		} else {
			res, err = tx.QueryContext(ctx, sightingUpsertSQL(n), args...)
		}
		if err == nil {
			err = res.Close()
		}
		if err != nil {
			return fmt.Errorf("store: add sightings: %w", err)
		}
		rows = rows[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: add sightings: %w", err)
	}
	return nil
}

// sightingUpsertSQL returns the upsert of n sightings. SQLite evaluates
// every assignment against the row as it was before the update.
func sightingUpsertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO sightings (day, kind, key, first_seen, last_seen, count, field, event, event_time) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?)")
	}
	b.WriteString(` ON CONFLICT (day, kind, key) DO UPDATE SET
first_seen = min(first_seen, excluded.first_seen),
last_seen = max(last_seen, excluded.last_seen),
count = count + excluded.count,
field = CASE WHEN excluded.last_seen >= last_seen THEN excluded.field ELSE field END,
event = CASE WHEN excluded.last_seen >= last_seen THEN excluded.event ELSE event END,
event_time = CASE WHEN excluded.last_seen >= last_seen THEN excluded.event_time ELSE event_time END`)
	return b.String()
}

// unsafeBytes views s as bytes, for a parameter bound as a BLOB (the
// driver copies it).
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// Sightings calls fn for each stored sighting in the ranges rs that was
// last seen at or after since, one per (day, kind, key): a key seen on
// several days comes once per day, and a sighting in two ranges may come
// twice. It works on a store opened read-only.
func (db *DB) Sightings(ctx context.Context, since time.Time, rs []vigil.SightingRange, fn func(vigil.Sighting) error) error {
	sinceMs := since.UnixMilli()
	// One seek per day of the window (and the next day, for clocks a
	// little ahead): an IN list on the first column of the key.
	var days strings.Builder
	from, to := dayOf(sinceMs), dayOf(db.clock.Now().UnixMilli())+1
	if to-from > 3660 {
		return fmt.Errorf("store: read sightings: a window of %d days is too long", to-from)
	}
	for d := from; d <= to; d++ {
		if d > from {
			days.WriteByte(',')
		}
		days.WriteString(strconv.FormatInt(d, 10))
	}
	head := `SELECT day, kind, key, first_seen, last_seen, count, field, event, event_time FROM sightings WHERE day IN (` +
		days.String() + `) AND last_seen >= ? AND kind = ? AND `
	// Exact keys are asked for by kind, many at a time.
	exact := map[string][]string{}
	var kinds []string
	for _, r := range rs {
		if r.All || r.Prefix || r.Hi != "" {
			continue
		}
		if _, ok := exact[r.Kind]; !ok {
			kinds = append(kinds, r.Kind)
		}
		exact[r.Kind] = append(exact[r.Kind], r.Lo)
	}
	query := func(q string, args ...any) error {
		rows, err := db.ro.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("store: read sightings: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var s vigil.Sighting
			var day, first, last, evt int64
			var key []byte
			if err := rows.Scan(&day, &s.Kind, &key, &first, &last, &s.Count, &s.Field, &s.Event, &evt); err != nil {
				return fmt.Errorf("store: read sightings: %w", err)
			}
			s.Key = string(key)
			s.FirstSeen, s.LastSeen, s.EventTime = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC(), time.UnixMilli(evt).UTC()
			if err := fn(s); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: read sightings: %w", err)
		}
		return nil
	}
	for _, k := range kinds {
		keys := exact[k]
		for len(keys) > 0 {
			n := min(len(keys), sightingKeys)
			args := []any{sinceMs, k}
			for _, key := range keys[:n] {
				args = append(args, []byte(key))
			}
			if err := query(head+`key IN (?`+strings.Repeat(",?", n-1)+`)`, args...); err != nil {
				return err
			}
			keys = keys[n:]
		}
	}
	for _, r := range rs {
		var err error
		switch {
		case r.All:
			err = query(head+`1`, sinceMs, r.Kind)
		case r.Prefix:
			if end, ok := prefixEnd(r.Lo); ok {
				err = query(head+`key >= ? AND key < ?`, sinceMs, r.Kind, []byte(r.Lo), []byte(end))
			} else {
				err = query(head+`key >= ?`, sinceMs, r.Kind, []byte(r.Lo))
			}
		case r.Hi != "":
			err = query(head+`key BETWEEN ? AND ?`, sinceMs, r.Kind, []byte(r.Lo), []byte(r.Hi))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

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

// PruneSightings removes the sightings of the days that ended before
// before, and returns how many it removed.
func (db *DB) PruneSightings(ctx context.Context, before time.Time) (int64, error) {
	if db.rw == nil {
		return 0, errors.New("store: opened read-only")
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	res, err := db.rw.ExecContext(ctx, `DELETE FROM sightings WHERE day < ?`, dayOf(before.UnixMilli()))
	if err != nil {
		return 0, fmt.Errorf("store: prune sightings: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// SightingStats counts the stored sightings.
type SightingStats struct {
	Rows              int64     // (day, kind, value) rows
	Oldest, Newest    time.Time // the first and last seen of them all; zero when none
	RetroHuntMark     int64     // the retro-hunt watermark
	RetroHuntMarkedAt time.Time // when it last moved; zero if never
}

// SightingStats returns what the sightings table holds. It works on a
// store opened read-only.
func (db *DB) SightingStats(ctx context.Context) (SightingStats, error) {
	var st SightingStats
	var oldest, newest sql.NullInt64
	if err := db.ro.QueryRowContext(ctx, `SELECT count(*), min(first_seen), max(last_seen) FROM sightings`).Scan(&st.Rows, &oldest, &newest); err != nil {
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
			sel := liveSel{seg: last}
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
				sel.ents = append(sel.ents, liveEnt{dataset: rd.groups[e.group][0] + "\x00" + rd.groups[e.group][1],
					key: string(e.key), typ: string(e.typ), ts: e.ts, exp: e.exp, off: e.off, n: e.n})
			}
			if len(sel.ents) > 0 {
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
			for _, le := range sel.ents {
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

// SourceSegments returns the last segment that source wrote, and the
// live-eligible documents of its segments after after: serve finds there
// the pages that a `vigil import` beside it wrote.
func (db *DB) SourceSegments(ctx context.Context, source string, after int64) (last, liveDocs int64, err error) {
	err = db.ro.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0), COALESCE(SUM(live_docs) FILTER (WHERE id > ?), 0) FROM raw_segments WHERE source = ? AND compacted = 0`, after, source).Scan(&last, &liveDocs)
	if err != nil {
		return 0, 0, fmt.Errorf("store: read the segments of %s: %w", source, err)
	}
	return last, liveDocs, nil
}
