package threatconnect_test

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
	"github.com/vigil-ti/vigil/internal/threatconnect"
	"github.com/vigil-ti/vigil/internal/threatconnect/tcnfake"
)

// clock is a hand-moved clock, shared by the store, the collector, the
// client's Timestamp and the fake's signature check.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// now is the tests' present; generated data lies in the 20 days before it.
var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func gen(n int, seed uint64, assoc bool) []tcnfake.Indicator {
	return tcnfake.Generate(tcnfake.GenOptions{N: n, Seed: seed, From: now.Add(-20 * 24 * time.Hour), To: now.Add(-time.Hour), Associations: assoc})
}

type rig struct {
	fake  *tcnfake.Server
	store *sqlite.DB
	clock *clock
	col   *threatconnect.Collector
}

func settings() threatconnect.Settings {
	return threatconnect.Settings{
		Interval: 24 * time.Hour, InitialInterval: 720 * time.Hour, BatchSize: 97,
		ExpirationDuration: "90d",
	}
}

// newRig starts a collector on a fresh store, against fake.
func newRig(t *testing.T, fake *tcnfake.Server) *rig {
	t.Helper()
	c := &clock{t: now}
	fake.SetNow(c.Now)
	db, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{Clock: c, Retention: 5 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &rig{fake: fake, store: db, clock: c, col: newCollector(t, fake, db, c, fake.SecretKey())}
}

func newCollector(t *testing.T, fake *tcnfake.Server, db vigil.Store, c vigil.Clock, secret string) *threatconnect.Collector {
	t.Helper()
	client, err := threatconnect.NewClient(threatconnect.ClientConfig{
		URL: fake.URL, AccessID: fake.AccessID(), SecretKey: secret, Clock: c,
		HTTP: httpx.Options{MaxAttempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &threatconnect.Collector{Client: client, Store: db, Clock: c, Logger: discard(), Settings: settings()}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// live returns the live view by key, without event.ingested (which differs
// between runs by design).
func live(t *testing.T, st vigil.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	var p fastjson.Parser
	err := st.Live(t.Context(), vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
		v, err := p.ParseBytes(d.Source)
		if err != nil {
			return err
		}
		if ev := v.Get("event"); ev != nil {
			ev.Del("ingested")
		}
		if _, dup := out[d.Key]; dup {
			return fmt.Errorf("key %s twice in the live view", d.Key)
		}
		out[d.Key] = d.Type + "|" + v.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rawDocs(t *testing.T, db *sqlite.DB) []*fastjson.Value {
	t.Helper()
	var out []*fastjson.Value
	err := db.RawDocs(t.Context(), threatconnect.DatasetIndicator, func(doc []byte) error {
		v, err := fastjson.ParseBytes(doc)
		out = append(out, v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// expected lists the summaries of the fake's indicators that should be live
// at the given time: updated within 90 days.
func expected(fake *tcnfake.Server, at time.Time) map[string]bool {
	out := map[string]bool{}
	for _, ind := range fake.Indicators() {
		if ind.LastModified.Add(90 * 24 * time.Hour).After(at) {
			out[ind.Summary] = true
		}
	}
	return out
}

func sameKeys(t *testing.T, got map[string]string, want map[string]bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("live %d indicators, want %d", len(got), len(want))
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("%q not live", k)
		}
	}
}

func TestPullPagesThroughNextLinks(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(500, 7, false)})
	r := newRig(t, fake)
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 6 indicator pages of 97, then one page of deletions (none).
	if res.Records != 500 || res.Pages != 7 || res.Resumed || res.Live != 500 || res.Rejected != 0 {
		t.Fatalf("result %+v", res)
	}
	reqs := fake.RequestsTo(tcnfake.EndpointIndicators)
	if len(reqs) != 6 {
		t.Fatalf("%d indicator requests", len(reqs))
	}
	first := reqs[0].Query
	wantTQL := `lastModified GEQ "` + now.Add(-720*time.Hour).Format(threatconnect.TimeLayout) + `"`
	if first.Get("tql") != wantTQL || first.Get("sorting") != "lastModified asc" || first.Get("resultStart") != "0" || first.Get("resultLimit") != "97" {
		t.Fatalf("first request %v", first)
	}
	if f := strings.Join(first["fields"], ","); f != "securityLabels,sightings,tags,threatAssess" {
		t.Fatalf("fields %s", f)
	}
	for i := 1; i < len(reqs); i++ {
		if want := reqs[i-1].Next[strings.Index(reqs[i-1].Next, "/api"):]; reqs[i].Target != want {
			t.Fatalf("request %d sent %s, want the next link %s", i, reqs[i].Target, want)
		}
		if reqs[i].Status != http.StatusOK {
			t.Fatalf("request %d: %d", i, reqs[i].Status)
		}
	}
	sameKeys(t, live(t, r.store), expected(fake, now))
	if c, _ := r.col.LastCompleted(t.Context(), threatconnect.DatasetIndicator); !c.Equal(now) {
		t.Fatalf("LastCompleted %v", c)
	}
}

// TestCursorKeepsTheLastSecond adds, after a pull, an indicator modified in
// the same second as the newest one pulled. Elastic's cursor (newest + 1 s)
// would skip it; vigil's (GEQ the newest) gets it, and the repeats of that
// second leave the live view as it was.
func TestCursorKeepsTheLastSecond(t *testing.T) {
	inds := gen(300, 3, false)
	fake := tcnfake.New(t, tcnfake.Options{Indicators: inds})
	r := newRig(t, fake)
	if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err != nil {
		t.Fatal(err)
	}
	before := live(t, r.store)
	var newest time.Time
	for _, ind := range inds {
		if ind.LastModified.After(newest) {
			newest = ind.LastModified
		}
	}
	late := tcnfake.Generate(tcnfake.GenOptions{N: 1, Seed: 99, From: newest, To: newest, FirstID: 1})[0]
	late.Summary, late.Values = "late.example.com", []tcnfake.KV{{Key: "hostName", Value: "late.example.com"}}
	late.Type = "Host"
	fake.Put(late)
	fake.ResetLog()
	r.clock.Advance(time.Hour)
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := fake.RequestsTo(tcnfake.EndpointIndicators)[0].Query
	if want := `lastModified GEQ "` + newest.Format(threatconnect.TimeLayout) + `"`; q.Get("tql") != want {
		t.Fatalf("second pull asked %s, want %s", q.Get("tql"), want)
	}
	if res.Records < 2 || res.Live < 1 {
		t.Fatalf("second pull %+v", res)
	}
	after := live(t, r.store)
	if _, ok := after["late.example.com"]; !ok {
		t.Fatal("the indicator of the last second was skipped")
	}
	if !strings.HasPrefix(after["late.example.com"], "domain-name|") {
		t.Errorf("Host type %s", after["late.example.com"])
	}
	delete(after, "late.example.com")
	if len(after) != len(before) {
		t.Fatalf("%d live, want %d", len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed:\n%s\n%s", k, v, after[k])
		}
	}
}

// TestManyRecordsInOneSecond pages through more records than a page holds,
// all modified in the same second, then resumes after a stop: the GEQ
// cursor cannot move, and paging by next links still gets them all.
func TestManyRecordsInOneSecond(t *testing.T) {
	sec := now.Add(-24 * time.Hour)
	fake := tcnfake.New(t, tcnfake.Options{Indicators: tcnfake.Generate(tcnfake.GenOptions{N: 400, Seed: 5, From: sec, To: sec})})
	r := newRig(t, fake)
	stop := make(chan struct{})
	r.col.Progress = func(p vigil.Progress) {
		if p.Pages == 2 {
			close(stop)
		}
	}
	if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, stop); !errors.Is(err, vigil.ErrStopped) {
		t.Fatalf("stopped pull: %v", err)
	}
	r.col.Progress = nil
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil || !res.Resumed || res.Records != 400 {
		t.Fatalf("resumed pull %+v %v", res, err)
	}
	sameKeys(t, live(t, r.store), expected(fake, now))
}

func TestDeletedIndicatorsLeaveTheLiveView(t *testing.T) {
	inds := gen(200, 11, false)
	fake := tcnfake.New(t, tcnfake.Options{Indicators: inds})
	r := newRig(t, fake)
	if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err != nil {
		t.Fatal(err)
	}
	// Three deleted; one of the summaries comes back later as a new
	// indicator, modified after its deletion.
	gone := []tcnfake.Indicator{inds[3], inds[40], inds[177]}
	for i, ind := range gone {
		if !fake.Delete(ind.ID, now.Add(time.Duration(10+i)*time.Minute)) {
			t.Fatal("not deleted")
		}
	}
	back := inds[177]
	back.ID = 1
	back.LastModified = now.Add(20 * time.Minute)
	fake.Put(back)
	r.clock.Set(now.Add(time.Hour))
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := live(t, r.store)
	for _, ind := range gone[:2] {
		if _, ok := got[ind.Summary]; ok {
			t.Errorf("deleted %q still live", ind.Summary)
		}
	}
	if _, ok := got[back.Summary]; !ok {
		t.Errorf("%q, re-created after its deletion, is not live", back.Summary)
	}
	sameKeys(t, got, expected(fake, now.Add(time.Hour)))
	if res.Records < 3 {
		t.Fatalf("result %+v", res)
	}
	q := fake.RequestsTo(tcnfake.EndpointDeleted)
	if q[0].Query.Get("deletedSince") != now.Add(-720*time.Hour).Format(threatconnect.TimeLayout) {
		t.Errorf("first deleted listing since %s", q[0].Query.Get("deletedSince"))
	}
	// The next pull lists the deletions since the last one seen, which
	// comes again (harmlessly: its tombstone is the same).
	fake.ResetLog()
	r.clock.Set(now.Add(2 * time.Hour))
	if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err != nil {
		t.Fatal(err)
	}
	q = fake.RequestsTo(tcnfake.EndpointDeleted)
	if since := q[0].Query.Get("deletedSince"); since != now.Add(12*time.Minute).Format(threatconnect.TimeLayout) {
		t.Errorf("third deleted listing since %s, want the last deletion", since)
	}
	if _, ok := live(t, r.store)[back.Summary]; !ok {
		t.Errorf("%q lost to a repeated tombstone", back.Summary)
	}
	tombstones := 0
	for _, v := range rawDocs(t, r.store) {
		if string(v.GetStringBytes("event", "action")) == "deleted" {
			tombstones++
			if string(v.GetStringBytes("event", "kind")) != "enrichment" || len(v.GetStringBytes("threat_connect", "indicator", "summary")) == 0 {
				t.Errorf("tombstone %s", v)
			}
		}
	}
	if tombstones != 4 { // three, and the last again on the third pull
		t.Errorf("%d tombstones in the raw store, want 4", tombstones)
	}
}

// TestKillAndResumeContext cancels pulls at random points, again and again,
// and checks that the resumed pulls end with the same live view as one
// uninterrupted pull, and that every indicator reached the raw store.
func TestKillAndResumeContext(t *testing.T) {
	opts := func() tcnfake.Options {
		inds := gen(1500, 21, true)
		var dels []tcnfake.Deletion
		for i := range 40 {
			dels = append(dels, tcnfake.Deletion{OwnerName: "Demo Organization", Date: now.Add(-time.Duration(i) * time.Hour), Type: inds[i*7].Type, Summary: inds[i*7].Summary})
		}
		return tcnfake.Options{Indicators: inds, Deletions: dels}
	}
	set := settings()
	set.IncludeGroupAssoc, set.IncludeGroupAssocAttribs, set.IncludeIndicatorAssoc, set.IncludeAttributes = true, true, true, true
	set.BatchSize = 61
	ref := newRig(t, tcnfake.New(t, opts()))
	ref.col.Settings = set
	if _, err := ref.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err != nil {
		t.Fatal(err)
	}

	fake := tcnfake.New(t, opts())
	r := newRig(t, fake)
	r.col.Settings = set
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	for attempt := 0; ; attempt++ {
		if attempt > 300 {
			t.Fatalf("no complete pull after %d attempts", attempt)
		}
		ctx, cancel := context.WithCancel(t.Context())
		// Cancel either while a request is in flight or right after a
		// page was written.
		after := rng.IntN(5)
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
		_, err := r.col.Pull(ctx, threatconnect.DatasetIndicator, nil)
		cancel()
		if err == nil {
			break
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("pull failed: %v", err)
		}
		kills++
	}
	fake.SetHook(nil)
	if kills < 3 {
		t.Fatalf("only %d interruptions", kills)
	}
	t.Logf("complete after %d interruptions", kills)
	want, got := live(t, ref.store), live(t, r.store)
	if len(want) == 0 || len(want) != len(got) {
		t.Fatalf("%d live documents, want %d", len(got), len(want))
	}
	for k, doc := range want {
		if got[k] != doc {
			t.Fatalf("%s:\n got %s\nwant %s", k, got[k], doc)
		}
	}
	seen := map[string]bool{}
	for _, v := range rawDocs(t, r.store) {
		seen[string(v.GetStringBytes("event", "id"))] = true
	}
	for _, ind := range fake.Indicators() {
		if !seen[ind.Summary] {
			t.Fatalf("%s never reached the raw store", ind.Summary)
		}
	}
	a, _ := r.store.Cursor(t.Context(), threatconnect.SourceName, threatconnect.DatasetIndicator)
	b, _ := ref.store.Cursor(t.Context(), threatconnect.SourceName, threatconnect.DatasetIndicator)
	if sa, sb := fastjson.MustParseBytes(a).Get("since").String(), fastjson.MustParseBytes(b).Get("since").String(); sa != sb {
		t.Fatalf("next pull from %s, reference %s", sa, sb)
	}
}

func TestStopFinishesPageAndResumes(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(1000, 3, false)})
	r := newRig(t, fake)
	r.col.Settings.BatchSize = 100
	stop := make(chan struct{})
	r.col.Progress = func(p vigil.Progress) {
		if p.Pages == 3 {
			close(stop)
		}
	}
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, stop)
	if !errors.Is(err, vigil.ErrStopped) || res.Pages != 3 || res.Records != 300 {
		t.Fatalf("stopped pull: %+v %v", res, err)
	}
	if n := fake.Count(tcnfake.EndpointIndicators); n != 3 {
		t.Fatalf("%d requests after the stop, want the 3 pages written", n)
	}
	r.col.Progress = nil
	res, err = r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil || !res.Resumed || res.Records < 700 {
		t.Fatalf("resumed pull: %+v %v", res, err)
	}
	sameKeys(t, live(t, r.store), expected(fake, now))
}

func TestMalformedRecordsStayRawAndPageGoesOn(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(120, 5, false)})
	fake.InjectRecords(`[1,2]`, `{"id":5,"type":"Address","summary":"999.1.2.3","ip":"999.1.2.3","lastModified":"2025-02-27T00:00:00Z"}`,
		`{"id":6,"type":"Host","summary":"bad-date.example","hostName":"bad-date.example","lastModified":"yesterday"}`)
	r := newRig(t, fake)
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 123 || res.Rejected != 3 || res.Live != 120 {
		t.Fatalf("result %+v", res)
	}
	errs := 0
	for _, v := range rawDocs(t, r.store) {
		if string(v.GetStringBytes("event", "kind")) == "pipeline_error" {
			if len(v.GetArray("error", "message")) == 0 {
				t.Errorf("pipeline error without error.message: %s", v)
			}
			errs++
		}
	}
	if errs != 3 {
		t.Fatalf("raw pipeline errors %d", errs)
	}
	got := live(t, r.store)
	if _, ok := got["999.1.2.3"]; ok {
		t.Fatal("pipeline error in the live view")
	}
	sameKeys(t, got, expected(fake, now))
}

func TestCredentialsRejected(t *testing.T) {
	const wrong = "definitely-wrong-secret-42"
	cases := []struct {
		name   string
		secret string
		skew   time.Duration
		want   string
	}{
		{"wrong secret", wrong, 0, tcnfake.MsgBadSignature},
		{"clock 6 minutes slow", "", -6 * time.Minute, tcnfake.MsgStale},
		{"clock 6 minutes fast", "", 6 * time.Minute, tcnfake.MsgStale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(10, 1, false)})
			r := newRig(t, fake)
			secret := c.secret
			if secret == "" {
				secret = fake.SecretKey()
			}
			skewed := vigil.ClockFunc(func() time.Time { return r.clock.Now().Add(c.skew) })
			col := newCollector(t, fake, r.store, skewed, secret)
			_, err := col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
			if !errors.Is(err, vigil.ErrCredentials) {
				t.Fatalf("err = %v", err)
			}
			msg := err.Error()
			for _, w := range []string{"access_id", "secret_key", "clock", c.want} {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, wrong) || strings.Contains(msg, fake.SecretKey()) {
				t.Fatalf("message shows a secret: %q", msg)
			}
			var buf strings.Builder
			if err := col.Check(t.Context(), &buf); !errors.Is(err, vigil.ErrCredentials) {
				t.Fatalf("check: %v", err)
			}
			if n := fake.Count(tcnfake.EndpointIndicators); n != 1 {
				t.Fatalf("%d indicator requests: a 401 must not be retried", n)
			}
		})
	}
	// Four minutes off is within ThreatConnect's five.
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(10, 1, false)})
	r := newRig(t, fake)
	skewed := vigil.ClockFunc(func() time.Time { return r.clock.Now().Add(-4 * time.Minute) })
	if _, err := newCollector(t, fake, r.store, skewed, fake.SecretKey()).Pull(t.Context(), threatconnect.DatasetIndicator, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCheckPrintsOwners(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{})
	r := newRig(t, fake)
	var buf strings.Builder
	if err := r.col.Check(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, w := range []string{"url: " + fake.URL + "/api", "credentials: accepted", "51", "Demo Organization", "Organization", "indicators: FULL", "Abuse.ch Source", "Source"} {
		if !strings.Contains(out, w) {
			t.Errorf("check output lacks %q:\n%s", w, out)
		}
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("check sent %d requests, want 1", n)
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(30, 2, false)})
	fake.Inject(tcnfake.Fault{Endpoint: tcnfake.EndpointIndicators, Status: 429, RetryAfter: "7"}, 1)
	fake.Inject(tcnfake.Fault{Endpoint: tcnfake.EndpointIndicators, Status: 500}, 1)
	r := newRig(t, fake)
	r.col.Settings.BatchSize = 10
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil || res.Records != 30 {
		t.Fatalf("%+v %v", res, err)
	}
	// 503 past the retries: "not licensed"; the cursor stays, and the next
	// pull gets what was added.
	extra := gen(1, 77, false)[0]
	extra.ID, extra.Summary, extra.LastModified = 2, "added.example.com", now.Add(5*time.Minute)
	fake.Put(extra)
	fake.Inject(tcnfake.Fault{Endpoint: tcnfake.EndpointIndicators, Status: 503, Body: `{"status":"Error","message":"API not enabled"}`}, 3)
	r.clock.Set(now.Add(time.Hour))
	_, err = r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err == nil || !strings.Contains(err.Error(), "not licensed") || !strings.Contains(err.Error(), "API not enabled") || errors.Is(err, vigil.ErrCredentials) {
		t.Fatalf("pull through 3 failures: %v", err)
	}
	res, err = r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil || res.Records < 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if _, ok := live(t, r.store)["added.example.com"]; !ok {
		t.Fatal("indicator added before the failed pull is not live")
	}
}

