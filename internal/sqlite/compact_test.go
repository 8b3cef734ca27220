package sqlite_test

import (
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// segments counts the store's raw and compacted segments, reading its file
// with a connection of its own.
func segments(t *testing.T, dir string) (raw, compacted int) {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.QueryRow(`SELECT count(*) FILTER (WHERE compacted = 0), count(*) FILTER (WHERE compacted = 1) FROM raw_segments`).Scan(&raw, &compacted); err != nil {
		t.Fatal(err)
	}
	return raw, compacted
}

// TestCompactionPacksSegments: the live documents of the raw segments past
// the retention are packed into few compacted segments, and a compacted
// segment that later pages have made sparse is packed again with them, so
// the number of segments stays bounded while the live view stays whole.
func TestCompactionPacksSegments(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	want := map[string]string{}
	writeKeys := func(from, to int) {
		t.Helper()
		for page := from; page < to; page += 100 {
			var docs []vigil.Document
			for i := page; i < min(page+100, to); i++ {
				d := ioc(fmt.Sprintf("10.1.%d.%d", i/256, i%256), c.Now(), far)
				want[d.Key] = string(d.Source)
				docs = append(docs, d)
			}
			if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
				t.Fatal(err)
			}
		}
	}
	prune := func() vigil.PruneStats {
		t.Helper()
		ps, err := db.Prune(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := liveKeys(t, db, vigil.ViewIndicators); !maps.Equal(got, want) {
			t.Fatalf("live view after prune: %d keys, want %d", len(got), len(want))
		}
		return ps
	}

	// Ten pages of 100 documents, all live: past the retention, they are
	// packed into one compacted segment.
	writeKeys(0, 1000)
	c.Advance(48 * time.Hour)
	if ps := prune(); ps.RawSegments != 10 || ps.Compacted != 1000 {
		t.Fatalf("first prune %+v, want 10 raw segments removed, 1000 documents compacted", ps)
	}
	if raw, comp := segments(t, dir); raw != 0 || comp != 1 {
		t.Fatalf("after the first prune: %d raw and %d compacted segments, want 0 and 1", raw, comp)
	}
	// A second prune has nothing to do: the compacted segment is whole.
	if ps := prune(); ps.Compacted != 0 || ps.RawSegments != 0 {
		t.Fatalf("second prune %+v", ps)
	}

	// 800 of the keys come again: the compacted segment keeps 200 live
	// documents of 1000. Past the retention, those are packed with the
	// 800 new ones into one segment, and the sparse one goes.
	writeKeys(0, 800)
	if raw, comp := segments(t, dir); raw != 8 || comp != 1 {
		t.Fatalf("before the third prune: %d raw and %d compacted segments, want 8 and 1", raw, comp)
	}
	c.Advance(48 * time.Hour)
	if ps := prune(); ps.RawSegments != 8 || ps.Compacted != 800 {
		t.Fatalf("third prune %+v, want 8 raw segments removed, 800 documents compacted", ps)
	}
	if raw, comp := segments(t, dir); raw != 0 || comp != 1 {
		t.Fatalf("after the third prune: %d raw and %d compacted segments, want 0 and 1", raw, comp)
	}
	for _, key := range []string{"10.1.0.5", "10.1.3.200"} {
		d, ok, err := db.LiveDocument(ctx, vigil.ViewIndicators, "test.ioc", key)
		if err != nil || !ok || string(d.Source) != want[key] {
			t.Fatalf("%s: %q %v %v, want %q", key, d.Source, ok, err, want[key])
		}
	}
}

// TestWriterBeside: a store opened beside the writer writes pages and
// merges them; each writer's merges take in the other's pages, and both
// see the whole live view.
func TestWriterBeside(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	ctx := t.Context()
	beside, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c, Beside: true, MergeDocs: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer beside.Close()
	far := t0.Add(365 * 24 * time.Hour)
	want := map[string]string{}
	write := func(w *sqlite.DB, keys ...string) {
		t.Helper()
		var docs []vigil.Document
		for _, k := range keys {
			d := ioc(k, c.Now(), far)
			want[k] = string(d.Source)
			docs = append(docs, d)
		}
		if _, err := w.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
	}
	write(db, "10.2.0.1", "10.2.0.2")
	write(beside, "10.2.0.3", "10.2.0.4")
	c.Advance(time.Minute)
	write(db, "10.2.0.1")
	if err := beside.Sync(ctx); err != nil { // merges the writer's pages too
		t.Fatal(err)
	}
	write(beside, "10.2.0.2", "10.2.0.5")
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]*sqlite.DB{"writer": db, "beside": beside} {
		if got := liveKeys(t, w, vigil.ViewIndicators); !maps.Equal(got, want) {
			t.Fatalf("%s's live view %v, want %v", name, got, want)
		}
	}
	st, err := db.Stats(ctx)
	if err != nil || len(st) != 1 || st[0].Live != 5 || st[0].Pending != 0 {
		t.Fatalf("stats %+v %v, want 5 live rows, none pending", st, err)
	}
}

