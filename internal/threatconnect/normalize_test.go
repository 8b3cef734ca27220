package threatconnect

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/normalize")

// testIngested is the ingest time of every golden test.
var testIngested = time.Date(2024, 6, 1, 12, 0, 0, 250_000_000, time.UTC)

func testOptions() NormalizeOptions {
	return NormalizeOptions{Dataset: DatasetIndicator, Tags: defaultTags, ExpirationDuration: "90d", Ingested: testIngested}
}

// Markers of goldenCases: take the value from the input record.
const (
	fromInput = "<input>"
	noExpiry  = "-"
)

// goldenCases names every input in testdata/normalize/<kind>/<name>.input.json
// with the Document facts it must give; the golden file next to it holds
// the whole Source.
var goldenCases = []struct {
	kind, name string
	expiration string // "" = 90d
	key, typ   string // key fromInput: the input's summary
	timestamp  string // RFC 3339; fromInput: the input's lastModified; "": the ingest time
	expires    string // RFC 3339; "": timestamp + 90d; noExpiry: none
	err        string // substring of Document.Error; "" = no error
}{
	// The twelve types, as the fake generates them, without and with
	// associations.
	{kind: "indicator", name: "address", key: fromInput, typ: "ipv6-addr", timestamp: fromInput},
	{kind: "indicator", name: "address-associations", key: fromInput, typ: "ipv4-addr", timestamp: fromInput},
	{kind: "indicator", name: "emailaddress", key: fromInput, typ: "email-addr", timestamp: fromInput},
	{kind: "indicator", name: "emailaddress-associations", key: fromInput, typ: "email-addr", timestamp: fromInput},
	{kind: "indicator", name: "file", key: fromInput, typ: "file", timestamp: fromInput},
	{kind: "indicator", name: "file-associations", key: fromInput, typ: "file", timestamp: fromInput},
	{kind: "indicator", name: "host", key: fromInput, typ: "domain-name", timestamp: fromInput},
	{kind: "indicator", name: "host-associations", key: fromInput, typ: "domain-name", timestamp: fromInput},
	{kind: "indicator", name: "url", key: fromInput, typ: "url", timestamp: fromInput},
	{kind: "indicator", name: "url-associations", key: fromInput, typ: "url", timestamp: fromInput},
	{kind: "indicator", name: "asn", key: fromInput, typ: "autonomous-system", timestamp: fromInput},
	{kind: "indicator", name: "asn-associations", key: fromInput, typ: "autonomous-system", timestamp: fromInput},
	{kind: "indicator", name: "cidr", key: fromInput, typ: "ipv6-addr", timestamp: fromInput},
	{kind: "indicator", name: "cidr-associations", key: fromInput, typ: "ipv6-addr", timestamp: fromInput},
	{kind: "indicator", name: "email-subject", key: fromInput, timestamp: fromInput},
	{kind: "indicator", name: "email-subject-associations", key: fromInput, timestamp: fromInput},
	{kind: "indicator", name: "hashtag", key: fromInput, timestamp: fromInput},
	{kind: "indicator", name: "hashtag-associations", key: fromInput, timestamp: fromInput},
	{kind: "indicator", name: "mutex", key: fromInput, typ: "mutex", timestamp: fromInput},
	{kind: "indicator", name: "mutex-associations", key: fromInput, typ: "mutex", timestamp: fromInput},
	{kind: "indicator", name: "registry-key", key: fromInput, typ: "windows-registry-key", timestamp: fromInput},
	{kind: "indicator", name: "registry-key-associations", key: fromInput, typ: "windows-registry-key", timestamp: fromInput},
	{kind: "indicator", name: "user-agent", key: fromInput, timestamp: fromInput},
	{kind: "indicator", name: "user-agent-associations", key: fromInput, timestamp: fromInput},

	// Edge cases.
	{kind: "indicator", name: "address-ipv4-mapped", key: "::ffff:198.51.100.7", typ: "ipv4-addr", timestamp: fromInput},
	{kind: "indicator", name: "file-string-size", key: fromInput, typ: "file", timestamp: fromInput},
	{kind: "indicator", name: "file-sha256-without-md5", key: fromInput, typ: "file", timestamp: fromInput},
	{kind: "indicator", name: "cidr-invalid-block", key: "0.0.0.0/125", typ: "ipv4-addr", timestamp: fromInput},
	{kind: "indicator", name: "empty-wrappers", key: "empty.example.com", typ: "domain-name", timestamp: fromInput},
	{kind: "indicator", name: "big-id", key: `Global\big`, typ: "mutex", timestamp: fromInput},
	{kind: "indicator", name: "expiry-hours", expiration: "12h", key: fromInput, typ: "url",
		timestamp: "2024-05-30T08:15:42.5Z", expires: "2024-05-30T20:15:42.5Z"},
	{kind: "indicator", name: "custom-type", key: fromInput, timestamp: fromInput},
	{kind: "indicator", name: "missing-last-modified", key: "no-date.example.com", typ: "domain-name", expires: noExpiry,
		err: "lastModified is missing: the indicator's expiry (lastModified + 90d) cannot be computed"},
	{kind: "indicator", name: "address-without-ip", key: "203.0.113.9", timestamp: fromInput, err: "ip: an Address indicator has no ip"},
	{kind: "indicator", name: "bad-values", key: "198.51.100.300", expires: noExpiry,
		err: "lastModified: unable to parse date [yesterday]; firstSeen: unable to parse date [2024-02-30T00:00:00Z]; associatedGroups.data[0].malware: [perhaps] is not a boolean value"},
	{kind: "indicator", name: "not-json", expires: noExpiry, err: "record is not valid JSON"},
	{kind: "indicator", name: "not-object", expires: noExpiry, err: "record is not a JSON object but array"},

	// Deleted indicators: tombstones.
	{kind: "deleted", name: "url", key: "http://badsite.com", typ: "url", timestamp: "2021-11-02T15:17:28Z", expires: "2021-11-02T15:17:28Z"},
	{kind: "deleted", name: "address", key: "2001:db8::1", typ: "ipv6-addr", timestamp: "2021-11-02T15:17:28Z", expires: "2021-11-02T15:17:28Z"},
	{kind: "deleted", name: "no-date", key: "gone.example.com", typ: "domain-name", expires: "2024-06-01T12:00:00.25Z"},
	{kind: "deleted", name: "future-date", key: "future.example.com", typ: "domain-name", timestamp: "2030-01-01T00:00:00Z", expires: "2024-06-01T12:00:00.25Z"},
	{kind: "deleted", name: "no-summary", typ: "domain-name", timestamp: "2021-11-02T15:17:28Z", expires: "2021-11-02T15:17:28Z", err: "summary is missing"},
	{kind: "deleted", name: "not-object", expires: "2024-06-01T12:00:00.25Z", err: "record is not a JSON object but number"},
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// goldenJSON renders a Document as the golden files hold it: its facts and
// its Source, indented.
func goldenJSON(t *testing.T, doc vigil.Document) []byte {
	t.Helper()
	ts := func(x time.Time) string {
		if x.IsZero() {
			return ""
		}
		return x.UTC().Format(time.RFC3339Nano)
	}
	meta, err := json.Marshal(struct {
		Dataset   string     `json:"dataset"`
		View      vigil.View `json:"view"`
		Key       string     `json:"key"`
		Type      string     `json:"type"`
		Timestamp string     `json:"timestamp"`
		ExpiresAt string     `json:"expires_at"`
		Error     string     `json:"error"`
	}{doc.Dataset, doc.View, doc.Key, doc.Type, ts(doc.Timestamp), ts(doc.ExpiresAt), doc.Error})
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	raw.WriteString(`{"document":`)
	raw.Write(meta)
	raw.WriteString(`,"source":`)
	raw.Write(doc.Source)
	raw.WriteString("}")
	var out bytes.Buffer
	if err := json.Indent(&out, raw.Bytes(), "", "  "); err != nil {
		t.Fatalf("Source is not valid JSON: %v\n%s", err, doc.Source)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// readInput reads an input file, without its final newline.
func readInput(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\n")
}

func normalizeKind(n *Normalizer, kind string, raw []byte) vigil.Document {
	if kind == "deleted" {
		return n.Deleted(raw)
	}
	return n.Indicator(raw)
}

func TestNormalizeGolden(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range goldenCases {
		base := filepath.Join("testdata", "normalize", tc.kind, tc.name)
		covered[base+".input.json"] = true
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			opts := testOptions()
			if tc.expiration != "" {
				opts.ExpirationDuration = tc.expiration
			}
			input := readInput(t, base+".input.json")
			doc := normalizeKind(NewNormalizer(opts), tc.kind, input)
			rec, _ := fastjson.ParseBytes(input)

			if doc.View != vigil.ViewIndicators || doc.Dataset != DatasetIndicator {
				t.Errorf("view %q, dataset %q", doc.View, doc.Dataset)
			}
			wantKey := tc.key
			if wantKey == fromInput {
				wantKey = string(rec.GetStringBytes("summary"))
			}
			if doc.Key != wantKey || wantKey == "" && tc.err == "" {
				t.Errorf("Key = %q, want %q", doc.Key, wantKey)
			}
			if doc.Type != tc.typ {
				t.Errorf("Type = %q, want %q", doc.Type, tc.typ)
			}
			wantTS := testIngested
			switch tc.timestamp {
			case "":
			case fromInput:
				wantTS = at(string(rec.GetStringBytes("lastModified")))
			default:
				wantTS = at(tc.timestamp)
			}
			if !doc.Timestamp.Equal(wantTS) {
				t.Errorf("Timestamp = %v, want %v", doc.Timestamp, wantTS)
			}
			var wantExp time.Time
			switch tc.expires {
			case noExpiry:
			case "":
				wantExp = wantTS.Add(90 * 24 * time.Hour)
			default:
				wantExp = at(tc.expires)
			}
			if !doc.ExpiresAt.Equal(wantExp) {
				t.Errorf("ExpiresAt = %v, want %v", doc.ExpiresAt, wantExp)
			}
			switch {
			case tc.err == "" && doc.Error != "":
				t.Errorf("unexpected Error %q", doc.Error)
			case tc.err != "" && !strings.Contains(doc.Error, tc.err):
				t.Errorf("Error = %q, want it to contain %q", doc.Error, tc.err)
			}
			checkInvariants(t, input, doc)

			ecstest.Golden(t, base+".golden.json", goldenJSON(t, doc), *update)
		})
	}
	ecstest.Covered(t, filepath.Join("testdata", "normalize", "*", "*.input.json"), covered)
}

// checkInvariants asserts what holds for every normalized document.
func checkInvariants(t *testing.T, input []byte, doc vigil.Document) {
	t.Helper()
	var src map[string]any
	if err := json.Unmarshal(doc.Source, &src); err != nil {
		t.Fatalf("Source is not a JSON object: %v\n%s", err, doc.Source)
	}
	event, _ := src["event"].(map[string]any)
	if len(input) > 0 && event["original"] != string(input) {
		t.Errorf("event.original = %q, want the raw record", event["original"])
	}
	if v, _ := ecstest.Get(src, "threat.indicator.provider"); v != provider {
		t.Errorf("threat.indicator.provider = %v", v)
	}
	tags, _ := src["tags"].([]any)
	_, hasErr := src["error"]
	if hasErr != (doc.Error != "") {
		t.Errorf("Error %q but error field present = %v", doc.Error, hasErr)
	}
	if doc.Error != "" {
		if event["kind"] != kindError {
			t.Errorf("error document with event.kind %v", event["kind"])
		}
		if !slices.Contains(tags, any(tagPreserve)) {
			t.Errorf("error document without the %s tag: %v", tagPreserve, tags)
		}
		if doc.Live() {
			t.Error("an error document is live")
		}
	} else if event["kind"] != "enrichment" {
		t.Errorf("event.kind %v", event["kind"])
	}
	if doc.Key != "" {
		if id, _ := ecstest.Get(src, "event.id"); id != doc.Key {
			t.Errorf("event.id %v, Key %q", id, doc.Key)
		}
	}
	if typ, ok := ecstest.Get(src, "threat.indicator.type"); doc.Type != "" {
		if s, isList := typ.([]any); !(ok && (typ == doc.Type || isList && len(s) == 1 && s[0] == doc.Type)) {
			t.Errorf("threat.indicator.type %v, Type %q", typ, doc.Type)
		}
	} else if ok {
		t.Errorf("threat.indicator.type %v without Type", typ)
	}
	for _, e := range ecstest.Empties(src) {
		t.Error(e)
	}
}

// TestNormalizerReuse normalizes every input with one Normalizer, in turn,
// and checks each document is what a fresh Normalizer gives: nothing of a
// record leaks into the next.
func TestNormalizerReuse(t *testing.T) {
	shared := NewNormalizer(testOptions())
	for round := range 2 {
		for _, tc := range goldenCases {
			input := readInput(t, filepath.Join("testdata", "normalize", tc.kind, tc.name+".input.json"))
			opts := testOptions()
			if tc.expiration != "" {
				continue // the shared Normalizer has 90d
			}
			want := normalizeKind(NewNormalizer(opts), tc.kind, input)
			got := normalizeKind(shared, tc.kind, input)
			if !bytes.Equal(got.Source, want.Source) || got.Key != want.Key || got.Type != want.Type || got.Error != want.Error {
				t.Fatalf("round %d, %s/%s: reused Normalizer gives\n%s\nfresh gives\n%s", round, tc.kind, tc.name, got.Source, want.Source)
			}
		}
	}
}

// TestDocumentsOutliveTheNormalizer checks that a Document's Source, Key and
// Type do not point into buffers the next record reuses.
func TestDocumentsOutliveTheNormalizer(t *testing.T) {
	n := NewNormalizer(testOptions())
	a := n.Indicator([]byte(`{"type":"Host","summary":"a.example.com","hostName":"a.example.com","lastModified":"2024-05-01T00:00:00Z"}`))
	src, key, typ := string(a.Source), a.Key, a.Type
	for range 3 {
		n.Indicator([]byte(`{"type":"URL","summary":"http://b.example.com/xxxxxxxxxxxxxxxxx","text":"http://b.example.com/","lastModified":"2024-05-02T00:00:00Z"}`))
	}
	if string(a.Source) != src || a.Key != key || a.Key != "a.example.com" || a.Type != typ || typ != "domain-name" {
		t.Fatalf("document changed: %s %q %q", a.Source, a.Key, a.Type)
	}
}

func TestConfidence(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" = no threat.indicator.confidence
		err  bool
	}{
		{"0", "Not Specified", false}, {"1", "None", false}, {"2", "Low", false}, {"39", "Low", false},
		{"40", "Medium", false}, {"69", "Medium", false}, {"70", "High", false}, {"100", "High", false},
		{"101", "None", false}, {"-3", "None", false},
		// A fraction is bucketed, but threat_connect.indicator.confidence
		// (a long) fails, as Elastic's convert processor fails.
		{"0.0", "Not Specified", true}, {"1.5", "Low", true}, {"39.9", "Low", true}, {"100.5", "None", true},
		{"null", "", false}, {`"61"`, "", true}, {"true", "", true},
	}
	n := NewNormalizer(NormalizeOptions{})
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			doc := n.Indicator([]byte(`{"type":"Host","summary":"x","lastModified":"2024-01-01T00:00:00Z","confidence":` + c.in + `}`))
			v := fastjson.MustParseBytes(doc.Source)
			if got := string(v.GetStringBytes("threat", "indicator", "confidence")); got != c.want {
				t.Errorf("confidence %s → %q, want %q", c.in, got, c.want)
			}
			if (doc.Error != "") != c.err {
				t.Errorf("Error %q", doc.Error)
			}
		})
	}
}

