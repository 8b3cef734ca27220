package notify_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/notify"
	"github.com/vigil-ti/vigil/internal/notify/notifytest"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// clock is a hand-moved clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func fixedClock(t time.Time) vigil.Clock { return vigil.ClockFunc(func() time.Time { return t }) }

func openStore(t testing.TB, dir string, c vigil.Clock) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), dir, sqlite.Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func alertsFor(connector string, n int) []vigil.Delivery {
	var out []vigil.Delivery
	for i := range n {
		d := alert(fmt.Sprintf("alert-%d", i))
		d.Connector = connector
		out = append(out, d)
	}
	return out
}

// TestDeliverReceiverDownThenUp queues alerts for a webhook that refuses
// connections for an hour, then answers 503, then comes back. The queue is
// closed and reopened between attempts, as a restart would. Every alert
// arrives exactly once, in order, with its key; a second webhook that was
// up all along got its alerts at once.
func TestDeliverReceiverDownThenUp(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: t0}
	dir := t.TempDir()
	down, up := notifytest.NewReceiver(t), notifytest.NewReceiver(t)
	connectors := map[string]notify.Connector{
		"down": newWebhook(t, notify.WebhookSettings{Name: "down", URL: down.URL}),
		"up":   newWebhook(t, notify.WebhookSettings{Name: "up", URL: up.URL}),
	}
	const n = 5
	db := openStore(t, dir, clk)
	if err := db.Enqueue(ctx, append(alertsFor("down", n), alertsFor("up", n)...)); err != nil {
		t.Fatal(err)
	}
	pass := func(want notify.Stats) {
		t.Helper()
		d := notify.NewDeliverer(db, connectors, notify.Options{Clock: clk})
		st, err := d.DeliverOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st != want {
			t.Fatalf("at %s: %+v, want %+v", clk.Now().Sub(t0), st, want)
		}
		// Nothing is due again at once.
		if st, err := d.DeliverOnce(ctx); err != nil || st != (notify.Stats{}) {
			t.Fatalf("a second pass at the same time: %+v, %v", st, err)
		}
		// A restart keeps the queue.
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db = openStore(t, dir, clk)
	}
	defer func() { db.Close() }()

	down.Stop()
	pass(notify.Stats{Delivered: n, Failed: 1, Postponed: n - 1})
	for clk.Now().Before(t0.Add(time.Hour)) {
		// The backoff is capped at a minute: after a minute all are due.
		clk.Advance(time.Minute)
		pass(notify.Stats{Failed: 1, Postponed: n - 1})
	}
	down.Restart(t)
	down.Faults.Add(notifytest.Fault{Status: 503}, "hook", 3)
	for range 3 {
		clk.Advance(time.Minute)
		pass(notify.Stats{Failed: 1, Postponed: n - 1})
	}
	clk.Advance(time.Minute)
	pass(notify.Stats{Delivered: n})
	clk.Advance(time.Hour)
	pass(notify.Stats{})
	// Queued again after delivery: skipped.
	if err := db.Enqueue(ctx, alertsFor("down", n)); err != nil {
		t.Fatal(err)
	}
	pass(notify.Stats{})

	for _, r := range []*notifytest.Receiver{down, up} {
		var order []string
		for _, req := range r.Log.All() {
			key := req.Header.Get("Idempotency-Key")
			if req.Status/100 == 2 {
				order = append(order, key)
			}
			if want := string(alert(key).Body); string(req.Body) != want {
				t.Errorf("body for %s: %s", key, req.Body)
			}
		}
		want := []string{"alert-0", "alert-1", "alert-2", "alert-3", "alert-4"}
		if !slices.Equal(order, want) {
			t.Errorf("accepted %v, want %v", order, want)
		}
		for k, c := range r.Accepted() {
			if c != 1 {
				t.Errorf("%s accepted %d times", k, c)
			}
		}
	}
	// The 503s were all the first alert's, sent again with the same key.
	if reqs := down.Log.All(); len(reqs) != 3+n {
		t.Errorf("%d requests to the webhook that was down, want %d", len(reqs), 3+n)
	}
	st, err := db.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Done != n || st[0].Queued != 0 || st[1].Done != n {
		t.Errorf("outbox stats %+v", st)
	}
}

// fakeConnector fails with the errors given, in order, then succeeds.
type fakeConnector struct {
	mu   sync.Mutex
	errs []error
	sent []string
}

func (f *fakeConnector) Send(ctx context.Context, d vigil.Delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return err
		}
	}
	f.sent = append(f.sent, d.Key)
	return nil
}

