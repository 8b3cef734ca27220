package misp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/misp"
	"github.com/vigil-ti/vigil/internal/misp/mispfake"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// clock is a hand-moved clock, shared by the store and the collector.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// now is the tests' present: the end of the generated data's window.
var now = mispfake.DefaultTo

func gen(events, per int, seed uint64) []mispfake.Event {
	return mispfake.Generate(mispfake.GenOptions{Events: events, PerEvent: per, Seed: seed, Objects: true})
}

type rig struct {
	fake  *mispfake.Server
	store *sqlite.DB
	clock *clock
	col   *misp.Collector
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func settings() misp.Settings {
	return misp.Settings{Interval: 10 * time.Minute, InitialInterval: 720 * time.Hour, Limit: 97, ExpirationDuration: "90d", FeedPageDocs: 50}
}

func httpOpts() httpx.Options { return httpx.Options{MaxAttempts: 3, Sleep: noSleep} }

// newRig starts a collector on a fresh store; instance and feed select
// what it reads of the fake.
func newRig(t *testing.T, fake *mispfake.Server, instance, feed bool) *rig {
	t.Helper()
	c := &clock{t: now}
	db, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{Clock: c, Retention: 5 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	col := &misp.Collector{Store: db, Clock: c, Logger: discard(), Settings: settings()}
	if instance {
		client, err := misp.NewClient(misp.ClientConfig{URL: fake.URL, APIKey: fake.APIKey(), HTTP: httpOpts()})
		if err != nil {
			t.Fatal(err)
		}
		col.Client = client
	}
	if feed {
		col.Feeds = []*misp.Feed{newFeed(t, "fake", fake.FeedURL)}
	}
	return &rig{fake: fake, store: db, clock: c, col: col}
}

func newFeed(t *testing.T, name, url string) *misp.Feed {
	t.Helper()
	f, err := misp.NewFeed(misp.FeedConfig{Name: name, URL: url, HTTP: httpx.New(httpOpts())})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func dirFeed(t *testing.T, name, dir string) *misp.Feed {
	t.Helper()
	f, err := misp.NewFeed(misp.FeedConfig{Name: name, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// live returns the live view by key, each document without event.ingested
// (which differs between runs by design).
func live(t *testing.T, st vigil.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	var p fastjson.Parser
	err := st.Live(t.Context(), vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
		v, err := p.ParseBytes(d.Source)
		if err != nil {
			return err
		}
		v.Get("event").Del("ingested")
		k := d.Dataset + "|" + d.Key
		if _, dup := out[k]; dup {
			return fmt.Errorf("key %s twice in the live view", k)
		}
		out[k] = d.Type + "|" + v.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// liveDoc returns one live document's source.
func liveDoc(t *testing.T, st vigil.Store, dataset, key string) *fastjson.Value {
	t.Helper()
	doc, ok := live(t, st)[dataset+"|"+key]
	if !ok {
		return nil
	}
	_, src, _ := strings.Cut(doc, "|")
	return fastjson.MustParse(src)
}

// expected lists the keys of the attributes of events that should be live
// at the given time: not deleted, with to_ids when toIDs, and (from the
// instance) changed within 90 days and within the look-back.
func expected(dataset string, events []mispfake.Event, at time.Time, since time.Time) map[string]bool {
	out := map[string]bool{}
	for i := range events {
		for _, a := range events[i].AllAttributes() {
			if a.Deleted || a.Raw != "" {
				continue
			}
			if dataset == misp.DatasetAttributes && (a.Timestamp.Before(since) || !a.Timestamp.Add(90*24*time.Hour).After(at)) {
				continue
			}
			out[dataset+"|"+a.UUID] = true
		}
	}
	return out
}

func sameKeys(t *testing.T, got map[string]string, want map[string]bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("live %d documents, want %d", len(got), len(want))
	}
	missing := 0
	for k := range want {
		if _, ok := got[k]; !ok && missing < 5 {
			t.Errorf("%s not live", k)
			missing++
		}
	}
}

func rawDocs(t *testing.T, db *sqlite.DB, dataset string) []*fastjson.Value {
	t.Helper()
	var out []*fastjson.Value
	err := db.RawDocs(t.Context(), dataset, func(doc []byte) error {
		v, err := fastjson.ParseBytes(doc)
		out = append(out, v)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ---- Instance -------------------------------------------------------------------

func TestPullAttributesPages(t *testing.T) {
	evs := gen(10, 50, 7)
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	r := newRig(t, fake, true, false)
	if ds := r.col.Datasets(); len(ds) != 1 || ds[0] != misp.DatasetAttributes {
		t.Fatalf("datasets %v", ds)
	}
	res, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 500 attributes in pages of 97: 6 pages, the last one short.
	if res.Records != 500 || res.Pages != 6 || res.Resumed || res.Live != 500 || res.Rejected != 0 {
		t.Fatalf("result %+v", res)
	}
	reqs := fake.RequestsTo(mispfake.EndpointRestSearch)
	from := now.Add(-720 * time.Hour).Unix()
	for i, q := range reqs {
		if q.Search.Page != i+1 || q.Search.Limit != 97 || q.Search.Timestamp != from || q.Search.Order != "timestamp" || !q.Search.IncludeEventTags {
			t.Fatalf("request %d: %+v", i, q.Search)
		}
	}
	sameKeys(t, live(t, r.store), expected(misp.DatasetAttributes, evs, now, time.Time{}))
	if c, _ := r.col.LastCompleted(t.Context(), misp.DatasetAttributes); !c.Equal(now) {
		t.Fatalf("LastCompleted %v", c)
	}
	// The event's tags came with includeEventTags.
	a := evs[0].Attributes[0]
	doc := liveDoc(t, r.store, misp.DatasetAttributes, a.UUID)
	if doc == nil || string(doc.GetStringBytes("threat", "indicator", "marking", "tlp", "0")) != "WHITE" || string(doc.GetStringBytes("threat", "feed", "name")) != "MISP" {
		t.Fatalf("document %s", doc)
	}
}

// TestPullAttributesIncremental: the next pull starts at the newest
// attribute timestamp seen, and gets what changed since.
func TestPullAttributesIncremental(t *testing.T) {
	evs := gen(4, 30, 8)
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	r := newRig(t, fake, true, false)
	if _, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil); err != nil {
		t.Fatal(err)
	}
	var newest time.Time
	for _, e := range evs {
		for _, a := range e.AllAttributes() {
			if a.Timestamp.After(newest) {
				newest = a.Timestamp
			}
		}
	}
	// One attribute changes (its value and timestamp), one is added.
	r.clock.Advance(time.Hour)
	e := evs[2]
	e.Attributes[0].Value, e.Attributes[0].Timestamp = "changed.example", now.Add(30*time.Minute)
	e.Attributes[0].Type = "domain"
	e.Attributes = append(e.Attributes, mispfake.Attribute{ID: 9999, UUID: "aaaaaaaa-1111-4222-8333-444444444444", Type: "ip-dst",
		Category: "Network activity", Value: "198.51.100.200", ToIDs: true, Timestamp: now.Add(40 * time.Minute)})
	fake.Put(e)
	fake.ResetLog()
	res, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := fake.RequestsTo(mispfake.EndpointRestSearch)[0].Search
	if q.Timestamp != newest.Unix() || q.Page != 1 {
		t.Fatalf("second pull asked %+v, want timestamp %d", q, newest.Unix())
	}
	if res.Records < 2 || res.Records > 5 {
		t.Fatalf("second pull %+v", res)
	}
	got := live(t, r.store)
	if doc := liveDoc(t, r.store, misp.DatasetAttributes, e.Attributes[0].UUID); doc == nil ||
		string(doc.GetStringBytes("threat", "indicator", "url", "domain")) != "changed.example" {
		t.Fatalf("changed attribute: %s", doc)
	}
	if _, ok := got[misp.DatasetAttributes+"|aaaaaaaa-1111-4222-8333-444444444444"]; !ok {
		t.Fatal("added attribute not live")
	}
	sameKeys(t, got, expected(misp.DatasetAttributes, fake.Events(), r.clock.Now(), time.Time{}))
	// A third pull starts at the newest again, the attribute added last.
	fake.ResetLog()
	if _, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil); err != nil {
		t.Fatal(err)
	}
	if q := fake.RequestsTo(mispfake.EndpointRestSearch)[0].Search; q.Timestamp != now.Add(40*time.Minute).Unix() {
		t.Fatalf("third pull from %d", q.Timestamp)
	}
}

// TestFutureTimestampDoesNotMoveTheCursorPast: an attribute dated after the
// pull's start caps the cursor at that start.
func TestFutureTimestampDoesNotMoveTheCursorPast(t *testing.T) {
	evs := gen(1, 5, 9)
	evs[0].Attributes[0].Timestamp = now.Add(48 * time.Hour)
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	r := newRig(t, fake, true, false)
	if _, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil); err != nil {
		t.Fatal(err)
	}
	fake.ResetLog()
	r.clock.Advance(time.Hour)
	if _, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil); err != nil {
		t.Fatal(err)
	}
	if q := fake.RequestsTo(mispfake.EndpointRestSearch)[0].Search; q.Timestamp != now.Unix() {
		t.Fatalf("second pull from %d, want the first pull's start %d", q.Timestamp, now.Unix())
	}
}

func TestPullAttributesFilters(t *testing.T) {
	evs := gen(6, 20, 10)
	evs[0].Tags = []string{"tlp:red"}
	evs[1].Published = false
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	fake.SetWarningList(evs[2].Attributes[0].Value)
	r := newRig(t, fake, true, false)
	yes := true
	r.col.Settings.ToIDs, r.col.Settings.Published, r.col.Settings.Tags = &yes, &yes, []string{"!tlp:red"}
	r.col.Settings.EnforceWarningList = true
	if _, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil); err != nil {
		t.Fatal(err)
	}
	q := fake.RequestsTo(mispfake.EndpointRestSearch)[0].Search
	if q.ToIDs == nil || !*q.ToIDs || q.Published == nil || !*q.Published || len(q.TagsNOT) != 1 || q.TagsNOT[0] != "tlp:red" || !q.EnforceWarninglist {
		t.Fatalf("search %+v", q)
	}
	got := live(t, r.store)
	want := map[string]bool{}
	for i, e := range evs {
		if i <= 1 || !e.Published {
			continue
		}
		for _, a := range e.AllAttributes() {
			if a.ToIDs && a.Value != evs[2].Attributes[0].Value {
				want[misp.DatasetAttributes+"|"+a.UUID] = true
			}
		}
	}
	sameKeys(t, got, want)
}

// TestBadAttributesStayRawAndPageGoesOn: a malformed attribute becomes a
// pipeline error in the raw store; the others of its page are live.
func TestBadAttributesStayRawAndPageGoesOn(t *testing.T) {
	evs := gen(2, 40, 11)
	ts := `"timestamp":"` + fmt.Sprint(now.Add(-time.Hour).Unix()) + `"`
	evs[0].Attributes = append(evs[0].Attributes,
		mispfake.Attribute{ID: 5001, Timestamp: now.Add(-time.Hour), Raw: `{"uuid":"bad00001-0000-4000-8000-000000000001","type":"ip-dst","value":"192.0.2.300",` + ts + `}`},
		mispfake.Attribute{ID: 5002, Timestamp: now.Add(-time.Hour), Raw: `[1,2]`},
		mispfake.Attribute{ID: 5003, Timestamp: now.Add(-time.Hour), Raw: `{"uuid":"bad00003-0000-4000-8000-000000000003","type":"domain","value":"no-date.example"}`})
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	r := newRig(t, fake, true, false)
	res, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 83 || res.Rejected != 3 || res.Live != 80 {
		t.Fatalf("result %+v", res)
	}
	errs := 0
	for _, v := range rawDocs(t, r.store, misp.DatasetAttributes) {
		if string(v.GetStringBytes("event", "kind")) == "pipeline_error" {
			if len(v.GetArray("error", "message")) == 0 || len(v.GetStringBytes("event", "original")) == 0 {
				t.Errorf("pipeline error without error.message or event.original: %s", v)
			}
			errs++
		}
	}
	if errs != 3 {
		t.Fatalf("%d pipeline errors in the raw store", errs)
	}
	sameKeys(t, live(t, r.store), expected(misp.DatasetAttributes, evs, now, time.Time{}))
}

func TestPullRetries429And5xx(t *testing.T) {
	evs := gen(2, 30, 12)
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointRestSearch, Status: 429, RetryAfter: "2"}, 1)
	fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointRestSearch, Status: 502}, 1)
	fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointManifest, Status: 503}, 1)
	fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointEvent, Status: 500}, 2)
	r := newRig(t, fake, true, true)
	for _, ds := range r.col.Datasets() {
		res, err := r.col.Pull(t.Context(), ds, nil)
		if err != nil || res.Records != 60 {
			t.Fatalf("%s: %+v %v", ds, res, err)
		}
	}
	got := live(t, r.store)
	want := expected(misp.DatasetAttributes, evs, now, time.Time{})
	for k := range expected(misp.DatasetFeed, evs, now, time.Time{}) {
		want[k] = true
	}
	sameKeys(t, got, want)
	// Past the retries, the pull fails, the cursor stays, and the next pull
	// gets everything.
	fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointRestSearch, Status: 500}, 3)
	r.clock.Advance(time.Hour)
	if _, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil); err == nil || !strings.Contains(err.Error(), "HTTP 500") || errors.Is(err, vigil.ErrCredentials) {
		t.Fatalf("pull through 3 failures: %v", err)
	}
	if _, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialsRejectedStopsTheSource(t *testing.T) {
	fake := mispfake.New(t, mispfake.Options{Events: gen(1, 5, 13)})
	r := newRig(t, fake, false, false)
	client, err := misp.NewClient(misp.ClientConfig{URL: fake.URL, APIKey: "not-the-key-0123456789", HTTP: httpOpts()})
	if err != nil {
		t.Fatal(err)
	}
	r.col.Client = client
	_, err = r.col.Pull(t.Context(), misp.DatasetAttributes, nil)
	if !errors.Is(err, vigil.ErrCredentials) || !strings.Contains(err.Error(), "sources.misp.api_token") || strings.Contains(err.Error(), "not-the-key") {
		t.Fatalf("err %v", err)
	}
	var buf strings.Builder
	if err := r.col.Check(t.Context(), &buf); !errors.Is(err, vigil.ErrCredentials) || !strings.Contains(buf.String(), "FAILED") {
		t.Fatalf("check: %v\n%s", err, buf.String())
	}
}

