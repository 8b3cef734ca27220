package threatcommand

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
)

// sameIOC fails t unless IOC gives the same Document for raw with scanIOC
// and writeIOC (the fast path), with scanIOC and n.doc, and with fastjson
// and n.doc, in the Normalizers' second rounds too (they reuse their
// buffers).
func sameIOC(t *testing.T, opts NormalizeOptions, raw []byte) {
	t.Helper()
	fast, doc, slow := NewNormalizer(opts), NewNormalizer(opts), NewNormalizer(opts)
	doc.noWriter = true
	slow.noScan = true
	for round := 0; round < 2; round++ {
		got, viaDoc, want := fast.IOC(raw), doc.IOC(raw), slow.IOC(raw)
		if !bytes.Equal(got.Source, want.Source) {
			t.Fatalf("input %q\nfast path: %s\nfastjson:  %s", raw, got.Source, want.Source)
		}
		if !bytes.Equal(viaDoc.Source, want.Source) {
			t.Fatalf("input %q\nscan, Doc: %s\nfastjson:  %s", raw, viaDoc.Source, want.Source)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q\nfast path: %+v\nfastjson:  %+v", raw, got, want)
		}
		if !reflect.DeepEqual(viaDoc, want) {
			t.Fatalf("input %q\nscan, Doc: %+v\nfastjson:  %+v", raw, viaDoc, want)
		}
	}
}

// scanSeeds are records scanIOC takes, or nearly does.
var scanSeeds = []string{
	`{}`, ` { } `, `{"type":"Urls"}`,
	`{"type":"Domains","value":"a.example","tags":[1,true,null,"",-0,1.50,"x"],"relatedMalware":"m"}`,
	`{"type":"IpAddresses","value":"10.0.0.1","type":"Urls","score":"12","whitelisted":"yes"}`,
	`{"type":"Hashes","value":"d41d8cd98f00b204e9800998ecf8427e","score":1e2,"reportedFeeds":[{"name":1.0,"name":"b"},null,3,{},{"id":""}]}`,
	`{"reportedFeeds":[{"id":"a"},{"confidenceLevel":2,"id":"b"}],"score":0.5}`,
	`{"reportedFeeds":[{"confidenceLevel":"2","confidence":1,"value":null,"range.version.start.including":"x"}]}`,
	"{\"type\":\"Emails\",\"value\":\"a@b\tc\u00e9\xff\",\"status\":\"retired\",\"lastSeen\":\"2024-01-01\"}",
	"{\n\t\"type\" : \"Urls\" ,\r\n \"value\" : \"http://x/\" }",
	`{"type":"IpAddresses","value":"::1%eth0","score":-1e400,"lastUpdateDate":5,"firstSeen":true}`,
	`{"type":"Urls","value":"http://[::1]:80/%zz","geolocation":12,"severity":false,"relatedCampaigns":[[]]}`,
	`{"type":"Urls","value":"x\"y"}`, `{"type":"Urls","x":1}`, `{"type":"Urls",}`, `{"type":"Urls"} x`,
	`{"type":"Urls","value":"http://x","lastUpdateDate":"0000-01-01T00:00:00+01:00","firstSeen":"9999-12-31T23:59:59Z"}`,
	`{"type":"Hashes","value":"d41d8cd98f00b204e9800998ecf8427e","lastSeen":"9999-12-31T23:59:59.999Z","geolocation":0}`,
	`{"score":1.2.3}`, `{"score":nan}`, `{"score":-Inf}`, `{"tags":[1,]}`, `{"tags":[`, `{"a`, `[]`, `nul`, "",
}

func FuzzIOCScan(f *testing.F) {
	addSeeds(f, "ioc", scanSeeds...)
	f.Add(benchIOC)
	f.Add(benchURL)
	opts := kinds["ioc"].opts
	f.Fuzz(func(t *testing.T, raw []byte) { sameIOC(t, opts, raw) })
}