// TestIDsKeepTheirDigits decodes ids above 2^53, which a float64 would
// round, at every place the pipeline turns one into a string.
func TestIDsKeepTheirDigits(t *testing.T) {
	raw := []byte(`{"id":9007199254740993,"ownerId":18014398509481985,"type":"Mutex","summary":"m","lastModified":"2024-01-01T00:00:00Z",` +
		`"associatedGroups":{"data":[{"id":9007199254740995,"ownerId":9007199254740997,"createdBy":{"id":9007199254740999},"assignments":{"data":[{"user":{"id":9007199254741001}}]}}]},` +
		`"associatedIndicators":{"data":[{"id":9007199254741003,"ownerId":9007199254741005}]},"attributes":{"data":[{"id":9007199254741007,"createdBy":{"id":9007199254741009}}]}}`)
	doc := NewNormalizer(NormalizeOptions{}).Indicator(raw)
	if doc.Error != "" {
		t.Fatal(doc.Error)
	}
	v := fastjson.MustParseBytes(doc.Source)
	ti := v.Get("threat_connect", "indicator")
	checks := []struct {
		got  *fastjson.Value
		want string
	}{
		{ti.Get("id"), "9007199254740993"},
		{ti.Get("owner", "id"), "18014398509481985"},
		{ti.Get("associated_groups", "data", "0", "id"), "9007199254740995"},
		{ti.Get("associated_groups", "data", "0", "owner", "id"), "9007199254740997"},
		{ti.Get("associated_groups", "data", "0", "created_by", "id"), "9007199254740999"},
		{ti.Get("associated_groups", "data", "0", "assignments", "data", "0", "user", "id"), "9007199254741001"},
		{ti.Get("associated_indicators", "data", "0", "id"), "9007199254741003"},
		{ti.Get("associated_indicators", "data", "0", "owner", "id"), "9007199254741005"},
		{ti.Get("attributes", "data", "0", "id"), "9007199254741007"},
		{ti.Get("attributes", "data", "0", "created_by", "id"), "9007199254741009"},
	}
	for i, c := range checks {
		if c.got == nil || string(c.got.GetStringBytes()) != c.want {
			t.Errorf("check %d: %v, want %q", i, c.got, c.want)
		}
	}
}

