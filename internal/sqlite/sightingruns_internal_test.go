package sqlite

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-ti/vigil"
)

// TestSortSightingRows: the radix sort orders rows as comparing (day,
// kind, key, entry) does, for keys that share their first 16 bytes or
// less, share 16 to 80 (sorted 16 bytes at a time, then by key), differ in
// length only, repeat, and fall on days before and after the batch's
// first.
func TestSortSightingRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, 24, 25, 100, 5000, 40000} {
		var b vigil.SightingBatch
		var rows []sRow
		for i := range n {
			var key string
			switch rng.IntN(6) {
			case 5:
				key = "https://cdn.example/" + strings.Repeat("a/", rng.IntN(30)) + strconv.Itoa(rng.IntN(40))
			case 0:
				key = fmt.Sprintf("https://host%d.example/%d/%d", rng.IntN(3), rng.IntN(50), rng.IntN(3))
			case 1:
				key = "ab" + string(make([]byte, rng.IntN(20)))
			case 2:
				key = string([]byte{byte(rng.IntN(256)), byte(rng.IntN(3))})
			default:
				key = fmt.Sprintf("%016x%x", rng.Uint64()%64, rng.IntN(4))
			}
			b.AppendSighting(vigil.Sighting{Key: key})
			e := &b.Entries[i]
			rows = append(rows, sRowOf(int64(rng.IntN(3)-1)<<8|int64(rng.IntN(4)), b.Data[e.Key[0]:e.Key[1]], i))
		}
		want := slices.Clone(rows)
		key := func(r sRow) []byte { return b.Data[b.Entries[r.i].Key[0]:b.Entries[r.i].Key[1]] }
		slices.SortFunc(want, func(x, y sRow) int {
			return cmp.Or(cmp.Compare(x.g, y.g), bytes.Compare(key(x), key(y)), cmp.Compare(x.i, y.i))
		})
		got := sortSightingRows(rows, b.Entries, b.Data)
		// The sort may reuse a row's prefix words: the rows are compared by
		// their entries.
		same := len(got) == len(want)
		for k := 0; same && k < len(got); k++ {
			same = got[k].i == want[k].i && got[k].g == want[k].g
		}
		if !same {
			t.Errorf("%d rows: not in order", n)
		}
	}
}

// BenchmarkSortSightingRows: one op sorts a batch of 65,536 rows of
// distinct keys of four kinds.
func BenchmarkSortSightingRows(b *testing.B) {
	var batch vigil.SightingBatch
	rng := rand.New(rand.NewPCG(5, 6))
	var rows []sRow
	for i := range 65536 {
		var key string
		switch i % 4 {
		case 0:
			key = string([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		case 1:
			// 10,000 hosts, as bench/detect.sh's events have.
			j := rng.IntN(10000)
			key = fmt.Sprintf("https://%s%d.info/static/app%d.js?v=%d", []string{"polar-micro", "keymetro", "silverstone", "api.office-nexus"}[j%4], j, rng.IntN(1000), rng.IntN(100))
		case 2:
			key = fmt.Sprintf("com.example%d.www", rng.Uint64())
		default:
			key = fmt.Sprintf("%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
		}
		batch.AppendSighting(vigil.Sighting{Key: key})
		rows = append(rows, sRowOf(int64(i%4), []byte(key), i))
	}
	work := make([]sRow, len(rows))
	for b.Loop() {
		copy(work, rows)
		sortSightingRows(work, batch.Entries, batch.Data)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}
