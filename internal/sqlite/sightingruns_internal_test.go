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
		if !sortsRight(&b, rows) {
			t.Errorf("%d rows: not in order", n)
		}
	}
}

// sortsRight reports whether sortSightingRows orders rows (in entry order)
// as comparing (g, key, entry) does.
func sortsRight(b *vigil.SightingBatch, rows []sRow) bool {
	want := slices.Clone(rows)
	key := func(r sRow) []byte { return b.Data[b.Entries[r.i].Key[0]:b.Entries[r.i].Key[1]] }
	slices.SortFunc(want, func(x, y sRow) int {
		return cmp.Or(cmp.Compare(x.g, y.g), bytes.Compare(key(x), key(y)), cmp.Compare(x.i, y.i))
	})
	got := rows
	sortSightingRows(got, b.Entries, b.Data)
	// The sort may reuse a row's prefix words: the rows are compared by
	// their entries.
	if len(got) != len(want) {
		return false
	}
	for k := range got {
		if got[k].i != want[k].i || got[k].g != want[k].g {
			return false
		}
	}
	return true
}

// FuzzSortSightingRows: batches built from the input, each record a day
// and kind, a prefix shared with other keys (none, "https://", zero bytes,
// 60 bytes of a URL, "ab"), a tail, and a number of copies (some one byte
// longer), so that the radix sort's parts, its insertion sort and its
// groups of rows alike in 16 bytes and more all come up.
func FuzzSortSightingRows(f *testing.F) {
	f.Add([]byte("\x00\x01\x05\x30abcde\xff\x06\x03\x10xyz\x01\x0a\x08\x3f01234567"))
	f.Add(bytes.Repeat([]byte{0x80, 0x0f, 0x02, 0x1f, 'q', 'r'}, 20))
	prefixes := []string{"", "https://", string(make([]byte, 16)), "https://cdn.example/" + strings.Repeat("a/", 20), "ab"}
	f.Fuzz(func(t *testing.T, in []byte) {
		var b vigil.SightingBatch
		var rows []sRow
		for len(in) >= 4 && len(rows) < 20000 {
			g := int64(int8(in[0]))<<8 | int64(in[1]&3)
			p := prefixes[int(in[1]>>2)%len(prefixes)]
			tail := in[4:min(4+int(in[2]%24), len(in))]
			copies := 1 + int(in[3]%128)
			in = in[4+len(tail):]
			for c := range copies {
				key := p + string(tail) + "\x00\x01"[:c%3]
				b.AppendSighting(vigil.Sighting{Key: key})
				rows = append(rows, sRowOf(g, []byte(key), len(rows)))
			}
		}
		if !sortsRight(&b, rows) {
			t.Fatalf("%d rows: not in order", len(rows))
		}
	})
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