// TestKillAndResumeAttributes cancels pulls at random points, again and
// again, and checks that the resumed pulls end with the same live view as
// one uninterrupted pull, that every attribute reached the raw store, and
// that the next pull starts where the reference's does.
func TestKillAndResumeAttributes(t *testing.T) {
	evs := gen(20, 60, 21)
	ref := newRig(t, mispfake.New(t, mispfake.Options{Events: evs}), true, false)
	if _, err := ref.col.Pull(t.Context(), misp.DatasetAttributes, nil); err != nil {
		t.Fatal(err)
	}
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	r := newRig(t, fake, true, false)
	killUntilDone(t, r, fake, misp.DatasetAttributes)
	compareLive(t, ref, r)
	seen := map[string]bool{}
	for _, v := range rawDocs(t, r.store, misp.DatasetAttributes) {
		seen[string(v.GetStringBytes("misp", "attribute", "uuid"))] = true
	}
	for _, e := range evs {
		for _, a := range e.AllAttributes() {
			if !seen[a.UUID] {
				t.Fatalf("%s never reached the raw store", a.UUID)
			}
		}
	}
	a, _ := r.store.Cursor(t.Context(), misp.SourceName, misp.DatasetAttributes)
	b, _ := ref.store.Cursor(t.Context(), misp.SourceName, misp.DatasetAttributes)
	if sa, sb := fastjson.MustParseBytes(a).Get("since").String(), fastjson.MustParseBytes(b).Get("since").String(); sa != sb {
		t.Fatalf("next pull from %s, reference %s", sa, sb)
	}
}

