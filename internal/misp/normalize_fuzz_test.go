package misp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
)

// seeds adds every file matching pattern to the corpus.
func seeds(f *testing.F, pattern string) {
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s: %v", pattern, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkInvariants checks what every document must be, whatever its input:
// a JSON object; a pipeline error exactly when Error is set, with
// error.message; a key only from the attribute's uuid; a live document
// with a key, a timestamp and an expiry.
func checkInvariants(t *testing.T, d vigil.Document, dataset string) {
	v, err := fastjson.ParseBytes(d.Source)
	if err != nil || v.Type() != fastjson.TypeObject {
		t.Fatalf("source is not a JSON object: %v\n%s", err, d.Source)
	}
	if d.Dataset != dataset || d.View != vigil.ViewIndicators {
		t.Fatalf("dataset %q view %q", d.Dataset, d.View)
	}
	isErr := string(v.GetStringBytes("event", "kind")) == kindError
	if isErr != (d.Error != "") || isErr != v.Exists("error", "message") {
		t.Fatalf("Error %q, event.kind %s, error.message %s", d.Error, v.Get("event", "kind"), v.Get("error", "message"))
	}
	if d.Type != string(v.GetStringBytes("threat", "indicator", "type")) {
		t.Fatalf("Type %q, source %s", d.Type, v.Get("threat", "indicator", "type"))
	}
	if d.Timestamp.IsZero() {
		t.Fatal("no timestamp")
	}
	if d.Error == "" {
		if d.Key == "" || d.ExpiresAt.IsZero() {
			t.Fatalf("live document without key or expiry: %q %v", d.Key, d.ExpiresAt)
		}
		if u := v.Get("misp", "attribute", "uuid"); u == nil {
			t.Fatalf("key %q without misp.attribute.uuid", d.Key)
		}
	}
	if strings.Contains(d.Error, "panic") {
		t.Fatal(d.Error)
	}
}

func FuzzAttribute(f *testing.F) {
	seeds(f, filepath.Join("testdata", "normalize", "attribute", "*.input.json"))
	f.Add([]byte(`{"uuid":"u","type":"filename|","value":"|","timestamp":"1"}`))
	f.Add([]byte(`{"uuid":"u","type":"ip-dst|port","value":"::1|80","timestamp":1e3,"decay_score":[{"decayed":true}]}`))
	n := NewNormalizer(NormalizeOptions{Dataset: DatasetAttributes, Tags: DefaultTags, ExpirationDuration: "90d", Ingested: testIngested})
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkInvariants(t, n.Attribute(raw), DatasetAttributes)
	})
}

func FuzzEvent(f *testing.F) {
	seeds(f, filepath.Join("testdata", "normalize", "event", "*.input.json"))
	seeds(f, filepath.Join("..", "..", "examples", "misp-feed", "*-*.json"))
	n := NewNormalizer(NormalizeOptions{Dataset: DatasetFeed, Tags: DefaultFeedTags, ExpirationDuration: "90d", Ingested: testIngested})
	f.Fuzz(func(t *testing.T, raw []byte) {
		count := 0
		uuid, docs := n.Event(raw, "fuzz", func(d vigil.Document) {
			checkInvariants(t, d, DatasetFeed)
			// A feed document is live for 90 days after the fetch at least.
			if d.Error == "" && d.ExpiresAt.Before(testIngested.Truncate(time.Millisecond).Add(90*24*time.Hour)) {
				if v := fastjson.MustParseBytes(d.Source); !v.GetBool("misp", "attribute", "deleted") {
					t.Fatalf("feed document expires %v", d.ExpiresAt)
				}
			}
			count++
		})
		if count != docs || (uuid == "" && docs != 1) {
			t.Fatalf("uuid %q, %d documents, %d emitted", uuid, docs, count)
		}
	})
}