// TestDeliverRefusedDoesNotBlock checks that a delivery the receiver
// refuses (400) is retried but does not hold the others back, and that a
// delivery to a connector that is not configured fails clearly and stays
// queued.
func TestDeliverRefusedDoesNotBlock(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: t0}
	db := openStore(t, t.TempDir(), clk)
	defer db.Close()
	r := notifytest.NewReceiver(t)
	r.Faults.Add(notifytest.Fault{Status: 400, Body: "no"}, "hook", 1)
	ds := append(alertsFor("hook", 3), alertsFor("gone", 2)...)
	if err := db.Enqueue(ctx, ds); err != nil {
		t.Fatal(err)
	}
	d := notify.NewDeliverer(db, map[string]notify.Connector{"hook": newWebhook(t, notify.WebhookSettings{URL: r.URL})}, notify.Options{Clock: clk})
	st, err := d.DeliverOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (notify.Stats{Delivered: 2, Failed: 1, Postponed: 2}); st != want {
		t.Fatalf("%+v, want %+v", st, want)
	}
	stats, err := db.OutboxStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]sqlite.OutboxStats{}
	for _, s := range stats {
		got[s.Connector] = s
	}
	if s := got["gone"]; s.Queued != 2 || !strings.Contains(s.LastError, `not attempted: no connector "gone" (configured: hook); its deliveries stay queued until one is`) {
		t.Errorf("gone: %+v", s)
	}
	if s := got["hook"]; s.Queued != 1 || s.Done != 2 || !strings.Contains(s.LastError, "HTTP 400 Bad Request: no") {
		t.Errorf("hook: %+v", s)
	}
	clk.Advance(time.Minute)
	if st, err := d.DeliverOnce(ctx); err != nil || st != (notify.Stats{Delivered: 1, Postponed: 2}) {
		t.Fatalf("second pass: %+v, %v", st, err)
	}
	if acc := r.Accepted(); len(acc) != 3 || acc["alert-0"] != 1 {
		t.Fatalf("accepted %v", acc)
	}
}

// TestDeliverBackoff checks the delays between attempts, by when a failing
// delivery is due again: 1s doubling up to the cap, and a Retry-After
// longer than the backoff, up to the cap.
func TestDeliverBackoff(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: t0}
	db := openStore(t, t.TempDir(), clk)
	defer db.Close()
	if err := db.Enqueue(ctx, alertsFor("hook", 1)); err != nil {
		t.Fatal(err)
	}
	r := notifytest.NewReceiver(t)
	r.Faults.Add(notifytest.Fault{Status: 503}, "hook", 8)
	r.Faults.Add(notifytest.Fault{Status: 503, RetryAfter: "45"}, "hook", 1)
	r.Faults.Add(notifytest.Fault{Status: 503, RetryAfter: "3600"}, "hook", 1)
	d := notify.NewDeliverer(db, map[string]notify.Connector{"hook": newWebhook(t, notify.WebhookSettings{URL: r.URL, Clock: clk})},
		notify.Options{Clock: clk, MaxBackoff: 40 * time.Second, Jitter: func(d time.Duration) time.Duration { return d }})
	want := []time.Duration{1, 2, 4, 8, 16, 32, 40, 40, 40, 40, 0}
	for i, w := range want {
		st, err := d.DeliverOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if w == 0 {
			if st.Delivered != 1 {
				t.Fatalf("attempt %d: %+v", i+1, st)
			}
			break
		}
		if st.Failed != 1 {
			t.Fatalf("attempt %d: %+v", i+1, st)
		}
		wait := w * time.Second
		if due, _ := db.DueDeliveries(ctx, clk.Now().Add(wait-time.Millisecond), 0); len(due) != 0 {
			t.Fatalf("after attempt %d: due before %s", i+1, wait)
		}
		if due, _ := db.DueDeliveries(ctx, clk.Now().Add(wait), 0); len(due) != 1 || due[0].Attempts != i+1 {
			t.Fatalf("after attempt %d: not due after %s: %+v", i+1, wait, due)
		}
		clk.Advance(wait)
	}
}

// TestRun checks that Run delivers what is queued while it runs, woken by
// Kick, and returns when its context ends.
func TestRun(t *testing.T) {
	clk := &clock{t: t0}
	db := openStore(t, t.TempDir(), clk)
	defer db.Close()
	r := notifytest.NewReceiver(t)
	ctx, cancel := context.WithCancel(t.Context())
	d := notify.NewDeliverer(db, map[string]notify.Connector{"hook": newWebhook(t, notify.WebhookSettings{URL: r.URL})},
		notify.Options{Clock: clk, Poll: time.Hour})
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	if err := db.Enqueue(ctx, alertsFor("hook", 3)); err != nil {
		t.Fatal(err)
	}
	d.Kick()
	deadline := time.Now().Add(30 * time.Second)
	for len(r.Accepted()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("accepted %v after 30s", r.Accepted())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

// TestDeliverEmail delivers the outbox through a real SMTP server.
func TestDeliverEmail(t *testing.T) {
	srv := notifytest.StartSMTP(t, notifytest.SMTPOptions{Username: smtpUser, Password: smtpPassword})
	clk := &clock{t: t0}
	db := openStore(t, t.TempDir(), clk)
	defer db.Close()
	ds := alertsFor("mail", 3)
	if err := db.Enqueue(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	d := notify.NewDeliverer(db, map[string]notify.Connector{"mail": newEmail(t, emailSettings(srv))}, notify.Options{Clock: clk})
	if st, err := d.DeliverOnce(t.Context()); err != nil || st != (notify.Stats{Delivered: 3}) {
		t.Fatalf("%+v, %v", st, err)
	}
	msgs := srv.Messages(t)
	if len(msgs) != 3 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, m := range msgs {
		checkMessage(t, m, ds[i])
	}
}