// TestKillAndResumeFeed does the same for a feed: events of a page the kill
// interrupted are fetched again; those written are not.
func TestKillAndResumeFeed(t *testing.T) {
	evs := gen(30, 25, 22)
	ref := newRig(t, mispfake.New(t, mispfake.Options{Events: evs}), false, true)
	if _, err := ref.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	r := newRig(t, fake, false, true)
	killUntilDone(t, r, fake, misp.DatasetFeed)
	compareLive(t, ref, r)
	// Once complete, nothing is fetched again.
	fake.ResetLog()
	r.clock.Advance(time.Hour)
	if res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil || res.Records != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := fake.Count(mispfake.EndpointEvent); n != 0 {
		t.Fatalf("%d events fetched again after a complete pull", n)
	}
}

// killUntilDone pulls dataset, cancelling at random points (while a request
// is in flight, or right after a page was written) until a pull completes.
func killUntilDone(t *testing.T, r *rig, fake *mispfake.Server, dataset string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex // guards rng: a hook of an attempt may still run
	kills := 0
	for attempt := 0; ; attempt++ {
		if attempt > 300 {
			t.Fatalf("no complete pull after %d attempts", attempt)
		}
		ctx, cancel := context.WithCancel(t.Context())
		mu.Lock()
		after := rng.IntN(4)
		mu.Unlock()
		calls := 0
		fake.SetHook(func(w http.ResponseWriter, req *http.Request, ep string) bool {
			mu.Lock()
			calls++
			hit := calls > after && rng.IntN(3) == 0
			mu.Unlock()
			if hit {
				cancel()
				select {
				case <-req.Context().Done():
				case <-time.After(10 * time.Second):
					t.Error("the client did not hang up")
				}
				return true
			}
			return false
		})
		r.col.Progress = func(p vigil.Progress) {
			if p.Pages > after {
				cancel()
			}
		}
		_, err := r.col.Pull(ctx, dataset, nil)
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
	r.col.Progress = nil
	if kills < 3 {
		t.Fatalf("only %d interruptions", kills)
	}
	t.Logf("complete after %d interruptions", kills)
}

func compareLive(t *testing.T, ref, r *rig) {
	t.Helper()
	want, got := live(t, ref.store), live(t, r.store)
	if len(want) == 0 || len(want) != len(got) {
		t.Fatalf("%d live documents, want %d", len(got), len(want))
	}
	for k, doc := range want {
		if got[k] != doc {
			t.Fatalf("%s:\n got %s\nwant %s", k, got[k], doc)
		}
	}
}

func TestStopFinishesPageAndResumes(t *testing.T) {
	for _, ds := range []string{misp.DatasetAttributes, misp.DatasetFeed} {
		t.Run(ds, func(t *testing.T) {
			evs := gen(12, 50, 23)
			fake := mispfake.New(t, mispfake.Options{Events: evs})
			r := newRig(t, fake, true, true)
			stop := make(chan struct{})
			r.col.Progress = func(p vigil.Progress) {
				if p.Pages == 3 {
					close(stop)
				}
			}
			res, err := r.col.Pull(t.Context(), ds, stop)
			if !errors.Is(err, vigil.ErrStopped) || res.Pages != 3 {
				t.Fatalf("stopped pull: %+v %v", res, err)
			}
			if ds == misp.DatasetAttributes {
				if n := fake.Count(mispfake.EndpointRestSearch); n != 3 {
					t.Fatalf("%d requests after the stop, want the 3 pages written", n)
				}
			}
			r.col.Progress = nil
			res, err = r.col.Pull(t.Context(), ds, nil)
			if err != nil || !res.Resumed {
				t.Fatalf("resumed pull: %+v %v", res, err)
			}
			got := live(t, r.store)
			want := expected(ds, evs, now, time.Time{})
			n := 0
			for k := range got {
				if strings.HasPrefix(k, ds+"|") {
					n++
				}
			}
			if n != len(want) {
				t.Fatalf("%d live, want %d", n, len(want))
			}
		})
	}
}

func TestUnknownDataset(t *testing.T) {
	r := newRig(t, mispfake.New(t, mispfake.Options{}), false, true)
	if _, err := r.col.Pull(t.Context(), misp.DatasetAttributes, nil); err == nil || !strings.Contains(err.Error(), `unknown dataset "ti_misp.threat_attributes" (configured: ti_misp.feed)`) {
		t.Fatalf("err %v", err)
	}
}

// ---- Feeds ----------------------------------------------------------------------

// TestPullFeedIncremental: a feed's events are fetched once; then only the
// manifest is asked (304 with the ETag), until an event changes: only it is
// fetched again. An event that leaves the manifest is forgotten.
func TestPullFeedIncremental(t *testing.T) {
	evs := gen(8, 20, 31)
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	r := newRig(t, fake, false, true)
	res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil)
	if err != nil || res.Records != 160 || res.Live != 160 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := fake.Count(mispfake.EndpointEvent); n != 8 {
		t.Fatalf("%d event requests, want 8", n)
	}
	sameKeys(t, live(t, r.store), expected(misp.DatasetFeed, evs, now, time.Time{}))

	// Nothing changed: one manifest request, answered 304.
	fake.ResetLog()
	r.clock.Advance(time.Hour)
	res, err = r.col.Pull(t.Context(), misp.DatasetFeed, nil)
	if err != nil || res.Records != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	m := fake.RequestsTo(mispfake.EndpointManifest)
	if len(m) != 1 || m[0].Status != http.StatusNotModified || fake.Count(mispfake.EndpointEvent) != 0 {
		t.Fatalf("unchanged feed: manifest %+v, %d event requests", m, fake.Count(mispfake.EndpointEvent))
	}

	// One event changes, one goes: only the changed one is fetched.
	e := evs[3]
	e.Timestamp = now.Add(2 * time.Hour)
	e.Attributes[1].Value, e.Attributes[1].Type, e.Attributes[1].Timestamp = "198.51.100.99", "ip-dst", now.Add(2*time.Hour)
	fake.Put(e)
	fake.Remove(evs[5].UUID)
	fake.ResetLog()
	r.clock.Advance(2 * time.Hour)
	res, err = r.col.Pull(t.Context(), misp.DatasetFeed, nil)
	if err != nil || res.Records != 20 {
		t.Fatalf("%+v %v", res, err)
	}
	ev := fake.RequestsTo(mispfake.EndpointEvent)
	if len(ev) != 1 || !strings.HasSuffix(ev[0].Path, e.UUID+".json") {
		t.Fatalf("event requests %+v", ev)
	}
	doc := liveDoc(t, r.store, misp.DatasetFeed, e.Attributes[1].UUID)
	if doc == nil || string(doc.GetStringBytes("threat", "indicator", "ip")) != "198.51.100.99" {
		t.Fatalf("changed attribute %s", doc)
	}
	cur, _ := r.store.Cursor(t.Context(), misp.SourceName, misp.DatasetFeed)
	state := fastjson.MustParseBytes(cur).Get("feeds", "fake")
	if state.Exists("events", evs[5].UUID) || !state.Exists("events", e.UUID) || state.GetInt64("events", e.UUID) != e.Timestamp.Unix() {
		t.Fatalf("feed state %s", state)
	}
	// The removed event's attributes stay until they expire, as MISP keeps
	// them.
	if liveDoc(t, r.store, misp.DatasetFeed, evs[5].Attributes[0].UUID) == nil {
		t.Fatal("attributes of an event gone from the manifest left at once")
	}
}

