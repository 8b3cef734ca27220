package misp

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
)

// referenceDir holds Elastic's ti_misp pipeline-test input (14 attributes as
// /attributes/restSearch returns them), relative to this package's folder.
// It is read in place, never copied into the project.
const referenceDir = "../../../shared/reference/misp/elastic-ti_misp"

// elasticExpected is, for each line of Elastic's input, what Elastic's
// pipeline test expects (ti_misp, threat_attributes data stream, expected
// file at elastic/integrations bbe3a478, run with the
// preserve_original_event tag and ioc_expiration_duration 5d): the
// @timestamp, organization.id, tags, misp.attribute.decayed_at and the
// whole threat object as JSON. vigil's additions (threat.indicator.name)
// are removed from vigil's document before the comparison.
var elasticExpected = []struct {
	timestamp, orgID, decayedAt string
	tags                        []string
	threat                      string
	value                       bool // misp.attribute.value is kept (no indicator type)
}{
	{"2021-04-08T09:52:48.000Z", "12345", "2021-04-13T09:52:48.000Z", []string{tagPreserve, "tlp:white"},
		`{"feed":{"name":"MISP"},"indicator":{"file":{"hash":{"md5":"127.0.0.1"}},"first_seen":"2020-02-18T00:00:00.000Z","last_seen":"2020-02-18T00:00:00.000Z","marking":{"tlp":["WHITE"]},"provider":"misp","scanner_stats":0,"type":"file"}}`, false},
	{"2014-10-03T07:14:05.000Z", "1", "2014-10-08T07:14:05.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"provider":"misp","type":"url","url":{"domain":"labs.opendns.com","full":"http://labs.opendns.com/2014/10/02/opendns-and-bash/","original":"http://labs.opendns.com/2014/10/02/opendns-and-bash/","path":"/2014/10/02/opendns-and-bash/","scheme":"http"}}}`, false},
	{"2014-10-03T07:14:20.000Z", "1", "2014-10-08T07:14:20.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"provider":"misp"}}`, true},
	{"2014-10-03T07:14:47.000Z", "1", "2014-10-08T07:14:47.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"provider":"misp"}}`, true},
	{"2014-10-03T07:15:10.000Z", "1", "2014-10-08T07:15:10.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"ip":"81.2.69.193","provider":"misp","type":"ipv4-addr"}}`, false},
	{"2014-10-03T07:15:10.000Z", "1", "2014-10-08T07:15:10.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"ip":"81.2.69.145","provider":"misp","type":"ipv4-addr"}}`, false},
	{"2014-11-25T08:43:47.000Z", "1", "2014-11-30T08:43:47.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"file":{"hash":{"sha256":"7553d4a5914af58b23a9e0ce6a262cd230ed8bb2c30da3d42d26b295f9144ab7"},"name":"7553d4a5914af58b23a9e0ce6a262cd230ed8bb2c30da3d42d26b295f9144ab7"},"provider":"misp","type":"file"}}`, false},
	{"2016-02-18T22:39:38.000Z", "1", "2016-02-23T22:39:38.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"file":{"hash":{"md5":"1f36209c1763d31af06a66f866dbb7b6"},"name":"VirusShare_1f36209c1763d31af06a66f866dbb7b6"},"provider":"misp","type":"file"}}`, false},
	{"2015-01-30T07:43:10.000Z", "1", "2015-02-04T07:43:10.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"provider":"misp","registry":{"key":"HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\RunOnce\\f0xy"},"type":"windows-registry-key"}}`, false},
	{"2015-03-05T14:28:53.000Z", "1", "2015-03-10T14:28:53.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"as":{"number":48031},"provider":"misp","type":"autonomous-system"}}`, false},
	{"2014-10-06T07:10:57.000Z", "1", "2014-10-11T07:10:57.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"ip":"89.160.20.129","provider":"misp","type":"ipv4-addr"}}`, false},
	{"2014-10-28T19:55:46.000Z", "1", "2014-11-02T19:55:46.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"email":{"address":"lisa.cuddy@wind0ws.kz"},"provider":"misp","type":"email-addr"}}`, false},
	{"2023-11-20T13:53:24.000Z", "1", "2023-11-25T13:53:24.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"provider":"misp","type":"url","url":{"domain":"druigvsegdaryadom.ir","extension":"php","full":"http://druigvsegdaryadom.ir/index.php","original":"http://druigvsegdaryadom.ir/index.php","path":"/index.php","scheme":"http"}}}`, false},
	{"2023-03-14T14:12:28.000Z", "1", "2023-03-19T14:12:28.000Z", []string{tagPreserve},
		`{"feed":{"name":"MISP"},"indicator":{"email":{"subject":"Subject Payment"},"provider":"misp","type":"email-addr"}}`, false},
}

// elasticFirst is the rest of Elastic's expected document for the first
// line, the one with every part (event, object, decay score, tag, creator).
const elasticFirst = `{
 "misp": {
  "attribute": {"category": "Internal reference", "comment": "logged source ip", "data": "string",
   "decay_score": [{"DecayingModel": {"id": "12345", "name": "Phishing model"}, "base_score": 80, "decayed": false, "score": 10.5}],
   "decayed": true, "decayed_at": "2021-04-13T09:52:48.000Z", "deleted": false, "disable_correlation": false, "distribution": 0,
   "event_id": "12345", "event_uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b", "first_seen": "1581984000000", "id": "12345",
   "last_seen": "1581984000000", "object_id": "12345", "object_relation": "sensor", "sharing_group_id": "1", "to_ids": true,
   "type": "md5", "uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b"},
  "event": {"attribute_count": 321, "date": "1991-01-15", "disable_correlation": false, "distribution": 0,
   "extends_uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b", "id": "12345", "info": "logged source ip", "locked": true,
   "orgc_id": "12345", "proposal_email_lock": true, "publish_timestamp": "2021-04-08T09:52:48.000Z", "published": false,
   "sharing_group_id": "1", "sighting_timestamp": "2021-04-08T09:52:48.000Z", "threat_level_id": 1,
   "timestamp": "2021-04-08T09:52:48.000Z", "uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b"},
  "object": {"attribute": [{"category": "Internal reference", "comment": "logged source ip", "deleted": false,
    "disable_correlation": false, "distribution": "0", "event_id": "12345", "first_seen": "1581984000000000", "id": "12345",
    "last_seen": "1581984000000000", "object_id": "12345", "object_relation": "sensor", "sharing_group_id": "1",
    "timestamp": "2021-04-08T09:52:48.000Z", "to_ids": true, "type": "md5", "uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b",
    "value": "127.0.0.1"}],
   "comment": "string", "deleted": true, "description": "string", "distribution": 0, "event_id": "12345",
   "first_seen": "1581984000000000", "id": "12345", "last_seen": "1581984000000000", "meta_category": "string", "name": "ail-leak",
   "sharing_group_id": "1", "template_uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b", "template_version": "1",
   "timestamp": "2021-04-08T09:52:48.000Z", "uuid": "c99506a6-1255-4b71-afa5-7b8ba48c3b1b"}},
 "user": {"email": "user@example.com", "roles": ["reporting_user"]}
}`

// TestConformanceElasticPipeline runs the input of Elastic's pipeline test
// through the normalizer and compares the output with Elastic's expected
// documents: the threat object whole, the timestamps, the expiry, the tags
// and the organization for every line, and the misp and user objects whole
// for the first.
func TestConformanceElasticPipeline(t *testing.T) {
	f, err := os.Open(ecstest.ReferencePath(t, referenceDir, "threat_attributes-test-misp-sample-ndjson.log"))
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
	if len(lines) != len(elasticExpected) {
		t.Fatalf("%d input lines, %d expected documents", len(lines), len(elasticExpected))
	}
	// Elastic's test ran long after the dates, so every IOC is decayed.
	n := NewNormalizer(NormalizeOptions{Tags: []string{tagPreserve}, ExpirationDuration: "5d", Ingested: time.Now()})
	for i, line := range lines {
		want := elasticExpected[i]
		doc := n.Attribute([]byte(line))
		if doc.Error != "" {
			t.Errorf("line %d: unexpected error %q", i, doc.Error)
		}
		got := ecstest.Decode(t, doc.Source)
		if doc.Key == "" || doc.Key != str2(got, "misp.attribute.uuid") {
			t.Errorf("line %d: key %q", i, doc.Key)
		}
		if exp, _ := time.Parse(time.RFC3339, want.decayedAt); !doc.ExpiresAt.Equal(exp) {
			t.Errorf("line %d: expires %v, want %v", i, doc.ExpiresAt, exp)
		}
		ecstest.Drop(got, "threat.indicator.name") // vigil's
		checks := map[string]any{
			"@timestamp":                     want.timestamp,
			"organization.id":                want.orgID,
			"misp.attribute.decayed_at":      want.decayedAt,
			"misp.attribute.decayed":         true,
			"event.kind":                     "enrichment",
			"event.category":                 []any{"threat"},
			"event.type":                     []any{"indicator"},
			"event.original":                 line,
			"ecs.version":                    "8.11.0",
			"threat":                         ecstest.Decode(t, []byte(want.threat)),
			"misp.attribute.timestamp":       nil,
			"misp.attribute.Event":           nil,
			"misp.attribute.Tag":             nil,
			"misp.attribute.Object":          nil,
			"misp.attribute.event":           nil,
			"misp.event.analysis":            nil,
			"misp.event.org_id":              nil,
			"misp.event.event_creator_email": nil,
		}
		tags := make([]any, len(want.tags))
		for j, s := range want.tags {
			tags[j] = s
		}
		checks["tags"] = tags
		for path, w := range checks {
			g, ok := ecstest.Get(got, path)
			if w == nil {
				if ok {
					t.Errorf("line %d: %s is %s, want it absent", i, path, ecstest.Show(g))
				}
				continue
			}
			for _, d := range ecstest.Diff(w, g) {
				t.Errorf("line %d: %s: %s", i, path, d)
			}
		}
		if _, ok := ecstest.Get(got, "misp.attribute.value"); ok != want.value {
			t.Errorf("line %d: misp.attribute.value present %v, want %v", i, ok, want.value)
		}
	}
	// The first line in full, beyond event and ecs.
	doc := n.Attribute([]byte(lines[0]))
	got := ecstest.Decode(t, doc.Source)
	full := ecstest.Decode(t, []byte(elasticFirst))
	for _, part := range []string{"misp", "user"} {
		g, _ := ecstest.Get(got, part)
		w, _ := ecstest.Get(full, part)
		for _, d := range ecstest.Diff(w, g) {
			t.Errorf("line 0: %s.%s", part, d)
		}
	}
}

func str2(m map[string]any, path string) string {
	v, _ := ecstest.Get(m, path)
	s, _ := v.(string)
	return s
}
