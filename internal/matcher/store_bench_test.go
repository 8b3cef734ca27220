package matcher_test

import (
	"testing"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/matcher/matchertest"
)

// BenchmarkLoadSQLite: the index built from the embedded store's live view
// (1M indicators; 50,000 under -short), what `vigil match` and `serve` do
// at start. The store is written and merged before the timer starts; the
// figure includes the store's reads and decompression.
func BenchmarkLoadSQLite(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 50_000
	}
	ctx := b.Context()
	db := matchertest.New(matchertest.DefaultConfig()).Store(b, n)
	// Generated values repeat now and then: the live view holds each key
	// once.
	live := 0
	for _, v := range []vigil.View{vigil.ViewIndicators, vigil.ViewVulnerabilities} {
		if err := db.Live(ctx, vigil.LiveFilter{View: v}, func(vigil.Document) error { live++; return nil }); err != nil {
			b.Fatal(err)
		}
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
		st, err := bl.Load(ctx, db, func(vigil.Document) (uint32, error) {
			refs++
			return refs - 1, nil
		})
		if err != nil || st.Indicators != live {
			b.Fatalf("Load = %+v, %v", st, err)
		}
		x = bl.Build()
	}
	reportBuild(b, x, live, before)
}
