package misp_test

import (
	"log/slog"
	"syscall"
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
// view). ns/op is the goal's figure; IOCs/s divides the IOCs by it;
// cpu-ms/op is the CPU time the process used per pull (user and system,
// the fake's share included), steadier than wall time on a shared machine.
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
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		db, closeDB := openStore(b, now)
		col := newFeedCollector(db, now, feed)
		b.StartTimer()
		cpu0 := cpuTime()
		res, err := col.Pull(b.Context(), misp.DatasetFeed, nil)
		cpu += cpuTime() - cpu0
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
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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

// BenchmarkNormalizeFeedEvent is the normalizer's share of a feed pull: one
// op is one attribute of a 1000-attribute event.
func BenchmarkNormalizeFeedEvent(b *testing.B) {
	ev := mispfake.Generate(mispfake.GenOptions{Events: 1, PerEvent: 1000, Seed: 2})[0]
	raw := ev.AppendFeedJSON(nil)
	n := misp.NewNormalizer(misp.NormalizeOptions{Dataset: misp.DatasetFeed, Tags: misp.DefaultFeedTags, ExpirationDuration: "90d", Ingested: mispfake.DefaultTo})
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	docs, size := 0, 0
	for b.Loop() {
		_, k := n.Event(raw, "bench", func(d vigil.Document) { size += len(d.Source) })
		docs += k
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(docs), "ns/attribute")
	b.ReportMetric(float64(size)/float64(docs), "B/document")
}
