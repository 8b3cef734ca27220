package threatcommand

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
)

// addSeeds adds the project's own inputs of one kind as fuzz seeds.
func addSeeds(f *testing.F, kind string, extra ...string) {
	for _, b := range ecstest.ReadFiles(f, filepath.Join("testdata", "normalize", kind, "*.input.json")) {
		f.Add(b)
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// fuzzNormalize checks what must hold for any input: no panic, a valid JSON
// object with event.original, and errors reported the same way in the
// Document and in the Source.
func fuzzNormalize(t *testing.T, kind string, raw []byte) {
	k := kinds[kind]
	n := NewNormalizer(k.opts)
	// The same normalizer writing into an arena gives the same documents,
	// laid out end to end as NDJSON.
	var arena ecs.Arena
	opts := k.opts
	opts.Arena = &arena
	na := NewNormalizer(opts)
	var ndjson []byte
	for round := 0; round < 2; round++ { // the second round reuses the buffers
		doc := k.normalize(n, raw)
		inArena := k.normalize(na, raw)
		ndjson = append(append(ndjson, doc.Source...), '\n')
		if !bytes.Equal(arena.NDJSON(), ndjson) {
			t.Fatalf("in an arena:\n%s\nwant\n%s", arena.NDJSON(), ndjson)
		}
		a, b := inArena, doc
		if a.Source, b.Source = nil, nil; !reflect.DeepEqual(a, b) || !bytes.Equal(inArena.Source, doc.Source) {
			t.Fatalf("in an arena: %+v\n%s\nwant %+v\n%s", a, inArena.Source, b, doc.Source)
		}
		if doc.View != k.view {
			t.Fatalf("view %q", doc.View)
		}
		var src map[string]any
		if err := json.Unmarshal(doc.Source, &src); err != nil {
			t.Fatalf("Source is not a JSON object: %v\n%q", err, doc.Source)
		}
		event, _ := src["event"].(map[string]any)
		if len(raw) > 0 && utf8.Valid(raw) && event["original"] != string(raw) {
			t.Fatalf("event.original = %q, want %q", event["original"], raw)
		}
		_, hasErr := src["error"]
		if hasErr != (doc.Error != "") {
			t.Fatalf("Error %q but error field present = %v", doc.Error, hasErr)
		}
		if doc.Error != "" && event["kind"] != kindError {
			t.Fatalf("error document with event.kind %v", event["kind"])
		}
		for _, e := range ecstest.Empties(src) {
			t.Error(e)
		}
	}
}

func FuzzNormalizeIOC(f *testing.F) {
	addSeeds(f, "ioc",
		`{}`, `null`, `{"type":"Urls","value":"http://[::1]:80/%zz"}`,
		`{"type":"IpAddresses","value":"::ffff:1.2.3.4","status":"RETIRED","lastUpdateDate":"2024-01-01T00:00:00+05:30"}`,
		`{"type":"Hashes","value":"","score":"0x1p3","whitelisted":1e2,"tags":{"a":1}}`,
		`{"type":5,"value":[1],"reportedFeeds":{"name":"x"},"score":[1],"lastSeen":7}`,
		`{"a.b":{"c":null},"a":"x","type":"Domains","value":"\u0000\ud800"}`,
	)
	f.Fuzz(func(t *testing.T, raw []byte) { fuzzNormalize(t, "ioc", raw) })
}

func FuzzNormalizeAlert(f *testing.F) {
	addSeeds(f, "alert",
		`{}`, `[]`, `{"_id":5,"Details":"x","Assets":{"Type":1},"Closed":[]}`,
		`{"_id":"x","Details":{"Tags":[1,{"Name":2},{"Name":null},null],"Source":{"Date":false}},"IsFlagged":"True"}`,
	)
	f.Fuzz(func(t *testing.T, raw []byte) { fuzzNormalize(t, "alert", raw) })
}

func FuzzNormalizeVulnerability(f *testing.F) {
	addSeeds(f, "vulnerability",
		`{}`, `1`, `{"cveId":{"a":1},"cpe":[{"Range":"x"},{"Range":{"VersionStartIncluding":null}}],"mentionsAmount":"-0x8000000000000000"}`,
		`{"intsightsScore":"1e400","cvssScore":"NaN","mentionsPerSource":{"DarkWeb":99999999999999999999}}`,
	)
	f.Fuzz(func(t *testing.T, raw []byte) { fuzzNormalize(t, "vulnerability", raw) })
}
