package sqlite_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// refSighting merges sightings as the store must: per (day, kind, key),
// first and last widen, counts add, and the event is the one seen last (on
// a tie, the one added later).
type refSightings map[string]vigil.Sighting

func (r refSightings) add(s vigil.Sighting) {
	k := fmt.Sprintf("%d %s %s", s.FirstSeen.UnixMilli()/86400000, s.Kind, s.Key)
	old, ok := r[k]
	if !ok {
		r[k] = s
		return
	}
	if !s.LastSeen.Before(old.LastSeen) {
		old.Event, old.EventTime, old.Field = s.Event, s.EventTime, s.Field
	}
	if s.FirstSeen.Before(old.FirstSeen) {
		old.FirstSeen = s.FirstSeen
	}
	if s.LastSeen.After(old.LastSeen) {
		old.LastSeen = s.LastSeen
	}
	old.Count += s.Count
	r[k] = old
}

func fmtSighting(s vigil.Sighting) string {
	return fmt.Sprintf("%s %q %d..%d %d %s %d %s", s.Kind, s.Key, s.FirstSeen.UnixMilli(), s.LastSeen.UnixMilli(), s.Count, s.Event, s.EventTime.UnixMilli(), s.Field)
}

// TestSightingRuns adds many batches of sightings over three days, with
// keys that come again within and across batches, and reads them back
// whole, by exact keys, by prefix and by range: each (day, kind, key) comes
// once, merged as refSightings merges them, and a day keeps few runs.
func TestSightingRuns(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	ref := refSightings{}
	kinds := []string{"ip", "domain", "hash"}
	base := t0.Truncate(24*time.Hour).AddDate(0, 0, -2)
	const batches = 60
	for b := range batches {
		var ss []vigil.Sighting
		for range 50 + rng.IntN(400) {
			day := rng.IntN(3)
			first := base.AddDate(0, 0, day).Add(time.Duration(rng.IntN(20*3600)) * time.Second)
			last := first.Add(time.Duration(rng.IntN(3600)) * time.Second)
			// Keys share prefixes, and some have bytes that are not UTF-8.
			key := fmt.Sprintf("k%03d.example", rng.IntN(700))
			if rng.IntN(10) == 0 {
				key += "\xff\x00\x01"
			}
			s := vigil.Sighting{Kind: kinds[rng.IntN(len(kinds))], Key: key, FirstSeen: first, LastSeen: last,
				Count: int64(1 + rng.IntN(5)), Event: fmt.Sprintf("event.id:%d-%d", b, len(ss)), EventTime: first, Field: "f" + fmt.Sprint(rng.IntN(3))}
			ss = append(ss, s)
			ref.add(s)
		}
		if err := db.AddSightings(ctx, ss); err != nil {
			t.Fatal(err)
		}
	}
	since := base.Add(-time.Hour)
	read := func(rs ...vigil.SightingRange) []string {
		t.Helper()
		var out []string
		seen := map[string]bool{}
		err := db.Sightings(ctx, since, rs, func(s vigil.Sighting) error {
			k := fmt.Sprintf("%d %s %s", s.FirstSeen.UnixMilli()/86400000, s.Kind, s.Key)
			if seen[k] {
				t.Errorf("%s came twice", k)
			}
			seen[k] = true
			out = append(out, fmtSighting(s))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	want := func(keep func(vigil.Sighting) bool) []string {
		var out []string
		for _, s := range ref {
			if keep(s) {
				out = append(out, fmtSighting(s))
			}
		}
		slices.Sort(out)
		return out
	}
	check := func(name string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d sightings, want %d", name, len(got), len(want))
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Errorf("first difference:\n got %s\nwant %s", got[i], want[i])
					break
				}
			}
		}
	}
	check("all", read(vigil.SightingRange{Kind: "ip", All: true}, vigil.SightingRange{Kind: "domain", All: true}, vigil.SightingRange{Kind: "hash", All: true}),
		want(func(vigil.Sighting) bool { return true }))
	var exact []vigil.SightingRange
	for i := 0; i < 700; i += 7 {
		exact = append(exact, vigil.SightingRange{Kind: "domain", Lo: fmt.Sprintf("k%03d.example", i)})
	}
	check("exact", read(exact...), want(func(s vigil.Sighting) bool {
		var n int
		_, err := fmt.Sscanf(s.Key, "k%03d.example", &n)
		return s.Kind == "domain" && err == nil && n%7 == 0 && !strings.HasSuffix(s.Key, "\x01")
	}))
	check("prefix and range", read(vigil.SightingRange{Kind: "ip", Lo: "k01", Prefix: true}, vigil.SightingRange{Kind: "ip", Lo: "k015", Hi: "k030"}, vigil.SightingRange{Kind: "hash", Lo: "k5", Hi: "k6"}),
		want(func(s vigil.Sighting) bool {
			return s.Kind == "ip" && (strings.HasPrefix(s.Key, "k01") || s.Key >= "k015" && s.Key <= "k030") || s.Kind == "hash" && s.Key >= "k5" && s.Key <= "k6"
		}))
	check("since", readSince(t, db, base.AddDate(0, 0, 2), vigil.SightingRange{Kind: "ip", All: true}),
		want(func(s vigil.Sighting) bool { return s.Kind == "ip" && !s.LastSeen.Before(base.AddDate(0, 0, 2)) }))

	// Each day keeps a few runs of growing size.
	conn, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, sqlite.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var most int
	if err := conn.QueryRow(`SELECT max(n) FROM (SELECT count(*) AS n FROM sighting_runs GROUP BY day)`).Scan(&most); err != nil {
		t.Fatal(err)
	}
	if most > 8 {
		t.Errorf("a day keeps %d runs after %d batches", most, batches)
	}
}

