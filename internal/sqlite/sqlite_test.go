package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), dir, sqlite.Options{Clock: c, Retention: retention})
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

func TestNewestTimestampWins(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 5*24*time.Hour)
	ctx := t.Context()
	far := t0.Add(90 * 24 * time.Hour)
	newer := ioc("1.2.3.4", t0.Add(-time.Hour), far)
	older := ioc("1.2.3.4", t0.Add(-2*time.Hour), far)
	st, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{newer}})
	if err != nil || st.Live != 1 {
		t.Fatalf("first write: %+v %v", st, err)
	}
	st, err = db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{older}})
	if err != nil || st.Stale != 1 || st.Live != 0 {
		t.Fatalf("older write: %+v %v", st, err)
	}
	got := liveKeys(t, db, vigil.ViewIndicators)
	if got["1.2.3.4"] != string(newer.Source) {
		t.Fatalf("live view kept %s, want the newer document", got["1.2.3.4"])
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
	c.Advance(time.Hour) // a's deleted_at is now: it has passed at that instant
	if got := liveKeys(t, db, vigil.ViewIndicators); len(got) != 1 || got["b"] == "" {
		t.Fatalf("after 1h: %v", got)
	}
	// An older copy of the expired IOC cannot bring it back: the tombstone
	// is newer.
	old := ioc("a", t0.Add(-time.Minute), t0.Add(10*time.Hour))
	st, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{old}})
	if err != nil || st.Stale != 1 {
		t.Fatalf("resurrection write: %+v %v", st, err)
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

func TestRetentionPrunesRawSegments(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 5*24*time.Hour)
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	for day := range 7 {
		docs := []vigil.Document{ioc(fmt.Sprintf("10.0.0.%d", day), c.Now(), far), ioc(fmt.Sprintf("10.0.1.%d", day), c.Now(), far)}
		if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
		c.Advance(24 * time.Hour)
	}
	// Now t0+7d: segments from day 0 and day 1 are older than 5 days.
	ps, err := db.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps.RawSegments != 2 || ps.RawDocs != 4 {
		t.Fatalf("prune %+v, want 2 segments, 4 docs", ps)
	}
	n := 0
	if err := db.RawDocs(ctx, "", func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Fatalf("raw docs left %d, want 10", n)
	}
	// Live rows are not raw records: pruning leaves them.
	if got := len(liveKeys(t, db, vigil.ViewIndicators)); got != 14 {
		t.Fatalf("live %d, want 14", got)
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
