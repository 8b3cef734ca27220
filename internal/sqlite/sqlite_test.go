package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// clock is a hand-moved clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var t0 = time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, c *clock, retention time.Duration) (*sqlite.DB, string) {
	t.Helper()
	return openWith(t, c, sqlite.Options{Retention: retention})
}

// openWith opens a store in a new directory with opts and the clock c.
func openWith(t *testing.T, c *clock, opts sqlite.Options) (*sqlite.DB, string) {
	t.Helper()
	dir := t.TempDir()
	opts.Clock = c
	db, err := sqlite.Open(t.Context(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, dir
}

func ioc(key string, ts, exp time.Time) vigil.Document {
	return vigil.Document{
		Dataset: "test.ioc", View: vigil.ViewIndicators, Key: key, Type: "ipv4-addr",
		Timestamp: ts, ExpiresAt: exp,
		Source: fmt.Appendf(nil, `{"threat":{"indicator":{"name":%q}},"@timestamp":%q}`, key, ts.Format(time.RFC3339Nano)),
	}
}

func liveKeys(t *testing.T, db *sqlite.DB, view vigil.View) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := db.Live(t.Context(), vigil.LiveFilter{View: view}, func(d vigil.Document) error {
		out[d.Key] = string(d.Source)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNewestTimestampWins writes one key in a sequence of pages, merging
// where a case says, and checks the live view before the last merge (the
// overlay of the pages not merged yet) and after it.
func TestNewestTimestampWins(t *testing.T) {
	far := t0.Add(90 * 24 * time.Hour)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	doc := func(h int, tag string) vigil.Document {
		d := ioc("1.2.3.4", at(h), far)
		d.Source = fmt.Appendf(nil, `{"h":%d,"tag":%q}`, h, tag)
		return d
	}
	sync := vigil.Document{} // in a page list: merge here
	cases := []struct {
		name  string
		pages [][]vigil.Document
		want  string // the tag of the document that wins
		// what the last merge counted
		superseded, live, stale int
	}{
		{"newer then older, two merges", [][]vigil.Document{{doc(2, "a")}, {sync}, {doc(1, "b")}}, "a", 0, 0, 1},
		{"older then newer, two merges", [][]vigil.Document{{doc(1, "a")}, {sync}, {doc(2, "b")}}, "b", 0, 1, 0},
		{"newer then older, one batch", [][]vigil.Document{{doc(2, "a")}, {doc(1, "b")}}, "a", 1, 1, 0},
		{"older then newer, one batch", [][]vigil.Document{{doc(1, "a")}, {doc(2, "b")}}, "b", 1, 1, 0},
		{"both in one page", [][]vigil.Document{{doc(2, "a"), doc(1, "b")}}, "a", 1, 1, 0},
		{"tie in one batch: the later", [][]vigil.Document{{doc(1, "a")}, {doc(1, "b")}}, "b", 1, 1, 0},
		{"tie across merges: the later", [][]vigil.Document{{doc(1, "a")}, {sync}, {doc(1, "b")}}, "b", 0, 1, 0},
		{"older in a later batch than the newest", [][]vigil.Document{{doc(3, "a")}, {doc(1, "b")}, {sync}, {doc(2, "c")}, {doc(1, "d")}}, "a", 1, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &clock{t: t0}
			db, dir := openWith(t, c, sqlite.Options{MergeDocs: -1})
			ctx := t.Context()
			for _, docs := range tc.pages {
				if docs[0].Key == "" {
					if err := db.Sync(ctx); err != nil {
						t.Fatal(err)
					}
					continue
				}
				st, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs})
				if err != nil || st.Live != len(docs) || st.Stale != 0 {
					t.Fatalf("write: %+v %v", st, err)
				}
			}
			want := fmt.Sprintf(`"tag":%q`, tc.want)
			check := func(when string, db *sqlite.DB) {
				t.Helper()
				got := liveKeys(t, db, vigil.ViewIndicators)
				if len(got) != 1 || !strings.Contains(got["1.2.3.4"], want) {
					t.Fatalf("%s: live view %v, want the document %s", when, got, tc.want)
				}
			}
			check("before the merge", db)
			ro, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			check("before the merge, read-only", ro)
			ms, err := db.Materialize(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ms.Superseded != tc.superseded || ms.Live != tc.live || ms.Stale != tc.stale {
				t.Fatalf("merge %+v, want %d superseded, %d live, %d stale", ms, tc.superseded, tc.live, tc.stale)
			}
			check("after the merge", db)
			check("after the merge, read-only", ro)
		})
	}
}

func TestPipelineErrorsAndUnkeyedStayRaw(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, time.Hour)
	bad := ioc("5.6.7.8", t0, t0.Add(time.Hour))
	bad.Error = "bad ip"
	unkeyed := ioc("", t0, t0.Add(time.Hour))
	good := ioc("1.1.1.1", t0, t0.Add(time.Hour))
	st, err := db.WritePage(t.Context(), vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{bad, unkeyed, good}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Raw != 3 || st.Rejected != 1 || st.Unkeyed != 1 || st.Live != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := liveKeys(t, db, vigil.ViewIndicators); len(got) != 1 || got["1.1.1.1"] == "" {
		t.Fatalf("live view %v", got)
	}
	var raw []string
	if err := db.RawDocs(t.Context(), "test.ioc", func(d []byte) error { raw = append(raw, string(d)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 3 || raw[0] != string(bad.Source) {
		t.Fatalf("raw docs %q", raw)
	}
}

func TestExpiryWithInjectedClock(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 24*time.Hour)
	ctx := t.Context()
	docs := []vigil.Document{
		ioc("a", t0, t0.Add(time.Hour)),
		ioc("b", t0, t0.Add(3*time.Hour)),
	}
	if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
		t.Fatal(err)
	}
	if n := len(liveKeys(t, db, vigil.ViewIndicators)); n != 2 {
		t.Fatalf("live %d, want 2", n)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour) // a's deleted_at is now: it has passed at that instant
	if got := liveKeys(t, db, vigil.ViewIndicators); len(got) != 1 || got["b"] == "" {
		t.Fatalf("after 1h: %v", got)
	}
	// An older copy of the expired IOC cannot bring it back: the tombstone
	// is newer. Not before the merge either.
	old := ioc("a", t0.Add(-time.Minute), t0.Add(10*time.Hour))
	if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{old}}); err != nil {
		t.Fatal(err)
	}
	if got := liveKeys(t, db, vigil.ViewIndicators); len(got) != 1 || got["b"] == "" {
		t.Fatalf("after the resurrection write: %v", got)
	}
	if ms, err := db.Materialize(ctx); err != nil || ms.Stale != 1 {
		t.Fatalf("resurrection merge: %+v %v", ms, err)
	}
	c.Advance(3 * time.Hour)
	if got := liveKeys(t, db, vigil.ViewIndicators); len(got) != 0 {
		t.Fatalf("after 4h: %v", got)
	}
	// Tombstones are removed once the retention has also passed.
	ps, err := db.Prune(ctx)
	if err != nil || ps.Expired != 0 {
		t.Fatalf("early prune: %+v %v", ps, err)
	}
	c.Advance(24 * time.Hour)
	ps, err = db.Prune(ctx)
	if err != nil || ps.Expired != 2 {
		t.Fatalf("prune: %+v %v", ps, err)
	}
}

// TestRetentionPrunesRawSegments: a raw segment goes once it is older than
// the retention; a document of it that is still its key's live, unexpired
// document is first copied into a compacted segment, so the live view keeps
// it for as long as it is live, while the raw records go.
func TestRetentionPrunesRawSegments(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 5*24*time.Hour)
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	write := func(docs ...vigil.Document) {
		t.Helper()
		if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
	}
	for day := range 7 {
		switch day {
		case 0: // replaced on day 2
			write(ioc("10.0.0.1", c.Now(), far), ioc("10.0.0.2", c.Now(), far))
		case 1: // still live; expired by the prune
			write(ioc("10.0.1.1", c.Now(), far), ioc("10.0.1.2", c.Now(), far))
			write(ioc("10.0.2.1", c.Now(), t0.Add(3*24*time.Hour)), ioc("10.0.2.2", c.Now(), t0.Add(3*24*time.Hour)))
		case 2:
			write(ioc("10.0.0.1", c.Now(), far), ioc("10.0.0.2", c.Now(), far))
		default:
			write(ioc(fmt.Sprintf("10.0.%d.1", day), c.Now(), far), ioc(fmt.Sprintf("10.0.%d.2", day), c.Now(), far))
		}
		c.Advance(24 * time.Hour)
	}
	// Now t0+7d: the segments of days 0 and 1 are older than 5 days.
	ps, err := db.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps.RawSegments != 3 || ps.RawDocs != 6 || ps.Compacted != 2 {
		t.Fatalf("prune %+v, want 3 segments (6 docs) removed, 2 live documents compacted", ps)
	}
	n := 0
	if err := db.RawDocs(ctx, "", func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Fatalf("raw docs left %d, want 10", n)
	}
	want := []string{"10.0.0.1", "10.0.0.2", "10.0.1.1", "10.0.1.2", "10.0.3.1", "10.0.3.2", "10.0.4.1", "10.0.4.2", "10.0.5.1", "10.0.5.2", "10.0.6.1", "10.0.6.2"}
	var got []string
	err = db.Live(ctx, vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
		if !json.Valid(d.Source) {
			t.Errorf("%s: document %q", d.Key, d.Source)
		}
		got = append(got, d.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("live %v, want %v", got, want)
	}
	// A compacted document reads as any other; a second prune copies
	// nothing again.
	d, ok, err := db.LiveDocument(ctx, vigil.ViewIndicators, "test.ioc", "10.0.1.1")
	if err != nil || !ok || string(d.Source) != string(ioc("10.0.1.1", t0.Add(24*time.Hour), far).Source) {
		t.Fatalf("compacted document: %q %v %v", d.Source, ok, err)
	}
	if ps, err := db.Prune(ctx); err != nil || ps.Compacted != 0 || ps.RawSegments != 0 {
		t.Fatalf("second prune %+v, %v", ps, err)
	}
}

func TestCursorSavedWithPage(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, time.Hour)
	ctx := t.Context()
	if cur, err := db.Cursor(ctx, "tc", "test.ioc"); err != nil || cur != nil {
		t.Fatalf("empty cursor: %q %v", cur, err)
	}
	if _, err := db.WritePage(ctx, vigil.Page{Source: "tc", Dataset: "test.ioc", Cursor: []byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.WritePage(ctx, vigil.Page{Source: "tc", Dataset: "test.ioc", Cursor: []byte(`{"a":2}`), Docs: []vigil.Document{ioc("x", t0, time.Time{})}}); err != nil {
		t.Fatal(err)
	}
	// A cancelled write changes nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.WritePage(cctx, vigil.Page{Source: "tc", Dataset: "test.ioc", Cursor: []byte(`{"a":3}`)}); err == nil {
		t.Fatal("write with a cancelled context succeeded")
	}
	db.Close()
	db2, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	cur, err := db2.Cursor(ctx, "tc", "test.ioc")
	if err != nil || string(cur) != `{"a":2}` {
		t.Fatalf("cursor %q %v", cur, err)
	}
	if _, err := db2.WritePage(ctx, vigil.Page{Source: "tc", Dataset: "x"}); err == nil {
		t.Fatal("read-only store accepted a write")
	}
}

func TestReadOnlyOpenOfEmptyDir(t *testing.T) {
	_, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{ReadOnly: true})
	if !errors.Is(err, sqlite.ErrNoData) || !strings.Contains(err.Error(), "vigil pull") {
		t.Fatalf("err = %v", err)
	}
}

