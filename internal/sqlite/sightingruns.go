package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/vigil-ti/vigil"
)

// Sightings are kept as sorted runs (migration 0007). AddSightings writes
// the sightings of each day of a batch as one run: its entries sorted by
// (kind, key), one per key, in s2-encoded blocks of about
// sightingBlockSize, each listed with its first key. It then merges the
// newest runs of the day by size tier, so that a day holds a few runs of
// each size, and an entry is rewritten a few times over its day. A reader
// merges the runs of a day, so a (day, kind, key) comes once, summed over
// its runs.

// sightingBlockSize is the size of a block of entries before encoding.
const sightingBlockSize = 32 << 10

// The runs of a day are merged by size tier (see sightingTier): once the
// newest runs are sightingFanout runs of the newest one's tier or lower,
// they are merged into one, which is of the next tier when its entries
// are distinct. After n batches, a day holds at most sightingFanout-1 runs
// a tier, about log8(n) tiers above a batch's, and an entry is written
// about log8(n)+1 times: 3.7 times (22 runs at most) over 1,440 batches,
// a batch a minute, where the binary counter this replaces (a new run took
// in each older one no larger than what it had taken in) wrote it 6.1
// times (10 runs at most); 1.9 and 2.8 times over 9 batches, the million
// events of bench/detect.sh.
const (
	sightingFanout    = 8
	sightingTierFloor = 2048
)

// sEntry is one entry of a run: a sighting keyed by sk (its kind, a 0 byte
// and its key). The byte slices view a decoded block or the batch being
// written.
type sEntry struct {
	sk           []byte
	first, last  int64 // Unix ms
	count        int64
	evTime       int64 // Unix ms
	field, event []byte
	run          int64 // the run it came from: on a tie of last, the newer one's event is kept
}

// sightingKey appends kind, a 0 byte and key to dst. No kind is a prefix of
// another, so these keys sort by kind, then key.
func sightingKey(dst []byte, kind, key string) []byte {
	dst = append(dst, kind...)
	dst = append(dst, 0)
	return append(dst, key...)
}

// sAcc accumulates the entries of one key, in buffers of its own.
type sAcc struct {
	e            sEntry
	sk, fld, evt []byte
}

// reset makes a the copy of e.
func (a *sAcc) reset(e *sEntry) {
	a.sk = append(a.sk[:0], e.sk...)
	a.e = *e
	a.e.sk = a.sk
	a.take(e)
}

// take refers a to e's event.
func (a *sAcc) take(e *sEntry) {
	a.fld = append(a.fld[:0], e.field...)
	a.evt = append(a.evt[:0], e.event...)
	a.e.field, a.e.event, a.e.evTime, a.e.run = a.fld, a.evt, e.evTime, e.run
}

// add folds e, an entry of the same key, into a: first and last widen,
// counts add, and the event is the one of the entry seen last.
func (a *sAcc) add(e *sEntry) {
	newer := e.last > a.e.last || e.last == a.e.last && e.run >= a.e.run
	a.e.first = min(a.e.first, e.first)
	a.e.last = max(a.e.last, e.last)
	a.e.count += e.count
	if newer {
		a.take(e)
	}
}

// sighting returns e as a Sighting.
func (e *sEntry) sighting() vigil.Sighting {
	kind, key, _ := bytes.Cut(e.sk, []byte{0})
	return vigil.Sighting{Kind: string(kind), Key: string(key),
		FirstSeen: time.UnixMilli(e.first).UTC(), LastSeen: time.UnixMilli(e.last).UTC(), Count: e.count,
		Event: string(e.event), EventTime: time.UnixMilli(e.evTime).UTC(), Field: string(e.field)}
}

// runWriter writes one run, entries in key order.
type runWriter struct {
	ctx          context.Context
	tx           *sql.Tx
	id           int64
	raw, enc     []byte
	first, prev  []byte
	entries      int64
	first0, last int64 // least first seen, greatest last seen
}