// readSince reads the sightings in rs last seen since, as fmtSighting lines.
func readSince(t *testing.T, db *sqlite.DB, since time.Time, rs ...vigil.SightingRange) []string {
	t.Helper()
	return collectSightings(t, db, since, fmtSighting, rs...)
}

// TestConvertSightingsV1: the rows of the first sightings table become
// runs when a store migrates to 0007.
func TestConvertSightingsV1(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	ctx := t.Context()
	db.Close()
	day := t0.UnixMilli() / 86400000
	h := func(n int) int64 { return t0.Truncate(24 * time.Hour).Add(time.Duration(n) * time.Hour).UnixMilli() }
	undoMigration(t, dir, "0007_sighting_runs.sql", `DROP TABLE sighting_blocks`, `DROP TABLE sighting_runs`,
		`CREATE TABLE sightings (day INTEGER NOT NULL, kind TEXT NOT NULL, key BLOB NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
count INTEGER NOT NULL, field TEXT NOT NULL, event TEXT NOT NULL, event_time INTEGER NOT NULL, PRIMARY KEY (day, kind, key)) WITHOUT ROWID`,
		fmt.Sprintf(`INSERT INTO sightings VALUES (%d, 'ip', x'61', %d, %d, 3, 'source.ip', 'event.id:1', %d), (%d, 'domain', x'62ff', %d, %d, 1, 'dns.question.name', 'line:2', %d), (%d, 'ip', x'61', %d, %d, 2, 'source.ip', 'event.id:3', %d)`,
			day, h(1), h(2), h(2), day, h(3), h(3), h(3), day-1, h(-5), h(-4), h(-4)))
	db2, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got := readSince(t, db2, t0.AddDate(0, 0, -7), vigil.SightingRange{Kind: "ip", All: true}, vigil.SightingRange{Kind: "domain", All: true})
	want := []string{
		fmt.Sprintf(`domain "b\xff" %d..%d 1 line:2 %d dns.question.name`, h(3), h(3), h(3)),
		fmt.Sprintf(`ip "a" %d..%d 2 event.id:3 %d source.ip`, h(-5), h(-4), h(-4)),
		fmt.Sprintf(`ip "a" %d..%d 3 event.id:1 %d source.ip`, h(1), h(2), h(2)),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("converted:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
