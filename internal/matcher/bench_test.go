package matcher_test

// Benchmarks of the matcher index. The index-size and build figures are
// reported as custom metrics (B/indicator, ns/indicator); run them once:
//
//	go test ./internal/matcher -run '^$' -bench 'Build' -benchtime 1x
//
// The 10M variants need about 3 GiB of memory and a minute or two each, and
// are skipped under -short:
//
//	go test ./internal/matcher -run '^$' -bench '10M' -benchtime 1x -timeout 60m
//
// Lookups:
//
//	go test ./internal/matcher -run '^$' -bench 'BenchmarkLookup$' -benchtime 2000000x

import (
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/matcher/matchertest"
)

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// genItems returns items 0..n-1 of the default generator.
func genItems(n int) []matcher.Indicator {
	g := matchertest.New(matchertest.DefaultConfig())
	inds := make([]matcher.Indicator, n)
	for i := range inds {
		inds[i] = g.Item(uint64(i))
	}
	return inds
}

// benchBuild builds an index of n generated indicators per iteration and
// reports the time per indicator and the heap the index keeps, measured as
// the HeapAlloc difference after GC (the input is allocated before both
// readings and not counted).
func benchBuild(b *testing.B, n int) {
	inds := genItems(n)
	var x *matcher.Index
	var before uint64
	for b.Loop() {
		b.StopTimer()
		x = nil
		before = heapAlloc()
		b.StartTimer()
		var bl matcher.Builder
		for _, ind := range inds {
			if err := bl.Add(ind); err != nil {
				b.Fatal(err)
			}
		}
		x = bl.Build()
	}
	reportBuild(b, x, n, before)
	runtime.KeepAlive(inds)
}