// TestFeedWithoutETag: a feed served without ETags is compared event by
// event: the manifest is read every pull, the events only when changed.
func TestFeedWithoutETag(t *testing.T) {
	fake := mispfake.New(t, mispfake.Options{Events: gen(5, 10, 32), NoETag: true})
	r := newRig(t, fake, false, true)
	for i := range 3 {
		if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			fake.ResetLog()
		}
	}
	if m, e := fake.Count(mispfake.EndpointManifest), fake.Count(mispfake.EndpointEvent); m != 2 || e != 0 {
		t.Fatalf("%d manifest and %d event requests in two unchanged pulls", m, e)
	}
}

// TestFeedMissingEventIsAskedAgain: an event the manifest lists but the
// server does not have is skipped (the others are read) and the pull fails
// naming it; the next pull asks for it again.
func TestFeedMissingEventIsAskedAgain(t *testing.T) {
	evs := gen(6, 10, 33)
	var broken sync.Map
	broken.Store(evs[2].UUID, true)
	fake := mispfake.New(t, mispfake.Options{Events: evs, Hook: func(w http.ResponseWriter, r *http.Request, ep string) bool {
		if _, ok := broken.Load(strings.TrimSuffix(filepath.Base(r.URL.Path), ".json")); ok && ep == mispfake.EndpointEvent {
			http.NotFound(w, r)
			return true
		}
		return false
	}})
	r := newRig(t, fake, false, true)
	res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil)
	if err == nil || !strings.Contains(err.Error(), "feed fake: 1 of the 6 new or changed events the manifest lists are missing") {
		t.Fatalf("err %v", err)
	}
	if res.Records != 50 || res.Live != 50 {
		t.Fatalf("%+v", res)
	}
	if c, _ := r.col.LastCompleted(t.Context(), misp.DatasetFeed); !c.IsZero() {
		t.Fatal("a pull with a missing event counted as complete")
	}
	broken.Delete(evs[2].UUID)
	fake.ResetLog()
	res, err = r.col.Pull(t.Context(), misp.DatasetFeed, nil)
	if err != nil || res.Records != 10 || fake.Count(mispfake.EndpointEvent) != 1 {
		t.Fatalf("%+v %v, %d event requests", res, err, fake.Count(mispfake.EndpointEvent))
	}
	sameKeys(t, live(t, r.store), expected(misp.DatasetFeed, evs, now, time.Time{}))
}

