package importer

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// testNow is the import time of the tests.
var testNow = time.Date(2024, 6, 1, 12, 0, 0, 250_000_000, time.UTC)

// testClock is a clock the tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// openStore opens a real store in a temporary directory on clock.
func openStore(t testing.TB, clock vigil.Clock) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testImporter returns an Importer on db with the test defaults, changed by
// edit, and the bad lines it reports.
func testImporter(t testing.TB, db vigil.Store, clock vigil.Clock, edit func(*Options)) (*Importer, *[]BadLine) {
	t.Helper()
	bad := &[]BadLine{}
	opts := Options{Store: db, Clock: clock, Provider: "vigil import", ExpirationDuration: "90d", OnBad: func(b BadLine) { *bad = append(*bad, b) }}
	if edit != nil {
		edit(&opts)
	}
	im, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return im, bad
}

// importText imports content as a file named name and syncs the store.
func importText(t testing.TB, im *Importer, db vigil.Store, name, content string) FileStats {
	t.Helper()
	st, err := im.Read(t.Context(), name, strings.NewReader(content))
	if err != nil {
		t.Fatalf("import %s: %v", name, err)
	}
	if err := db.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}

// live returns the live documents of the import dataset in view, by key.
func live(t testing.TB, db vigil.Store, view vigil.View) map[string]vigil.Document {
	t.Helper()
	out := map[string]vigil.Document{}
	err := db.Live(context.Background(), vigil.LiveFilter{View: view, Dataset: Dataset}, func(d vigil.Document) error {
		d.Source = append([]byte(nil), d.Source...)
		out[d.Key] = d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
