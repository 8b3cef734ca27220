package detect

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect/detecttest"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/matcher/matchertest"
)

// pairVariant makes engine B of BenchmarkEnginePairs differ from engine A.
// To measure a change to the matching path in-process, put it behind a
// field of Engine and set that field here; as committed, both engines are
// the same, and the benchmark measures the noise.
func pairVariant(*Engine) {}

// dropSightings drops sighting batches: the pairs measure the matching
// goroutine, sightings recorded as vigil match records them.
type dropSightings struct{}

func (dropSightings) AddSightingBatch(context.Context, *vigil.SightingBatch) error { return nil }

// BenchmarkEnginePairs resolves changes of a few per cent to the matching
// path, which `vigil match` end to end does not on this project's VM (the
// same build's runs spread by 20 % and more as the host's state changes
// over minutes). Two engines, A and pairVariant's B, take turns over short
// passes of distinct events (50,000 a pass, 100 pairs, the first in each
// pair alternating), against one Snapshot of 10M indicators, with
// MatchAhead and sightings recorded, as `vigil match` runs; every pass
// reads events neither engine has seen. It reports the median of the
// pairs' CPU-time ratios B/A (ratio), the share of pairs where B took less
// (B-lower-%), and A's median CPU time a million events (A-cpu-s/M).
// Under -short: 10,000 indicators, 2 pairs of 1,000 events.
//
//	GOMAXPROCS=1 go test -run '^$' -bench EnginePairs -benchtime 1x ./internal/detect/
//
// It needs about 9 GB of memory: the events (10.1M of about 646 bytes)
// are generated before the timer starts, in about 40 s.
func BenchmarkEnginePairs(b *testing.B) {
	n, perPass, pairs := 10_000_000, 50_000, 100
	if testing.Short() {
		n, perPass, pairs = 10_000, 1_000, 2
	}
	cfg := matchertest.DefaultConfig()
	g := matchertest.New(cfg)
	var sb SnapshotBuilder
	for _, view := range []vigil.View{vigil.ViewIndicators, vigil.ViewVulnerabilities} {
		for i := range uint64(n) {
			ind := g.Item(i)
			if (ind.Type == matcher.TypeVulnerability) != (view == vigil.ViewVulnerabilities) {
				continue
			}
			if err := sb.Add(DocRef{View: view, Dataset: "vigil.import", Key: ind.Value}, ind); err != nil {
				b.Fatal(err)
			}
		}
	}
	snap := sb.Build()
	ev := detecttest.New(detecttest.Config{Indicators: g, N: uint64(n), HitRate: 0.01, Seed: 1, Now: cfg.Now})
	// One warm-up pass per engine, then two a pair.
	total := perPass * (2*pairs + 2)
	// Events average about 646 bytes: one allocation, not a growing copy.
	buf := make([]byte, 0, total*700)
	ends := make([]int, 0, total)
	for i := range uint64(total) {
		buf = ev.Append(buf, i)
		ends = append(ends, len(buf))
	}
	newEngine := func() *Engine {
		e, err := New(Config{SuppressionWindow: -1}, nil, vigil.ClockFunc(func() time.Time { return cfg.Now }))
		if err != nil {
			b.Fatal(err)
		}
		e.Swap(snap)
		e.RecordSightings(SightingsConfig{Store: dropSightings{}, Window: 7 * 24 * time.Hour})
		return e
	}
	a, v := newEngine(), newEngine()
	pairVariant(v)
	ctx := b.Context()
	for b.Loop() {
		next := 0 // the first event of the next pass
		pass := func(e *Engine) time.Duration {
			from, to := next, next+perPass
			next = to % total
			line := func(i int) []byte {
				start := 0
				if i > 0 {
					start = ends[i-1]
				}
				return buf[start:ends[i]]
			}
			c0 := processCPU(b)
			for i := from; i < to; i++ {
				var ahead []byte
				if i+1 < to {
					ahead = line(i + 1)
				}
				if _, err := e.MatchAhead(ctx, line(i), ahead); err != nil {
					b.Fatal(err)
				}
			}
			return processCPU(b) - c0
		}
		pass(a)
		pass(v)
		ratios := make([]float64, pairs)
		as := make([]time.Duration, pairs)
		lower := 0
		for p := range pairs {
			var da, dv time.Duration
			if p%2 == 0 {
				da, dv = pass(a), pass(v)
			} else {
				dv, da = pass(v), pass(a)
			}
			ratios[p] = dv.Seconds() / da.Seconds()
			as[p] = da
			if dv < da {
				lower++
			}
		}
		slices.Sort(ratios)
		slices.Sort(as)
		b.ReportMetric(ratios[pairs/2], "ratio")
		b.ReportMetric(100*float64(lower)/float64(pairs), "B-lower-%")
		b.ReportMetric(as[pairs/2].Seconds()*1e6/float64(perPass), "A-cpu-s/M")
	}
	if err := a.FlushSightings(ctx); err != nil {
		b.Fatal(err)
	}
	if err := v.FlushSightings(ctx); err != nil {
		b.Fatal(err)
	}
}

// ProcessCPU is processCPU for the package's external tests.
var ProcessCPU = processCPU

// processCPU returns the CPU time the process has used (user and system).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
