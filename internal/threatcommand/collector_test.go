package threatcommand_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/sqlite"
	"github.com/vigil-ti/vigil/internal/threatcommand"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// clock is a hand-moved clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// now is the tests' present; generated data lies in the 20 days before it.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func gen(n int, seed uint64) tcfake.GenOptions {
	return tcfake.GenOptions{N: n, Seed: seed, From: now.Add(-20 * 24 * time.Hour), To: now.Add(-time.Hour)}
}

type rig struct {
	fake  *tcfake.Server
	store *sqlite.DB
	clock *clock
	col   *threatcommand.Collector
}

func settings() threatcommand.Settings {
	ds := func(initial time.Duration) threatcommand.DatasetSettings {
		return threatcommand.DatasetSettings{Enabled: true, Interval: time.Hour, InitialInterval: initial}
	}
	return threatcommand.Settings{ExpirationDuration: "90d", IOC: ds(720 * time.Hour), Alert: ds(720 * time.Hour), Vulnerability: ds(1440 * time.Hour)}
}

// newRig starts a fake API and a collector on a fresh store in dir ("" for
// a temporary one).
func newRig(t *testing.T, fake *tcfake.Server, dir string) *rig {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	c := &clock{t: now}
	db, err := sqlite.Open(t.Context(), dir, sqlite.Options{Clock: c, Retention: 5 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &rig{fake: fake, store: db, clock: c, col: newCollector(t, fake, db, c, fake.APIKey())}
}

func newCollector(t *testing.T, fake *tcfake.Server, db vigil.Store, c vigil.Clock, key string) *threatcommand.Collector {
	t.Helper()
	client, err := threatcommand.NewClient(threatcommand.ClientConfig{
		URL: fake.URL, AccountID: fake.AccountID(), APIKey: key,
		HTTP: httpx.New(httpx.Options{MaxAttempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }}),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &threatcommand.Collector{Client: client, Store: db, Clock: c, Logger: discard(), Settings: settings()}
}

// live returns a view's documents by key, without the ingest-time field
// (event.ingested differs between runs by design).
func live(t *testing.T, st vigil.Store, view vigil.View) map[string]string {
	t.Helper()
	out := map[string]string{}
	var p fastjson.Parser
	err := st.Live(t.Context(), vigil.LiveFilter{View: view}, func(d vigil.Document) error {
		v, err := p.ParseBytes(d.Source)
		if err != nil {
			return err
		}
		if ev := v.Get("event"); ev != nil {
			ev.Del("ingested")
		}
		k := d.Dataset + "|" + d.Key
		if _, dup := out[k]; dup {
			return fmt.Errorf("key %s twice in the live view", k)
		}
		out[k] = v.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rawCount(t *testing.T, db *sqlite.DB, dataset string) int {
	t.Helper()
	n := 0
	if err := db.RawDocs(t.Context(), dataset, func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// expectedIOCs lists the names of the fake's IOCs that should be live at
// the given time: not retired, and updated within 90 days.
func expectedIOCs(fake *tcfake.Server, at time.Time) map[string]bool {
	out := map[string]bool{}
	for i := range fake.IOCLen() {
		r := fake.IOC(i)
		if r.Status == "Retired" || !r.LastUpdateDate.Add(90*24*time.Hour).After(at) {
			continue
		}
		out[r.Value] = true
	}
	return out
}

func TestPullIOCsThenIncremental(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{PageSize: 97, IOCs: tcfake.GenerateIOCs(gen(2000, 7))})
	r := newRig(t, fake, "")
	ctx := t.Context()
	res, err := r.col.Pull(ctx, threatcommand.DatasetIOC, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 2000 || res.Pages != 21 || res.Resumed {
		t.Fatalf("result %+v", res)
	}
	// The window stayed fixed while paging, with one syncId.
	reqs := fake.RequestsTo(tcfake.EndpointIOCs)
	first := reqs[0].Query
	wantFrom := now.Add(-720 * time.Hour).Format(threatcommand.TimeLayout)
	if first.Get("lastUpdatedFrom") != wantFrom || first.Get("lastUpdatedTo") != now.Format(threatcommand.TimeLayout) || first.Get("syncId") == "" {
		t.Fatalf("first request %v", first)
	}
	for i, q := range reqs {
		for _, k := range []string{"lastUpdatedFrom", "lastUpdatedTo", "syncId"} {
			if q.Query.Get(k) != first.Get(k) {
				t.Fatalf("request %d changed %s: %q, first %q", i, k, q.Query.Get(k), first.Get(k))
			}
		}
		if (i == 0) != (q.Query.Get("offset") == "") {
			t.Fatalf("request %d offset %q", i, q.Query.Get("offset"))
		}
	}
	want := expectedIOCs(fake, now)
	got := live(t, r.store, vigil.ViewIndicators)
	if len(got) != len(want) {
		t.Fatalf("live %d IOCs, want %d", len(got), len(want))
	}
	for k := range got {
		if !want[strings.TrimPrefix(k, threatcommand.DatasetIOC+"|")] {
			t.Fatalf("unexpected live IOC %s", k)
		}
	}
	var maxDate time.Time
	for i := range fake.IOCLen() {
		if d := fake.IOC(i).LastUpdateDate; d.After(maxDate) {
			maxDate = d
		}
	}

	// Changes upstream: one IOC updated, one retired, one new.
	upd := fake.IOC(1)
	upd.LastUpdateDate = now.Add(10 * time.Minute)
	upd.Severity = "High"
	upd.Score = tcfake.Score(99)
	fake.SetIOC(1, upd)
	retired := fake.IOC(4)
	fake.RetireIOC(4, now.Add(20*time.Minute))
	fake.PutIOC(tcfake.IOC{Value: "203.0.113.77", Type: "IpAddresses", Status: "Active", Severity: "Low", LastUpdateDate: now.Add(30 * time.Minute)})
	fake.ResetLog()
	r.clock.Set(now.Add(time.Hour))
	res, err = r.col.Pull(ctx, threatcommand.DatasetIOC, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The next window starts at the largest update date of the last
	// complete window, which the API does not return last.
	q := fake.RequestsTo(tcfake.EndpointIOCs)[0].Query
	if q.Get("lastUpdatedFrom") != maxDate.Format(threatcommand.TimeLayout) || q.Get("syncId") != first.Get("syncId") {
		t.Fatalf("second window from %s (want %s), syncId %s (want %s)", q.Get("lastUpdatedFrom"), maxDate.Format(threatcommand.TimeLayout), q.Get("syncId"), first.Get("syncId"))
	}
	if res.Records < 3 {
		t.Fatalf("second pull got %d records", res.Records)
	}
	got = live(t, r.store, vigil.ViewIndicators)
	if _, ok := got[threatcommand.DatasetIOC+"|"+retired.Value]; ok {
		t.Fatal("retired IOC still live")
	}
	if doc := got[threatcommand.DatasetIOC+"|"+upd.Value]; !strings.Contains(doc, `"severity":"High"`) || !strings.Contains(doc, `"risk_score":99`) {
		t.Fatalf("updated IOC not replaced: %s", doc)
	}
	if _, ok := got[threatcommand.DatasetIOC+"|203.0.113.77"]; !ok {
		t.Fatal("new IOC not live")
	}
	if want := expectedIOCs(fake, now.Add(time.Hour)); len(got) != len(want) {
		t.Fatalf("live %d, want %d", len(got), len(want))
	}
}

// TestKillAndResumeContext cancels pulls at random points, again and again,
// and checks that the resumed pulls end with the same live view as one
// uninterrupted pull, and that each record reached the raw store exactly
// once.
func TestKillAndResumeContext(t *testing.T) {
	const n = 3000
	opts := func() tcfake.Options {
		return tcfake.Options{PageSize: 101, IOCs: tcfake.GenerateIOCs(gen(n, 11)), CVEs: tcfake.GenerateCVEs(gen(1200, 12)), Alerts: tcfake.GenerateAlerts(gen(180, 13))}
	}
	ref := newRig(t, tcfake.New(t, opts()), "")
	for _, ds := range ref.col.Datasets() {
		if _, err := ref.col.Pull(t.Context(), ds, nil); err != nil {
			t.Fatal(err)
		}
	}

	fake := tcfake.New(t, opts())
	r := newRig(t, fake, "")
	r.col.AlertBatch = 7
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ds := range r.col.Datasets() {
		kills := 0
		for attempt := 0; ; attempt++ {
			if attempt > 200 {
				t.Fatalf("%s: no complete pull after %d attempts", ds, attempt)
			}
			ctx, cancel := context.WithCancel(t.Context())
			// Cancel either while a request is in flight or right after
			// a page was written.
			after := rng.IntN(6)
			calls := 0
			var mu sync.Mutex
			fake.SetHook(func(w http.ResponseWriter, req *http.Request, ep string) bool {
				mu.Lock()
				calls++
				hit := calls > after && rng.IntN(2) == 0
				mu.Unlock()
				if hit {
					cancel()
					<-req.Context().Done()
					return true
				}
				return false
			})
			r.col.Progress = func(p vigil.Progress) {
				if p.Pages > after {
					cancel()
				}
			}
			_, err := r.col.Pull(ctx, ds, nil)
			cancel()
			if err == nil {
				break
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s: pull failed: %v", ds, err)
			}
			kills++
		}
		fake.SetHook(nil)
		if kills < 3 {
			t.Fatalf("%s: only %d interruptions", ds, kills)
		}
		t.Logf("%s: complete after %d interruptions", ds, kills)
	}
	for _, v := range vigil.Views {
		want, got := live(t, ref.store, v), live(t, r.store, v)
		if len(want) == 0 {
			t.Fatalf("%s: reference view is empty", v)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d live documents, want %d", v, len(got), len(want))
		}
		for k, doc := range want {
			if got[k] != doc {
				t.Fatalf("%s %s:\n got %s\nwant %s", v, k, got[k], doc)
			}
		}
	}
	for _, ds := range []string{threatcommand.DatasetIOC, threatcommand.DatasetVulnerability, threatcommand.DatasetAlert} {
		if a, b := rawCount(t, r.store, ds), rawCount(t, ref.store, ds); a != b {
			t.Fatalf("%s: %d raw documents after the interrupted pulls, want %d (each record exactly once)", ds, a, b)
		}
	}
	// The next pull starts a new window where the reference's does.
	for _, ds := range r.col.Datasets() {
		a, _ := r.store.Cursor(t.Context(), threatcommand.SourceName, ds)
		b, _ := ref.store.Cursor(t.Context(), threatcommand.SourceName, ds)
		if next(t, a) != next(t, b) {
			t.Fatalf("%s: next window from %s, reference %s", ds, next(t, a), next(t, b))
		}
	}
}

func next(t *testing.T, cursor []byte) string {
	t.Helper()
	v, err := fastjson.ParseBytes(cursor)
	if err != nil {
		t.Fatal(err)
	}
	if v.Exists("open") {
		t.Fatalf("window still open: %s", cursor)
	}
	return string(v.GetStringBytes("next"))
}

func TestStopFinishesPageAndResumes(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{PageSize: 100, IOCs: tcfake.GenerateIOCs(gen(1000, 3))})
	r := newRig(t, fake, "")
	stop := make(chan struct{})
	r.col.Progress = func(p vigil.Progress) {
		if p.Pages == 3 {
			close(stop)
		}
	}
	res, err := r.col.Pull(t.Context(), threatcommand.DatasetIOC, stop)
	if !errors.Is(err, vigil.ErrStopped) || res.Pages != 3 || res.Records != 300 {
		t.Fatalf("stopped pull: %+v %v", res, err)
	}
	r.col.Progress = nil
	res, err = r.col.Pull(t.Context(), threatcommand.DatasetIOC, nil)
	if err != nil || !res.Resumed || res.Pages != 7 || res.Records != 700 {
		t.Fatalf("resumed pull: %+v %v", res, err)
	}
	if got := rawCount(t, r.store, threatcommand.DatasetIOC); got != 1000 {
		t.Fatalf("raw %d, want 1000", got)
	}
}

func TestMalformedRecordsStayRawAndPageGoesOn(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{PageSize: 50, IOCs: tcfake.GenerateIOCs(gen(120, 5))})
	fake.InjectIOCRecords(tcfake.MalformedNotObject, tcfake.MalformedBadIP, tcfake.MalformedBadDate)
	r := newRig(t, fake, "")
	res, err := r.col.Pull(t.Context(), threatcommand.DatasetIOC, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 123 || res.Rejected < 3 {
		t.Fatalf("result %+v", res)
	}
	errs := 0
	err = r.store.RawDocs(t.Context(), threatcommand.DatasetIOC, func(doc []byte) error {
		v := fastjson.MustParseBytes(doc)
		if string(v.GetStringBytes("event", "kind")) == "pipeline_error" {
			if len(v.GetStringBytes("error", "message")) == 0 && len(v.GetArray("error", "message")) == 0 {
				t.Errorf("pipeline error without error.message: %s", doc)
			}
			errs++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if errs != res.Rejected {
		t.Fatalf("raw pipeline errors %d, rejected %d", errs, res.Rejected)
	}
	for k, doc := range live(t, r.store, vigil.ViewIndicators) {
		if strings.Contains(doc, "pipeline_error") || strings.Contains(k, "999.1.2.3") {
			t.Fatalf("pipeline error in the live view: %s", k)
		}
	}
}

func TestCredentialsRejected(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{IOCs: tcfake.GenerateIOCs(gen(10, 1))})
	r := newRig(t, fake, "")
	const wrong = "definitely-wrong-key-42"
	col := newCollector(t, fake, r.store, r.clock, wrong)
	for _, ds := range col.Datasets() {
		_, err := col.Pull(t.Context(), ds, nil)
		if !errors.Is(err, vigil.ErrCredentials) {
			t.Fatalf("%s: err = %v", ds, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "account_id") || !strings.Contains(msg, "api_key") || strings.Contains(msg, wrong) {
			t.Fatalf("%s: message %q", ds, msg)
		}
	}
	var buf strings.Builder
	if err := col.Check(t.Context(), &buf); !errors.Is(err, vigil.ErrCredentials) {
		t.Fatalf("check: %v", err)
	}
	buf.Reset()
	if err := r.col.Check(t.Context(), &buf); err != nil || !strings.Contains(buf.String(), "credentials: accepted") || !strings.Contains(buf.String(), "IOC") {
		t.Fatalf("check: %v\n%s", err, buf.String())
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{PageSize: 10, IOCs: tcfake.GenerateIOCs(gen(30, 2))})
	fake.Inject(tcfake.Fault{Endpoint: tcfake.EndpointIOCs, Status: 429, RetryAfter: "7"}, 1)
	fake.Inject(tcfake.Fault{Endpoint: tcfake.EndpointIOCs, Status: 503}, 1)
	r := newRig(t, fake, "")
	res, err := r.col.Pull(t.Context(), threatcommand.DatasetIOC, nil)
	if err != nil || res.Records != 30 {
		t.Fatalf("%+v %v", res, err)
	}
	// A failure past the retries leaves the cursor where it was; the next
	// pull resumes the same window.
	fake.PutIOC(tcfake.IOC{Value: "198.51.100.1", Type: "IpAddresses", Status: "Active", Severity: "Low", LastUpdateDate: now.Add(5 * time.Minute)})
	fake.Inject(tcfake.Fault{Endpoint: tcfake.EndpointIOCs, Status: 500}, 3)
	r.clock.Set(now.Add(time.Hour))
	if _, err := r.col.Pull(t.Context(), threatcommand.DatasetIOC, nil); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("pull through 3 failures: %v", err)
	}
	res, err = r.col.Pull(t.Context(), threatcommand.DatasetIOC, nil)
	if err != nil || res.Records < 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, ok := live(t, r.store, vigil.ViewIndicators)[threatcommand.DatasetIOC+"|198.51.100.1"]; !ok {
		t.Fatal("IOC added before the failed pull is not live")
	}
}

func TestEmptyAlertListKeepsCursor(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{EmptyAlertListBody: true})
	r := newRig(t, fake, "")
	res, err := r.col.Pull(t.Context(), threatcommand.DatasetAlert, nil)
	if err != nil || res.Records != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	cur, _ := r.store.Cursor(t.Context(), threatcommand.SourceName, threatcommand.DatasetAlert)
	if got, want := next(t, cur), now.Add(-720*time.Hour).Format(time.RFC3339Nano); got != want {
		t.Fatalf("next window from %s, want the empty window's start %s", got, want)
	}
}

func TestAlertIDsListedOnceAcrossResume(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{Alerts: tcfake.GenerateAlerts(gen(90, 4))})
	r := newRig(t, fake, "")
	r.col.AlertBatch = 10
	fake.Inject(tcfake.Fault{Endpoint: tcfake.EndpointAlert, Status: 500}, 3) // fails the 3 attempts of one alert
	if _, err := r.col.Pull(t.Context(), threatcommand.DatasetAlert, nil); err == nil {
		t.Fatal("pull succeeded through a failing alert")
	}
	res, err := r.col.Pull(t.Context(), threatcommand.DatasetAlert, nil)
	if err != nil || !res.Resumed {
		t.Fatalf("%+v %v", res, err)
	}
	if n := fake.Count(tcfake.EndpointAlertList); n != 1 {
		t.Fatalf("alerts-list called %d times, want 1", n)
	}
	listed := 0
	for _, a := range fake.Alerts() {
		if !a.Closed {
			listed++
		}
	}
	if got := len(live(t, r.store, vigil.ViewAlerts)); got != listed {
		t.Fatalf("live alerts %d, want %d", got, listed)
	}
}

func TestExpiryMovesWithClock(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{IOCs: tcfake.GenerateIOCs(gen(500, 9))})
	r := newRig(t, fake, "")
	if _, err := r.col.Pull(t.Context(), threatcommand.DatasetIOC, nil); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{now, now.Add(75 * 24 * time.Hour), now.Add(80 * 24 * time.Hour), now.Add(91 * 24 * time.Hour)} {
		r.clock.Set(at)
		got, want := live(t, r.store, vigil.ViewIndicators), expectedIOCs(fake, at)
		if len(got) != len(want) {
			t.Fatalf("at %s: %d live, want %d", at, len(got), len(want))
		}
	}
	if len(live(t, r.store, vigil.ViewIndicators)) != 0 {
		t.Fatal("IOCs live 91 days after their last update")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
