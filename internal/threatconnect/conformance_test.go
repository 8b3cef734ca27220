package threatconnect

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
)

// referenceDir holds Elastic's pipeline tests and sample event for
// ti_threatconnect, relative to this package's folder. They are read in
// place, never copied into the project.
const referenceDir = "../../../shared/reference/threatconnect"

// lowerPath lowercases the string (or the strings of the list) at path.
func lowerPath(m map[string]any, path string) {
	switch v, _ := ecstest.Get(m, path); v := v.(type) {
	case string:
		ecstest.Set(m, path, strings.ToLower(v))
	case []any:
		for i, e := range v {
			if s, ok := e.(string); ok {
				v[i] = strings.ToLower(s)
			}
		}
	}
}

// Ingest-time fields, which a pipeline test cannot match.
var pipelineIgnored = []string{"ecs.version", "event.ingested"}

// hashPaths are the fields Elastic's 2.0 lowercases. The expected files come
// from 1.x builds and keep the original case, so the test lowercases them
// there before comparing.
var hashPaths = []string{
	"related.hash",
	"threat.indicator.file.hash.md5", "threat.indicator.file.hash.sha1", "threat.indicator.file.hash.sha256",
	"threat_connect.indicator.md5", "threat_connect.indicator.sha1", "threat_connect.indicator.sha256",
}

// TestConformanceElasticPipeline runs the inputs of Elastic's pipeline tests
// through the normalizer and compares the result with Elastic's expected
// output, field by field, after bringing the expected documents to 2.x:
// hashes lowercased, and threat.technique.name added to the older of the
// two files, which predates it (its README says so).
func TestConformanceElasticPipeline(t *testing.T) {
	expectedFiles, err := filepath.Glob(filepath.Join(ecstest.ReferencePath(t, referenceDir, ""), "*-expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(expectedFiles) == 0 {
		t.Fatalf("no *-expected.json in %s", referenceDir)
	}
	for _, path := range expectedFiles {
		input := strings.TrimSuffix(filepath.Base(path), "-expected.json")
		// The older file predates threat.technique.name.
		addTechniques := input == "test-indicator.log"
		t.Run(strings.TrimSuffix(input, ".log"), func(t *testing.T) {
			f, err := os.Open(ecstest.ReferencePath(t, referenceDir, input))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var lines []string
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if l := strings.TrimSpace(sc.Text()); l != "" {
					lines = append(lines, l)
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			var exp struct {
				Expected []map[string]any `json:"expected"`
			}
			ecstest.ReadJSON(t, path, &exp)
			if len(lines) == 0 || len(lines) != len(exp.Expected) {
				t.Fatalf("%d input lines, %d expected documents", len(lines), len(exp.Expected))
			}
			// Elastic's pipeline tests run with the preserve_original_event
			// tag and no expiration duration.
			n := NewNormalizer(NormalizeOptions{Tags: []string{tagPreserve}})
			for i, line := range lines {
				doc := n.Indicator([]byte(line))
				if doc.Error != "" {
					t.Errorf("line %d: unexpected error %q", i, doc.Error)
				}
				if doc.View != vigil.ViewIndicators || doc.Key == "" || doc.Timestamp.IsZero() {
					t.Errorf("line %d: view %q, key %q, timestamp %v", i, doc.View, doc.Key, doc.Timestamp)
				}
				got := ecstest.Decode(t, doc.Source)
				want := exp.Expected[i]
				for _, p := range hashPaths {
					lowerPath(want, p)
				}
				if addTechniques {
					if _, ok := ecstest.Get(want, "threat.technique.name"); ok {
						t.Fatal("the older expected file has threat.technique.name now: drop addTechniques")
					}
					ecstest.Set(want, "threat.technique.name", []any{"userexecution:maliciouslink"})
				}
				for _, p := range pipelineIgnored {
					ecstest.Drop(got, p)
					ecstest.Drop(want, p)
				}
				for _, d := range ecstest.Diff(want, got) {
					t.Errorf("line %d: %s", i, d)
				}
			}
		})
	}
}

// TestConformanceSampleEvent runs the event.original of Elastic's indexed
// sample document through the normalizer with the stream's defaults and
// compares the fields whose mapping has not changed since that early build
// (it predates event.id = summary, the trimmed labels and tags, and the
// 2.x hashes): the expiry above all.
func TestConformanceSampleEvent(t *testing.T) {
	var want map[string]any
	ecstest.ReadJSON(t, ecstest.ReferencePath(t, referenceDir, "sample_event.json"), &want)
	original, _ := ecstest.Get(want, "event.original")
	s, _ := original.(string)
	if s == "" {
		t.Fatal("sample has no event.original")
	}
	doc := NewNormalizer(NormalizeOptions{
		Dataset:            DatasetIndicator,
		Tags:               append([]string{tagPreserve}, defaultTags...),
		ExpirationDuration: "90d",
		Ingested:           time.Date(2024, 3, 5, 6, 53, 52, 0, time.UTC),
	}).Indicator([]byte(s))
	if doc.Error != "" {
		t.Fatalf("unexpected error %q", doc.Error)
	}
	if want := time.Date(2024, 3, 4, 6, 38, 53, 0, time.UTC); !doc.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", doc.ExpiresAt, want)
	}
	got := ecstest.Decode(t, doc.Source)
	for _, p := range []string{
		"@timestamp", "event.dataset", "event.category", "event.kind", "event.type", "event.ingested", "tags",
		"os.family", "related.user", "threat.indicator.email.address", "threat.indicator.marking.tlp",
		"threat.indicator.provider", "threat.indicator.reference", "threat.indicator.type", "threat.technique.id",
		"threat_connect.indicator.active", "threat_connect.indicator.address",
		"threat_connect.indicator.associated_indicators.data", "threat_connect.indicator.date_added",
		"threat_connect.indicator.deleted_at", "threat_connect.indicator.expiration_duration",
		"threat_connect.indicator.id", "threat_connect.indicator.last_modified", "threat_connect.indicator.legacy_link",
		"threat_connect.indicator.owner", "threat_connect.indicator.private_flag", "threat_connect.indicator.summary",
		"threat_connect.indicator.type", "threat_connect.indicator.web_link",
	} {
		w, wok := ecstest.Get(want, p)
		g, gok := ecstest.Get(got, p)
		if !wok || !gok {
			t.Errorf("%s: in the sample %v, in vigil's document %v", p, wok, gok)
			continue
		}
		for _, d := range ecstest.Diff(w, g) {
			t.Error(p + ": " + d)
		}
	}
}