func reportBuild(b *testing.B, x *matcher.Index, n int, before uint64) {
	after := heapAlloc()
	st := x.Stats()
	if st.Total.Indicators != n {
		b.Fatalf("indexed %d of %d", st.Total.Indicators, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/indicator")
	b.ReportMetric(float64(after-before)/float64(n), "B/indicator")
	b.ReportMetric(float64(st.Total.Bytes)/float64(n), "est-B/indicator")
	runtime.KeepAlive(x)
}

// BenchmarkBuild: 1M indicators of the default mix through Builder.Add.
func BenchmarkBuild(b *testing.B) { benchBuild(b, 1_000_000) }

// BenchmarkBuild10M: 10M indicators. Skipped under -short.
func BenchmarkBuild10M(b *testing.B) {
	if testing.Short() {
		b.Skip("10M indicators: about 3 GiB of memory; run without -short")
	}
	benchBuild(b, 10_000_000)
}

// BenchmarkBuildDocuments: 1M ECS documents through Builder.AddDocument,
// JSON extraction included (what a build from the store costs, less the
// store's own reads).
func BenchmarkBuildDocuments(b *testing.B) {
	const n = 1_000_000
	g := matchertest.New(matchertest.DefaultConfig())
	docs := make([]vigil.Document, n)
	for i := range docs {
		docs[i] = g.Document(uint64(i))
	}
	var x *matcher.Index
	var before uint64
	for b.Loop() {
		b.StopTimer()
		x = nil
		before = heapAlloc()
		b.StartTimer()
		var bl matcher.Builder
		for i, d := range docs {
			if _, err := bl.AddDocument(uint32(i), d); err != nil {
				b.Fatal(err)
			}
		}
		x = bl.Build()
	}
	reportBuild(b, x, n, before)
	runtime.KeepAlive(docs)
}

// BenchmarkAddDocument: the CPU cost of one document through
// Builder.AddDocument (JSON extraction and indexing) with warm caches,
// cycling over 4096 generated documents of about 1.5 KB.
func BenchmarkAddDocument(b *testing.B) {
	g := matchertest.New(matchertest.DefaultConfig())
	docs := make([]vigil.Document, 4096)
	size := 0
	for i := range docs {
		docs[i] = g.Document(uint64(i))
		size += len(docs[i].Source)
	}
	b.SetBytes(int64(size / len(docs)))
	b.ReportAllocs()
	var bl matcher.Builder
	for i := 0; b.Loop(); i++ {
		if _, err := bl.AddDocument(uint32(i), docs[i&(len(docs)-1)]); err != nil {
			b.Fatal(err)
		}
	}
}

// memStore serves documents from memory, as vigil.Store.Live does.
type memStore struct {
	vigil.Store
	docs []vigil.Document
}

func (s *memStore) Live(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error {
	for _, d := range s.docs {
		if d.View != f.View {
			continue
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// BenchmarkLoad: 1M ECS documents through Builder.Load from an in-memory
// store, which extracts on a second goroutine; the figure is what the
// matcher adds to the store's own read time.
func BenchmarkLoad(b *testing.B) {
	const n = 1_000_000
	g := matchertest.New(matchertest.DefaultConfig())
	s := &memStore{docs: make([]vigil.Document, n)}
	for i := range s.docs {
		s.docs[i] = g.Document(uint64(i))
	}
	var x *matcher.Index
	var before uint64
	for b.Loop() {
		b.StopTimer()
		x = nil
		before = heapAlloc()
		b.StartTimer()
		var bl matcher.Builder
		var refs uint32
		st, err := bl.Load(b.Context(), s, func(vigil.Document) (uint32, error) {
			refs++
			return refs - 1, nil
		})
		if err != nil || st.Indicators != n {
			b.Fatalf("Load = %+v, %v", st, err)
		}
		x = bl.Build()
	}
	reportBuild(b, x, n, before)
	runtime.KeepAlive(s)
}

// probes holds lookup values of one kind.
type probes struct {
	name  string
	hit   []string
	miss  []string
	match func(x *matcher.Index, dst []uint32, q string, now time.Time) []uint32
}

const probeCount = 1 << 12

// makeProbes collects hit and miss values for each kind from the first n
// items of the default generator, which x indexes.
func makeProbes(b *testing.B, x *matcher.Index, n int) []probes {
	g := matchertest.New(matchertest.DefaultConfig())
	now := g.Config().Now
	ip := func(x *matcher.Index, dst []uint32, q string, now time.Time) []uint32 {
		return x.MatchIPString(dst, q, now)
	}
	ps := []probes{
		matcher.KindIPv4: {name: "ipv4", match: ip},
		matcher.KindIPv6: {name: "ipv6", match: ip},
		matcher.KindCIDR: {name: "cidr", match: ip},
		matcher.KindDomain: {name: "domain", match: func(x *matcher.Index, d []uint32, q string, n time.Time) []uint32 {
			return x.MatchDomain(d, q, false, n)
		}},
		matcher.KindURL:      {name: "url", match: (*matcher.Index).MatchURL},
		matcher.KindHash:     {name: "hash", match: (*matcher.Index).MatchHash},
		matcher.KindEmail:    {name: "email", match: (*matcher.Index).MatchEmail},
		matcher.KindRegistry: {name: "registry", match: (*matcher.Index).MatchRegistry},
		matcher.KindCVE:      {name: "cve", match: (*matcher.Index).MatchCVE},
	}
	sub := probes{name: "subdomain", match: func(x *matcher.Index, d []uint32, q string, n time.Time) []uint32 {
		return x.MatchDomain(d, q, true, n)
	}}
	// Spread the hits over the whole set: visit the items in a scattered
	// order (7919 is prime and does not divide n).
	full := 0
	for j := uint64(0); j < uint64(n) && full < len(ps); j++ {
		i := j * 7919 % uint64(n)
		k := g.Kind(i)
		if len(ps[k].hit) == probeCount && (k != matcher.KindDomain || len(sub.hit) == probeCount) {
			continue
		}
		v := g.Item(i).Value
		if k == matcher.KindCIDR {
			p := netip.MustParsePrefix(v)
			v = p.Addr().Next().String()
		}
		if len(ps[k].hit) < probeCount {
			ps[k].hit = append(ps[k].hit, v)
			if len(ps[k].hit) == probeCount {
				full++
			}
		}
		if k == matcher.KindDomain && len(sub.hit) < probeCount {
			sub.hit = append(sub.hit, matchertest.Subdomain(v, i))
		}
	}
	ps = append(ps, sub)
	for k := range ps {
		kind := matcher.Kind(k)
		if ps[k].name == "subdomain" {
			kind = matcher.KindDomain
		}
		for j := uint64(0); len(ps[k].miss) < probeCount; j++ {
			v := g.Miss(kind, j)
			if len(ps[k].match(x, nil, v, now)) == 0 {
				ps[k].miss = append(ps[k].miss, v)
			}
		}
		if len(ps[k].hit) < probeCount {
			b.Fatalf("%s: only %d hits", ps[k].name, len(ps[k].hit))
		}
	}
	return ps
}

func benchLookup(b *testing.B, n int) {
	var bl matcher.Builder
	for _, ind := range genItems(n) {
		if err := bl.Add(ind); err != nil {
			b.Fatal(err)
		}
	}
	x := bl.Build()
	ps := makeProbes(b, x, n)
	now := matchertest.DefaultConfig().Now
	for _, p := range ps {
		for _, c := range []struct {
			name string
			qs   []string
		}{{"hit", p.hit}, {"miss", p.miss}} {
			b.Run(p.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				dst := make([]uint32, 0, 64)
				found := 0
				for i := 0; b.Loop(); i++ {
					dst = p.match(x, dst[:0], c.qs[i&(probeCount-1)], now)
					found += len(dst)
				}
				if c.name == "miss" && found != 0 {
					b.Fatalf("%d matches on misses", found)
				}
				if c.name == "hit" && found == 0 {
					b.Fatal("no matches on hits")
				}
			})
		}
	}
}

// BenchmarkLookup: random probes against an index of 1M indicators; the
// probes are spread over the whole set, so caches help little (a worst
// case: real event streams repeat values).
func BenchmarkLookup(b *testing.B) { benchLookup(b, 1_000_000) }

// BenchmarkLookup10M: the same against 10M indicators. Skipped under
// -short.
func BenchmarkLookup10M(b *testing.B) {
	if testing.Short() {
		b.Skip("10M indicators: about 3 GiB of memory; run without -short")
	}
	benchLookup(b, 10_000_000)
}
