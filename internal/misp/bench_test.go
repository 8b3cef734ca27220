package misp_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/misp"
	"github.com/vigil-ti/vigil/internal/misp/mispfake"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// The goal: a 50,000-IOC manifest and its events are served to one
// full pull in under 1 s.
//
//	go test -run '^$' -bench PullFeed50k -benchtime 5x ./internal/misp/
//
// One op is one full pull of the feed, served by httptest, into a fresh
// store in a temporary directory: the manifest, every event, the
// normalization, the page writes and Store.Sync (the merge into the live
// view). ns/op is the goal's figure; IOCs/s divides the IOCs by it.
func BenchmarkPullFeed50k(b *testing.B) {
	events, per := 50, 1000
	if testing.Short() {
		events, per = 5, 200
	}
	evs := mispfake.Generate(mispfake.GenOptions{Events: events, PerEvent: per, Seed: 1})
	iocs := mispfake.Count(evs)
	fake := mispfake.New(b, mispfake.Options{Events: evs})
	now := vigil.ClockFunc(func() time.Time { return mispfake.DefaultTo })
	feed, err := misp.NewFeed(misp.FeedConfig{Name: "bench", URL: fake.FeedURL, HTTP: httpx.New(httpx.Options{})})
	if err != nil {
		b.Fatal(err)
	}
	// Warm the fake's encodings, so that the pull measures vigil.
	warm, _ := openStore(b, now)
	if _, err := newFeedCollector(warm, now, feed).Pull(b.Context(), misp.DatasetFeed, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		db, closeDB := openStore(b, now)
		col := newFeedCollector(db, now, feed)
		b.StartTimer()
		res, err := col.Pull(b.Context(), misp.DatasetFeed, nil)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if res.Records != iocs || res.Live != iocs || res.Rejected != 0 {
			b.Fatalf("pulled %+v, want %d IOCs", res, iocs)
		}
		closeDB()
		b.StartTimer()
	}
	b.ReportMetric(float64(iocs)*float64(b.N)/b.Elapsed().Seconds(), "IOCs/s")
}

func openStore(tb testing.TB, clock vigil.Clock) (*sqlite.DB, func()) {
	db, err := sqlite.Open(tb.Context(), tb.TempDir(), sqlite.Options{Clock: clock})
	if err != nil {
		tb.Fatal(err)
	}
	return db, func() { db.Close() }
}

func newFeedCollector(db vigil.Store, clock vigil.Clock, feeds ...*misp.Feed) *misp.Collector {
	return &misp.Collector{
		Feeds: feeds, Store: db, Clock: clock, Logger: slog.New(slog.DiscardHandler),
		Settings: misp.Settings{Interval: time.Hour, ExpirationDuration: "90d"},
	}
}
