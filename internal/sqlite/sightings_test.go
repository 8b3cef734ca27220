package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

func sighting(kind, key string, first, last time.Time, count int64, event string) vigil.Sighting {
	return vigil.Sighting{Kind: kind, Key: key, FirstSeen: first, LastSeen: last, Count: count,
		Event: event, EventTime: first, Field: "destination.ip"}
}

// readSightings returns the sightings in rs last seen since, as sorted
// "kind key first..last count event" lines.
func readSightings(t *testing.T, db *sqlite.DB, since time.Time, rs ...vigil.SightingRange) []string {
	t.Helper()
	return collectSightings(t, db, since, func(s vigil.Sighting) string {
		return fmt.Sprintf("%s %s %s..%s %d %s", s.Kind, s.Key, s.FirstSeen.Format("01-02T15"), s.LastSeen.Format("01-02T15"), s.Count, s.Event)
	}, rs...)
}

// collectSightings returns the sightings in rs last seen since, formatted
// by format, sorted.
func collectSightings(t *testing.T, db *sqlite.DB, since time.Time, format func(vigil.Sighting) string, rs ...vigil.SightingRange) []string {
	t.Helper()
	var out []string
	if err := db.Sightings(t.Context(), since, rs, func(s vigil.Sighting) error { out = append(out, format(s)); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// undoMigration makes the store in dir look as if migration name had
// not run, with the statements first run on it.
func undoMigration(t *testing.T, dir, name string, first ...string) {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var version int
	if err := raw.QueryRowContext(t.Context(), "PRAGMA user_version").Scan(&version); err != nil {
		t.Fatal(err)
	}
	for _, q := range append(first, `DELETE FROM schema_migrations WHERE name = 'migrations/`+name+`'`, fmt.Sprintf("PRAGMA user_version = %d", version-1)) {
		if _, err := raw.ExecContext(t.Context(), q); err != nil {
			t.Fatal(q, err)
		}
	}
}

func TestSightingsUpsertLookupPrune(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 24*time.Hour)
	ctx := t.Context()
	day := func(n int, h int) time.Time {
		return t0.Truncate(24*time.Hour).AddDate(0, 0, n).Add(time.Duration(h) * time.Hour)
	}
	if err := db.AddSightings(ctx, []vigil.Sighting{
		sighting("ip", "a", day(0, 1), day(0, 2), 3, "event.id:1"),
		sighting("ip", "b", day(0, 1), day(0, 1), 1, "event.id:2"),
		sighting("domain", "a", day(0, 3), day(0, 3), 1, "event.id:3"),
		sighting("ip", "a", day(-1, 5), day(-1, 6), 2, "event.id:4"),
		sighting("ip", "a", day(-9, 5), day(-9, 5), 1, "event.id:old"),
	}); err != nil {
		t.Fatal(err)
	}
	// The same (day, kind, key) again: first and last widen, counts add,
	// and the event is the one of the sighting seen last.
	if err := db.AddSightings(ctx, []vigil.Sighting{
		sighting("ip", "a", day(0, 0), day(0, 1), 5, "event.id:5"),
		sighting("ip", "b", day(0, 4), day(0, 6), 1, "event.id:6"),
	}); err != nil {
		t.Fatal(err)
	}
	week := c.Now().Add(-7 * 24 * time.Hour)
	got := readSightings(t, db, week, vigil.SightingRange{Kind: "ip", Lo: "a"}, vigil.SightingRange{Kind: "ip", Lo: "b"})
	want := []string{
		"ip a 01-09T05..01-09T06 2 event.id:4",
		"ip a 01-10T00..01-10T02 8 event.id:1",
		"ip b 01-10T01..01-10T06 2 event.id:6",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("exact lookups:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Ranges, whole kinds, and the since bound.
	if got := readSightings(t, db, week, vigil.SightingRange{Kind: "ip", Lo: "b", Hi: "z"}); len(got) != 1 || !strings.HasPrefix(got[0], "ip b") {
		t.Errorf("range: %v", got)
	}
	if got := readSightings(t, db, week, vigil.SightingRange{Kind: "domain", All: true}); len(got) != 1 || !strings.HasPrefix(got[0], "domain a") {
		t.Errorf("all of a kind: %v", got)
	}
	if got := readSightings(t, db, day(0, 2), vigil.SightingRange{Kind: "ip", All: true}); len(got) != 2 {
		t.Errorf("since %s: %v", day(0, 2), got)
	}
	if got := readSightings(t, db, day(-20, 0), vigil.SightingRange{Kind: "ip", Lo: "a"}); len(got) != 3 {
		t.Errorf("a longer window finds the old sighting: %v", got)
	}
	if got := readSightings(t, db, week, vigil.SightingRange{Kind: "url", Lo: "a"}, vigil.SightingRange{Kind: "ip", Lo: "c"}); len(got) != 0 {
		t.Errorf("missing keys: %v", got)
	}
	// Pruning drops whole days before the cutoff's.
	n, err := db.PruneSightings(ctx, week)
	if err != nil || n != 1 {
		t.Fatalf("PruneSightings = %d, %v; want the old day's row", n, err)
	}
	if got := readSightings(t, db, day(-20, 0), vigil.SightingRange{Kind: "ip", Lo: "a"}); len(got) != 2 {
		t.Errorf("after prune: %v", got)
	}
	// Rows counts entries of runs: ip a and ip b of day 0 are in two runs
	// (of 3 and 2 entries) until a larger batch merges them.
	st, err := db.SightingStats(ctx)
	if err != nil || st.Rows != 6 || !st.Oldest.Equal(day(-1, 5)) || !st.Newest.Equal(day(0, 6)) {
		t.Errorf("SightingStats = %+v, %v", st, err)
	}

	// Bad input.
	if err := db.AddSightings(ctx, []vigil.Sighting{sighting("ip", "", day(0, 1), day(0, 1), 1, "x")}); err == nil {
		t.Error("a sighting without a key was stored")
	}
	if err := db.AddSightings(ctx, []vigil.Sighting{sighting("ip", "a", day(0, 1), day(1, 1), 1, "x")}); err == nil || !strings.Contains(err.Error(), "two days") {
		t.Errorf("a sighting over two days: %v", err)
	}
}

// TestSightingsPrefix: prefix ranges, with bytes that are not UTF-8; and
// two rows of one key in one call merge.
func TestSightingsPrefix(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 24*time.Hour)
	ctx := t.Context()
	week := t0.Add(-7 * 24 * time.Hour)
	day := func(n int, h int) time.Time {
		return t0.Truncate(24*time.Hour).AddDate(0, 0, n).Add(time.Duration(h) * time.Hour)
	}
	if err := db.AddSightings(ctx, []vigil.Sighting{
		sighting("domain", "a.", day(0, 1), day(0, 1), 1, "p1"), sighting("domain", "a.\xff0", day(0, 1), day(0, 1), 1, "p2"),
		sighting("domain", "a.\xff", day(0, 1), day(0, 1), 1, "p3"), sighting("domain", "a/", day(0, 1), day(0, 1), 1, "p4"),
		sighting("domain", "\xff\xff", day(0, 1), day(0, 1), 1, "p5"), sighting("domain", "\xff\xff", day(0, 2), day(0, 2), 2, "p6"),
	}); err != nil {
		t.Fatal(err)
	}
	if got := readSightings(t, db, week, vigil.SightingRange{Kind: "domain", Lo: "a.", Prefix: true}); len(got) != 3 {
		t.Errorf("prefix a.: %q", got)
	}
	if got := readSightings(t, db, week, vigil.SightingRange{Kind: "domain", Lo: "\xff", Prefix: true}); len(got) != 1 || !strings.HasSuffix(got[0], " 3 p6") {
		t.Errorf("prefix 0xff: %q", got)
	}
}

// TestSightingsBatches: more rows than one statement writes, and more keys
// than one lookup asks for.
func TestSightingsBatches(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 24*time.Hour)
	var ss []vigil.Sighting
	var rs []vigil.SightingRange
	for i := range 1000 {
		k := fmt.Sprintf("h%04d", i)
		ss = append(ss, sighting("hash", k, t0.Add(-time.Hour), t0, 1, "event.id:"+k))
		if i%2 == 0 {
			rs = append(rs, vigil.SightingRange{Kind: "hash", Lo: k})
		}
	}
	for range 2 {
		if err := db.AddSightings(t.Context(), ss); err != nil {
			t.Fatal(err)
		}
	}
	got := readSightings(t, db, t0.Add(-24*time.Hour), rs...)
	if len(got) != 500 || !strings.Contains(got[0], " 2 ") {
		t.Fatalf("%d sightings, first %q; want 500 counted twice", len(got), got[0])
	}
}

// TestLiveAfter: the documents written after a watermark that are still
// their key's live row and unexpired, and the watermark to go on from.
func TestLiveAfter(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, 24*time.Hour)
	ctx := t.Context()
	far := t0.Add(30 * 24 * time.Hour)
	write := func(docs ...vigil.Document) {
		t.Helper()
		if _, err := db.WritePage(ctx, vigil.Page{Source: "test", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after := func(mark int64) ([]string, int64) {
		t.Helper()
		var keys []string
		wm, err := db.LiveAfter(ctx, mark, func(d vigil.Document) error {
			if !strings.Contains(string(d.Source), d.Key) {
				t.Errorf("%s: source %s", d.Key, d.Source)
			}
			keys = append(keys, string(d.View)+":"+d.Key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		return keys, wm
	}
	mark, err := db.RetroHuntMark(ctx)
	if err != nil || mark != 0 {
		t.Fatalf("new store's mark %d, %v", mark, err)
	}
	write(ioc("a", t0, far), ioc("b", t0, far), ioc("gone", t0, t0.Add(time.Minute)))
	cveDoc := vigil.Document{Dataset: "test.cve", View: vigil.ViewVulnerabilities, Key: "CVE-2024-1", Timestamp: t0,
		Source: []byte(`{"vulnerability":{"id":"CVE-2024-1"}}`)}
	alert := vigil.Document{Dataset: "test.alert", View: vigil.ViewAlerts, Key: "x", Timestamp: t0, ExpiresAt: far, Source: []byte(`{"x":1}`)}
	if _, err := db.WritePage(ctx, vigil.Page{Source: "test", Dataset: "test.cve", Docs: []vigil.Document{cveDoc, alert}}); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Minute) // "gone" expires
	// Not merged yet: LiveAfter reads up to the live watermark only.
	keys, wm := after(0)
	if strings.Join(keys, ",") != "indicators:a,indicators:b" {
		t.Errorf("before the merge: %v", keys)
	}
	write(ioc("a", t0.Add(time.Hour), far)) // a newer a; syncs the CVE page too
	keys, wm2 := after(0)
	if strings.Join(keys, ",") != "indicators:a,indicators:b,vulnerabilities:CVE-2024-1" || wm2 <= wm {
		t.Errorf("after the merge: %v, watermark %d after %d", keys, wm2, wm)
	}
	keys, wm3 := after(wm)
	if strings.Join(keys, ",") != "indicators:a,vulnerabilities:CVE-2024-1" || wm3 != wm2 {
		t.Errorf("after %d: %v, %d", wm, keys, wm3)
	}
	if keys, wm4 := after(wm2); len(keys) != 0 || wm4 != wm2 {
		t.Errorf("after %d: %v, %d", wm2, keys, wm4)
	}
	if err := db.SetRetroHuntMark(ctx, wm2); err != nil {
		t.Fatal(err)
	}
	if mark, err := db.RetroHuntMark(ctx); err != nil || mark != wm2 {
		t.Errorf("mark %d, %v; want %d", mark, err, wm2)
	}
	st, err := db.SightingStats(ctx)
	if err != nil || st.RetroHuntMark != wm2 || !st.RetroHuntMarkedAt.Equal(c.Now()) {
		t.Errorf("SightingStats = %+v, %v", st, err)
	}
}

// TestRetroHuntMarkStartsAfterExistingSegments: a store that had pages
// before migration 0006 starts hunting after them (no sighting predates
// the table), a new store at 0.
func TestRetroHuntMarkStartsAfterExistingSegments(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	ctx := t.Context()
	if mark, err := db.RetroHuntMark(ctx); err != nil || mark != 0 {
		t.Fatalf("new store: mark %d, %v", mark, err)
	}
	for i := range 3 {
		if _, err := db.WritePage(ctx, vigil.Page{Source: "test", Dataset: "test.ioc", Docs: []vigil.Document{ioc(fmt.Sprint(i), t0, t0.AddDate(0, 1, 0))}}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	// Undo migration 0006, as if the store came from a build without it.
	undoMigration(t, dir, "0006_sightings.sql", `DROP TABLE IF EXISTS sightings`, `DROP TABLE retrohunt_state`)
	db2, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if mark, err := db2.RetroHuntMark(ctx); err != nil || mark != 3 {
		t.Errorf("migrated store: mark %d, %v; want 3, the last segment", mark, err)
	}
}

// benchSighting returns the k-th sighting of the benchmarks: keys of four
// kinds, like a recorder's (addresses as 16 bytes).
func benchSighting(k int) vigil.Sighting {
	kinds := []string{"ip", "url", "domain", "hash"}
	kind := kinds[k%4]
	key := fmt.Sprintf("%s-%x-%d.example.org/path/%d", kind, uint32(k*2654435761), k, k%977)
	if kind == "ip" {
		key = string(fmt.Appendf(nil, "%016x", uint64(k)*0x9e3779b97f4a7c15)[:16])
	}
	return vigil.Sighting{Kind: kind, Key: key, FirstSeen: t0, LastSeen: t0.Add(time.Minute), Count: 3,
		Event: fmt.Sprintf("event.id:%016x", k), EventTime: t0, Field: "destination.ip"}
}

// BenchmarkAddSightings: one op is one sighting upserted, in batches of
// 65,536 (a recorder's batch) of new keys of one day into a table that
// already holds the batches before it; a third of them are keys it holds.
//
//	go test -run '^$' -bench AddSightings -benchtime 262144x ./internal/sqlite/
func BenchmarkAddSightings(b *testing.B) {
	c := &clock{t: t0}
	dir := b.TempDir()
	db, err := sqlite.Open(b.Context(), dir, sqlite.Options{Clock: c})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const batch = 65536
	ss := make([]vigil.Sighting, 0, batch)
	flush := func() {
		if err := db.AddSightings(b.Context(), ss); err != nil {
			b.Fatal(err)
		}
		ss = ss[:0]
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i
		if i%3 == 2 {
			k = i / 2 // a key already stored
		}
		ss = append(ss, benchSighting(k))
		if len(ss) == batch {
			flush()
		}
	}
	flush()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sightings/s")
}

// BenchmarkSightingsLookup: what the runs of a day cost a retro-hunt that
// looks up a few values. The store holds 32 batches of 65,536 distinct
// sightings of one day (4 of 4,096 under -short), as AddSightings merged
// them; one op looks up 100 keys stored in one call to Sightings.
//
//	go test -run '^$' -bench SightingsLookup -benchtime 20x ./internal/sqlite/
func BenchmarkSightingsLookup(b *testing.B) {
	batches, batch := 32, 65536
	if testing.Short() {
		batches, batch = 4, 4096
	}
	c := &clock{t: t0.Add(time.Hour)}
	dir := b.TempDir()
	db, err := sqlite.Open(b.Context(), dir, sqlite.Options{Clock: c})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ss := make([]vigil.Sighting, 0, batch)
	for i := range batches * batch {
		ss = append(ss, benchSighting(i))
		if len(ss) == batch {
			if err := db.AddSightings(b.Context(), ss); err != nil {
				b.Fatal(err)
			}
			ss = ss[:0]
		}
	}
	raw, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	var runs int
	if err := raw.QueryRow(`SELECT count(*) FROM sighting_runs`).Scan(&runs); err != nil {
		b.Fatal(err)
	}
	const keys = 100
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var rs []vigil.SightingRange
		for j := range keys {
			s := benchSighting((i*keys + j) * 7919 % (batches * batch))
			rs = append(rs, vigil.SightingRange{Kind: s.Kind, Lo: s.Key})
		}
		n := 0
		if err := db.Sightings(b.Context(), t0.Add(-time.Hour), rs, func(vigil.Sighting) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n != keys {
			b.Fatalf("%d of %d keys found", n, keys)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*keys), "µs/key")
	b.ReportMetric(float64(runs), "runs")
}

// TestPruneSightingsClosesDays: a prune merges each past day's runs into
// one, today's left as they are, and what reads give does not change.
func TestPruneSightingsClosesDays(t *testing.T) {
	c := &clock{t: t0.Truncate(24 * time.Hour).Add(12 * time.Hour)}
	db, _ := open(t, c, 24*time.Hour)
	ctx := t.Context()
	yesterday, today := c.t.Add(-24*time.Hour), c.t
	batch := func(at time.Time, from, to int) {
		t.Helper()
		var ss []vigil.Sighting
		for i := from; i < to; i++ {
			k := fmt.Sprintf("h%04d", i)
			ss = append(ss, sighting("hash", k, at.Add(time.Duration(i)*time.Second), at.Add(time.Duration(i)*time.Second), 1, "event.id:"+k))
		}
		if err := db.AddSightings(ctx, ss); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		batch(yesterday, i*100, 1000) // overlapping: keys in two and three runs
	}
	batch(today, 0, 500)
	batch(today, 250, 750)
	rows := func() int64 {
		t.Helper()
		st, err := db.SightingStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Rows
	}
	since := yesterday.Add(-time.Hour)
	all := vigil.SightingRange{Kind: "hash", Lo: "h"}
	before := readSightings(t, db, since, all)
	if r := rows(); r != 900+800+1000+500+500 {
		t.Fatalf("%d rows before the prune; want 3700", r)
	}
	for range 2 { // the second finds nothing to do
		if n, err := db.PruneSightings(ctx, since.Add(-7*24*time.Hour)); err != nil || n != 0 {
			t.Fatalf("PruneSightings = %d, %v", n, err)
		}
		if r := rows(); r != 1000+500+500 {
			t.Fatalf("%d rows after the prune; want yesterday's 1,000 in one run, today's 500 and 500", r)
		}
		if after := readSightings(t, db, since, all); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("reads changed:\nbefore %v\nafter  %v", before[:3], after[:3])
		}
	}
}
