package matcher

import (
	"math/rand/v2"
	"testing"
)

// TestFilter: every value added passes (no false negatives), for every key
// kind a fixed table hashes, and few absent values do.
func TestFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		key  func() uint64 // the hash of a random key of the kind
	}{
		{"uint32", func() uint64 { k := r.Uint32(); return fixedHash(&k) }},
		{"ipv6 in one /64", func() uint64 {
			k := [16]byte{0x20, 0x01, 0x0d, 0xb8}
			k[15], k[14] = byte(r.Uint32()), byte(r.Uint32())
			k[13] = byte(r.Uint32())
			return fixedHash(&k)
		}},
		{"sha1", func() uint64 {
			var k [20]byte
			for i := range k {
				k[i] = byte(r.Uint32())
			}
			return fixedHash(&k)
		}},
		{"string hash", r.Uint64},
	}
	for _, c := range cases {
		for _, n := range []int{1, 100, 100_000} {
			f := newFilter(n)
			added := map[uint64]bool{}
			for range n {
				h := c.key()
				added[h] = true
				f.add(h)
			}
			for h := range added {
				if !f.mayHave(h) {
					t.Fatalf("%s, %d values: an added value does not pass", c.name, n)
				}
			}
			const probes = 100_000
			passed := 0
			for range probes {
				if h := c.key(); !added[h] && f.mayHave(h) {
					passed++
				}
			}
			if rate := float64(passed) / probes; rate > 0.05 {
				t.Errorf("%s, %d values: %.1f %% of absent values pass", c.name, n, rate*100)
			}
		}
	}
	var empty filter
	f0 := newFilter(0)
	if empty.mayHave(0) || f0.mayHave(1) {
		t.Error("an empty filter passes a value")
	}
}

// TestFixedHashEqualKeys: equal keys hash equally whatever their memory.
func TestFixedHashEqualKeys(t *testing.T) {
	a := [20]byte{1, 2, 3, 19: 4}
	b := new([20]byte)
	*b = a
	if fixedHash(&a) != fixedHash(b) {
		t.Error("equal [20]byte keys hash differently")
	}
	x, y := uint32(0x0a000001), uint32(0x0a000001)
	if fixedHash(&x) != fixedHash(&y) {
		t.Error("equal uint32 keys hash differently")
	}
}