// TestFeedBrokenEventIsKeptRaw: an event file that is not JSON becomes one
// pipeline error; the other events go on; it is not fetched again until
// the manifest changes it.
func TestFeedBrokenEventIsKeptRaw(t *testing.T) {
	evs := gen(4, 10, 34)
	fake := mispfake.New(t, mispfake.Options{Events: evs, Hook: func(w http.ResponseWriter, r *http.Request, ep string) bool {
		if ep == mispfake.EndpointEvent && strings.HasSuffix(r.URL.Path, evs[1].UUID+".json") {
			w.Write([]byte(`{"Event": {"uuid": "` + evs[1].UUID + `", "Attribute": [`))
			return true
		}
		return false
	}})
	r := newRig(t, fake, false, true)
	res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil)
	if err != nil || res.Records != 31 || res.Rejected != 1 || res.Live != 30 {
		t.Fatalf("%+v %v", res, err)
	}
	fake.ResetLog()
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil || fake.Count(mispfake.EndpointEvent) != 0 {
		t.Fatalf("%v, %d event requests", err, fake.Count(mispfake.EndpointEvent))
	}
}

// TestFeedDeletedAttributeLeavesLiveView: an attribute the feed marks
// deleted (with a newer timestamp) leaves the live view.
func TestFeedDeletedAttributeLeavesLiveView(t *testing.T) {
	evs := gen(2, 10, 35)
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	r := newRig(t, fake, false, true)
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	a := evs[0].Attributes[2]
	if liveDoc(t, r.store, misp.DatasetFeed, a.UUID) == nil {
		t.Fatal("not live before")
	}
	e := evs[0]
	e.Attributes[2].Deleted, e.Attributes[2].Timestamp, e.Timestamp = true, now.Add(time.Hour), now.Add(time.Hour)
	fake.Put(e)
	r.clock.Advance(2 * time.Hour)
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	if liveDoc(t, r.store, misp.DatasetFeed, a.UUID) != nil {
		t.Fatal("deleted attribute still live")
	}
	sameKeys(t, live(t, r.store), expected(misp.DatasetFeed, fake.Events(), r.clock.Now(), time.Time{}))
}

