package threatcommand

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-ti/vigil"
)

// referenceDir holds Elastic's pipeline tests and sample events for
// ti_rapid7_threat_command, relative to this package's folder. They are
// read in place, never copied into the project.
const referenceDir = "../../../shared/reference/rapid7-threat-command"

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

// diffJSON lists the differences between two decoded JSON values by field
// path. Numbers are compared by value, so 100 equals 100.0.
func diffJSON(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want object, got %s", orRoot(path), show(got))}
		}
		var out []string
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

// Fields Elastic's pipeline tests cannot match without GeoIP databases or
// an ingest time, or that belong to an older ECS version.
var pipelineIgnored = []string{
	"ecs.version",
	"event.ingested",
	"event.dataset",
	"threat.indicator.geo",
	"threat.indicator.as",
}

type normalizeFunc func(*Normalizer, []byte) vigil.Document

var streams = []struct {
	name      string
	input     string
	normalize normalizeFunc
	opts      NormalizeOptions
	view      vigil.View
}{
	{"ioc", "ioc__test-ioc-event.json", (*Normalizer).IOC,
		NormalizeOptions{Tags: []string{tagPreserve}, ExpirationDuration: "5d"}, vigil.ViewIndicators},
	{"alert", "alert__test-alert-event.json", (*Normalizer).Alert,
		NormalizeOptions{Tags: []string{tagPreserve}}, vigil.ViewAlerts},
	{"vulnerability", "vulnerability__test-vulnerability-event.json", (*Normalizer).Vulnerability,
		NormalizeOptions{Tags: []string{tagPreserve}}, vigil.ViewVulnerabilities},
}

// TestConformanceElasticPipeline runs the inputs of Elastic's pipeline tests
// through the normalizer and compares the result with Elastic's expected
// output, field by field.
func TestConformanceElasticPipeline(t *testing.T) {
	for _, s := range streams {
		t.Run(s.name, func(t *testing.T) {
			var in struct {
				Events []struct {
					Message string `json:"message"`
				} `json:"events"`
			}
			var exp struct {
				Expected []map[string]any `json:"expected"`
			}
			readJSON(t, referencePath(t, s.input), &in)
			readJSON(t, referencePath(t, s.input+"-expected.json"), &exp)
			if len(in.Events) == 0 || len(in.Events) != len(exp.Expected) {
				t.Fatalf("%d events, %d expected documents", len(in.Events), len(exp.Expected))
			}
			n := NewNormalizer(s.opts)
			for i, ev := range in.Events {
				doc := s.normalize(n, []byte(ev.Message))
				if doc.Error != "" {
					t.Errorf("event %d: unexpected error %q", i, doc.Error)
				}
				if doc.View != s.view || doc.Key == "" || doc.Timestamp.IsZero() {
					t.Errorf("event %d: view %q, key %q, timestamp %v", i, doc.View, doc.Key, doc.Timestamp)
				}
				got := decodeSource(t, doc.Source)
				want := exp.Expected[i]
				for _, p := range pipelineIgnored {
					dropPath(got, p)
					dropPath(want, p)
				}
				for _, d := range diffJSON("", want, got) {
					t.Errorf("event %d: %s", i, d)
				}
			}
		})
	}
}

// Fields of the sample events added by the agent, Fleet or GeoIP.
var sampleIgnored = []string{
	"agent",
	"data_stream",
	"elastic_agent",
	"input",
	"event.agent_id_status",
	"event.created",
	"event.ingested",
	"threat.indicator.geo",
	"threat.indicator.as",
}

// TestConformanceSampleEvents runs the event.original of Elastic's indexed
// sample documents through the normalizer, with the stream settings the
// samples were made with, and compares every field the pipeline writes.
func TestConformanceSampleEvents(t *testing.T) {
	samples := []struct {
		file      string
		normalize normalizeFunc
		opts      NormalizeOptions
	}{
		{"ioc__sample_event.json", (*Normalizer).IOC, NormalizeOptions{
			Dataset:            DatasetIOC,
			Tags:               []string{tagPreserve, "forwarded", "rapid7-threat-command-ioc"},
			ExpirationDuration: "50d",
		}},
		{"alert__sample_event.json", (*Normalizer).Alert, NormalizeOptions{
			Dataset: DatasetAlert,
			Tags:    []string{tagPreserve, "forwarded", "rapid7-threat-command-alert"},
		}},
		{"vulnerability__sample_event.json", (*Normalizer).Vulnerability, NormalizeOptions{
			Dataset: DatasetVulnerability,
			Tags:    []string{tagPreserve, "forwarded", "rapid7-threat-command-vulnerability"},
		}},
	}
	for _, s := range samples {
		t.Run(strings.TrimSuffix(s.file, "__sample_event.json"), func(t *testing.T) {
			var want map[string]any
			readJSON(t, referencePath(t, s.file), &want)
			event, _ := want["event"].(map[string]any)
			original, _ := event["original"].(string)
			if original == "" {
				t.Fatal("sample has no event.original")
			}
			doc := s.normalize(NewNormalizer(s.opts), []byte(original))
			if doc.Error != "" {
				t.Errorf("unexpected error %q", doc.Error)
			}
			got := decodeSource(t, doc.Source)
			for _, p := range sampleIgnored {
				dropPath(got, p)
				dropPath(want, p)
			}
			for _, d := range diffJSON("", want, got) {
				t.Error(d)
			}
		})
	}
}
