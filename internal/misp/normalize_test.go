package misp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/normalize")

// testIngested is the ingest time of every golden test.
var testIngested = time.Date(2025, 12, 1, 12, 0, 0, 250_000_000, time.UTC)

func testOptions(dataset string) NormalizeOptions {
	tags := DefaultTags
	if dataset == DatasetFeed {
		tags = DefaultFeedTags
	}
	return NormalizeOptions{Dataset: dataset, Tags: tags, ExpirationDuration: "90d", Ingested: testIngested}
}

// Markers of the cases' expectations.
const (
	plus90   = "+90d" // ExpiresAt: the input's timestamp + 90 days
	noExpiry = "-"
)

// attributeCases names every testdata/normalize/attribute/<name>.input.json
// with the Document facts it must give; the golden file next to it holds
// the whole Source.
var attributeCases = []struct {
	name    string
	typ     string
	expires string // plus90, noExpiry or RFC 3339
	err     string // substring of Document.Error; "" = no error
}{
	{name: "ip-dst", typ: "ipv4-addr", expires: plus90},
	{name: "ip-src-ipv6", typ: "ipv6-addr", expires: plus90},
	{name: "ip-src-cidr", typ: "ipv4-addr", expires: plus90},
	{name: "ip-dst-port", typ: "ipv4-addr", expires: plus90},
	// last_seen is later than the timestamp: the expiry counts from it.
	{name: "domain", typ: "domain-name", expires: "2026-03-20T10:00:00.123Z"},
	{name: "hostname", typ: "domain-name", expires: plus90},
	{name: "domain-ip", typ: "domain-name", expires: plus90},
	{name: "url", typ: "url", expires: plus90},
	{name: "url-unparsable", typ: "url", expires: plus90},
	{name: "link", typ: "url", expires: plus90},
	{name: "md5", typ: "file", expires: plus90},
	{name: "sha256", typ: "file", expires: plus90},
	{name: "ssdeep", typ: "file", expires: plus90},
	{name: "filename", typ: "file", expires: plus90},
	{name: "filename-sha1", typ: "file", expires: plus90},
	{name: "filename-sha3", typ: "file", expires: plus90},
	{name: "regkey", typ: "windows-registry-key", expires: plus90},
	{name: "regkey-value", typ: "windows-registry-key", expires: plus90},
	{name: "as", typ: "autonomous-system", expires: plus90},
	{name: "email-src", typ: "email-addr", expires: plus90},
	{name: "email", typ: "email-addr", expires: plus90},
	{name: "email-subject", typ: "email-addr", expires: plus90},
	{name: "mac-address", typ: "mac-addr", expires: plus90},
	{name: "mutex", typ: "mutex", expires: plus90},
	{name: "text", expires: plus90},
	{name: "epoch-seen", typ: "ipv4-addr", expires: "2026-05-03T02:40:00Z"},
	// Half of the decay models say decayed: decayed 2 minutes before ingest.
	{name: "decay-decayed", typ: "ipv4-addr", expires: "2025-12-01T11:58:00.25Z"},
	{name: "decay-fresh", typ: "ipv4-addr", expires: plus90},
	{name: "deleted", typ: "domain-name", expires: "2025-12-01T12:00:00.25Z"},
	{name: "tags", typ: "domain-name", expires: plus90},
	{name: "event-full", typ: "file", expires: plus90},
	{name: "object", typ: "file", expires: plus90},
	{name: "without-event", typ: "url", expires: plus90},
	{name: "numbers", typ: "ipv4-addr", expires: plus90},

	{name: "missing-timestamp", typ: "ipv4-addr", expires: noExpiry, err: "timestamp is missing: the attribute's expiry cannot be computed"},
	{name: "bad-timestamp", typ: "ipv4-addr", expires: noExpiry, err: "timestamp: unable to parse date [yesterday]"},
	{name: "bad-ip", typ: "ipv4-addr", expires: plus90, err: "value: [192.0.2.300] is not an IP address or CIDR block"},
	{name: "bad-ip-port", typ: "ipv4-addr", expires: plus90, err: "value: [192.0.2.53|http] does not match ip-src|port (<IP address>|<port>)"},
	{name: "bad-domain-ip", typ: "domain-name", expires: plus90, err: "value: [nodomain.example] does not match domain|ip"},
	{name: "bad-filename-hash", typ: "file", expires: plus90, err: "value: [no-separator.exe] does not match filename|md5 (<file name>|<hash>)"},
	{name: "bad-regkey-value", typ: "windows-registry-key", expires: plus90, err: "does not match regkey|value"},
	{name: "bad-as", typ: "autonomous-system", expires: plus90, err: "value: unable to convert [AS64496] to long"},
	{name: "bad-first-seen", typ: "ipv4-addr", expires: plus90, err: "first_seen: unable to parse date [last tuesday]"},
	{name: "bad-distribution", typ: "ipv4-addr", expires: plus90, err: "distribution: unable to convert [everyone] to long"},
	{name: "bad-event", typ: "ipv4-addr", expires: plus90,
		err: "Event.timestamp: unable to parse date [soon]; Event.threat_level_id: unable to convert [high] to long; Event.analysis: unable to convert [done] to long"},
	{name: "value-not-string", typ: "ipv4-addr", expires: plus90, err: "value: [3232235521] is not a string"},
	{name: "missing-uuid", typ: "ipv4-addr", expires: plus90, err: "uuid is missing: the attribute cannot be keyed"},
	{name: "not-json", expires: noExpiry, err: "record is not valid JSON"},
	{name: "not-object", expires: noExpiry, err: "record is not a JSON object but array"},
}