// TestFeedExpiry: feed attributes live for ioc_expiration_duration after
// the pull that fetched their event, however old the event, and are
// renewed when the event changes.
func TestFeedExpiry(t *testing.T) {
	old := mispfake.Generate(mispfake.GenOptions{Events: 2, PerEvent: 5, Seed: 36, From: now.AddDate(-3, 0, 0), To: now.AddDate(-2, 0, 0)})
	fake := mispfake.New(t, mispfake.Options{Events: old})
	r := newRig(t, fake, false, true)
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	expires := func() map[string]time.Time {
		out := map[string]time.Time{}
		err := r.store.Live(t.Context(), vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
			out[d.Key] = d.ExpiresAt
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := expires()
	if len(got) != 10 {
		t.Fatalf("%d live, want the 10 attributes of two 2-year-old events", len(got))
	}
	for k, exp := range got {
		if !exp.Equal(now.Add(90 * 24 * time.Hour)) {
			t.Fatalf("%s expires %v", k, exp)
		}
	}
	// 80 days on, the first event changes: its attributes are renewed.
	r.clock.Advance(80 * 24 * time.Hour)
	e := old[0]
	e.Timestamp = e.Timestamp.Add(time.Minute)
	fake.Put(e)
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(20 * 24 * time.Hour)
	got = expires()
	if len(got) != 5 {
		t.Fatalf("%d live after 100 days, want the 5 of the changed event", len(got))
	}
	for _, a := range e.AllAttributes() {
		if _, ok := got[a.UUID]; !ok {
			t.Fatalf("%s of the changed event not live", a.UUID)
		}
	}
}

// TestFeedMaxEventAge: events last changed before max_event_age are left
// out; one that changes later is read then.
func TestFeedMaxEventAge(t *testing.T) {
	old := mispfake.Generate(mispfake.GenOptions{Events: 3, PerEvent: 4, Seed: 40, From: now.AddDate(-2, 0, 0), To: now.AddDate(-1, 0, 0)})
	recent := mispfake.Generate(mispfake.GenOptions{Events: 2, PerEvent: 4, Seed: 41, FirstID: 100})
	fake := mispfake.New(t, mispfake.Options{Events: append(old, recent...)})
	r := newRig(t, fake, false, false)
	f, err := misp.NewFeed(misp.FeedConfig{Name: "recent", URL: fake.FeedURL, MaxEventAge: 180 * 24 * time.Hour, HTTP: httpx.New(httpOpts())})
	if err != nil {
		t.Fatal(err)
	}
	r.col.Feeds = []*misp.Feed{f}
	if res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil || res.Live != 8 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := fake.Count(mispfake.EndpointEvent); n != 2 {
		t.Fatalf("%d events fetched, want the 2 recent ones", n)
	}
	e := old[1]
	e.Timestamp = now.Add(time.Hour)
	fake.Put(e)
	r.clock.Advance(2 * time.Hour)
	if res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil || res.Live != 4 {
		t.Fatalf("%+v %v", res, err)
	}
	if liveDoc(t, r.store, misp.DatasetFeed, e.Attributes[0].UUID) == nil {
		t.Fatal("the old event, changed, is not live")
	}
}

// TestFeedLocationChangeReadsAgain: a feed whose url changes under the same
// name is read again from scratch; a feed removed from the configuration is
// forgotten.
func TestFeedLocationChangeReadsAgain(t *testing.T) {
	evs := gen(3, 5, 37)
	fake := mispfake.New(t, mispfake.Options{Events: evs})
	other := mispfake.New(t, mispfake.Options{Events: evs, FeedPath: "/mirror"})
	r := newRig(t, fake, false, true)
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	r.col.Feeds = []*misp.Feed{newFeed(t, "fake", other.FeedURL), newFeed(t, "second", other.FeedURL)}
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	if n := other.Count(mispfake.EndpointEvent); n != 6 {
		t.Fatalf("%d event requests to the new location, want 3 for each feed", n)
	}
	r.col.Feeds = r.col.Feeds[1:]
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	cur, _ := r.store.Cursor(t.Context(), misp.SourceName, misp.DatasetFeed)
	if v := fastjson.MustParseBytes(cur); v.Exists("feeds", "fake") || !v.Exists("feeds", "second") {
		t.Fatalf("cursor %s", cur)
	}
}

// TestOneFeedFailingDoesNotStopTheOthers.
func TestOneFeedFailingDoesNotStopTheOthers(t *testing.T) {
	evs := gen(3, 5, 38)
	fake := mispfake.New(t, mispfake.Options{Events: evs, FeedUser: "u", FeedPassword: "right"})
	good, err := misp.NewFeed(misp.FeedConfig{Name: "good", URL: fake.FeedURL, Username: "u", Password: "right", HTTP: httpx.New(httpOpts())})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := misp.NewFeed(misp.FeedConfig{Name: "bad", Key: "sources.misp.feeds[0]", URL: fake.FeedURL, Username: "u", Password: "wrong", HTTP: httpx.New(httpOpts())})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, fake, false, false)
	r.col.Feeds = []*misp.Feed{bad, good}
	res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil)
	if err == nil || !strings.Contains(err.Error(), "feed bad") || !strings.Contains(err.Error(), "sources.misp.feeds[0].password") || errors.Is(err, vigil.ErrCredentials) {
		t.Fatalf("err %v", err)
	}
	if res.Live != 15 {
		t.Fatalf("%+v", res)
	}
}

