package threatcommand

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

// at parses an RFC 3339 time for expectations.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// kinds are the three record kinds with their default test options, as the
// collector configures them (IOC expiry 90d).
var kinds = map[string]struct {
	normalize normalizeFunc
	opts      NormalizeOptions
	view      vigil.View
}{
	"ioc": {(*Normalizer).IOC, NormalizeOptions{
		Dataset: DatasetIOC, Tags: []string{"forwarded", "rapid7-threat-command-ioc"},
		ExpirationDuration: "90d", Ingested: testIngested,
	}, vigil.ViewIndicators},
	"alert": {(*Normalizer).Alert, NormalizeOptions{
		Dataset: DatasetAlert, Tags: []string{"forwarded", "rapid7-threat-command-alert"}, Ingested: testIngested,
	}, vigil.ViewAlerts},
	"vulnerability": {(*Normalizer).Vulnerability, NormalizeOptions{
		Dataset: DatasetVulnerability, Tags: []string{"forwarded", "rapid7-threat-command-vulnerability"}, Ingested: testIngested,
	}, vigil.ViewVulnerabilities},
}

const noExpiry = "-"

// goldenCases names every input in testdata/normalize/<kind>/<name>.input.json
// with the Document facts it must give; the golden file next to it holds
// the whole Source.
var goldenCases = []struct {
	kind, name string
	expiration *string // IOC expiration duration; nil = the default 90d
	key, typ   string
	timestamp  string // RFC 3339; "" = the ingest time
	expires    string // RFC 3339; "" = timestamp + 180d (alerts, CVEs); noExpiry = none
	err        string // substring of Document.Error; "" = no error
}{
	// IOC types.
	{kind: "ioc", name: "url", key: "https://user:secret@www.example.org:8443/download/payload.exe?id=42&x=%7E#top", typ: "url",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "url-no-scheme", key: "malicious.example.net/landing/", typ: "url",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "url-java-url-fallback", key: "http://files.example.org/a b.zip", typ: "url",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "url-unparsable", key: "files.example.org/a b.zip", typ: "url",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "url-registry-authority", key: "http://dl_host.example.org/x", typ: "url",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "type-case", key: "http://example.org/Index.HTML", typ: "url",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "domain", key: "login-portal.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "ipv4", key: "198.51.100.23", typ: "ipv4-addr",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "ipv6", key: "2001:db8:85a3::8a2e:370:7334", typ: "ipv6-addr",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "ip-invalid", typ: "ipv4-addr", err: "value: [198.51.100.300] is not a valid IPv4 or IPv6 address",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "email", key: "billing@example.com", typ: "email-addr",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "hash-md5", key: "0c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2", typ: "file",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "hash-sha1", key: "3f786850e387550fdab836ed7e6dc881de23001b", typ: "file",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "hash-sha256", key: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", typ: "file",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "hash-sha384", key: "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b", typ: "file",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "hash-sha512", key: "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db27ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff", typ: "file",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "hash-odd-length", typ: "file",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},

	// Expiry.
	{kind: "ioc", name: "retired", key: "203.0.113.9", typ: "ipv4-addr",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-05-30T08:15:42.123Z"},
	{kind: "ioc", name: "retired-no-update-date", key: "203.0.113.10", typ: "ipv4-addr",
		expires: "2024-06-01T12:00:00.250Z"},
	{kind: "ioc", name: "expiry-days", key: "expiry.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "expiry-hours", expiration: ptr("12h"), key: "expiry.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-05-30T20:15:42.123Z"},
	{kind: "ioc", name: "expiry-minutes", expiration: ptr("45m"), key: "expiry.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-05-30T09:00:42.123Z"},
	{kind: "ioc", name: "expiry-unknown-unit", expiration: ptr("2w"), key: "expiry.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "expiry-invalid", expiration: ptr("1.5d"), key: "expiry.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: noExpiry, err: `"1.5d": want <integer>d, <integer>h or <integer>m`},
	{kind: "ioc", name: "expiry-disabled", expiration: ptr(""), key: "expiry.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: noExpiry},
	{kind: "ioc", name: "expiry-from-last-seen", key: "last-seen.example.com", typ: "domain-name",
		expires: "2024-08-27T22:00:00.000Z"},
	{kind: "ioc", name: "expiry-from-first-seen", key: "first-seen.example.com", typ: "domain-name",
		expires: "2024-07-30T10:00:00.000Z"},
	{kind: "ioc", name: "expiry-no-base-date", key: "no-dates.example.com", typ: "domain-name",
		expires: noExpiry, err: "no lastUpdateDate, lastSeen or firstSeen"},

	// Scores.
	{kind: "ioc", name: "score-null", key: "null-score.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "score-fraction", key: "fraction.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "score-zero", key: "zero.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "score-over-100", key: "over.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "score-string", key: "string-score.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "score-bool", key: "bool-score.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z", err: "score: unable to convert [true] to float"},

	// Odd and malformed IOCs.
	{kind: "ioc", name: "unknown-type", err: "type: unknown IOC type [Bitcoin]",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "missing-type",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "missing-value", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "bad-date", key: "bad-date.example.com", typ: "domain-name",
		expires: "2024-08-27T22:00:00.000Z", err: "lastUpdateDate: unable to parse date [yesterday]; firstSeen: unable to parse date [2024-02-30T00:00:00Z]"},
	{kind: "ioc", name: "unknown-fields", key: "extra.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "tags", key: "tagged.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "feeds-odd", key: "feeds.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "escaped-strings", key: "café.example.com", typ: "domain-name",
		timestamp: "2024-05-30T08:15:42.123Z", expires: "2024-08-28T08:15:42.123Z"},
	{kind: "ioc", name: "not-json", expires: noExpiry, err: "record is not valid JSON"},
	{kind: "ioc", name: "not-object", expires: noExpiry, err: "record is not a JSON object but array"},
	{kind: "ioc", name: "empty", expires: noExpiry, err: "record is empty"},

	// Alerts.
	{kind: "alert", name: "full", key: "665f0a1b2c3d4e5f60718293", typ: "Phishing", timestamp: "2024-05-30T11:22:33.444Z"},
	{kind: "alert", name: "null-source-date-empty-lists", key: "665f0a1b2c3d4e5f60718293", typ: "DataLeakage", timestamp: "2024-05-30T11:22:33.444Z"},
	{kind: "alert", name: "duplicate-tags", key: "665f0a1b2c3d4e5f60718293", typ: "BrandSecurity", timestamp: "2024-05-30T11:22:33.444Z"},
	{kind: "alert", name: "missing-id", typ: "Phishing", timestamp: "2024-05-30T11:22:33.444Z"},
	{kind: "alert", name: "bad-dates", key: "665f0a1b2c3d4e5f60718293", typ: "Phishing",
		err: "UpdateDate: unable to parse date [2024-13-01T00:00:00Z]; FoundDate: unable to parse date [soon]"},
	{kind: "alert", name: "closed-strings", key: "665f0a1b2c3d4e5f60718293", typ: "Phishing", timestamp: "2024-05-30T11:22:33.444Z",
		err: "IsFlagged: [no] is not a boolean value, cannot convert to boolean"},
	{kind: "alert", name: "not-object", err: "record is not a JSON object but string"},

	// Vulnerabilities.
	{kind: "vulnerability", name: "full", key: "CVE-2024-12345", typ: "Critical", timestamp: "2024-05-30T06:00:01.999Z"},
	{kind: "vulnerability", name: "na-mention-dates", key: "CVE-2019-0001", typ: "Critical", timestamp: "2024-05-30T06:00:01.999Z"},
	{kind: "vulnerability", name: "string-numbers", key: "CVE-2024-12345", typ: "Critical", timestamp: "2024-05-30T06:00:01.999Z",
		err: "mentionsPerSource.DarkWeb: unable to convert [1.5] to long"},
	{kind: "vulnerability", name: "missing-cve-id", typ: "Critical", timestamp: "2024-05-30T06:00:01.999Z"},
	{kind: "vulnerability", name: "cpe-not-list", key: "CVE-2024-12345", typ: "Critical", timestamp: "2024-05-30T06:00:01.999Z"},
	{kind: "vulnerability", name: "not-json", err: "record is not valid JSON"},
}

func ptr[T any](v T) *T { return &v }

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

func TestNormalizeGolden(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range goldenCases {
		base := filepath.Join("testdata", "normalize", tc.kind, tc.name)
		covered[base+".input.json"] = true
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			k := kinds[tc.kind]
			opts := k.opts
			if tc.expiration != nil {
				opts.ExpirationDuration = *tc.expiration
			}
			input, err := os.ReadFile(base + ".input.json")
			if err != nil {
				t.Fatal(err)
			}
			doc := k.normalize(NewNormalizer(opts), input)

			// The facts the store relies on.
			if doc.View != k.view || doc.Dataset != opts.Dataset {
				t.Errorf("view %q, dataset %q", doc.View, doc.Dataset)
			}
			if doc.Key != tc.key {
				t.Errorf("Key = %q, want %q", doc.Key, tc.key)
			}
			if doc.Type != tc.typ {
				t.Errorf("Type = %q, want %q", doc.Type, tc.typ)
			}
			wantTS := testIngested
			if tc.timestamp != "" {
				wantTS = at(tc.timestamp)
			}
			if !doc.Timestamp.Equal(wantTS) {
				t.Errorf("Timestamp = %v, want %v", doc.Timestamp, wantTS)
			}
			var wantExp time.Time
			switch tc.expires {
			case noExpiry:
			case "":
				wantExp = wantTS.Add(vigil.LatestMaxAge)
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
	if event["module"] != eventModule {
		t.Errorf("event.module = %v", event["module"])
	}
	tags, _ := src["tags"].([]any)
	errMsg, hasErr := src["error"].(map[string]any)
	if doc.Error != "" {
		if !hasErr || errMsg["message"] == nil {
			t.Errorf("error document without error.message")
		}
		if event["kind"] != kindError {
			t.Errorf("error document with event.kind %v", event["kind"])
		}
		if !slices.Contains(tags, any(tagPreserve)) {
			t.Errorf("error document without the %s tag: %v", tagPreserve, tags)
		}
		if doc.Live() {
			t.Errorf("error document is live")
		}
	} else if hasErr {
		t.Errorf("error.message without Document.Error: %v", errMsg)
	}
	if _, ok := src["labels"]; ok {
		t.Errorf("labels written: %v", src["labels"])
	}
	for _, e := range ecstest.Empties(src) {
		t.Error(e)
	}
}

// TestNormalizeSourceIsFresh checks that a Document stays intact when the
// Normalizer is reused, and that Key and Type do not alias its buffers.
func TestNormalizeSourceIsFresh(t *testing.T) {
	n := NewNormalizer(kinds["alert"].opts)
	first := n.Alert([]byte(`{"_id":"a1","UpdateDate":"2024-05-30T11:22:33.444Z","Details":{"Type":"Phishing"}}`))
	src := string(first.Source)
	for range 3 {
		n.Alert([]byte(`{"_id":"zz","UpdateDate":"2024-01-01T00:00:00.000Z","Details":{"Type":"DataLeakage","Title":"overwrite everything"}}`))
	}
	if string(first.Source) != src || first.Key != "a1" || first.Type != "Phishing" {
		t.Fatalf("first document changed: key %q type %q source %s", first.Key, first.Type, first.Source)
	}
	// Appending to Source must not overwrite Key or Type.
	grown := append(first.Source, "xxxxxxxxxxxxxxxx"...)
	_ = grown
	if first.Key != "a1" || first.Type != "Phishing" {
		t.Fatalf("appending to Source changed Key %q or Type %q", first.Key, first.Type)
	}
}

func TestNormalizeDatasetOmitted(t *testing.T) {
	n := NewNormalizer(NormalizeOptions{})
	doc := n.IOC([]byte(`{"value":"example.com","type":"Domains","lastUpdateDate":"2024-05-30T08:15:42.123Z"}`))
	if doc.Dataset != DatasetIOC {
		t.Errorf("Dataset = %q, want the default %q", doc.Dataset, DatasetIOC)
	}
	src := ecstest.Decode(t, doc.Source)
	event := src["event"].(map[string]any)
	for _, f := range []string{"dataset", "ingested"} {
		if _, ok := event[f]; ok {
			t.Errorf("event.%s written without the option", f)
		}
	}
	rapid7 := src["rapid7"].(map[string]any)["tc"].(map[string]any)["ioc"].(map[string]any)
	for _, f := range []string{"deleted_at", "expiration_duration"} {
		if _, ok := rapid7[f]; ok {
			t.Errorf("rapid7.tc.ioc.%s written without an expiration duration", f)
		}
	}
	if !doc.ExpiresAt.IsZero() {
		t.Errorf("ExpiresAt = %v without an expiration duration", doc.ExpiresAt)
	}
}

func TestNormalizeIOCAllocs(t *testing.T) {
	n := NewNormalizer(kinds["ioc"].opts)
	raw := benchIOC
	n.IOC(raw)
	allocs := testing.AllocsPerRun(200, func() { n.IOC(raw) })
	if allocs > 1 {
		t.Errorf("%v allocations per IOC, want 1 (the Source)", allocs)
	}
}

// benchIOC is a typical IOC record (an IP with GeoIP country and a feed).
var benchIOC = []byte(`{"value":"198.51.100.23","type":"IpAddresses","status":"Active","severity":"Low","score":13.26086956521739,"lastUpdateDate":"2024-05-30T08:15:42.123Z","lastSeen":"2024-05-29T22:00:00.000Z","firstSeen":"2024-05-01T10:00:00.000Z","geolocation":"NL","relatedMalware":["remcos"],"relatedCampaigns":[],"relatedThreatActors":[],"reportedFeeds":[{"id":"6650a1b2c3d4e5f60718293a","name":"Vigil Test Feed","confidenceLevel":2}],"whitelisted":false,"tags":["Test"]}`)

var benchURL = []byte(`{"value":"https://www.example.org/download/payload.exe?id=42","type":"Urls","status":"Active","severity":"High","score":85.5,"lastUpdateDate":"2024-05-30T08:15:42.123Z","lastSeen":"2024-05-29T22:00:00.000Z","firstSeen":"2024-05-01T10:00:00.000Z","relatedMalware":["emotet"],"relatedCampaigns":[],"relatedThreatActors":[],"reportedFeeds":[{"id":"6650a1b2c3d4e5f60718293a","name":"Phishing Feed","confidenceLevel":3}],"whitelisted":false,"tags":[]}`)

func benchmarkNormalize(b *testing.B, kind string, raw []byte) {
	k := kinds[kind]
	n := NewNormalizer(k.opts)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if doc := k.normalize(n, raw); doc.Error != "" {
			b.Fatal(doc.Error)
		}
	}
}

// BenchmarkNormalizeIOC measures a whole IOC normalization: parse, map,
// encode and the copy of the Source.
func BenchmarkNormalizeIOC(b *testing.B) {
	b.Run("ip", func(b *testing.B) { benchmarkNormalize(b, "ioc", benchIOC) })
	b.Run("url", func(b *testing.B) { benchmarkNormalize(b, "ioc", benchURL) })
}

// BenchmarkParseIOCBaseline parses the record of BenchmarkNormalizeIOC/ip
// with fastjson and nothing else: the floor a normalization cannot beat, to
// read the other figures against on a noisy machine.
func BenchmarkParseIOCBaseline(b *testing.B) {
	var p fastjson.Parser
	b.SetBytes(int64(len(benchIOC)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ParseBytes(benchIOC); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalizeAlert(b *testing.B) {
	raw, err := os.ReadFile("testdata/normalize/alert/full.input.json")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkNormalize(b, "alert", raw)
}

func BenchmarkNormalizeVulnerability(b *testing.B) {
	raw, err := os.ReadFile("testdata/normalize/vulnerability/full.input.json")
	if err != nil {
		b.Fatal(err)
	}
	benchmarkNormalize(b, "vulnerability", raw)
}