// eventCases names every testdata/normalize/event/<name>.input.json: the
// documents it gives and how many of them are pipeline errors.
var eventCases = []struct {
	name         string
	uuid         string // the event's uuid Event returns
	docs, errors int
	err          string // substring of the first error
}{
	{name: "response-wrapper", uuid: "22222222-2222-4222-8222-222222222201", docs: 1},
	{name: "bare", uuid: "22222222-2222-4222-8222-222222222202", docs: 1},
	{name: "bad-attributes", uuid: "22222222-2222-4222-8222-222222222203", docs: 4, errors: 2, err: "value: [192.0.2.999] is not an IP address"},
	{name: "deleted-attribute", uuid: "22222222-2222-4222-8222-222222222204", docs: 2},
	{name: "numbers-as-ints", uuid: "22222222-2222-4222-8222-222222222205", docs: 1},
	{name: "orgc-lowercase", uuid: "22222222-2222-4222-8222-222222222206", docs: 1},
	{name: "objects", uuid: "22222222-2222-4222-8222-222222222207", docs: 3, errors: 1, err: "Object.timestamp: unable to parse date [later]"},
	{name: "bad-event-fields", uuid: "22222222-2222-4222-8222-222222222208", docs: 1, errors: 1,
		err: "Event.threat_level_id: unable to convert [high] to long; Event.timestamp: unable to parse date [soon]"},
	{name: "no-uuid", docs: 1, errors: 1, err: `event file: the event has no "uuid"`},
	{name: "two-events", docs: 1, errors: 1, err: "event file: a list of 2 events, want one event"},
	{name: "not-json", docs: 1, errors: 1, err: "event file: not valid JSON"},
}

// goldenDoc renders a Document as the golden files hold it: its facts and
// its Source.
func goldenDoc(t *testing.T, doc vigil.Document) map[string]any {
	t.Helper()
	ts := func(x time.Time) string {
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(time.RFC3339Nano)
	}
	return map[string]any{
		"dataset": doc.Dataset, "view": doc.View, "key": doc.Key, "type": doc.Type,
		"timestamp": ts(doc.Timestamp), "expires_at": ts(doc.ExpiresAt), "error": doc.Error,
		"source": json.RawMessage(doc.Source),
	}
}