// iocOptions are the options sameIOC runs with besides the tests' own:
// what writeIOC writes from the options rather than the record.
func iocOptions() []NormalizeOptions {
	base := kinds["ioc"].opts
	noExpiry, noIngest, badExpiry, bare, odd := base, base, base, base, base
	noExpiry.ExpirationDuration = ""
	noIngest.Ingested = time.Time{}
	badExpiry.ExpirationDuration = "90x"
	bare.Dataset, bare.Tags, bare.Ingested, bare.ExpirationDuration = "", nil, time.Time{}, ""
	odd.Tags = []string{"", "a\"b\u00e9", "preserve_original_event", ""}
	odd.Ingested = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	return []NormalizeOptions{base, noExpiry, noIngest, badExpiry, bare, odd}
}

// FuzzIOCWriter is FuzzIOCScan with the options of iocOptions.
func FuzzIOCWriter(f *testing.F) {
	addSeeds(f, "ioc", scanSeeds...)
	f.Add(benchIOC)
	f.Add(benchURL)
	opts := iocOptions()
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, o := range opts {
			sameIOC(t, o, raw)
		}
	})
}

// TestIOCScan checks that the fast path and fastjson agree on the seeds and
// the golden inputs, with and without expiry and ingest time, and that the
// fast path does take the typical records.
func TestIOCScan(t *testing.T) {
	raws := [][]byte{benchIOC, benchURL}
	for _, s := range scanSeeds {
		raws = append(raws, []byte(s))
	}
	raws = append(raws, ecstest.ReadFiles(t, filepath.Join("testdata", "normalize", "ioc", "*.input.json"))...)
	base := kinds["ioc"].opts
	for _, opts := range iocOptions() {
		for _, raw := range raws {
			sameIOC(t, opts, raw)
		}
	}

	for _, tc := range []struct {
		raw  string
		fast bool
	}{
		{string(benchIOC), true},
		{string(benchURL), true},
		{`{}`, true},
		{`{"reportedFeeds":[{"id":"a","extra":1}]}`, false}, // a key subPath does not know
		{`{"type":"Urls","x":1}`, false},                    // kept under rapid7.tc.ioc
		{`{"value":"a\"b"}`, false},                         // an escape
		{`{"geolocation":{"a":1}}`, false},                  // an object where a scalar goes
		{`{"score":01}`, false},                             // not a JSON number
		{`[]`, false},
	} {
		var f iocFields
		if got := NewNormalizer(base).scanIOC(tc.raw, &f); got != tc.fast {
			t.Errorf("scanIOC(%s) = %v, want %v", tc.raw, got, tc.fast)
		}
	}
	// The typical records are written by writeIOC, not n.doc.
	for _, raw := range [][]byte{benchIOC, benchURL} {
		n := NewNormalizer(base)
		if doc := n.IOC(raw); len(n.wbuf) == 0 || !bytes.Equal(n.wbuf, doc.Source) {
			t.Errorf("writeIOC did not write the document of %s", raw)
		}
	}
	for _, name := range []string{"ipv4", "url", "domain", "hash-sha256", "tags", "retired", "feeds-odd"} {
		b, err := os.ReadFile(filepath.Join("testdata", "normalize", "ioc", name+".input.json"))
		if err != nil {
			t.Fatal(err)
		}
		var f iocFields
		if !NewNormalizer(base).scanIOC(string(b), &f) {
			t.Errorf("scanIOC does not take %s.input.json", name)
		}
	}
}

// TestIOCScoreBuckets checks that iocScore's confidence is the bucket of
// the score as a double, also for scores the float rounds onto a bound.
func TestIOCScoreBuckets(t *testing.T) {
	n := NewNormalizer(kinds["ioc"].opts)
	for _, s := range []string{
		"29.9999999999", "30.000000001", "0.99999999999", "1e-50", "-1e-50", "100.0000000001",
		"99.99999999999", "69.99999999999", "70", "1", "0.5", "0", "100", "13.26086956521739", "1e2",
	} {
		f64, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		want := ecs.Confidence(f64)
		sc := n.iocScore(val{s: s, kind: fastjson.TypeNumber, raw: true})
		if sc.confidence != want || sc.confRaw != (want == "") {
			t.Errorf("score %s: confidence %q (raw %v), want %q", s, sc.confidence, sc.confRaw, want)
		}
	}
}
