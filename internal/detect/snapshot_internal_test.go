package detect

import (
	"fmt"
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