func indent(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	return append(out.Bytes(), '\n')
}

func TestNormalizeAttributeGolden(t *testing.T) {
	n := NewNormalizer(testOptions(DatasetAttributes))
	covered := map[string]bool{}
	for _, c := range attributeCases {
		t.Run(c.name, func(t *testing.T) {
			in := filepath.Join("testdata", "normalize", "attribute", c.name+".input.json")
			covered[in] = true
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			doc := n.Attribute(raw)
			checkDoc(t, doc, DatasetAttributes)
			if c.err == "" && doc.Error != "" {
				t.Errorf("unexpected error %q", doc.Error)
			}
			if c.err != "" && !strings.Contains(doc.Error, c.err) {
				t.Errorf("error %q, want it to contain %q", doc.Error, c.err)
			}
			if doc.Type != c.typ {
				t.Errorf("type %q, want %q", doc.Type, c.typ)
			}
			// The key is the attribute's uuid; the timestamp its timestamp.
			var in2 map[string]any
			_ = json.Unmarshal(raw, &in2)
			if u, _ := in2["uuid"].(string); doc.Key != u {
				t.Errorf("key %q, want the uuid %q", doc.Key, u)
			}
			var want time.Time
			switch c.expires {
			case noExpiry:
			case plus90:
				want = doc.Timestamp.Add(90 * 24 * time.Hour)
			default:
				want, _ = time.Parse(time.RFC3339Nano, c.expires)
			}
			if !doc.ExpiresAt.Equal(want) {
				t.Errorf("expires %v, want %v", doc.ExpiresAt, want)
			}
			ecstest.Golden(t, strings.TrimSuffix(in, ".input.json")+".golden.json", indent(t, goldenDoc(t, doc)), *update)
		})
	}
	ecstest.Covered(t, filepath.Join("testdata", "normalize", "attribute", "*.input.json"), covered)
}

func TestNormalizeEventGolden(t *testing.T) {
	n := NewNormalizer(testOptions(DatasetFeed))
	covered := map[string]bool{}
	for _, c := range eventCases {
		t.Run(c.name, func(t *testing.T) {
			in := filepath.Join("testdata", "normalize", "event", c.name+".input.json")
			covered[in] = true
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var docs []map[string]any
			errs, first := 0, ""
			uuid, count := n.Event(raw, "test-feed", func(d vigil.Document) {
				checkDoc(t, d, DatasetFeed)
				if d.Error != "" {
					errs++
					if first == "" {
						first = d.Error
					}
				}
				docs = append(docs, goldenDoc(t, d))
			})
			if uuid != c.uuid || count != c.docs || len(docs) != c.docs || errs != c.errors {
				t.Errorf("uuid %q, %d documents (%d emitted), %d errors; want %q, %d, %d", uuid, count, len(docs), errs, c.uuid, c.docs, c.errors)
			}
			if c.err != "" && !strings.Contains(first, c.err) {
				t.Errorf("first error %q, want it to contain %q", first, c.err)
			}
			ecstest.Golden(t, strings.TrimSuffix(in, ".input.json")+".golden.json", indent(t, docs), *update)
		})
	}
	ecstest.Covered(t, filepath.Join("testdata", "normalize", "event", "*.input.json"), covered)
}

