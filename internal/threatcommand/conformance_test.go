package threatcommand

import (
	"strings"
	"testing"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
)

// referenceDir holds Elastic's pipeline tests and sample events for
// ti_rapid7_threat_command, relative to this package's folder. They are
// read in place, never copied into the project.
const referenceDir = "../../../shared/reference/rapid7-threat-command"

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
			ecstest.ReadJSON(t, ecstest.ReferencePath(t, referenceDir, s.input), &in)
			ecstest.ReadJSON(t, ecstest.ReferencePath(t, referenceDir, s.input+"-expected.json"), &exp)
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
				got := ecstest.Decode(t, doc.Source)
				want := exp.Expected[i]
				for _, p := range pipelineIgnored {
					ecstest.Drop(got, p)
					ecstest.Drop(want, p)
				}
				for _, d := range ecstest.Diff(want, got) {
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
			ecstest.ReadJSON(t, ecstest.ReferencePath(t, referenceDir, s.file), &want)
			event, _ := want["event"].(map[string]any)
			original, _ := event["original"].(string)
			if original == "" {
				t.Fatal("sample has no event.original")
			}
			doc := s.normalize(NewNormalizer(s.opts), []byte(original))
			if doc.Error != "" {
				t.Errorf("unexpected error %q", doc.Error)
			}
			got := ecstest.Decode(t, doc.Source)
			for _, p := range sampleIgnored {
				ecstest.Drop(got, p)
				ecstest.Drop(want, p)
			}
			for _, d := range ecstest.Diff(want, got) {
				t.Error(d)
			}
		})
	}
}