// TestHashesLowercased checks the 2.x rule on every hash field, and that
// only File indicators get threat.indicator.file.*.
func TestHashesLowercased(t *testing.T) {
	raw := `{"type":"%s","summary":"s","lastModified":"2024-01-01T00:00:00Z","md5":"ABCDEF0123456789ABCDEF0123456789","sha1":"AB","sha256":"CD","size":7}`
	for _, typ := range []string{"File", "Host"} {
		doc := NewNormalizer(NormalizeOptions{}).Indicator([]byte(strings.Replace(raw, "%s", typ, 1)))
		v := fastjson.MustParseBytes(doc.Source)
		for _, p := range [][]string{{"threat_connect", "indicator", "md5"}, {"threat_connect", "indicator", "sha1"}, {"threat_connect", "indicator", "sha256"}} {
			if s := string(v.GetStringBytes(p...)); s != strings.ToLower(s) || s == "" {
				t.Errorf("%s: %v = %q", typ, p, s)
			}
		}
		hashes := v.GetArray("related", "hash")
		if len(hashes) != 3 || string(hashes[0].GetStringBytes()) != "abcdef0123456789abcdef0123456789" {
			t.Errorf("%s: related.hash %v", typ, hashes)
		}
		file := v.Get("threat", "indicator", "file")
		if (file != nil) != (typ == "File") {
			t.Errorf("%s: threat.indicator.file = %v", typ, file)
		}
		if typ == "File" && (file.GetInt64("size") != 7 || string(file.GetStringBytes("hash", "md5")) != "abcdef0123456789abcdef0123456789") {
			t.Errorf("file %s", file)
		}
	}
}
