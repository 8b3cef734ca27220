package sqlite_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// TestMigrateLiveV1: a database of the first schema, whose live table held
// a copy of each document, opens with every live row, tombstone and waiting
// segment in the new live view.
func TestMigrateLiveV1(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	schema, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	day := int64(24 * time.Hour / time.Millisecond)
	now := t0.UnixMilli()
	stmts := []string{string(schema),
		`INSERT INTO live_datasets (id, view, dataset) VALUES (1, 'indicators', 'test.ioc'), (2, 'alerts', 'test.alert')`,
		`PRAGMA user_version = 1`,
	}
	for _, q := range stmts {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	rows := []struct {
		ds       int
		key, doc string
		ts, exp  int64
	}{
		{1, "10.0.0.1", `{"k":1}`, now - day, now + 30*day},
		{1, "10.0.0.2", `{"k":2}`, now - day, now - 1}, // a tombstone
		{1, "10.0.0.3", `{"k":3}`, now - day, now + 30*day},
		{2, "alert-1", `{"a":1}`, now - day, now + 100*day},
	}
	for _, r := range rows {
		if _, err := old.ExecContext(ctx, `INSERT INTO live (ds, key, type, ts, expires_at, updated_at, doc) VALUES (?, ?, 'ipv4-addr', ?, ?, ?, ?)`,
			r.ds, r.key, r.ts, r.exp, now, []byte(r.doc)); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	c := &clock{t: t0}
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := liveKeys(t, db, vigil.ViewIndicators)
	if len(got) != 2 || got["10.0.0.1"] != `{"k":1}` || got["10.0.0.3"] != `{"k":3}` {
		t.Fatalf("indicators after the migration: %v", got)
	}
	if got := liveKeys(t, db, vigil.ViewAlerts); len(got) != 1 || got["alert-1"] != `{"a":1}` {
		t.Fatalf("alerts after the migration: %v", got)
	}
	// The tombstone still keeps an older copy out.
	if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: []vigil.Document{
		ioc("10.0.0.2", t0.Add(-2*24*time.Hour), t0.Add(24*time.Hour)),
	}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := liveKeys(t, db, vigil.ViewIndicators); len(got) != 2 {
		t.Fatalf("an older copy came back over a migrated tombstone: %v", got)
	}
}

// TestLiveEachKeyOnceAcrossMerges: a key updated in later batches shows once,
// with its newest document, whichever merge wrote it; an older copy that
// arrives later changes nothing.
func TestLiveEachKeyOnceAcrossMerges(t *testing.T) {
	c := &clock{t: t0}
	db, _ := openWith(t, c, sqlite.Options{MergeDocs: -1})
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	steps := []struct {
		ts   time.Time
		want time.Time // the key's live @timestamp after the step
	}{
		{t0, t0},
		{t0.Add(time.Hour), t0.Add(time.Hour)},
		{t0.Add(-time.Hour), t0.Add(time.Hour)}, // older: stale
		{t0.Add(2 * time.Hour), t0.Add(2 * time.Hour)},
		{t0.Add(2 * time.Hour), t0.Add(2 * time.Hour)}, // as new: replaces
	}
	for i, s := range steps {
		docs := []vigil.Document{ioc("10.0.0.1", s.ts, far), ioc(fmt.Sprintf("10.0.9.%d", i), s.ts, far)}
		if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		err := db.Live(ctx, vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
			if d.Key == "10.0.0.1" {
				n++
				if !d.Timestamp.Equal(s.want) {
					t.Errorf("step %d: live @timestamp %v, want %v", i, d.Timestamp, s.want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("step %d: the key shows %d times", i, n)
		}
	}
}

// TestLiveTransient reads a live view of several segments with and
// without LiveFilter.Transient: the same documents, each Source copied
// while fn runs (the store may reuse it after).
func TestLiveTransient(t *testing.T) {
	c := &clock{t: t0}
	db, _ := openWith(t, c, sqlite.Options{})
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	for p := range 5 {
		var docs []vigil.Document
		// Segments smaller and smaller: each later one is decoded into
		// the buffer of a larger one before it.
		for i := range 50 + 30*(4-p) {
			docs = append(docs, ioc(fmt.Sprintf("10.%d.0.%d", p, i), t0, far))
		}
		if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	read := func(transient bool) map[string]string {
		got := map[string]string{}
		err := db.Live(ctx, vigil.LiveFilter{View: vigil.ViewIndicators, Transient: transient}, func(d vigil.Document) error {
			got[d.Key] = string(d.Source) + " " + d.Type + " " + d.Timestamp.String()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	plain, transient := read(false), read(true)
	if len(plain) != 5*50+30*10 {
		t.Fatalf("%d documents, want %d", len(plain), 5*50+30*10)
	}
	for k, v := range plain {
		if transient[k] != v {
			t.Fatalf("%s: transient read %q, want %q", k, transient[k], v)
		}
	}
	if len(transient) != len(plain) {
		t.Fatalf("transient read %d documents, want %d", len(transient), len(plain))
	}
}
