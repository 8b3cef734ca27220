package sqlite_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/mispfeed"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// TestMISPStoreBesideAWriter: OpenMISPStore writes devices while a writer
// has the store open (`vigil device add` beside `vigil serve`), and the
// writer sees them at once.
func TestMISPStoreBesideAWriter(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: t0}
	db, dir := open(t, c, 0)
	side, err := sqlite.OpenMISPStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()
	d, err := side.AddDevice(ctx, mispfeed.Device{Name: "d 1", Username: "u", Limit: 5, Groups: []string{"g"}, CreatedAt: t0}, []byte("hash"))
	if err != nil || d.ID == 0 || d.Source != mispfeed.SourceRuntime {
		t.Fatalf("%+v %v", d, err)
	}
	got, hash, err := db.MISP().DeviceByUsername(ctx, "u")
	if err != nil || got.Name != "d 1" || string(hash) != "hash" || !got.CreatedAt.Equal(t0) || got.Synced() || !slices.Equal(got.Groups, []string{"g"}) {
		t.Fatalf("%+v %q %v", got, hash, err)
	}
	if _, err := side.AddDevice(ctx, mispfeed.Device{Name: "d 1", Username: "v", Limit: 5, CreatedAt: t0}, nil); !errors.Is(err, mispfeed.ErrExists) {
		t.Fatalf("same name: %v", err)
	}
	if _, err := db.MISP().AddDevice(ctx, mispfeed.Device{Name: "d 2", Username: "u", Limit: 5, CreatedAt: t0}, nil); !errors.Is(err, mispfeed.ErrExists) {
		t.Fatalf("same username: %v", err)
	}
	// A pull, a seen set and an event, read back.
	rec := mispfeed.PullRecord{Device: d.ID, Group: "g", At: t0, Seen: []uint64{1, 1 << 63, ^uint64(0)}, Limit: 5,
		Event:      mispfeed.EventMeta{UUID: "6cd1aa97-b555-54a3-b92f-1d13c14deb06", Day: "2026-01-10", ThreatLevel: 2, TLP: 3},
		Attributes: []mispfeed.StoredAttribute{{Type: "domain", Value: "a.example", Body: []byte(`{}`)}}}
	if err := side.RecordPull(ctx, rec); err != nil {
		t.Fatal(err)
	}
	seen, ok, err := db.MISP().GroupSeen(ctx, d.ID, "g")
	if err != nil || !ok || !slices.Equal(seen, rec.Seen) {
		t.Fatalf("%v %v %v", seen, ok, err)
	}
	ev, ok, err := db.MISP().DayEvent(ctx, d.ID, "g", "2026-01-10")
	if err != nil || !ok || ev.Attributes != 1 || ev.ThreatLevel != 2 || ev.TLP != 3 || ev.Timestamp != t0.Unix() {
		t.Fatalf("%+v %v %v", ev, ok, err)
	}
	// The same attribute again changes nothing, the timestamp included.
	rec.At = t0.Add(time.Minute)
	if err := side.RecordPull(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := db.MISP().DayEvent(ctx, d.ID, "g", "2026-01-10"); again != ev {
		t.Fatalf("%+v, was %+v", again, ev)
	}
	// A new one in the same second still moves the timestamp on.
	rec.At = t0
	rec.Attributes = []mispfeed.StoredAttribute{{Type: "url", Value: "http://a.example/", Body: []byte(`{}`)}}
	if err := db.MISP().RecordPull(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := db.MISP().DayEvent(ctx, d.ID, "g", "2026-01-10"); again.Attributes != 2 || again.Timestamp != t0.Unix()+1 {
		t.Fatalf("%+v", again)
	}
	if err := side.RemoveDevice(ctx, "d 1"); err != nil {
		t.Fatal(err)
	}
	if evs, err := db.MISP().Events(ctx, d.ID, "g"); err != nil || len(evs) != 0 {
		t.Fatalf("events of a removed device: %v %v", evs, err)
	}
	if err := side.RemoveDevice(ctx, "d 1"); !errors.Is(err, mispfeed.ErrNotFound) {
		t.Fatalf("%v", err)
	}
	db.Close()
	// Read-only stores refuse writes; no database, no MISP store.
	ro, err := sqlite.Open(ctx, dir, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.MISP().AddDevice(ctx, mispfeed.Device{Name: "x", Username: "x", Limit: 1}, nil); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("%v", err)
	}
	if _, err := sqlite.OpenMISPStore(ctx, t.TempDir()); !errors.Is(err, sqlite.ErrNoData) {
		t.Fatalf("%v", err)
	}
}
