package importer

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenCases names every input in testdata/golden with the options it is
// imported with; <input>.golden.json holds the live documents it gives
// and its bad lines.
var goldenCases = []struct {
	file   string
	typ    string
	column string
}{
	{file: "text.txt"},
	{file: "defanged.txt"},
	{file: "mutexes.txt", typ: TypeMutex},
	{file: "list.csv"},
	{file: "urlhaus.csv", column: "url"},
	{file: "docs.ndjson"},
}

func TestGolden(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range goldenCases {
		in := filepath.Join("testdata", "golden", c.file)
		covered[in] = true
		covered[in+".golden.json"] = true
		t.Run(c.file, func(t *testing.T) {
			clock := &testClock{t: testNow}
			db := openStore(t, clock)
			im, bad := testImporter(t, db, clock, func(o *Options) { o.Type = c.typ; o.Column = c.column })
			if _, err := im.File(t.Context(), in); err != nil {
				t.Fatal(err)
			}
			if err := db.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			ecstest.Golden(t, in+".golden.json", goldenJSON(t, db, *bad), *update)
		})
	}
	ecstest.Covered(t, filepath.Join("testdata", "golden", "*"), covered)
}

// goldenJSON renders the live documents of the import, by view and key,
// with their facts, and the bad lines.
func goldenJSON(t *testing.T, db vigil.Store, bad []BadLine) []byte {
	t.Helper()
	type doc struct {
		View      vigil.View      `json:"view"`
		Key       string          `json:"key"`
		Type      string          `json:"type"`
		Timestamp string          `json:"timestamp"`
		ExpiresAt string          `json:"expires_at"`
		Source    json.RawMessage `json:"source"`
	}
	out := struct {
		Documents []doc    `json:"documents"`
		Bad       []string `json:"bad"`
	}{Bad: []string{}}
	for _, v := range []vigil.View{vigil.ViewIndicators, vigil.ViewVulnerabilities} {
		m := live(t, db, v)
		ks := keys(m)
		slices.Sort(ks)
		for _, k := range ks {
			d := m[k]
			out.Documents = append(out.Documents, doc{
				View: d.View, Key: d.Key, Type: d.Type,
				Timestamp: d.Timestamp.UTC().Format(time.RFC3339Nano), ExpiresAt: d.ExpiresAt.UTC().Format(time.RFC3339Nano),
				Source: d.Source,
			})
		}
	}
	for _, b := range bad {
		out.Bad = append(out.Bad, b.String())
	}
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(js, '\n')
}