func newRunWriter(ctx context.Context, tx *sql.Tx, day int64) (*runWriter, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO sighting_runs (day, entries, first_seen, last_seen) VALUES (?, 0, 0, 0)`, day)
	if err != nil {
		return nil, err
	}
	w := &runWriter{ctx: ctx, tx: tx}
	if w.id, err = res.LastInsertId(); err != nil {
		return nil, err
	}
	return w, nil
}

// add appends e, whose key follows the last one added.
func (w *runWriter) add(e *sEntry) error {
	if len(w.raw) >= sightingBlockSize {
		if err := w.flush(); err != nil {
			return err
		}
	}
	shared := 0
	if len(w.raw) == 0 {
		w.first = append(w.first[:0], e.sk...)
	} else {
		shared = commonPrefix(w.prev, e.sk)
	}
	b := binary.AppendUvarint(w.raw, uint64(shared))
	b = binary.AppendUvarint(b, uint64(len(e.sk)-shared))
	b = append(b, e.sk[shared:]...)
	w.raw = appendEntryTail(b, e)
	w.prev = append(w.prev[:0], e.sk...)
	if w.entries == 0 || e.first < w.first0 {
		w.first0 = e.first
	}
	w.last = max(w.last, e.last)
	w.entries++
	return nil
}

// appendEntryTail appends what follows an entry's key in a run.
func appendEntryTail(b []byte, e *sEntry) []byte {
	b = binary.AppendVarint(b, e.first)
	b = binary.AppendUvarint(b, uint64(e.last-e.first))
	b = binary.AppendUvarint(b, uint64(e.count))
	b = binary.AppendVarint(b, e.evTime)
	b = binary.AppendUvarint(b, uint64(len(e.field)))
	b = append(b, e.field...)
	b = binary.AppendUvarint(b, uint64(len(e.event)))
	return append(b, e.event...)
}

// commonPrefix returns the length of the longest common prefix of a and
// b, comparing 8 bytes at a time.
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// flush writes the block being filled.
func (w *runWriter) flush() error {
	if len(w.raw) == 0 {
		return nil
	}
	if n := s2.MaxEncodedLen(len(w.raw)); cap(w.enc) < n {
		w.enc = make([]byte, n)
	}
	enc := s2.Encode(w.enc[:cap(w.enc)], w.raw)
	if _, err := w.tx.ExecContext(w.ctx, `INSERT INTO sighting_blocks (run, first, data) VALUES (?, ?, ?)`, w.id, w.first, enc); err != nil {
		return err
	}
	w.raw = w.raw[:0]
	return nil
}

// close writes the last block and the run's counts.
func (w *runWriter) close() error {
	if err := w.flush(); err != nil {
		return err
	}
	_, err := w.tx.ExecContext(w.ctx, `UPDATE sighting_runs SET entries = ?, first_seen = ?, last_seen = ? WHERE id = ?`, w.entries, w.first0, w.last, w.id)
	return err
}

// runIter reads a run's entries in key order.
type runIter struct {
	ctx    context.Context
	q      queryer
	run    int64
	firsts [][]byte // the first keys of its blocks
	bi     int      // the block loaded, -1 for none
	rd     entryReader
	plain  []byte
	key    []byte
	cur    sEntry
	ok     bool // cur is an entry
}

func openRunIter(ctx context.Context, q queryer, run int64) (*runIter, error) {
	it := &runIter{ctx: ctx, q: q, run: run, bi: -1}
	rows, err := q.QueryContext(ctx, `SELECT first FROM sighting_blocks WHERE run = ? ORDER BY first`, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var f []byte
		if err := rows.Scan(&f); err != nil {
			return nil, err
		}
		it.firsts = append(it.firsts, f)
	}
	return it, rows.Err()
}

// load decodes block bi and reads its first entry.
func (it *runIter) load(bi int) error {
	var data []byte
	if err := it.q.QueryRowContext(it.ctx, `SELECT data FROM sighting_blocks WHERE run = ? AND first = ?`, it.run, it.firsts[bi]).Scan(&data); err != nil {
		return err
	}
	// Decoded into the last block's buffer, or a new one when it is short.
	var err error
	if it.plain, err = s2.Decode(it.plain[:cap(it.plain)], data); err != nil {
		return fmt.Errorf("sighting run %d: %w", it.run, err)
	}
	it.bi, it.rd.b, it.key = bi, it.plain, it.key[:0]
	return it.decode()
}

// next moves to the next entry; it.ok is false past the last.
func (it *runIter) next() error {
	if len(it.rd.b) > 0 {
		return it.decode()
	}
	if it.bi+1 >= len(it.firsts) {
		it.ok = false
		return nil
	}
	return it.load(it.bi + 1)
}

var errRunCorrupt = errors.New("sighting run is corrupt")

// decode reads the entry at the reader.
func (it *runIter) decode() error {
	r := &it.rd
	shared, ok1 := r.uvarint()
	suffix, ok2 := r.bytes()
	if !ok1 || !ok2 || shared > uint64(len(it.key)) {
		return fmt.Errorf("run %d: %w", it.run, errRunCorrupt)
	}
	it.key = append(it.key[:shared], suffix...)
	e := sEntry{sk: it.key, run: it.run}
	first, ok1 := r.varint()
	span, ok2 := r.uvarint()
	count, ok3 := r.uvarint()
	evTime, ok4 := r.varint()
	field, ok5 := r.bytes()
	event, ok6 := r.bytes()
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return fmt.Errorf("run %d: %w", it.run, errRunCorrupt)
	}
	e.first, e.last, e.count, e.evTime, e.field, e.event = first, first+int64(span), int64(count), evTime, field, event
	it.cur, it.ok = e, true
	return nil
}

// seek moves to the first entry whose key is sk or after it. Seeks go
// forward: sk is never less than the key of an earlier seek.
func (it *runIter) seek(sk []byte) error {
	if it.ok && bytes.Compare(it.cur.sk, sk) >= 0 {
		return nil
	}
	// The last block whose first key is at most sk may hold it.
	b := max(0, sort.Search(len(it.firsts), func(i int) bool { return bytes.Compare(it.firsts[i], sk) > 0 })-1)
	if b >= len(it.firsts) {
		it.ok = false
		return nil
	}
	if b > it.bi {
		if err := it.load(b); err != nil {
			return err
		}
	}
	for it.ok && bytes.Compare(it.cur.sk, sk) < 0 {
		if err := it.next(); err != nil {
			return err
		}
	}
	return nil
}

// skRange is the keys from lo up to hi, hi excluded; a nil hi has no bound.
type skRange struct{ lo, hi []byte }

// mergeRuns calls fn with each key of the runs in the ranges (ascending,
// disjoint), its entries in every run folded into one. The entry is valid
// during fn only.
func mergeRuns(its []*runIter, ranges []skRange, fn func(*sEntry) error) error {
	var acc sAcc
	for _, r := range ranges {
		for _, it := range its {
			if err := it.seek(r.lo); err != nil {
				return err
			}
		}
		for {
			var low *runIter
			dup := false
			for _, it := range its {
				if !it.ok || r.hi != nil && bytes.Compare(it.cur.sk, r.hi) >= 0 {
					continue
				}
				if low == nil {
					low = it
					continue
				}
				switch c := bytes.Compare(it.cur.sk, low.cur.sk); {
				case c < 0:
					low, dup = it, false
				case c == 0:
					dup = true
				}
			}
			if low == nil {
				break
			}
			if !dup {
				// In one run only: as it is.
				if err := fn(&low.cur); err != nil {
					return err
				}
				if err := low.next(); err != nil {
					return err
				}
				continue
			}
			acc.reset(&low.cur)
			for _, it := range its {
				if it.ok && bytes.Equal(it.cur.sk, acc.e.sk) {
					if it != low {
						acc.add(&it.cur)
					}
					if err := it.next(); err != nil {
						return err
					}
				}
			}
			if err := fn(&acc.e); err != nil {
				return err
			}
		}
	}
	return nil
}

// AddSightings merges sightings into the store, in one transaction: a
// sighting of a (day, kind, key) already stored widens its first and last
// seen, adds its count, and refers to its event when it was seen last.
// Every sighting's FirstSeen and LastSeen must fall on the same UTC day.
func (db *DB) AddSightings(ctx context.Context, ss []vigil.Sighting) error {
	var b vigil.SightingBatch
	for _, s := range ss {
		b.AppendSighting(s)
	}
	return db.AddSightingBatch(ctx, &b)
}

// sRow is an entry of a batch being sorted.
type sRow struct {
	g   int64  // the day (from the batch's first) and the kind's rank
	pre uint64 // the key's first 8 bytes, packed: most comparisons stop here
	// The next 8, for the keys whose first 8 are alike: addresses (an IPv4
	// address is ::ffff:a.b.c.d) and URLs ("https://").
	pre2 uint64
	i    int // the entry: of two entries of one key, the later wins a tie
}

// sRowOf returns the row of entry i, of key key.
func sRowOf(g int64, key []byte, i int) sRow {
	r := sRow{g: g, pre: keyPrefix(key), i: i}
	if len(key) > 8 {
		r.pre2 = keyPrefix(key[8:])
	}
	return r
}

// sortSightingRows sorts rows, which are in entry order, by (g, pre,
// pre2), then by their entries' keys in data, then by entry. Most rows
// differ in their first 16 bytes of key: a radix sort orders them by (g,
// pre, pre2) (see sortRowsMSD), and only the rows alike in all three (URLs
// of one host) are then sorted by the rest of their keys (see
// sortRowTies), which reuses their pre and pre2: only g and i of the
// rows are kept.
func sortSightingRows(rows []sRow, ents []vigil.SightingEntry, data []byte) {
	if len(rows) < 2 {
		return
	}
	tmp := make([]sRow, len(rows))
	sortRowsMSD(rows, tmp)
	sortTieGroups(rows, tmp, ents, data, 16)
}

// msdCutoff is the size of a range that sortRowsMSD sorts by insertion.
const msdCutoff = 24

// sortRowsMSD sorts rows, which are in entry order, by (g, pre, pre2, i),
// most significant byte first: a range is counted and scattered (through
// tmp, of the same length, stably) on the first byte in which its rows
// differ, found in one pass, and then each part in turn, down to small
// parts, sorted by insertion. Bytes a range's rows share cost no pass of
// their own: an IPv4 address's ten zero bytes, "https://". A sort from
// the least significant byte, as before, moved every row once for each of
// the 16 to 17 bytes in which any two rows of a batch differ (a hash's
// are all random): BenchmarkSortSightingRows took 198–224 ns a row with
// it, 137–165 with this.
func sortRowsMSD(rows, tmp []sRow) {
	for len(rows) > msdCutoff {
		w, shift, ok := firstDiff(rows)
		if !ok {
			return // alike in (g, pre, pre2): in entry order already
		}
		var counts [256]int32
		switch w {
		case 0:
			for i := range rows {
				counts[byte((uint64(rows[i].g)^1<<63)>>shift)]++
			}
		case 1:
			for i := range rows {
				counts[byte(rows[i].pre>>shift)]++
			}
		default:
			for i := range rows {
				counts[byte(rows[i].pre2>>shift)]++
			}
		}
		var offs [256]int32
		sum := int32(0)
		for v, n := range counts {
			offs[v] = sum
			sum += n
		}
		switch w {
		case 0:
			for i := range rows {
				v := byte((uint64(rows[i].g) ^ 1<<63) >> shift)
				tmp[offs[v]] = rows[i]
				offs[v]++
			}
		case 1:
			for i := range rows {
				v := byte(rows[i].pre >> shift)
				tmp[offs[v]] = rows[i]
				offs[v]++
			}
		default:
			for i := range rows {
				v := byte(rows[i].pre2 >> shift)
				tmp[offs[v]] = rows[i]
				offs[v]++
			}
		}
		copy(rows, tmp[:len(rows)])
		// Each part but the largest by recursion, the largest by the loop:
		// the stack stays shallow.
		big, bigAt := int32(0), int32(0)
		at := int32(0)
		for _, n := range counts {
			if n > big {
				big, bigAt = n, at
			}
			at += n
		}
		at = 0
		for _, n := range counts {
			if n > 1 && at != bigAt {
				sortRowsMSD(rows[at:at+n], tmp[at:at+n])
			}
			at += n
		}
		rows, tmp = rows[bigAt:bigAt+big], tmp[bigAt:bigAt+big]
	}
	// Insertion: rows[:k] are sorted.
	for k := 1; k < len(rows); k++ {
		r := rows[k]
		j := k
		for j > 0 && rowLess(&r, &rows[j-1]) {
			rows[j] = rows[j-1]
			j--
		}
		rows[j] = r
	}
}

// firstDiff returns the word (0: g, 1: pre, 2: pre2) and the shift of the
// most significant byte in which rows differ, or false when they are
// alike in all three.
func firstDiff(rows []sRow) (int, uint, bool) {
	r0 := rows[0]
	var dg, dp, dp2 uint64
	for i := range rows {
		dg |= uint64(rows[i].g ^ r0.g)
		dp |= rows[i].pre ^ r0.pre
		dp2 |= rows[i].pre2 ^ r0.pre2
	}
	for w, d := range [3]uint64{dg, dp, dp2} {
		if d != 0 {
			return w, uint(63-bits.LeadingZeros64(d)) / 8 * 8, true
		}
	}
	return 0, 0, false
}

// rowLess orders rows by (g, pre, pre2, i).
func rowLess(x, y *sRow) bool {
	if x.g != y.g {
		return x.g < y.g
	}
	if x.pre != y.pre {
		return x.pre < y.pre
	}
	if x.pre2 != y.pre2 {
		return x.pre2 < y.pre2
	}
	return x.i < y.i
}

// sortTieGroups sorts each group of rows alike in (g, pre, pre2), with
// sortRowTies from key byte off: in a sorted run, such rows are together.
func sortTieGroups(rows, tmp []sRow, ents []vigil.SightingEntry, data []byte, off int) {
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j].g == rows[i].g && rows[j].pre == rows[i].pre && rows[j].pre2 == rows[i].pre2 {
			j++
		}
		if j-i > 1 {
			sortRowTies(rows[i:j], tmp[i:j], ents, data, off)
		}
		i = j
	}
}

// sortRowTies sorts rows of one g whose keys are alike in their first off
// bytes (short keys padded with zero bytes), and which are in entry
// order: by the next 16 bytes of key, held in the rows' pre and pre2 (a
// radix sort on two words, where comparing keys in data would read a
// random place twice for each comparison), and each group still alike by
// the 16 after, and so on. URLs of one host share their first 16 bytes or
// more. Small groups, and keys alike in 64 bytes, are sorted by key.
func sortRowTies(rows, tmp []sRow, ents []vigil.SightingEntry, data []byte, off int) {
	key := func(r *sRow) []byte {
		e := &ents[r.i]
		return data[e.Key[0]:e.Key[1]]
	}
	if len(rows) <= 8 || off >= 64 {
		slices.SortFunc(rows, func(x, y sRow) int {
			if c := bytes.Compare(key(&x), key(&y)); c != 0 {
				return c
			}
			return x.i - y.i // the rows of one key in entry order
		})
		return
	}
	for k := range rows {
		r := &rows[k]
		kb := key(r)
		r.pre, r.pre2 = 0, 0
		if len(kb) > off {
			r.pre = keyPrefix(kb[off:])
		}
		if len(kb) > off+8 {
			r.pre2 = keyPrefix(kb[off+8:])
		}
	}
	sortRowsMSD(rows, tmp) // one g: by (pre, pre2, i)
	sortTieGroups(rows, tmp, ents, data, off+16)
}

// AddSightingBatch is AddSightings of a batch in compact form. The batch
// is not changed, nor kept.
func (db *DB) AddSightingBatch(ctx context.Context, b *vigil.SightingBatch) error {
	if db.rw == nil {
		return errors.New("store: opened read-only")
	}
	if len(b.Entries) == 0 {
		return nil
	}
	// The kinds' ranks in byte order: no kind is a prefix of another (they
	// hold no 0 byte), so entries sort by rank, then key, as sighting keys
	// sort.
	for _, k := range b.Kinds {
		if k == "" || len(k) > 8 || strings.IndexByte(k, 0) >= 0 {
			return fmt.Errorf("store: add sightings: kind %q is not one of ip, hash, url, registry, email, cve, domain", k)
		}
	}
	rank := make([]int64, len(b.Kinds))
	for i, k := range b.Kinds {
		for _, o := range b.Kinds {
			if o < k {
				rank[i]++
			}
		}
	}
	data := b.Data
	rows := make([]sRow, len(b.Entries))
	day0 := dayOf(b.Entries[0].FirstSeen)
	for i := range b.Entries {
		e := &b.Entries[i]
		if int(e.Kind) >= len(b.Kinds) || int(e.Field) >= len(b.Fields) || e.Key[0] > e.Key[1] || int(e.Key[1]) > len(data) ||
			e.Event[0] > e.Event[1] || int(e.Event[1]) > len(data) {
			return fmt.Errorf("store: add sightings: sighting %d refers outside its batch", i)
		}
		if e.Key[0] == e.Key[1] {
			return fmt.Errorf("store: add sightings: sighting %d has no kind or key", i)
		}
		d1, d2 := dayOf(e.FirstSeen), dayOf(e.LastSeen)
		if d1 != d2 {
			return fmt.Errorf("store: add sightings: %s sighting seen first and last on two days (%s, %s)", b.Kinds[e.Kind],
				time.UnixMilli(e.FirstSeen).UTC().Format(time.RFC3339), time.UnixMilli(e.LastSeen).UTC().Format(time.RFC3339))
		}
		// Days are within 2^40 of the first one (a day is 2^26.4 ms).
		rows[i] = sRowOf((d1-day0)<<8|rank[e.Kind], data[e.Key[0]:e.Key[1]], i)
	}
	sortSightingRows(rows, b.Entries, data)
	// The entries in key order, their keys and events copied in that order
	// too: the loops that gather them read at random, but each read is
	// independent of the one before, so many are in flight at once, and
	// what follows reads in order.
	ents := make([]vigil.SightingEntry, len(rows))
	for k, r := range rows {
		ents[k] = b.Entries[r.i]
	}
	sorted := make([]byte, 0, len(data))
	for k := range ents {
		e := &ents[k]
		a := uint32(len(sorted))
		sorted = append(sorted, data[e.Key[0]:e.Key[1]]...)
		e.Key = [2]uint32{a, uint32(len(sorted))}
		sorted = append(sorted, data[e.Event[0]:e.Event[1]]...)
		e.Event = [2]uint32{e.Key[1], uint32(len(sorted))}
	}
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: add sightings: %w", err)
	}
	defer tx.Rollback()
	sctx := context.WithoutCancel(ctx)
	var acc sEntry
	for len(ents) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: add sightings: %w", err)
		}
		g := rows[0].g >> 8
		n := 1
		for n < len(rows) && rows[n].g>>8 == g {
			n++
		}
		day := day0 + g
		w, err := newRunWriter(sctx, tx, day)
		if err != nil {
			return fmt.Errorf("store: add sightings: %w", err)
		}
		// The entries of one key come together, the later last.
		for i := 0; i < n; i++ {
			e := &ents[i]
			key, event := sorted[e.Key[0]:e.Key[1]], sorted[e.Event[0]:e.Event[1]]
			if i > 0 && rows[i].g == rows[i-1].g && bytes.Equal(key, sorted[ents[i-1].Key[0]:ents[i-1].Key[1]]) {
				acc.first = min(acc.first, e.FirstSeen)
				if e.LastSeen >= acc.last { // the later entry wins a tie
					acc.last, acc.evTime, acc.event, acc.field = e.LastSeen, e.EventTime, event, unsafeBytes(b.Fields[e.Field])
				}
				acc.count += e.Count
				continue
			}
			if i > 0 {
				if err := w.add(&acc); err != nil {
					return fmt.Errorf("store: add sightings: %w", err)
				}
			}
			acc = sEntry{sk: append(append(append(acc.sk[:0], b.Kinds[e.Kind]...), 0), key...), first: e.FirstSeen, last: e.LastSeen,
				count: e.Count, evTime: e.EventTime, field: unsafeBytes(b.Fields[e.Field]), event: event}
		}
		if err := w.add(&acc); err != nil {
			return fmt.Errorf("store: add sightings: %w", err)
		}
		if err := w.close(); err != nil {
			return fmt.Errorf("store: add sightings: %w", err)
		}
		if err := compactSightingDay(sctx, tx, day); err != nil {
			return fmt.Errorf("store: add sightings: merge the runs of day %d: %w", day, err)
		}
		rows, ents = rows[n:], ents[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: add sightings: %w", err)
	}
	return nil
}

// sightingTier returns the size tier of a run of n entries: 0 below
// sightingTierFloor·sightingFanout entries, then one more for each
// factor of sightingFanout.
func sightingTier(n int64) int {
	t := 0
	for n >= sightingTierFloor*sightingFanout {
		n /= sightingFanout
		t++
	}
	return t
}

// compactSightingDay merges the newest runs of day, those of a tier no
// higher than the newest one's, once there are sightingFanout of them,
// and again while the run it made completes another such group.
func compactSightingDay(ctx context.Context, tx *sql.Tx, day int64) error {
	for {
		rows, err := tx.QueryContext(ctx, `SELECT id, entries FROM sighting_runs WHERE day = ? ORDER BY id DESC`, day)
		if err != nil {
			return err
		}
		var take []int64
		top, runs := -1, 0
		for rows.Next() {
			runs++
			var id, n int64
			if err := rows.Scan(&id, &n); err != nil {
				rows.Close()
				return err
			}
			t := sightingTier(n)
			if top < 0 {
				top = t
			}
			if t <= top && len(take) == runs-1 {
				take = append(take, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(take) < sightingFanout {
			return err
		}
		if err := mergeSightingRuns(ctx, tx, day, take); err != nil {
			return err
		}
	}
}

// mergeSightingRuns writes the runs take (newest first) of day as one new
// run, and deletes them.
func mergeSightingRuns(ctx context.Context, tx *sql.Tx, day int64, take []int64) error {
	take = slices.Clone(take)
	slices.Reverse(take) // oldest first
	its := make([]*runIter, len(take))
	for i, id := range take {
		var err error
		if its[i], err = openRunIter(ctx, tx, id); err != nil {
			return err
		}
	}
	w, err := newRunWriter(ctx, tx, day)
	if err != nil {
		return err
	}
	if err := mergeRuns(its, []skRange{{}}, w.add); err != nil {
		return err
	}
	if err := w.close(); err != nil {
		return err
	}
	for _, id := range take {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sighting_blocks WHERE run = ?`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sighting_runs WHERE id = ?`, id); err != nil {
			return err
		}
	}
	return nil
}

// sightingRanges turns rs into ascending, disjoint key ranges.
func sightingRanges(rs []vigil.SightingRange) []skRange {
	out := make([]skRange, 0, len(rs))
	for _, r := range rs {
		lo := sightingKey(nil, r.Kind, r.Lo)
		var hi []byte
		switch {
		case r.All:
			lo = lo[:len(r.Kind)+1]
			hi = append([]byte(r.Kind), 1)
		case r.Prefix:
			if end, ok := prefixEnd(r.Lo); ok {
				hi = sightingKey(nil, r.Kind, end)
			} else {
				hi = append([]byte(r.Kind), 1)
			}
		case r.Hi != "":
			hi = append(sightingKey(nil, r.Kind, r.Hi), 0)
		default:
			hi = append(slices.Clip(lo), 0)
		}
		out = append(out, skRange{lo: lo, hi: hi})
	}
	slices.SortFunc(out, func(a, b skRange) int { return bytes.Compare(a.lo, b.lo) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && bytes.Compare(r.lo, merged[n-1].hi) <= 0 {
			if bytes.Compare(r.hi, merged[n-1].hi) > 0 {
				merged[n-1].hi = r.hi
			}
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// Sightings calls fn for each stored sighting in the ranges rs that was
// last seen at or after since, once per (day, kind, key), its runs merged.
// It works on a store opened read-only.
func (db *DB) Sightings(ctx context.Context, since time.Time, rs []vigil.SightingRange, fn func(vigil.Sighting) error) error {
	sinceMs := since.UnixMilli()
	from, to := dayOf(sinceMs), dayOf(db.clock.Now().UnixMilli())+1
	if to-from > 3660 {
		return fmt.Errorf("store: read sightings: a window of %d days is too long", to-from)
	}
	ranges := sightingRanges(rs)
	if len(ranges) == 0 {
		return nil
	}
	tx, err := db.ro.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("store: read sightings: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id, day FROM sighting_runs WHERE day BETWEEN ? AND ? ORDER BY day, id`, from, to)
	if err != nil {
		return fmt.Errorf("store: read sightings: %w", err)
	}
	var runs [][2]int64
	for rows.Next() {
		var r [2]int64
		if err := rows.Scan(&r[0], &r[1]); err != nil {
			rows.Close()
			return fmt.Errorf("store: read sightings: %w", err)
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: read sightings: %w", err)
	}
	for len(runs) > 0 {
		n := 1
		for n < len(runs) && runs[n][1] == runs[0][1] {
			n++
		}
		its := make([]*runIter, n)
		for i, r := range runs[:n] {
			if its[i], err = openRunIter(ctx, tx, r[0]); err != nil {
				return fmt.Errorf("store: read sightings: %w", err)
			}
		}
		err := mergeRuns(its, ranges, func(e *sEntry) error {
			if e.last < sinceMs {
				return nil
			}
			return fn(e.sighting())
		})
		if err != nil {
			return fmt.Errorf("store: read sightings: %w", err)
		}
		runs = runs[n:]
	}
	return nil
}

