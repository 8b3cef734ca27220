package ecs_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-ti/vigil/internal/ecs"
)

func TestArena(t *testing.T) {
	var a ecs.Arena
	for page, sizes := range [][]int{
		{0, 10, 3},
		// Past the first buffer (64 KiB): the page moves, and what was
		// handed out before still reads the same.
		{40 << 10, 30 << 10, 100 << 10, 1},
		{5, 6},
	} {
		a.Reset()
		var want []byte
		var docs, srcs [][]byte
		var keys []string
		for i, n := range sizes {
			src := bytes.Repeat([]byte{byte('a' + i)}, n)
			doc := a.Doc(src)
			if !bytes.Equal(doc, src) || cap(doc) != len(doc) {
				t.Fatalf("page %d doc %d: %d bytes, capacity %d", page, i, len(doc), cap(doc))
			}
			clear(src) // the arena keeps a copy
			key := strings.Repeat("k", i+1)
			keys = append(keys, a.String(key))
			docs, srcs = append(docs, doc), append(srcs, bytes.Repeat([]byte{byte('a' + i)}, n))
			want = append(append(want, srcs[i]...), '\n')
			if !bytes.Equal(a.NDJSON(), want) {
				t.Fatalf("page %d after doc %d: NDJSON of %d bytes, want %d", page, i, len(a.NDJSON()), len(want))
			}
		}
		for i := range docs {
			if !bytes.Equal(docs[i], srcs[i]) || keys[i] != strings.Repeat("k", i+1) {
				t.Fatalf("page %d doc %d changed after later ones", page, i)
			}
		}
	}
	if a.String("") != "" {
		t.Fatal(`String("")`)
	}
}

// TestArenaOpenClose: documents appended in place, moving the page when
// they do not fit, lie end to end as NDJSON, with Doc's among them.
func TestArenaOpenClose(t *testing.T) {
	var a ecs.Arena
	var want []byte
	var docs, srcs [][]byte
	for i, n := range []int{10, 70 << 10, 0, 5, 200 << 10} {
		src := bytes.Repeat([]byte{byte('a' + i)}, n)
		var doc []byte
		if i%2 == 0 {
			b := a.Open()
			b = append(b, src...)
			doc = a.Close(b)
		} else {
			doc = a.Doc(src)
		}
		if !bytes.Equal(doc, src) || cap(doc) != len(doc) {
			t.Fatalf("doc %d: %d bytes, capacity %d", i, len(doc), cap(doc))
		}
		docs, srcs = append(docs, doc), append(srcs, src)
		want = append(append(want, src...), '\n')
		if !bytes.Equal(a.NDJSON(), want) {
			t.Fatalf("after doc %d: NDJSON of %d bytes, want %d", i, len(a.NDJSON()), len(want))
		}
	}
	for i := range docs {
		if !bytes.Equal(docs[i], srcs[i]) {
			t.Fatalf("doc %d changed after later ones", i)
		}
	}
	// A writer that gave up leaves nothing: the next document starts
	// where the page ended.
	a.Reset()
	_ = append(a.Open(), "half a document"...)
	if got := a.Doc([]byte("x")); string(got) != "x" || string(a.NDJSON()) != "x\n" {
		t.Fatalf("after a writer gave up: %q, page %q", got, a.NDJSON())
	}
}

// TestArenaOpenOr: without an arena a writer gets its scratch, emptied;
// with one, the page.
func TestArenaOpenOr(t *testing.T) {
	scratch := []byte("old")
	var none *ecs.Arena
	if got := none.OpenOr(scratch); len(got) != 0 || cap(got) != cap(scratch) {
		t.Fatalf("no arena: %q, capacity %d", got, cap(got))
	}
	var a ecs.Arena
	a.Doc([]byte("x"))
	if got := a.OpenOr(scratch); string(got) != "x\n" {
		t.Fatalf("arena: %q, want the page", got)
	}
}
