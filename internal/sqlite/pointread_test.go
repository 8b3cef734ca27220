package sqlite_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// TestLiveDocumentWriterMatchesReader: a writer reads documents by its
// fast path (two primary-key reads, with the datasets' ids and the
// segments' block starts kept in memory), a read-only store by the general
// one; both give the same documents over segments of many blocks, after a
// rewrite of some keys, after the raw segments are compacted and pruned,
// and for keys not merged yet or not stored.
func TestLiveDocumentWriterMatchesReader(t *testing.T) {
	c := &clock{t: t0}
	db, dir := openWith(t, c, sqlite.Options{Retention: 24 * time.Hour, MergeDocs: -1})
	ctx := t.Context()
	ro, err := sqlite.Open(ctx, dir, sqlite.Options{ReadOnly: true, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
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