// TestMergeChunks: merges of more documents than one statement takes,
// new keys only (inserted without the upsert), then new, newer and older
// documents of existing keys mixed in each chunk: the live view holds the
// newest document of every key, once, and the stats count them.
func TestMergeChunks(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 24*time.Hour)
	ctx := t.Context()
	far := t0.Add(365 * 24 * time.Hour)
	want := map[string]string{}
	key := func(i int) string { return fmt.Sprintf("10.3.%d.%d", i/256, i%256) }
	var docs []vigil.Document
	for i := range 1200 {
		d := ioc(key(i), t0, far)
		want[d.Key] = string(d.Source)
		docs = append(docs, d)
	}
	if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
		t.Fatal(err)
	}
	st, err := db.Materialize(ctx)
	if err != nil || st.Inserted != 1200 || st.Live != 1200 {
		t.Fatalf("first merge %+v %v, want 1200 inserted", st, err)
	}
	docs = docs[:0]
	for i := range 2400 {
		switch i % 3 {
		case 0: // a newer document of an existing key, or a new key
			d := ioc(key(i), t0.Add(time.Hour), far)
			want[d.Key] = string(d.Source)
			docs = append(docs, d)
		case 1: // an older one: stale when the key exists
			d := ioc(key(i), t0.Add(-time.Hour), far)
			if _, ok := want[d.Key]; !ok {
				want[d.Key] = string(d.Source)
			}
			docs = append(docs, d)
		}
	}
	if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
		t.Fatal(err)
	}
	st, err = db.Materialize(ctx)
	// Keys 1200..2399 are new: 800 of them (i%3 != 2); of the 800 below
	// 1200, 400 are newer and 400 older (stale).
	if err != nil || st.Inserted != 800 || st.Live != 1200 || st.Stale != 400 {
		t.Fatalf("second merge %+v %v, want 800 inserted, 1200 live, 400 stale", st, err)
	}
	if got := liveKeys(t, db, vigil.ViewIndicators); !maps.Equal(got, want) {
		t.Fatalf("live view: %d keys, want %d", len(got), len(want))
	}
	stats, err := db.Stats(ctx)
	if err != nil || len(stats) != 1 || stats[0].Live != 2000 {
		t.Fatalf("stats %+v %v, want 2000 live rows", stats, err)
	}
}

// TestSegmentBlocks: a page larger than a block is cut into several, each
// document whole in one; every document reads back, alone and with the
// view.
// blockDocs returns n documents of 200 to 2,000 bytes, so that a block
// ends inside most of them, and their sources by key.
func blockDocs(n int) ([]vigil.Document, map[string]string) {
	far := t0.Add(365 * 24 * time.Hour)
	want := map[string]string{}
	var docs []vigil.Document
	for i := range n {
		d := ioc(fmt.Sprintf("10.4.%d.%d", i/256, i%256), t0, far)
		pad := strings.Repeat("x", 200+(i*37)%1800)
		d.Source = fmt.Appendf(nil, `{"threat":{"indicator":{"name":%q}},"pad":%q}`, d.Key, pad)
		want[d.Key] = string(d.Source)
		docs = append(docs, d)
	}
	return docs, want
}