func TestTruncatedPageIsRetriedNextPull(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(50, 8, false)})
	r := newRig(t, fake)
	r.col.Settings.BatchSize = 20
	fake.Inject(tcnfake.Fault{Endpoint: tcnfake.EndpointIndicators, Truncate: -1}, 1)
	if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("truncated page: %v", err)
	}
	if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, live(t, r.store), expected(fake, now))
}

func TestDeletedEndpointRefusedIsSkipped(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(20, 4, false)})
	fake.Inject(tcnfake.Fault{Endpoint: tcnfake.EndpointDeleted, Status: 404, Body: `{"status":"Error","message":"Not Found"}`}, 1)
	r := newRig(t, fake)
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil || res.Records != 20 {
		t.Fatalf("%+v %v", res, err)
	}
	if c, _ := r.col.LastCompleted(t.Context(), threatconnect.DatasetIndicator); c.IsZero() {
		t.Fatal("pull not completed")
	}
}

// TestEveryTypeWithAndWithoutAssociations pulls all twelve indicator types
// with the include_* settings off and on, and checks the type each gets
// and that the associations come only when asked for.
func TestEveryTypeWithAndWithoutAssociations(t *testing.T) {
	wantType := map[string]string{
		"Address": "", "EmailAddress": "email-addr", "File": "file", "Host": "domain-name", "URL": "url",
		"ASN": "autonomous-system", "CIDR": "", "Email Subject": "", "Hashtag": "", "Mutex": "mutex",
		"Registry Key": "windows-registry-key", "User Agent": "",
	}
	for _, assoc := range []bool{false, true} {
		t.Run(fmt.Sprintf("associations=%v", assoc), func(t *testing.T) {
			inds := gen(48, 13, true)
			fake := tcnfake.New(t, tcnfake.Options{Indicators: inds})
			r := newRig(t, fake)
			r.col.Settings.IncludeGroupAssoc = assoc
			r.col.Settings.IncludeGroupAssocAttribs = assoc
			r.col.Settings.IncludeIndicatorAssoc = assoc
			r.col.Settings.IncludeAttributes = assoc
			if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err != nil {
				t.Fatal(err)
			}
			got := live(t, r.store)
			if len(got) != len(inds) {
				t.Fatalf("%d live, want %d", len(got), len(inds))
			}
			var withGroups, withAssoc, withAttrs int
			for _, ind := range inds {
				doc, ok := got[ind.Summary]
				if !ok {
					t.Fatalf("%s %q not live", ind.Type, ind.Summary)
				}
				typ, src, _ := strings.Cut(doc, "|")
				want := wantType[ind.Type]
				switch ind.Type {
				case "Address":
					want = "ipv4-addr"
					if strings.Contains(ind.Summary, ":") {
						want = "ipv6-addr"
					}
				case "CIDR":
					want = "ipv4-addr"
					if strings.Contains(ind.Summary, ":") {
						want = "ipv6-addr"
					}
				}
				if typ != want {
					t.Errorf("%s: type %q, want %q", ind.Type, typ, want)
				}
				v := fastjson.MustParse(src)
				ti := v.Get("threat_connect", "indicator")
				if ti.Exists("associated_groups") {
					withGroups++
				}
				if ti.Exists("associated_indicators") {
					withAssoc++
				}
				if ti.Exists("attributes") {
					withAttrs++
				}
				if string(v.GetStringBytes("event", "id")) != ind.Summary || string(ti.GetStringBytes("type")) != ind.Type {
					t.Errorf("%s: event.id %s", ind.Type, v.Get("event", "id"))
				}
			}
			if assoc != (withGroups > 0 && withAssoc > 0 && withAttrs > 0) || !assoc && withGroups+withAssoc+withAttrs > 0 {
				t.Errorf("associations %v: %d with groups, %d with indicators, %d with attributes", assoc, withGroups, withAssoc, withAttrs)
			}
		})
	}
}

