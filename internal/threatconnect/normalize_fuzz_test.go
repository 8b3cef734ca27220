package threatconnect

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
// object with event.original, errors reported the same way in the Document
// and in the Source, no empty values, and a Document that does not change
// when the Normalizer is reused.
func fuzzNormalize(t *testing.T, kind string, raw []byte) {
	n := NewNormalizer(testOptions())
	// The same normalizer writing into an arena gives the same documents,
	// laid out end to end as NDJSON.
	var arena ecs.Arena
	opts := testOptions()
	opts.Arena = &arena
	na := NewNormalizer(opts)
	var first, ndjson []byte
	for round := 0; round < 2; round++ { // the second round reuses the buffers
		doc := normalizeKind(n, kind, raw)
		if inArena := normalizeKind(na, kind, raw); !reflect.DeepEqual(inArena, doc) {
			t.Fatalf("in an arena: %+v\nwant %+v", inArena, doc)
		}
		if ndjson = append(append(ndjson, doc.Source...), '\n'); !bytes.Equal(arena.NDJSON(), ndjson) {
			t.Fatalf("the arena holds\n%s\nwant\n%s", arena.NDJSON(), ndjson)
		}
		if round == 0 {
			first = doc.Source
		} else if string(first) != string(doc.Source) {
			t.Fatalf("the second round differs:\n%s\n%s", first, doc.Source)
		}
		if doc.View != "indicators" || doc.Dataset != DatasetIndicator {
			t.Fatalf("view %q dataset %q", doc.View, doc.Dataset)
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
		if !doc.ExpiresAt.IsZero() && doc.Timestamp.IsZero() {
			t.Fatalf("expires %v without a timestamp", doc.ExpiresAt)
		}
		for _, e := range ecstest.Empties(src) {
			t.Error(e)
		}
	}
}

func FuzzNormalizeIndicator(f *testing.F) {
	addSeeds(f, "indicator",
		`{}`, `null`, `{"type":"Address","ip":"::ffff:1.2.3.4%eth0"}`,
		`{"type":"CIDR","Block":{"a":1},"AS Number":12,"confidence":1e400}`,
		`{"associatedGroups":{"data":[{"createdBy":"x","assignments":{"data":[{"user":5},7]},"attributes":{"data":{}}},null,3]}}`,
		`{"associatedIndicators":{"data":[{"location":[{"location":1}],"Block":{"Key Name":{"":null}},"a.b":{"c":[]}}]}}`,
		`{"securityLabels":{"data":[{"name":5},{"name":"TLP:"},"TLP:RED"]},"tags":{"data":[{"techniqueId":1,"name":{},"platforms":{"data":[{},null,2]},"tactics":{"count":1}}]}}`,
		`{"summary":{"a":1},"type":7,"md5":1,"address":"@","lastModified":"2024-01-01T00:00:00+14:00","id":-0}`,
		`{"":"","\u0000":[],"attributes":{"data":[{"createdBy":{"firstName":3.5e10,"x.y":1}}]}}`,
	)
	f.Fuzz(func(t *testing.T, raw []byte) { fuzzNormalize(t, "indicator", raw) })
}

func FuzzNormalizeDeleted(f *testing.F) {
	addSeeds(f, "deleted",
		`{}`, `[]`, `{"summary":1,"type":"Address","dateAdded":"x"}`, `{"summary":"10.0.0.0/8","type":"CIDR","ownerName":{}}`,
	)
	f.Fuzz(func(t *testing.T, raw []byte) { fuzzNormalize(t, "deleted", raw) })
}

// FuzzParsePage checks that no body makes the page parser panic, and that
// the records of a page it accepts are each valid JSON.
func FuzzParsePage(f *testing.F) {
	for _, s := range []string{
		`{"data":[],"status":"Success"}`, `{"data":[{"id":1},2,"x"],"next":"http://h/a?b=c"}`,
		`{"status":"Error","message":"m"}`, `{"data":null}`, `[]`, ``, `{"data":[{"a":"]}\\"["}]}`,
		`{"next":"\ud800","data":[[[[]]]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePage(body)
		if err != nil {
			return
		}
		for i, r := range p.Records {
			if !json.Valid(r) {
				t.Fatalf("record %d is not valid JSON: %q", i, r)
			}
		}
	})
}