// TestPullFeedFromDirectory reads a feed from disk, and rereads the events
// whose files and manifest entries were rewritten.
func TestPullFeedFromDirectory(t *testing.T) {
	evs := gen(5, 8, 39)
	dir := t.TempDir()
	if err := mispfake.WriteFeed(dir, evs); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, mispfake.New(t, mispfake.Options{}), false, false)
	r.col.Feeds = []*misp.Feed{dirFeed(t, "local", dir)}
	if res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil || res.Live != 40 {
		t.Fatalf("%+v %v", res, err)
	}
	evs[4].Timestamp = evs[4].Timestamp.Add(time.Second)
	evs[4].Attributes = evs[4].Attributes[:2]
	if err := mispfake.WriteFeed(dir, evs); err != nil {
		t.Fatal(err)
	}
	if res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil || res.Records != len(evs[4].AllAttributes()) {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestQuickstartFeed pulls the repository's example feed, as the README's
// quickstart does: every attribute is live, with the types it promises.
func TestQuickstartFeed(t *testing.T) {
	r := newRig(t, mispfake.New(t, mispfake.Options{}), false, false)
	r.col.Feeds = []*misp.Feed{dirFeed(t, "quickstart", filepath.Join("..", "..", "examples", "misp-feed"))}
	res, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil)
	if err != nil || res.Rejected != 0 || res.Live != res.Records || res.Records < 20 {
		t.Fatalf("%+v %v", res, err)
	}
	types := map[string]bool{}
	for _, doc := range live(t, r.store) {
		typ, _, _ := strings.Cut(doc, "|")
		types[typ] = true
	}
	// Detection reads every typed indicator's value, and only it.
	indexed := 0
	err = r.store.Live(t.Context(), vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
		inds, err := matcher.FromDocument(d)
		if d.Type == "" {
			if !errors.Is(err, matcher.ErrUnsupportedType) {
				return fmt.Errorf("%s without a type: %v %v", d.Key, inds, err)
			}
			return nil
		}
		v := fastjson.MustParseBytes(d.Source)
		name := string(v.GetStringBytes("threat", "indicator", "name"))
		if string(v.GetStringBytes("misp", "attribute", "type")) == "filename" {
			if !errors.Is(err, matcher.ErrNoValue) { // a file name is not matched, a hash is
				return fmt.Errorf("file name %q: %v %v", name, inds, err)
			}
			return nil
		}
		if err != nil || len(inds) == 0 || !strings.EqualFold(inds[0].Value, name) {
			return fmt.Errorf("%s %q: %v %v", d.Type, name, inds, err)
		}
		indexed++
		return nil
	})
	if err != nil || indexed < 20 {
		t.Fatalf("%d indexed: %v", indexed, err)
	}
	for _, typ := range []string{"ipv4-addr", "ipv6-addr", "domain-name", "url", "file", "email-addr"} {
		if !types[typ] {
			t.Errorf("no live %s", typ)
		}
	}
	var buf strings.Builder
	if err := r.col.Check(t.Context(), &buf); err != nil || !strings.Contains(buf.String(), "feed quickstart") || !strings.Contains(buf.String(), "4 events") {
		t.Fatalf("check: %v\n%s", err, buf.String())
	}
}