func TestTQLIsAnded(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(60, 9, false)})
	r := newRig(t, fake)
	r.col.Settings.TQL = ` typeName IN ("Host", "URL") `
	if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err != nil {
		t.Fatal(err)
	}
	q := fake.RequestsTo(tcnfake.EndpointIndicators)[0].Query.Get("tql")
	if !strings.HasSuffix(q, ` AND (typeName IN ("Host", "URL"))`) {
		t.Fatalf("tql %s", q)
	}
	for k, doc := range live(t, r.store) {
		if !strings.HasPrefix(doc, "domain-name|") && !strings.HasPrefix(doc, "url|") {
			t.Errorf("%s is not a Host or URL: %s", k, doc[:40])
		}
	}
	// A TQL ThreatConnect rejects is shown to the user.
	r.col.Settings.TQL = "rating >> 3"
	r.clock.Advance(time.Hour)
	if _, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil); err == nil || !strings.Contains(err.Error(), "Invalid TQL") {
		t.Fatalf("bad TQL: %v", err)
	}
}

func TestNextLinksNamingAnotherHost(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{Indicators: gen(100, 6, false), NextHost: "tc-internal.invalid:8443"})
	r := newRig(t, fake)
	res, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err != nil || res.Records != 100 {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestNextLinkLoopIsAnError(t *testing.T) {
	fake := tcnfake.New(t, tcnfake.Options{LenientNext: true})
	fake.SetHook(func(w http.ResponseWriter, r *http.Request, ep string) bool {
		if ep != tcnfake.EndpointIndicators {
			return false
		}
		w.Write([]byte(`{"data":[],"next":"http://` + r.Host + r.RequestURI + `","status":"Success"}`))
		return true
	})
	r := newRig(t, fake)
	_, err := r.col.Pull(t.Context(), threatconnect.DatasetIndicator, nil)
	if err == nil || !strings.Contains(err.Error(), "repeats the page's own link") {
		t.Fatalf("err = %v", err)
	}
	if n := fake.Count(tcnfake.EndpointIndicators); n != 1 {
		t.Fatalf("%d requests", n)
	}
}
