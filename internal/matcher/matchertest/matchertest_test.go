package matchertest

import (
	"math"
	"net/netip"
	"testing"

	"github.com/vigil-ti/vigil/internal/matcher"
)

func TestDeterministic(t *testing.T) {
	g1, g2 := New(DefaultConfig()), New(DefaultConfig())
	for i := range uint64(1000) {
		if a, b := g1.Item(i), g2.Item(i); a != b {
			t.Fatalf("Item(%d) differs: %+v, %+v", i, a, b)
		}
		if a, b := g1.Document(i), g2.Document(i); string(a.Source) != string(b.Source) || a.Key != b.Key {
			t.Fatalf("Document(%d) differs", i)
		}
	}
	other := DefaultConfig()
	other.Seed = 2
	if New(other).Item(0) == g1.Item(0) {
		t.Error("seed does not change the items")
	}
}

func TestMixAndValidity(t *testing.T) {
	const n = 100_000
	g := New(DefaultConfig())
	var counts [matcher.NumKinds]int
	expiring := 0
	var b matcher.Builder
	for i := range uint64(n) {
		k := g.Kind(i)
		counts[k]++
		ind := g.Item(i)
		if err := b.Add(ind); err != nil {
			t.Fatalf("item %d (%v): %v", i, k, err)
		}
		if ind.ExpiresAt.Before(g.Config().Now.Add(2 * 3600e9)) {
			expiring++
		}
		if k == matcher.KindCIDR {
			if _, err := netip.ParsePrefix(ind.Value); err != nil {
				t.Fatalf("CIDR item %d: %q", i, ind.Value)
			}
		}
		if i%16 != 0 {
			continue
		}
		d := g.Document(i)
		inds, err := matcher.FromDocument(d)
		if err != nil || len(inds) != 1 || inds[0].Value != ind.Value && inds[0].Type != matcher.TypeFile {
			t.Fatalf("Document(%d) gives %+v, %v; want %q", i, inds, err, ind.Value)
		}
	}
	mix := DefaultMix()
	var sum float64
	for _, w := range mix {
		sum += w
	}
	for k, c := range counts {
		want := mix[k] / sum * n
		if math.Abs(float64(c)-want) > 5*math.Sqrt(want)+1 {
			t.Errorf("%v: %d items, want about %.0f", matcher.Kind(k), c, want)
		}
	}
	if math.Abs(float64(expiring)-n/10) > 5*math.Sqrt(n/10) {
		t.Errorf("%d items expire within the hour, want about %d", expiring, n/10)
	}
	x := b.Build()
	if s := x.Stats(); s.Total.Indicators != n {
		t.Errorf("indexed %d of %d", s.Total.Indicators, n)
	}
	// Misses are, nearly always, not in the set.
	hits := 0
	for j := range uint64(1000) {
		if len(x.MatchDomain(nil, g.Miss(matcher.KindDomain, j), false, g.Config().Now)) > 0 {
			hits++
		}
	}
	if hits > 10 {
		t.Errorf("%d of 1000 domain misses hit", hits)
	}
}
