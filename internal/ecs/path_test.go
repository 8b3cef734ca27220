package ecs

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestNewPath(t *testing.T) {
	for _, tt := range []struct {
		path, open string
		at         []int32
	}{
		{"a", `"a":`, []int32{0}},
		{"a.bc.d", `"a":{"bc":{"d":`, []int32{0, 5, 11}},
		{"", `"":`, []int32{0}},
		{"x..\"", `"x":{"":{"\"":`, []int32{0, 5, 9}},
	} {
		p := NewPath(tt.path)
		if p.String() != tt.path || p.open != tt.open || !slices.Equal(p.at, tt.at) {
			t.Errorf("NewPath(%q) = open %q at %v, want %q %v", tt.path, p.open, p.at, tt.open, tt.at)
		}
	}
	a, b, c := NewPath("x.y.z"), NewPath("x.y.w"), NewPath("x.q")
	if a.shared(b) != 2 || a.shared(c) != 1 || a.shared(a) != 3 || a.shared(NewPath("y")) != 0 {
		t.Errorf("shared: %d %d %d", a.shared(b), a.shared(c), a.shared(a))
	}
}

// TestPathsMatchDotted writes random documents with a random mix of Paths
// and dotted strings, in sorted and in random order, reusing the Docs so
// that the transition cache is hit, and checks them against the same
// fields written with dotted strings only.
func TestPathsMatchDotted(t *testing.T) {
	segs := []string{"a", "a-b", "ab", "b", "event", "kind", "", "é", "\""}
	var all []string
	seen := map[string]bool{}
	r := rand.New(rand.NewPCG(3, 4))
	for len(all) < 60 {
		p := segs[r.IntN(len(segs))]
		for range r.IntN(4) {
			p += "." + segs[r.IntN(len(segs))]
		}
		if !seen[p] {
			seen[p] = true
			all = append(all, p)
		}
	}
	compiled := map[string]*Path{}
	for _, p := range all {
		compiled[p] = NewPath(p)
	}
	var mixed, dotted Doc
	for round := range 3000 {
		// A few shapes of document, so that transitions repeat.
		rs := rand.New(rand.NewPCG(uint64(round%40), 9))
		var paths []string
		for _, p := range all {
			if rs.IntN(3) == 0 {
				paths = append(paths, p)
			}
		}
		slices.SortFunc(paths, comparePaths)
		if round%5 == 4 {
			r.Shuffle(len(paths), func(i, j int) { paths[i], paths[j] = paths[j], paths[i] })
		}
		if round%7 == 6 && len(paths) > 0 {
			paths = append(paths, paths[r.IntN(len(paths))]) // a duplicate
		}
		mixed.Reset()
		dotted.Reset()
		for i, p := range paths {
			v := string(rune('a' + i%26))
			dotted.Str(p, v)
			if r.IntN(4) == 0 {
				mixed.Str(p, v)
			} else {
				mixed.At(compiled[p]).Str(v)
			}
		}
		want := string(dotted.AppendJSON(nil))
		if got := string(mixed.AppendJSON(nil)); got != want {
			t.Fatalf("round %d: paths %q\ndotted %s\nmixed  %s", round, paths, want, got)
		}
	}
}

func TestSetterValues(t *testing.T) {
	var a, b Doc
	a.Reset()
	b.Reset()
	ts := time.Date(2024, 5, 30, 8, 15, 42, 123456789, time.UTC)
	a.Str("s", "x")
	b.At(NewPath("s")).Str("x")
	a.Str("s0", "")
	b.At(NewPath("s0")).Str("")
	a.Strs("ss", []string{"", "y"})
	b.At(NewPath("ss")).Strs([]string{"", "y"})
	a.Int("t.i", -7)
	b.At(NewPath("t.i")).Int(-7)
	a.Float("t.f", 16)
	b.At(NewPath("t.f")).Float(16)
	a.Float32("t.f32", 16.451612903225808)
	b.At(NewPath("t.f32")).Float32(16.451612903225808)
	a.Num("t.n", "1e2")
	b.At(NewPath("t.n")).Num("1e2")
	a.Bool("t.t", true)
	b.At(NewPath("t.t")).Bool(true)
	a.Time("u.a", ts)
	b.At(NewPath("u.a")).Time(ts)
	a.TimeLayout("u.b", ts, TimeLayoutSeconds)
	b.At(NewPath("u.b")).TimeLayout(ts, TimeLayoutSeconds)
	a.Raw("v", []byte(`{"k":1}`))
	b.At(NewPath("v")).Raw([]byte(`{"k":1}`))
	a.Raw("v0", []byte(` [ ] `))
	b.At(NewPath("v0")).Raw([]byte(` [ ] `))
	if x, y := string(a.AppendJSON(nil)), string(b.AppendJSON(nil)); x != y {
		t.Fatalf("dotted %s\npaths  %s", x, y)
	}
}

func TestNewPathConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d Doc
			for i := range 50 {
				d.Reset()
				p := NewPath("c.g" + string(rune('a'+g)) + "." + string(rune('a'+i%26)))
				d.At(NewPath("c.a")).Str("x")
				d.At(p).Str("y")
				d.AppendJSON(nil)
			}
		}()
	}
	wg.Wait()
}