func TestReaderWhileWriterHoldsDatabase(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, time.Hour)
	ctx := t.Context()
	if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{ioc("k", t0, time.Time{})}}); err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	// Writes go on while the reader reads.
	done := make(chan error)
	go func() {
		for i := range 50 {
			if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{ioc(fmt.Sprint("k", i), t0, time.Time{})}}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 20 {
		if len(liveKeys(t, ro, vigil.ViewIndicators)) == 0 {
			t.Fatal("reader saw an empty view")
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// view returns every document of a view, filtered, as Live gives them: in
// order, with every field.
func view(t *testing.T, db *sqlite.DB, f vigil.LiveFilter) []string {
	t.Helper()
	var out []string
	err := db.Live(t.Context(), f, func(d vigil.Document) error {
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s", d.View, d.Dataset, d.Key, d.Type,
			d.Timestamp.Format(time.RFC3339Nano), d.ExpiresAt.Format(time.RFC3339Nano), d.Source))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// crashPages are pages of keys written again and again, out of order, some
// documents expired, some pipeline errors, two datasets and two views.
func crashPages() []vigil.Page {
	var pages []vigil.Page
	for p := range 12 {
		var docs []vigil.Document
		for i := range 40 {
			k := (p*29 + i*7) % 150
			ts := t0.Add(time.Duration((k*13+p*5)%48) * time.Hour)
			d := ioc(fmt.Sprintf("10.0.%d.%d", k/100, k%100), ts, ts.Add(time.Duration(k%30)*time.Hour))
			d.Source = fmt.Appendf(nil, `{"k":%d,"page":%d,"i":%d}`, k, p, i)
			switch {
			case i%9 == 0:
				d.Error = "bad"
			case i%5 == 0:
				d.Dataset, d.Type = "test.other", "domain"
			case i%7 == 0:
				d.View, d.Dataset = vigil.ViewAlerts, "test.alert"
			}
			docs = append(docs, d)
		}
		pages = append(pages, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs, Cursor: fmt.Appendf(nil, `{"page":%d}`, p)})
	}
	return pages
}

func allViews(t *testing.T, db *sqlite.DB) []string {
	t.Helper()
	var out []string
	for _, v := range vigil.Views {
		out = append(out, view(t, db, vigil.LiveFilter{View: v})...)
	}
	return out
}

// countdown is a context that reports itself cancelled from the n-th call
// of Err on, so that a test can interrupt a merge between any two of its
// statements.
type countdown struct {
	context.Context
	n atomic.Int64
}

func (c *countdown) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return c.Context.Err()
}

// TestCrashConverges kills the writer (closes it without Sync, or cancels
// a merge at every point it can be interrupted), reopens the store, and
// checks that it ends with the live view of a store that never crashed,
// which merged after every page.
func TestCrashConverges(t *testing.T) {
	c := &clock{t: t0.Add(20 * time.Hour)}
	ctx := t.Context()
	pages := crashPages()
	ref, _ := openWith(t, c, sqlite.Options{})
	for _, p := range pages {
		if _, err := ref.WritePage(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := ref.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := allViews(t, ref)
	if len(want) < 50 {
		t.Fatalf("reference view has %d documents", len(want))
	}

	// written writes the pages into a new store with the options and
	// closes it without Sync: a writer killed between WritePage and the
	// merge (or during one, which rolls it back).
	written := func(t *testing.T, opts sqlite.Options) string {
		dir := t.TempDir()
		opts.Clock = c
		db, err := sqlite.Open(ctx, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pages {
			if _, err := db.WritePage(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		// Readers see every page before any merge.
		if got := allViews(t, db); !slices.Equal(got, want) {
			t.Fatalf("before the merge: %d documents differ from the reference's %d:\n%s", len(got), len(want), diff(got, want))
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	reopen := func(t *testing.T, dir string, opts sqlite.Options) *sqlite.DB {
		opts.Clock = c
		db, err := sqlite.Open(ctx, dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	check := func(t *testing.T, db *sqlite.DB) {
		t.Helper()
		if got := allViews(t, db); !slices.Equal(got, want) {
			t.Fatalf("%d documents differ from the reference's %d:\n%s", len(got), len(want), diff(got, want))
		}
		stats, err := db.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stats {
			if s.Pending != 0 {
				t.Fatalf("%s: %d documents pending after the reopen", s.Dataset, s.Pending)
			}
		}
	}

	cases := []struct {
		name  string
		write sqlite.Options // the writer that crashes
		open  sqlite.Options // the writer that reopens
	}{
		{"no merge before the crash", sqlite.Options{MergeDocs: -1}, sqlite.Options{}},
		{"automatic merges before the crash", sqlite.Options{MergeDocs: 70}, sqlite.Options{}},
		{"reopened with small batches", sqlite.Options{MergeDocs: -1}, sqlite.Options{MergeDocs: 50}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check(t, reopen(t, written(t, tc.write), tc.open))
		})
	}

	// A writer killed during the merge of Open or of Sync, at each point
	// where it checks its context: the next writer converges.
	crashed := written(t, sqlite.Options{MergeDocs: -1})
	body, err := os.ReadFile(filepath.Join(crashed, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, mergeDocs := range []int{50, 1000} {
		for n := int64(0); ; n++ {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, sqlite.FileName), body, 0o600); err != nil {
				t.Fatal(err)
			}
			cd := &countdown{Context: ctx}
			cd.n.Store(n)
			opts := sqlite.Options{Clock: c, MergeDocs: mergeDocs}
			db, err := sqlite.Open(cd, dir, opts)
			if err == nil {
				// n checks were enough for Open to merge everything.
				db.Close()
				check(t, reopen(t, dir, sqlite.Options{}))
				t.Logf("batches of %d: interrupted at each of %d points", mergeDocs, n)
				break
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("open interrupted after %d checks: %v", n, err)
			}
			check(t, reopen(t, dir, sqlite.Options{}))
			if n > 1000 {
				t.Fatal("the merge never completes")
			}
		}
	}
}

// diff shows the first lines that differ.
func diff(got, want []string) string {
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			fmt.Fprintf(&b, "%d:\n  got  %s\n  want %s\n", i, g, w)
			if b.Len() > 2000 {
				break
			}
		}
	}
	return b.String()
}

// TestLiveOverlaysUnmergedPages checks that Live gives the same answer
// before and after the merge, for every filter.
func TestLiveOverlaysUnmergedPages(t *testing.T) {
	c := &clock{t: t0.Add(20 * time.Hour)}
	ctx := t.Context()
	pages := crashPages()
	filters := []vigil.LiveFilter{
		{View: vigil.ViewIndicators},
		{View: vigil.ViewIndicators, Dataset: "test.other"},
		{View: vigil.ViewIndicators, Type: "domain"},
		{View: vigil.ViewIndicators, Type: "ipv4-addr", Limit: 7},
		{View: vigil.ViewIndicators, Limit: 60},
		{View: vigil.ViewIndicators, Dataset: "test.ioc", Limit: 1},
		{View: vigil.ViewAlerts},
		{View: vigil.ViewVulnerabilities},
	}
	cases := []struct {
		name   string
		merged int // pages merged before the rest are written
	}{
		{"nothing merged", 0},
		{"half merged", 6},
		{"all but one merged", 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, dir := openWith(t, c, sqlite.Options{MergeDocs: -1})
			for i, p := range pages {
				if i == tc.merged {
					if err := db.Sync(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := db.WritePage(ctx, p); err != nil {
					t.Fatal(err)
				}
			}
			ro, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c, ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			before := make([][]string, len(filters))
			for i, f := range filters {
				before[i] = view(t, ro, f)
			}
			if err := db.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			for i, f := range filters {
				after := view(t, ro, f)
				if !slices.Equal(before[i], after) {
					t.Errorf("%+v: before the merge %d documents, after %d:\n%s", f, len(before[i]), len(after), diff(before[i], after))
				}
				if f.Limit > 0 && len(after) != f.Limit {
					t.Errorf("%+v: %d documents, want the limit", f, len(after))
				}
			}
		})
	}
}

func TestMergeRunsAtThreshold(t *testing.T) {
	c := &clock{t: t0}
	db, _ := openWith(t, c, sqlite.Options{MergeDocs: 100})
	ctx := t.Context()
	pending := func() (live, pending int64) {
		stats, err := db.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stats {
			live += s.Live
			pending += s.Pending
		}
		return live, pending
	}
	far := t0.Add(24 * time.Hour)
	for p := range 4 {
		var docs []vigil.Document
		for i := range 30 {
			docs = append(docs, ioc(fmt.Sprintf("k%d-%d", p, i), t0, far))
		}
		if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
		live, pend := pending()
		want := [][2]int64{{0, 30}, {0, 60}, {0, 90}, {120, 0}}[p]
		if live != want[0] || pend != want[1] {
			t.Fatalf("after page %d: %d live rows, %d pending, want %v", p, live, pend, want)
		}
	}
}

// TestPruneKeepsUnmergedSegments: Prune merges first, and a segment is
// never removed before its documents are merged.
func TestPruneKeepsUnmergedSegments(t *testing.T) {
	c := &clock{t: t0}
	db, _ := openWith(t, c, sqlite.Options{MergeDocs: -1, Retention: time.Hour})
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{ioc("a", t0, far), ioc("b", t0, far)}}); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Hour)
	raw := func() int {
		n := 0
		if err := db.RawDocs(ctx, "", func([]byte) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The merge fails: nothing is pruned.
	cd := &countdown{Context: ctx}
	if _, err := db.Prune(cd); !errors.Is(err, context.Canceled) {
		t.Fatalf("prune with a failing merge: %v", err)
	}
	if n := raw(); n != 2 {
		t.Fatalf("%d raw documents left after a failed prune, want 2", n)
	}
	// Merged, the raw segment goes; its live documents stay in the view.
	ps, err := db.Prune(ctx)
	if err != nil || ps.RawSegments != 1 || ps.RawDocs != 2 || ps.Compacted != 2 {
		t.Fatalf("prune: %+v %v", ps, err)
	}
	if n := raw(); n != 0 {
		t.Fatalf("%d raw documents left", n)
	}
	if got := liveKeys(t, db, vigil.ViewIndicators); len(got) != 2 {
		t.Fatalf("live view %v", got)
	}
}