// PruneSightings removes the sightings of the days that ended before
// before, and returns how many entries it removed. It then merges the
// runs of each earlier day than the clock's into one (closeSightingDays).
func (db *DB) PruneSightings(ctx context.Context, before time.Time) (int64, error) {
	if db.rw == nil {
		return 0, errors.New("store: opened read-only")
	}
	n, err := db.dropSightingDays(ctx, dayOf(before.UnixMilli()))
	if err != nil {
		return 0, err
	}
	return n, db.closeSightingDays(ctx, dayOf(db.clock.Now().UnixMilli()))
}

// dropSightingDays removes the runs of the days before cutoff and returns
// how many entries they held.
func (db *DB) dropSightingDays(ctx context.Context, cutoff int64) (int64, error) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: prune sightings: %w", err)
	}
	defer tx.Rollback()
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(entries), 0) FROM sighting_runs WHERE day < ?`, cutoff).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: prune sightings: %w", err)
	}
	for _, q := range []string{`DELETE FROM sighting_blocks WHERE run IN (SELECT id FROM sighting_runs WHERE day < ?)`, `DELETE FROM sighting_runs WHERE day < ?`} {
		if _, err := tx.ExecContext(ctx, q, cutoff); err != nil {
			return 0, fmt.Errorf("store: prune sightings: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: prune sightings: %w", err)
	}
	return n, nil
}

// closeSightingDays merges the runs of each day before today that has
// more than one into one run, a day per transaction. Writes merge by tier
// (up to 22 runs for a day of a batch a minute), which keeps recording
// cheap; a day over, few events come for it any more, and a retro-hunt
// then reads one run of it instead of a seek in each.
func (db *DB) closeSightingDays(ctx context.Context, today int64) error {
	days, err := queryInt64s(ctx, db.rw, `SELECT day FROM sighting_runs WHERE day < ? GROUP BY day HAVING COUNT(*) > 1`, today)
	if err != nil {
		return fmt.Errorf("store: merge sighting days: %w", err)
	}
	for _, d := range days {
		if err := db.closeSightingDay(ctx, d); err != nil {
			return fmt.Errorf("store: merge sighting day %s: %w", time.UnixMilli(d*msPerDay).UTC().Format(time.DateOnly), err)
		}
	}
	return nil
}

// closeSightingDay merges the runs of day into one.
func (db *DB) closeSightingDay(ctx context.Context, day int64) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	take, err := queryInt64s(ctx, tx, `SELECT id FROM sighting_runs WHERE day = ? ORDER BY id DESC`, day)
	if err != nil || len(take) < 2 {
		return err
	}
	if err := mergeSightingRuns(ctx, tx, day, take); err != nil {
		return err
	}
	return tx.Commit()
}

// queryInt64s returns the one integer column of query's rows.
func queryInt64s(ctx context.Context, q queryer, query string, args ...any) ([]int64, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
