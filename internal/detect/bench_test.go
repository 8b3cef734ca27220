package detect_test

// Benchmarks of detection. BenchmarkMatch runs the engine over generated
// ECS events of about 600 bytes against an index of generated indicators
// (the matchertest mix), with 1 % of the events carrying an indicator's
// value; alerts are built, their indicator documents are not read (no
// store: bench/detect.sh measures `vigil match` end to end). Run once:
//
//	go test ./internal/detect -run '^$' -bench Match -benchtime 2000000x -cpu 1
//
// The 10M variant needs about 2 GiB of memory and is skipped under -short;
// under -short the 1M variant uses 100,000 indicators.

import (
	"context"
	"time"

	"runtime"
	"testing"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect"
	"github.com/vigil-ti/vigil/internal/detect/detecttest"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/matcher/matchertest"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchSnapshot indexes items 0..n-1 of g, one document each, as a store
// would hold them (dataset vigil.import, the value as key).
func benchSnapshot(b *testing.B, g *matchertest.Generator, n int) *detect.Snapshot {
	var sb detect.SnapshotBuilder
	// Indicators first, then vulnerabilities, as Load reads the views.
	for _, view := range []vigil.View{vigil.ViewIndicators, vigil.ViewVulnerabilities} {
		for i := range uint64(n) {
			ind := g.Item(i)
			isVuln := ind.Type == matcher.TypeVulnerability
			if isVuln != (view == vigil.ViewVulnerabilities) {
				continue
			}
			if err := sb.Add(detect.DocRef{View: view, Dataset: "vigil.import", Key: ind.Value}, ind); err != nil {
				b.Fatal(err)
			}
		}
	}
	return sb.Build()
}

// discard drops sightings: BenchmarkMatchSightings measures recording
// alone.
type discard struct{}

func (discard) AddSightingBatch(context.Context, *vigil.SightingBatch) error { return nil }

func benchMatch(b *testing.B, n int, sightings detect.SightingStore) {
	cfg := matchertest.DefaultConfig()
	g := matchertest.New(cfg)
	before := heapAlloc()
	snap := benchSnapshot(b, g, n)
	after := heapAlloc()
	ev := detecttest.New(detecttest.Config{Indicators: g, N: uint64(n), HitRate: 0.01, Seed: 1, Now: cfg.Now})
	const nEvents = 1 << 16
	lines := make([][]byte, nEvents)
	size := 0
	for i := range lines {
		lines[i] = ev.Append(nil, uint64(i))
		size += len(lines[i])
	}
	eng, err := detect.New(detect.Config{SuppressionWindow: -1}, nil, vigil.ClockFunc(func() time.Time { return cfg.Now }))
	if err != nil {
		b.Fatal(err)
	}
	eng.Swap(snap)
	if sightings != nil {
		eng.RecordSightings(detect.SightingsConfig{Store: sightings, Window: 7 * 24 * time.Hour})
	}
	b.SetBytes(int64(size / nEvents))
	b.ResetTimer()
	cpu0 := detect.ProcessCPU(b)
	alerts := 0
	for i := 0; b.Loop(); i++ {
		// As vigil match reads a mapped file: each line with the next.
		dets, err := eng.MatchAhead(b.Context(), lines[i&(nEvents-1)], lines[(i+1)&(nEvents-1)])
		if err != nil {
			b.Fatal(err)
		}
		alerts += len(dets)
	}
	if err := eng.FlushSightings(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/(detect.ProcessCPU(b)-cpu0).Seconds(), "events/cpu-s")
	b.ReportMetric(float64(alerts)/float64(b.N), "alerts/event")
	st := snap.Index().Stats()
	b.ReportMetric(float64(after-before)/float64(st.Total.Indicators), "B/indicator")
	b.ReportMetric(float64(snap.RefBytes())/float64(st.Total.Indicators), "ref-B/indicator")
	if alerts == 0 && b.N >= 10000 { // 1 % of the events carry a hit
		b.Fatal("no alerts")
	}
	runtime.KeepAlive(snap)
}

// BenchmarkMatch: 1M indicators (100,000 under -short).
func BenchmarkMatch(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	benchMatch(b, n, nil)
}

// BenchmarkMatchSightings is BenchmarkMatch recording sightings, which it
// drops: the cost of recording on the matching goroutine.
func BenchmarkMatchSightings(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	benchMatch(b, n, discard{})
}

// BenchmarkMatchSightingsSQLite records the sightings into a store: the
// writes run on a goroutine of their own, so events/cpu-s counts them and
// events/s shows what two cores do.
func BenchmarkMatchSightingsSQLite(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	db, err := sqlite.Open(b.Context(), b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	benchMatch(b, n, db)
}

// BenchmarkMatchDistinct matches a stream of distinct events, each made
// as it is matched (the events BenchmarkMatch cycles over repeat their
// values: 55,700 distinct in 65,536 events): most file events carry a new
// hash, most HTTP events a new URL, as in bench/detect.sh's stream (about
// 560,000 distinct values a million events). 100,000 indicators (10,000
// under -short). BenchmarkMatchDistinctSightings is the same recording the
// sightings into a store: the difference is the cost of recording and
// storing them, per event.
//
//	go test -run '^$' -bench 'MatchDistinct' -benchtime 1000000x -cpu 1 ./internal/detect/
func BenchmarkMatchDistinct(b *testing.B) { benchMatchDistinct(b, false) }

// BenchmarkMatchDistinctSightings: see BenchmarkMatchDistinct.
func BenchmarkMatchDistinctSightings(b *testing.B) { benchMatchDistinct(b, true) }

func benchMatchDistinct(b *testing.B, record bool) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	cfg := matchertest.DefaultConfig()
	g := matchertest.New(cfg)
	snap := benchSnapshot(b, g, n)
	ev := detecttest.New(detecttest.Config{Indicators: g, N: uint64(n), HitRate: 0.01, Seed: 1, Now: cfg.Now})
	eng, err := detect.New(detect.Config{SuppressionWindow: -1}, nil, vigil.ClockFunc(func() time.Time { return cfg.Now.Add(time.Hour) }))
	if err != nil {
		b.Fatal(err)
	}
	eng.Swap(snap)
	if record {
		db, err := sqlite.Open(b.Context(), b.TempDir(), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		eng.RecordSightings(detect.SightingsConfig{Store: db, Window: 7 * 24 * time.Hour})
	}
	var line []byte
	b.ResetTimer()
	cpu0 := detect.ProcessCPU(b)
	for i := uint64(0); b.Loop(); i++ {
		line = ev.Append(line[:0], i)
		if _, err := eng.Match(b.Context(), line); err != nil {
			b.Fatal(err)
		}
	}
	if err := eng.FlushSightings(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/(detect.ProcessCPU(b)-cpu0).Seconds(), "events/cpu-s")
	runtime.KeepAlive(snap)
}

// BenchmarkMatch10M: 10M indicators. Skipped under -short.
func BenchmarkMatch10M(b *testing.B) {
	if testing.Short() {
		b.Skip("10M indicators: about 2 GiB of memory; run without -short")
	}
	benchMatch(b, 10_000_000, nil)
}

// BenchmarkLoadSQLite builds a Snapshot from the embedded store's live
// view, as `vigil match` and serve do (1M generated indicators; 100,000
// under -short): B/indicator is the heap the Snapshot holds, its index and
// its table of Refs (each with its key and Loc), per indicator.
func BenchmarkLoadSQLite(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	ctx := b.Context()
	db := matchertest.New(matchertest.DefaultConfig()).Store(b, n)
	var snap *detect.Snapshot
	var before, after uint64
	for b.Loop() {
		b.StopTimer()
		snap = nil
		before = heapAlloc()
		b.StartTimer()
		s, _, err := detect.Load(ctx, db)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		snap = s
		after = heapAlloc()
		b.StartTimer()
	}
	st := snap.Index().Stats()
	if st.Total.Indicators == 0 {
		b.Fatal("no indicators")
	}
	b.ReportMetric(float64(after-before)/float64(st.Total.Indicators), "B/indicator")
	b.ReportMetric(float64(snap.RefBytes())/float64(st.Total.Indicators), "ref-B/indicator")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/(float64(st.Total.Indicators)/1e6), "s/M-indicators")
}
