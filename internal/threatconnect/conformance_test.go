package threatconnect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
)

// referenceDir holds Elastic's pipeline tests and sample event for
// ti_threatconnect, relative to this package's folder. They are read in
// place, never copied into the project.
const referenceDir = "../../../shared/reference/threatconnect"

func referencePath(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(referenceDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("Elastic reference fixtures not found: looked in %s (%s relative to the package folder): %v", dir, referenceDir, err)
	}
	return filepath.Join(dir, name)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// decodeSource parses a document's Source for comparison.
func decodeSource(t *testing.T, src []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("Source is not a JSON object: %v\n%s", err, src)
	}
	return m
}

// getPath returns the value at a dotted path of a decoded document.
func getPath(m map[string]any, path string) (any, bool) {
	head, rest, nested := strings.Cut(path, ".")
	v, ok := m[head]
	if !ok || !nested {
		return v, ok
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return getPath(sub, rest)
}

// setPath sets the value at a dotted path, creating objects on the way.
func setPath(m map[string]any, path string, v any) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		m[head] = v
		return
	}
	sub, ok := m[head].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[head] = sub
	}
	setPath(sub, rest, v)
}

// dropPath removes a dotted path from a decoded document, and the objects
// that become empty.
func dropPath(m map[string]any, path string) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		delete(m, head)
		return
	}
	if sub, ok := m[head].(map[string]any); ok {
		dropPath(sub, rest)
		if len(sub) == 0 {
			delete(m, head)
		}
	}
}

// lowerPath lowercases the string (or the strings of the list) at path.
func lowerPath(m map[string]any, path string) {
	switch v, _ := getPath(m, path); v := v.(type) {
	case string:
		setPath(m, path, strings.ToLower(v))
	case []any:
		for i, e := range v {
			if s, ok := e.(string); ok {
				v[i] = strings.ToLower(s)
			}
		}
	}
}

// diffJSON lists the differences between two decoded JSON values by field
// path. Numbers are compared by value, so 3 equals 3.0.
func diffJSON(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want object, got %s", orRoot(path), show(got))}
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			wv, wok := w[k]
			gv, gok := g[k]
			switch {
			case !gok:
				out = append(out, fmt.Sprintf("%s: missing, want %s", p, show(wv)))
			case !wok:
				out = append(out, fmt.Sprintf("%s: unexpected %s", p, show(gv)))
			default:
				out = append(out, diffJSON(p, wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %s, got %s", orRoot(path), show(want), show(got))}
		}
		var out []string
		for i := range w {
			out = append(out, diffJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	case json.Number:
		g, ok := got.(json.Number)
		if !ok || !sameNumber(w, g) {
			return []string{fmt.Sprintf("%s: want %s, got %s", orRoot(path), show(want), show(got))}
		}
		return nil
	default:
		if want != got {
			return []string{fmt.Sprintf("%s: want %s, got %s", orRoot(path), show(want), show(got))}
		}
		return nil
	}
}

func orRoot(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

func sameNumber(a, b json.Number) bool {
	x, _, err1 := big.ParseFloat(string(a), 10, 200, big.ToNearestEven)
	y, _, err2 := big.ParseFloat(string(b), 10, 200, big.ToNearestEven)
	return err1 == nil && err2 == nil && x.Cmp(y) == 0
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
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
	expectedFiles, err := filepath.Glob(filepath.Join(referencePath(t, ""), "*-expected.json"))
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
			f, err := os.Open(referencePath(t, input))
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
			readJSON(t, path, &exp)
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
				got := decodeSource(t, doc.Source)
				want := exp.Expected[i]
				for _, p := range hashPaths {
					lowerPath(want, p)
				}
				if addTechniques {
					if _, ok := getPath(want, "threat.technique.name"); ok {
						t.Fatal("the older expected file has threat.technique.name now: drop addTechniques")
					}
					setPath(want, "threat.technique.name", []any{"userexecution:maliciouslink"})
				}
				for _, p := range pipelineIgnored {
					dropPath(got, p)
					dropPath(want, p)
				}
				for _, d := range diffJSON("", want, got) {
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
	readJSON(t, referencePath(t, "sample_event.json"), &want)
	original, _ := getPath(want, "event.original")
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
	got := decodeSource(t, doc.Source)
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
		w, wok := getPath(want, p)
		g, gok := getPath(got, p)
		if !wok || !gok {
			t.Errorf("%s: in the sample %v, in vigil's document %v", p, wok, gok)
			continue
		}
		for _, d := range diffJSON(p, w, g) {
			t.Error(d)
		}
	}
}
