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