// TestRoundTrip reads a feed shaped as vigil publishes its IOC groups
// (one event per group and day, enrichment in tags, first/last seen; see
// misp.md section 3) and checks that the indicators come back: the values,
// their ECS fields and the TLP.
func TestRoundTrip(t *testing.T) {
	at := now.Add(-time.Hour).Truncate(time.Second)
	tags := []string{`vigil:source="Example Feed"`, `vigil:severity="high"`, `misp-galaxy:threat-actor="Example Actor"`}
	attrs := []mispfake.Attribute{
		{Type: "domain", Category: "Network activity", Value: "login-update.example"},
		{Type: "ip-dst", Category: "Network activity", Value: "203.0.113.7"},
		{Type: "ip-dst", Category: "Network activity", Value: "2001:db8::7"},
		{Type: "url", Category: "Network activity", Value: "https://login-update.example/owa/"},
		{Type: "email-src", Category: "Payload delivery", Value: "billing@login-update.example"},
		{Type: "md5", Category: "Payload delivery", Value: "9e107d9d372bb6826bd81d3542a419d6"},
		{Type: "sha1", Category: "Payload delivery", Value: "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"},
		{Type: "sha256", Category: "Payload delivery", Value: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	want := map[string]string{ // value → the ECS field that holds it
		"login-update.example": "threat.indicator.url.domain", "203.0.113.7": "threat.indicator.ip", "2001:db8::7": "threat.indicator.ip",
		"https://login-update.example/owa/": "threat.indicator.url.full", "billing@login-update.example": "threat.indicator.email.address",
		"9e107d9d372bb6826bd81d3542a419d6":                                 "threat.indicator.file.hash.md5",
		"2fd4e1c67a2d28fced849ee1bb76e7391b93eb12":                         "threat.indicator.file.hash.sha1",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855": "threat.indicator.file.hash.sha256",
	}
	for i := range attrs {
		attrs[i].UUID = fmt.Sprintf("90097629-7f5f-5a65-a606-a0d15187e8%02x", i)
		attrs[i].ToIDs, attrs[i].Timestamp, attrs[i].Tags = true, at, tags
		attrs[i].FirstSeen, attrs[i].LastSeen = at.Add(-14*24*time.Hour), at.Add(-time.Hour)
	}
	ev := mispfake.Event{UUID: "6cd1aa97-b555-54a3-b92f-1d13c14deb06", Info: "Phishing-Infra - " + at.Format("2006-01-02"), Published: true,
		Analysis: 2, ThreatLevel: 1, Timestamp: at, OrgName: "Example Org", OrgUUID: "0d6f2a8e-51c4-4b7a-9e3d-2f1a6c5b8e90",
		Tags: []string{"tlp:amber", `vigil:ioc-group="Phishing-Infra"`}, Attributes: attrs}
	fake := mispfake.New(t, mispfake.Options{Events: []mispfake.Event{ev}, FeedPath: "/misp/device-1", FeedUser: "device-1", FeedPassword: "pw"})
	r := newRig(t, fake, false, false)
	f, err := misp.NewFeed(misp.FeedConfig{Name: "self", URL: fake.FeedURL + "/", Username: "device-1", Password: "pw", HTTP: httpx.New(httpOpts())})
	if err != nil {
		t.Fatal(err)
	}
	r.col.Feeds = []*misp.Feed{f}
	if _, err := r.col.Pull(t.Context(), misp.DatasetFeed, nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	err = r.store.Live(t.Context(), vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
		v := fastjson.MustParseBytes(d.Source)
		name := string(v.GetStringBytes("threat", "indicator", "name"))
		path := want[name]
		if path == "" {
			return fmt.Errorf("unexpected indicator %q", name)
		}
		if s := string(v.GetStringBytes(strings.Split(path, ".")...)); s != name {
			return fmt.Errorf("%s: %s is %q", name, path, s)
		}
		if s := string(v.GetStringBytes("threat", "indicator", "marking", "tlp", "0")); s != "AMBER" {
			return fmt.Errorf("%s: tlp %q", name, s)
		}
		if s := string(v.GetStringBytes("threat", "indicator", "first_seen")); s != at.Add(-14*24*time.Hour).Format("2006-01-02T15:04:05.000Z") {
			return fmt.Errorf("%s: first_seen %q", name, s)
		}
		got[name] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d indicators back, want %d", len(got), len(want))
	}
}
