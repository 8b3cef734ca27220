package sqlite_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

func detection(id, rule string, at time.Time, actions ...string) vigil.Detection {
	return vigil.Detection{
		ID: id, RuleID: rule, RuleName: "Rule " + rule, Timestamp: at, Actions: actions,
		Source: fmt.Appendf(nil, `{"rule":{"id":%q},"kibana":{"alert":{"uuid":%q}}}`, rule, id),
	}
}

func listDetections(t *testing.T, db *sqlite.DB, f sqlite.DetectionFilter) []vigil.Detection {
	t.Helper()
	var out []vigil.Detection
	if err := db.Detections(t.Context(), f, func(d vigil.Detection) error {
		out = append(out, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAddDetections(t *testing.T) {
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	ctx := t.Context()
	first := []vigil.Detection{
		detection("a1", "ip", t0, "hook"),
		detection("a2", "domain", t0.Add(time.Second)),
		detection("a1", "ip", t0.Add(time.Hour), "other"), // the same id in one call
	}
	n, err := db.AddDetections(ctx, first, nil)
	if err != nil || n != 2 {
		t.Fatalf("AddDetections = %d, %v; want 2 new", n, err)
	}
	// Idempotent on ID: the same alerts again add nothing, a new one is added.
	n, err = db.AddDetections(ctx, []vigil.Detection{detection("a2", "domain", t0.Add(2*time.Hour)), detection("a3", "hash", t0.Add(2*time.Second))}, nil)
	if err != nil || n != 1 {
		t.Fatalf("second AddDetections = %d, %v; want 1 new", n, err)
	}
	if n, err := db.AddDetections(ctx, nil, nil); err != nil || n != 0 {
		t.Fatalf("AddDetections(nil) = %d, %v", n, err)
	}
	if _, err := db.AddDetections(ctx, []vigil.Detection{{RuleID: "ip"}}, nil); err == nil {
		t.Fatal("a detection without ID was stored")
	}

	got := listDetections(t, db, sqlite.DetectionFilter{})
	ids := []string{}
	for _, d := range got {
		ids = append(ids, d.ID)
	}
	if !slices.Equal(ids, []string{"a3", "a2", "a1"}) { // newest first
		t.Fatalf("ids %v", ids)
	}
	a1 := got[2]
	if a1.RuleID != "ip" || a1.RuleName != "Rule ip" || !a1.Timestamp.Equal(t0) || !slices.Equal(a1.Actions, []string{"hook"}) ||
		string(a1.Source) != `{"rule":{"id":"ip"},"kibana":{"alert":{"uuid":"a1"}}}` {
		t.Fatalf("a1 = %+v (the first copy must stay)", a1)
	}
	if got[1].Actions == nil || len(got[1].Actions) != 0 {
		t.Errorf("no actions: %#v, want an empty list", got[1].Actions)
	}
	if got := listDetections(t, db, sqlite.DetectionFilter{Limit: 1}); len(got) != 1 || got[0].ID != "a3" {
		t.Errorf("limit 1: %+v", got)
	}
	if got := listDetections(t, db, sqlite.DetectionFilter{RuleID: "domain"}); len(got) != 1 || got[0].ID != "a2" {
		t.Errorf("rule domain: %+v", got)
	}

	// A reader sees them; it cannot add.
	ro, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := listDetections(t, ro, sqlite.DetectionFilter{}); len(got) != 3 {
		t.Errorf("reader sees %d detections", len(got))
	}
	if _, err := ro.AddDetections(ctx, first, nil); err == nil {
		t.Error("a read-only store added detections")
	}
}

func TestLiveDocument(t *testing.T) {
	c := &clock{t: t0}
	db, _ := openWith(t, c, sqlite.Options{Retention: 24 * time.Hour, MergeDocs: -1})
	ctx := t.Context()
	far := t0.Add(30 * 24 * time.Hour)
	write := func(docs ...vigil.Document) {
		t.Helper()
		if _, err := db.WritePage(ctx, vigil.Page{Source: "test", Dataset: "test.ioc", Docs: docs}); err != nil {
			t.Fatal(err)
		}
	}
	write(ioc("1.1.1.1", t0, far), ioc("2.2.2.2", t0, t0.Add(time.Hour)))
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	write(ioc("3.3.3.3", t0, far)) // waiting, not merged (automatic merges are off)

	cases := []struct {
		key   string
		found bool
	}{{"1.1.1.1", true}, {"2.2.2.2", true}, {"3.3.3.3", true}, {"4.4.4.4", false}}
	c.Advance(2 * time.Hour) // 2.2.2.2 has expired: still readable
	for _, cs := range cases {
		d, ok, err := db.LiveDocument(ctx, vigil.ViewIndicators, "test.ioc", cs.key)
		if err != nil || ok != cs.found {
			t.Errorf("%s: found %v, %v; want %v", cs.key, ok, err, cs.found)
			continue
		}
		if ok && (d.Key != cs.key || d.Dataset != "test.ioc" || d.View != vigil.ViewIndicators ||
			string(d.Source) != string(ioc(cs.key, t0, far).Source) || !d.Timestamp.Equal(t0)) {
			t.Errorf("%s: %+v", cs.key, d)
		}
	}
	if _, ok, err := db.LiveDocument(ctx, vigil.ViewVulnerabilities, "test.ioc", "1.1.1.1"); ok || err != nil {
		t.Errorf("other view: %v, %v", ok, err)
	}
}

// TestAddDetectionsQueuesDeliveries: the alerts and their deliveries are
// stored in one transaction; a delivery that fails to queue stores no alert.
func TestAddDetectionsQueuesDeliveries(t *testing.T) {
	c := &clock{t: t0}
	db, _ := open(t, c, time.Hour)
	ctx := t.Context()
	dets := []vigil.Detection{detection("a1", "ip", t0)}
	ds := []vigil.Delivery{{Key: "a1", Connector: "hook", Subject: "s", Body: dets[0].Source}}
	if _, err := db.AddDetections(ctx, dets, []vigil.Delivery{{Key: "a1"}}); err == nil {
		t.Fatal("a delivery without a connector was queued")
	}
	n := 0
	if err := db.Detections(ctx, sqlite.DetectionFilter{}, func(vigil.Detection) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("after a failed queue: %d alerts stored, %v", n, err)
	}
	if added, err := db.AddDetections(ctx, dets, ds); err != nil || added != 1 {
		t.Fatalf("AddDetections = %d, %v", added, err)
	}
	due, err := db.DueDeliveries(ctx, t0.Add(time.Minute), 10)
	if err != nil || len(due) != 1 || due[0].Key != "a1" || due[0].Connector != "hook" {
		t.Fatalf("due deliveries %+v, %v", due, err)
	}
}
