package sqlite

import (
	"bytes"
	"testing"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
)

func TestHoldsDocs(t *testing.T) {
	var a ecs.Arena
	var docs []vigil.Document
	for _, s := range []string{`{"a":1}`, `{}`, `{"b":"x"}`} {
		docs = append(docs, vigil.Document{Source: a.Doc([]byte(s))})
	}
	nd := a.NDJSON()
	copied := bytes.Clone(nd)
	elsewhere := append([]vigil.Document{{Source: []byte(`{"a":1}`)}}, docs[1:]...)
	for _, c := range []struct {
		name   string
		ndjson []byte
		docs   []vigil.Document
		want   bool
	}{
		{"the arena's page", nd, docs, true},
		{"no NDJSON", nil, docs, false},
		{"a copy of the page", copied, docs, false},
		{"a document missing", nd, docs[:2], false},
		{"a document more", nd[:len(nd)-len(`{"b":"x"}`)-1], docs, false},
		{"a document from elsewhere", nd, elsewhere, false},
		{"no newline at the end", nd[:len(nd)-1], docs, false},
		{"an empty page", a.NDJSON()[:0], nil, true},
	} {
		if got := holdsDocs(c.ndjson, c.docs); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
