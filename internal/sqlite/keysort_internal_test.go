package sqlite

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestSortKeys checks sortKeys against a plain comparison sort by (ds,
// key, i), on keys with shared prefixes, zero bytes, keys that are
// prefixes of others, duplicates and several datasets.
func TestSortKeys(t *testing.T) {
	prefixes := []string{"", "https://", "https://cdn-1.example.com/", "HKEY_CURRENT_USER\\Software\\", "a", "ab\x00", "\x00\x00\x00\x00\x00\x00\x00\x00"}
	for _, c := range []struct {
		name     string
		n        int
		datasets int
		alphabet string
		maxTail  int
	}{
		{"empty", 0, 1, "ab", 4},
		{"one", 1, 1, "ab", 4},
		{"short", 12, 1, "ab", 4},
		{"small alphabet, duplicates", 2000, 1, "ab", 3},
		{"zero bytes", 2000, 1, "\x00\x01", 10},
		{"words", 5000, 1, "abcdefghijklmnopqrstuvwxyz0123456789./-", 24},
		{"datasets", 5000, 3, "ab\x00z", 12},
		{"long shared tails", 3000, 2, "x", 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(c.n)))
			keys := make([]sortKey, c.n)
			for i := range keys {
				var b strings.Builder
				b.WriteString(prefixes[r.IntN(len(prefixes))])
				for range r.IntN(c.maxTail + 1) {
					b.WriteByte(c.alphabet[r.IntN(len(c.alphabet))])
				}
				key := []byte(b.String())
				keys[i] = sortKey{key: key, pre: keyPrefix(key), ds: int64(r.IntN(c.datasets)) * 7, i: int32(i)}
			}
			want := slices.Clone(keys)
			slices.SortFunc(want, func(x, y sortKey) int {
				if x.ds != y.ds {
					return cmp.Compare(x.ds, y.ds)
				}
				if c := bytes.Compare(x.key, y.key); c != 0 {
					return c
				}
				return cmp.Compare(x.i, y.i)
			})
			sortKeys(keys)
			for i := range keys {
				if keys[i].i != want[i].i {
					t.Fatalf("at %d: got %s, want %s", i, show(keys[i]), show(want[i]))
				}
			}
		})
	}
}

// TestSortFromBudget: a spent budget falls back to a comparison sort
// that orders the same way.
func TestSortFromBudget(t *testing.T) {
	var keys []sortKey
	for i := range 500 {
		key := fmt.Appendf(nil, "https://example.com/%0200d/%d", 0, (i*7919)%97)
		keys = append(keys, sortKey{key: key, pre: keyPrefix(key), i: int32(i)})
	}
	want := slices.Clone(keys)
	slices.SortFunc(want, func(x, y sortKey) int { return compareFrom(&x, &y, 0) })
	for _, budget := range []int{0, 1, 3, 100} {
		got := slices.Clone(keys)
		sortFrom(got, 0, budget)
		for i := range got {
			if got[i].i != want[i].i {
				t.Fatalf("budget %d: at %d: got %s, want %s", budget, i, show(got[i]), show(want[i]))
			}
		}
	}
}

func show(k sortKey) string { return fmt.Sprintf("(%d, %q, %d)", k.ds, k.key, k.i) }
