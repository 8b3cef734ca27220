package sqlite_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

func delivery(key, connector string) vigil.Delivery {
	return vigil.Delivery{Key: key, Connector: connector, Subject: "alert " + key, Body: fmt.Appendf(nil, `{"id":%q}`, key)}
}

// dueKeys returns the keys (key/connector) due at now, in the order given.
func dueKeys(t *testing.T, db *sqlite.DB, now time.Time, limit int) []string {
	t.Helper()
	ds, err := db.DueDeliveries(t.Context(), now, limit)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Key+"/"+d.Connector)
	}
	return out
}

func TestOutboxQueue(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	if err := db.Enqueue(ctx, []vigil.Delivery{delivery("a", "hook"), delivery("a", "mail"), delivery("b", "hook"), delivery("a", "hook")}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(dueKeys(t, db, t0, 0), " "), "a/hook a/mail b/hook"; got != want {
		t.Fatalf("due %q, want %q (a repeated (key, connector) is queued once)", got, want)
	}
	if got := dueKeys(t, db, t0, 2); len(got) != 2 {
		t.Fatalf("limit 2 gave %v", got)
	}
	if got := dueKeys(t, db, t0.Add(-time.Millisecond), 0); len(got) != 0 {
		t.Fatalf("due before they were queued: %v", got)
	}
	ds, err := db.DueDeliveries(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	first := ds[0]
	if first.ID == 0 || first.Subject != "alert a" || string(first.Body) != `{"id":"a"}` || first.Attempts != 0 {
		t.Fatalf("delivery %+v", first)
	}

	// a/hook fails twice, a/mail is delivered.
	c.Advance(time.Second)
	next := t0.Add(time.Minute)
	for range 2 {
		if err := db.DeliveryFailed(ctx, first.ID, next, "POST hooks.example: HTTP 503"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeliveryDone(ctx, ds[1].ID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := db.DeliveryDone(ctx, ds[1].ID, t0.Add(2*time.Second)); err != nil {
		t.Fatalf("done twice: %v", err)
	}
	if err := db.DeliveryFailed(ctx, ds[1].ID, next, "late"); err != nil {
		t.Fatalf("failed after done: %v", err)
	}
	if got, want := strings.Join(dueKeys(t, db, t0.Add(time.Second), 0), " "), "b/hook"; got != want {
		t.Fatalf("due %q, want %q", got, want)
	}

	// The queue survives a restart.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = sqlite.Open(ctx, dir, sqlite.Options{Clock: c, Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds, err = db.DueDeliveries(ctx, next, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Key != "a" || ds[0].Connector != "hook" || ds[0].Attempts != 2 || ds[1].Key != "b" {
		t.Fatalf("after reopening: %+v", ds)
	}
	// Queued again after it was delivered: skipped.
	if err := db.Enqueue(ctx, []vigil.Delivery{delivery("a", "mail")}); err != nil {
		t.Fatal(err)
	}
	if got := dueKeys(t, db, next, 0); len(got) != 2 {
		t.Fatalf("a delivered (key, connector) was queued again: %v", got)
	}

	st, err := db.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []sqlite.OutboxStats{
		{Connector: "hook", Queued: 2, Failing: 1, OldestQueued: t0, LastError: "POST hooks.example: HTTP 503", LastErrorAt: t0.Add(time.Second)},
		{Connector: "mail", Done: 1},
	}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("stats\n got %+v\nwant %+v", st, want)
	}

	// Pruning removes what was delivered before the cutoff only.
	n, err := db.PruneOutbox(ctx, t0.Add(time.Second))
	if err != nil || n != 0 {
		t.Fatalf("prune before the delivery: %d, %v", n, err)
	}
	n, err = db.PruneOutbox(ctx, t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("prune: %d, %v", n, err)
	}
	if err := db.Enqueue(ctx, []vigil.Delivery{delivery("a", "mail")}); err != nil {
		t.Fatal(err)
	}
	if got := dueKeys(t, db, next, 0); len(got) != 3 {
		t.Fatalf("a pruned delivery could not be queued again: %v", got)
	}
}

func TestOutboxErrors(t *testing.T) {
	ctx := t.Context()
	c := &clock{t: t0}
	db, dir := open(t, c, 24*time.Hour)
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"empty key", db.Enqueue(ctx, []vigil.Delivery{delivery("", "hook")}), `delivery 0 to "hook" has no key`},
		{"empty connector", db.Enqueue(ctx, []vigil.Delivery{delivery("k", "")}), `delivery "k" has no connector`},
		{"unknown done", db.DeliveryDone(ctx, 42, t0), "no delivery 42 in the outbox"},
		{"unknown failed", db.DeliveryFailed(ctx, 42, t0, "x"), "no delivery 42 in the outbox"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", tc.err, tc.want)
			}
		})
	}
	// A batch with a bad delivery queues nothing.
	if err := db.Enqueue(ctx, []vigil.Delivery{delivery("ok", "hook"), delivery("", "hook")}); err == nil {
		t.Fatal("no error")
	}
	if got := dueKeys(t, db, t0, 0); len(got) != 0 {
		t.Fatalf("queued %v", got)
	}
	// A long reason is cut, on a rune boundary.
	if err := db.Enqueue(ctx, []vigil.Delivery{delivery("k", "hook")}); err != nil {
		t.Fatal(err)
	}
	ds, _ := db.DueDeliveries(ctx, t0, 0)
	if err := db.DeliveryFailed(ctx, ds[0].ID, t0, strings.Repeat("é", 2000)); err != nil {
		t.Fatal(err)
	}
	st, err := db.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(st[0].LastError); n == 0 || n > 1000 || !strings.HasPrefix(st[0].LastError, "éé") || strings.Count(st[0].LastError, "é") != n/2 {
		t.Fatalf("reason of %d bytes: %q…", n, st[0].LastError[:10])
	}

	ro, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: c, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got := dueKeys(t, ro, t0, 0); len(got) != 1 {
		t.Fatalf("read-only due: %v", got)
	}
	for name, err := range map[string]error{
		"enqueue": ro.Enqueue(ctx, []vigil.Delivery{delivery("x", "hook")}),
		"done":    ro.DeliveryDone(ctx, ds[0].ID, t0),
		"failed":  ro.DeliveryFailed(ctx, ds[0].ID, t0, "x"),
	} {
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s on a read-only store: %v", name, err)
		}
	}
	if _, err := ro.PruneOutbox(ctx, t0); err == nil {
		t.Error("prune on a read-only store")
	}
}