// checkBlockDocs checks the live view, and each document read alone.
func checkBlockDocs(t *testing.T, db *sqlite.DB, want map[string]string) {
	t.Helper()
	if got := liveKeys(t, db, vigil.ViewIndicators); !maps.Equal(got, want) {
		t.Fatalf("live view: %d keys, want %d", len(got), len(want))
	}
	for key, src := range want {
		d, ok, err := db.LiveDocument(t.Context(), vigil.ViewIndicators, "test.ioc", key)
		if err != nil || !ok || string(d.Source) != src {
			t.Fatalf("%s: %v %v, %d bytes, want %d", key, ok, err, len(d.Source), len(src))
		}
	}
}

func TestSegmentBlocks(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 24*time.Hour)
	ctx := t.Context()
	docs, want := blockDocs(300)
	if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs}); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	checkBlockDocs(t, db, want)
}

// TestMigrateRawBlocksRowid: migration 0008 moves the blocks of a store
// whose raw_blocks is a WITHOUT ROWID table into a rowid table keyed by
// segment and start; every
// document reads back, then after a later page and a prune.
func TestMigrateRawBlocksRowid(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	ctx := t.Context()
	docs, want := blockDocs(600)
	for _, page := range [][]vigil.Document{docs[:250], docs[250:400]} {
		if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: page}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	undoMigration(t, dir, "0008_raw_blocks_rowid.sql",
		`CREATE TABLE raw_blocks_v1 (seg INTEGER NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (seg, start)) WITHOUT ROWID`,
		`INSERT INTO raw_blocks_v1 SELECT id >> 32, id & 4294967295, data FROM raw_blocks`,
		`DROP TABLE raw_blocks`,
		`ALTER TABLE raw_blocks_v1 RENAME TO raw_blocks`)
	if got := blocksTable(t, dir); !strings.Contains(got, "WITHOUT ROWID") {
		t.Fatalf("the undone migration left %s", got)
	}
	db2, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got := blocksTable(t, dir); strings.Contains(got, "WITHOUT ROWID") {
		t.Fatalf("after the migration: %s", got)
	}
	written := map[string]string{}
	for _, d := range docs[:400] {
		written[d.Key] = want[d.Key]
	}
	checkBlockDocs(t, db2, written)
	// A later page goes into the new table beside the converted blocks.
	if _, err := db2.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: docs[400:]}); err != nil {
		t.Fatal(err)
	}
	if err := db2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	checkBlockDocs(t, db2, want)
	// Past the retention, the prune compacts the raw segments: their
	// blocks are deleted through the index, the live documents copied.
	c.Advance(48 * time.Hour)
	ps, err := db2.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps.RawSegments != 3 || ps.Compacted != 600 {
		t.Fatalf("prune: %+v, want 3 segments removed and 600 documents compacted", ps)
	}
	checkBlockDocs(t, db2, want)
}

// blocksTable returns the schema of raw_blocks in the store in dir.
func blocksTable(t *testing.T, dir string) string {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var s string
	if err := raw.QueryRowContext(t.Context(), `SELECT sql FROM sqlite_schema WHERE name = 'raw_blocks'`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWritePageNDJSON: a page whose NDJSON holds its documents (an
// arena's) is written from it, one whose NDJSON does not is copied, and the
// store keeps nothing of the caller's buffer: documents read back the same
// after the arena is reused.
func TestWritePageNDJSON(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 24*time.Hour)
	ctx := t.Context()
	docs, want := blockDocs(600)
	var arena ecs.Arena
	for i, page := range [][]vigil.Document{docs[:250], docs[250:400], docs[400:]} {
		arena.Reset()
		in := make([]vigil.Document, len(page))
		for j, d := range page {
			d.Source = arena.Doc(d.Source)
			d.Key = arena.String(d.Key)
			in[j] = d
		}
		nd := arena.NDJSON()
		if i == 1 {
			nd = []byte("{\"not\":\"the page\"}\n") // ignored: the documents are copied
		}
		if _, err := db.WritePage(ctx, vigil.Page{Source: "s", Dataset: "test.ioc", Docs: in, NDJSON: nd}); err != nil {
			t.Fatal(err)
		}
		for j := range in { // the caller reuses its arena
			clear(in[j].Source)
		}
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	checkBlockDocs(t, db, want)
}
