package detect

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-ti/vigil"
)

// TestRefTable: every Ref reads back its view, dataset, key and Loc, across
// groups, runs of 16, Locs that go back and forth, and zero ones.
func TestRefTable(t *testing.T) {
	var tab refTable
	var want []vigil.Document
	for i := range 200 {
		d := vigil.Document{View: vigil.ViewIndicators, Dataset: fmt.Sprintf("ds%d", i/70), Key: fmt.Sprintf("key-%d", i*7919%1000)}
		switch {
		case i%13 == 5:
			// no Loc: a waiting document
		case i%11 == 3:
			d.Loc = vigil.Loc{Seg: 1, Block: 0, Off: 10, Len: 1} // back to an earlier segment
		default:
			block := uint32(i/5) * 32768
			d.Loc = vigil.Loc{Seg: int64(100 + i/30), Block: block, Off: block + uint32(i%5)*700, Len: uint32(300 + i)}
		}
		if i == 199 {
			d.View, d.Loc = vigil.ViewVulnerabilities, vigil.Loc{Seg: 1 << 40, Block: 1<<32 - 1, Off: 1<<32 - 1, Len: 1<<32 - 1}
		}
		want = append(want, d)
		if ref, err := tab.add(d); err != nil || ref != uint32(i) {
			t.Fatalf("add %d = %d, %v", i, ref, err)
		}
	}
	// A Loc that cannot be right is kept as none.
	if _, err := tab.add(vigil.Document{View: vigil.ViewIndicators, Dataset: "x", Key: "bad", Loc: vigil.Loc{Seg: 3, Block: 50, Off: 40, Len: 1}}); err != nil {
		t.Fatal(err)
	}
	want = append(want, vigil.Document{View: vigil.ViewIndicators, Dataset: "x", Key: "bad"})
	for i, d := range want {
		ref, loc := tab.get(uint32(i))
		if ref != (DocRef{View: d.View, Dataset: d.Dataset, Key: d.Key}) || loc != d.Loc {
			t.Errorf("Ref %d = %+v %+v; want %s %s %s %+v", i, ref, loc, d.View, d.Dataset, d.Key, d.Loc)
		}
	}
	if ref, loc := tab.get(uint32(len(want))); ref != (DocRef{}) || loc != (vigil.Loc{}) {
		t.Errorf("a Ref past the end = %+v %+v", ref, loc)
	}
}

// TestRefTableChunks: Refs read back across the table's chunks, with a key
// larger than a chunk among them and Refs of a run not flushed yet.
func TestRefTableChunks(t *testing.T) {
	var tab refTable
	pad := strings.Repeat("k", 200)
	key := func(i int) string {
		if i == 1000 {
			return strings.Repeat("h", refChunk+refChunk/2) // a chunk and a half
		}
		return fmt.Sprintf("%s-%d", pad, i)
	}
	loc := func(i int) vigil.Loc {
		return vigil.Loc{Seg: int64(1 + i/100), Block: uint32(i/7) * 1000, Off: uint32(i/7)*1000 + uint32(i%7), Len: uint32(i)}
	}
	const n = 3*refChunk/220 + 37 // past three chunks of entries, and a run left over
	for i := range n {
		if _, err := tab.add(vigil.Document{View: vigil.ViewIndicators, Dataset: "ds", Key: key(i), Loc: loc(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if len(tab.chunks) < 5 || len(tab.run) == 0 {
		t.Fatalf("%d chunks, %d bytes not flushed: the test wants more than four and some", len(tab.chunks), len(tab.run))
	}
	for i := 0; i < n; i += 1 + i%5 {
		ref, l := tab.get(uint32(i))
		if ref.Key != key(i) || l != loc(i) {
			t.Fatalf("Ref %d: key of %d bytes, %+v; want %d bytes, %+v", i, len(ref.Key), l, len(key(i)), loc(i))
		}
	}
	if ref, l := tab.get(n - 1); ref.Key != key(n-1) || l != loc(n-1) {
		t.Fatalf("last Ref: %q %+v", ref.Key, l)
	}
}