// TestNormalizeExampleFeed normalizes the events of the example feed the
// quickstart reads: no errors, every type the README promises, and the
// feed's expiry rule (90 days after the fetch, whatever the events' age).
func TestNormalizeExampleFeed(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "misp-feed", "*-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example events: %v", err)
	}
	n := NewNormalizer(testOptions(DatasetFeed))
	types := map[string]int{}
	keys := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var docs []map[string]any
		uuid, _ := n.Event(raw, "quickstart", func(d vigil.Document) {
			checkDoc(t, d, DatasetFeed)
			if d.Error != "" {
				t.Errorf("%s: %s: %s", f, d.Key, d.Error)
			}
			if keys[d.Key] {
				t.Errorf("%s: key %s twice", f, d.Key)
			}
			keys[d.Key] = true
			if want := testIngested.Truncate(time.Millisecond).Add(90 * 24 * time.Hour); !d.ExpiresAt.Equal(want) {
				t.Errorf("%s: %s expires %v, want %v", f, d.Key, d.ExpiresAt, want)
			}
			v := fastjson.MustParseBytes(d.Source)
			types[string(v.GetStringBytes("misp", "attribute", "type"))]++
			docs = append(docs, goldenDoc(t, d))
		})
		if uuid+".json" != filepath.Base(f) {
			t.Errorf("%s holds event %s", f, uuid)
		}
		golden := filepath.Join("testdata", "normalize", "example", filepath.Base(f))
		ecstest.Golden(t, strings.TrimSuffix(golden, ".json")+".golden.json", indent(t, docs), *update)
	}
	for _, typ := range []string{"ip-dst", "ip-src", "domain", "hostname", "url", "md5", "sha1", "sha256", "email-src"} {
		if types[typ] == 0 {
			t.Errorf("the example feed has no %s attribute", typ)
		}
	}
}

// checkDoc checks what every document must be: valid JSON, the dataset
// and view, event.kind matching Error, Type matching the source.
func checkDoc(t *testing.T, d vigil.Document, dataset string) {
	t.Helper()
	v, err := fastjson.ParseBytes(d.Source)
	if err != nil {
		t.Fatalf("source is not JSON: %v\n%s", err, d.Source)
	}
	if d.Dataset != dataset || d.View != vigil.ViewIndicators || string(v.GetStringBytes("event", "dataset")) != dataset {
		t.Errorf("dataset %q, view %q", d.Dataset, d.View)
	}
	kind := string(v.GetStringBytes("event", "kind"))
	if (d.Error != "") != (kind == kindError) || (d.Error != "") != v.Exists("error", "message") {
		t.Errorf("error %q with event.kind %q", d.Error, kind)
	}
	if d.Type != string(v.GetStringBytes("threat", "indicator", "type")) {
		t.Errorf("Type %q, threat.indicator.type %s", d.Type, v.Get("threat", "indicator", "type"))
	}
	if d.Timestamp.IsZero() || string(v.GetStringBytes("@timestamp")) != d.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("Timestamp %v, @timestamp %s", d.Timestamp, v.Get("@timestamp"))
	}
	if u := v.GetStringBytes("misp", "attribute", "uuid"); u != nil && string(u) != d.Key {
		t.Errorf("Key %q, misp.attribute.uuid %q", d.Key, u)
	}
	for _, e := range ecstest.Empties(ecstest.Decode(t, d.Source)) {
		t.Errorf("empty value: %s", e)
	}
}

func TestParseUnix(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" = not a time
	}{
		{`"1617875568"`, "2021-04-08T09:52:48Z"},
		{`1617875568`, "2021-04-08T09:52:48Z"},
		{`"1617875568.25"`, "2021-04-08T09:52:48.25Z"},
		{`"-1"`, "1969-12-31T23:59:59Z"},
		{`"0"`, "1970-01-01T00:00:00Z"},
		{`""`, ""},
		{`"soon"`, ""},
		{`"0x10"`, ""},
		{`"NaN"`, ""},
		{`"1e400"`, ""},
		{`"99999999999999"`, ""},
		{`true`, ""},
		{`null`, ""},
	}
	for _, c := range cases {
		got, ok := parseUnix(fastjson.MustParse(c.in))
		if c.want == "" {
			if ok {
				t.Errorf("%s: %v, want no time", c.in, got)
			}
			continue
		}
		if want, _ := time.Parse(time.RFC3339Nano, c.want); !ok || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", c.in, got, ok, want)
		}
	}
}
