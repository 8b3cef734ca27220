package sqlite_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// openWriterReader opens a store with a retention of a day and no
// automatic merges, and a reader of it.
func openWriterReader(t *testing.T, c *clock) (db, ro *sqlite.DB) {
	db, dir := openWith(t, c, sqlite.Options{Retention: 24 * time.Hour, MergeDocs: -1})
	ro, err := sqlite.Open(t.Context(), dir, sqlite.Options{ReadOnly: true, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	return db, ro
}

// TestLiveDocumentWriterMatchesReader: a writer reads documents by its
// fast path (two primary-key reads, with the datasets' ids and the
// segments' block starts kept in memory), a read-only store by the general
// one; both give the same documents over segments of many blocks, after a
// rewrite of some keys, after the raw segments are compacted and pruned,
// and for keys not merged yet or not stored.
func TestLiveDocumentWriterMatchesReader(t *testing.T) {
	c := &clock{t: t0}
	db, ro := openWriterReader(t, c)
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	pad := strings.Repeat("x", 200)
	doc := func(i int, ts time.Time, exp time.Time) vigil.Document {
		d := ioc(fmt.Sprintf("10.0.%d.%d", i/256, i%256), ts, exp)
		d.Source = fmt.Appendf(nil, `{"threat":{"indicator":{"name":%q,"description":"%s %d"}},"@timestamp":%q}`,
			d.Key, pad, ts.Unix(), ts.Format(time.RFC3339Nano))
		return d
	}
	const n = 1500 // about 400 KB: a dozen blocks
	write := func(from, to int, ts, exp time.Time) {
		t.Helper()
		var docs []vigil.Document
		for i := from; i < to; i++ {
			docs = append(docs, doc(i, ts, exp))
		}
		if _, err := db.WritePage(ctx, vigil.Page{Source: "test", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
	}
	// check compares the writer's and the reader's documents for keys
	// 0..n+9 (the last ten are never stored) and wants the live ones.
	check := func(stage string, want func(i int) (time.Time, bool)) {
		t.Helper()
		for i := range n + 10 {
			key := fmt.Sprintf("10.0.%d.%d", i/256, i%256)
			w, wok, werr := db.LiveDocument(ctx, vigil.ViewIndicators, "test.ioc", key)
			r, rok, rerr := ro.LiveDocument(ctx, vigil.ViewIndicators, "test.ioc", key)
			if werr != nil || rerr != nil {
				t.Fatalf("%s: %s: %v, %v", stage, key, werr, rerr)
			}
			ts, live := want(i)
			if wok != live || rok != live {
				t.Fatalf("%s: %s: writer found %v, reader %v; want %v", stage, key, wok, rok, live)
			}
			if !live {
				continue
			}
			if string(w.Source) != string(r.Source) || !w.Timestamp.Equal(r.Timestamp) || !w.ExpiresAt.Equal(r.ExpiresAt) ||
				w.Key != key || w.View != vigil.ViewIndicators || w.Dataset != "test.ioc" {
				t.Fatalf("%s: %s: writer %+v\nreader %+v", stage, key, w, r)
			}
			if d := doc(i, ts, far); string(w.Source) != string(d.Source) || !w.Timestamp.Equal(ts) || !w.ExpiresAt.Equal(far) {
				t.Fatalf("%s: %s: got %s at %v, want %s", stage, key, w.Source, w.Timestamp, d.Source)
			}
		}
	}
	write(0, n, t0, far)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("merged", func(i int) (time.Time, bool) { return t0, i < n })

	t1 := t0.Add(time.Hour)
	write(n/3, n/2, t1, far) // a rewrite of some keys
	write(n, n+5, t1, far)   // and new keys
	// Until the merge, a key's merged document is read (a key found only
	// among the waiting documents is read there).
	check("rewritten, not merged", func(i int) (time.Time, bool) {
		if i >= n {
			return t1, i < n+5
		}
		return t0, true
	})
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rewritten := func(i int) (time.Time, bool) {
		if i >= n/3 && i < n/2 || i >= n {
			return t1, i < n+5
		}
		return t0, true
	}
	check("rewritten", rewritten)

	// Past the retention, the raw segments go and the live documents move
	// to a compacted segment.
	c.Advance(48 * time.Hour)
	ps, err := db.Prune(ctx)
	if err != nil || ps.RawSegments == 0 {
		t.Fatalf("prune: %+v, %v", ps, err)
	}
	check("pruned", rewritten)
}

// TestLiveDocumentAt: Live gives each merged document the Loc of its
// version, and LiveDocumentAt reads that version back, through the writer
// and a reader alike, until its segment is pruned.
func TestLiveDocumentAt(t *testing.T) {
	c := &clock{t: t0}
	db, ro := openWriterReader(t, c)
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	pad := strings.Repeat("y", 300)
	doc := func(i int, ts time.Time) vigil.Document {
		d := ioc(fmt.Sprintf("10.1.%d.%d", i/256, i%256), ts, far)
		d.Source = fmt.Appendf(nil, `{"threat":{"indicator":{"name":%q,"description":"%s %d"}}}`, d.Key, pad, ts.Unix())
		return d
	}
	const n = 1200 // a dozen blocks
	write := func(from, to int, ts time.Time) {
		t.Helper()
		var docs []vigil.Document
		for i := from; i < to; i++ {
			docs = append(docs, doc(i, ts))
		}
		if _, err := db.WritePage(ctx, vigil.Page{Source: "test", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
	}
	live := func() map[string]vigil.Document {
		t.Helper()
		m := map[string]vigil.Document{}
		if err := db.Live(ctx, vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
			d.Source = bytes.Clone(d.Source)
			m[d.Key] = d
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return m
	}
	readAt := func(stage string, loc vigil.Loc) (string, bool) {
		t.Helper()
		w, wok, werr := db.LiveDocumentAt(ctx, loc)
		r, rok, rerr := ro.LiveDocumentAt(ctx, loc)
		if werr != nil || rerr != nil || wok != rok || string(w) != string(r) {
			t.Fatalf("%s: %+v: writer %q %v %v, reader %q %v %v", stage, loc, w, wok, werr, r, rok, rerr)
		}
		return string(w), wok
	}

	write(0, n, t0)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	write(n, n+3, t0) // waiting, not merged: no Loc
	m := live()
	if len(m) != n+3 {
		t.Fatalf("live holds %d documents, want %d", len(m), n+3)
	}
	blocks := map[uint32]bool{}
	for i := range n + 3 {
		d := m[doc(i, t0).Key]
		if i >= n {
			if d.Loc != (vigil.Loc{}) {
				t.Errorf("waiting document %s has Loc %+v", d.Key, d.Loc)
			}
			continue
		}
		blocks[d.Loc.Block] = true
		if src, ok := readAt("merged", d.Loc); !ok || src != string(d.Source) {
			t.Fatalf("merged: %s at %+v: %q, %v; want %s", d.Key, d.Loc, src, ok, d.Source)
		}
	}
	if len(blocks) < 5 {
		t.Fatalf("the documents lie in %d blocks; the test wants several", len(blocks))
	}
	if _, ok := readAt("zero", vigil.Loc{}); ok {
		t.Error("a zero Loc was read")
	}
	bad := m[doc(0, t0).Key].Loc
	bad.Len = 1 << 30
	if _, ok := readAt("past its block", bad); ok {
		t.Error("a Loc past its block was read")
	}

	// A rewritten key: the old Loc still reads the old version, the new
	// one the new.
	t1 := t0.Add(time.Hour)
	write(0, 10, t1)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	m2 := live()
	for i := range 10 {
		key := doc(i, t0).Key
		if src, ok := readAt("old version", m[key].Loc); !ok || src != string(doc(i, t0).Source) {
			t.Fatalf("old version of %s: %q, %v", key, src, ok)
		}
		if src, ok := readAt("new version", m2[key].Loc); !ok || src != string(doc(i, t1).Source) {
			t.Fatalf("new version of %s: %q, %v", key, src, ok)
		}
	}

	// Past the retention the raw segments go (the live documents move to
	// a compacted one): the old Locs read nothing, the new ones the same.
	c.Advance(48 * time.Hour)
	if ps, err := db.Prune(ctx); err != nil || ps.RawSegments == 0 {
		t.Fatalf("prune: %+v, %v", ps, err)
	}
	for _, d := range m {
		if d.Loc == (vigil.Loc{}) {
			continue
		}
		if _, ok := readAt("pruned", d.Loc); ok {
			t.Fatalf("%s: read at %+v after its segment was pruned", d.Key, d.Loc)
		}
	}
	for key, d := range live() {
		if src, ok := readAt("compacted", d.Loc); !ok || src != string(d.Source) {
			t.Fatalf("compacted: %s at %+v: %q, %v", key, d.Loc, src, ok)
		}
	}
}
