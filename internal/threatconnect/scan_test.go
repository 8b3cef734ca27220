package threatconnect

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"

	"github.com/vigil-ti/vigil/internal/threatconnect/tcnfake"
)

// sameIndicator fails t unless Indicator gives the same Document for raw
// with the fast path as with the general path alone, in the Normalizers'
// second rounds too (they reuse their buffers), and the same Modified; and
// the same with both writing into an arena, where the documents lie end to
// end as NDJSON. It reports whether the fast path took raw.
func sameIndicator(t *testing.T, opts NormalizeOptions, raw []byte) bool {
	t.Helper()
	fast, slow := NewNormalizer(opts), NewNormalizer(opts)
	slow.fast.disabled = true
	var fastArena, slowArena ecs.Arena
	aopts := opts
	aopts.Arena = &fastArena
	fastA := NewNormalizer(aopts)
	aopts.Arena = &slowArena
	slowA := NewNormalizer(aopts)
	slowA.fast.disabled = true
	var took bool
	for round := 0; round < 2; round++ {
		gotA, wantA := fastA.Indicator(raw), slowA.Indicator(raw)
		got, want := fast.Indicator(raw), slow.Indicator(raw)
		if !reflect.DeepEqual(gotA, want) || !reflect.DeepEqual(wantA, want) {
			t.Fatalf("input %q\nin an arena: %+v\n             %+v\nallocated:   %+v", raw, gotA, wantA, want)
		}
		for _, a := range []*ecs.Arena{&fastArena, &slowArena} {
			if nd := string(a.NDJSON()); !strings.HasSuffix(nd, string(want.Source)+"\n") || len(nd) != (round+1)*(len(want.Source)+1) {
				t.Fatalf("input %q: the arena holds %q", raw, nd)
			}
		}
		took = len(fast.fast.wbuf) > 0 && string(fast.fast.wbuf) == string(got.Source)+got.Key+got.Type
		if !bytes.Equal(got.Source, want.Source) {
			t.Fatalf("input %q\nfast path:    %s\ngeneral path: %s", raw, got.Source, want.Source)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("input %q\nfast path:    %+v\ngeneral path: %+v", raw, got, want)
		}
		if !fast.Modified().Equal(slow.Modified()) || fast.Modified() != slow.Modified() {
			t.Fatalf("input %q: Modified %v, general path %v", raw, fast.Modified(), slow.Modified())
		}
		fast.fast.wbuf = fast.fast.wbuf[:0]
	}
	return took
}

// scanSeeds are records the fast path takes, or nearly does.
var scanSeeds = []string{
	`{}`, ` { } `, `{"type":"Address","ip":"10.0.0.1"}`, `{"type":"Address","ip":"10.0.0.1","lastModified":"2024-01-01T00:00:00Z"}`,
	`{"type":"Address","ip":"::ffff:1.2.3.4%eth0","lastModified":"2024-01-01T00:00:00+14:00","summary":1e2}`,
	`{"type":"Address","ip":"10.0.0.1","lastModified":"2024-01-01T00:00:00Z","type":"Host"}`,
	`{"type":"Address","ip":"1.2.3.4","lastModified":"2024-01-01"}`,
	`{"type":"CIDR","Block":"10.0.0.0/8","lastModified":"2024-01-01T00:00:00Z","confidence":1.5}`,
	`{"type":"CIDR","Block":5,"lastModified":"2024-01-01T00:00:00Z","confidence":0,"rating":"2.5","active":"TRUE"}`,
	`{"type":"ASN","AS Number":"ASN 12x3","lastModified":"2024-01-01T00:00:00Z","confidence":100,"rating":-0}`,
	`{"type":"ASN","AS Number":64512,"lastModified":"2024-01-01T00:00:00Z","confidence":-0.0,"threatAssessScore":"7"}`,
	`{"type":"File","md5":"ABC","sha1":"def","sha256":"É","size":"12","lastModified":"2024-01-01T00:00:00.123456Z"}`,
	`{"type":"File","sha256":"AB","size":1.5e3,"lastModified":"2024-01-01T00:00:00Z","id":-0,"ownerId":1e400}`,
	`{"type":"Host","hostName":"a.example","dnsActive":null,"whoisActive":"false","lastModified":"2024-01-01T00:00:00Z"}`,
	`{"type":"URL","text":"http://a.example/x","lastModified":"2024-01-01T00:00:00Z","webLink":"w","legacyLink":"w"}`,
	`{"type":"EmailAddress","address":"a@b@c","lastModified":"2024-01-01T00:00:00Z","address2":1}`,
	`{"type":"EmailAddress","address":"@","lastModified":"2024-01-01T00:00:00Z"}`,
	`{"type":"Registry Key","Key Name":"HKLM\\x","Value Name":"Run","Value Type":"","lastModified":"2024-01-01T00:00:00Z"}`,
	`{"type":"Registry Key","Key Name":"k","Value Name":"Run","Value Type":"REG_SZ","lastModified":"2024-01-01T00:00:00Z"}`,
	`{"type":"Mutex","Mutex":"m","Hashtag":"#h","Subject":"s","User Agent String":"ua","lastModified":"2024-01-01T00:00:00Z"}`,
	`{"type":7,"lastModified":"2024-01-01T00:00:00Z","firstSeen":"2023-01-01T00:00:00Z","lastSeen":"x","source":true}`,
	`{"lastModified":"2024-01-01T00:00:00Z","externalDateAdded":"2020-02-29T00:00:00Z","externalDateExpires":"0001-01-01T00:00:00Z","externalLastModified":"9999-12-31T23:59:59.999Z"}`,
	`{"lastModified":"2024-01-01T00:00:00Z","lastFalsePositive":"2024-01-01T00:00:00Z","falsePositives":3,"falsePositiveReportedByUser":false}`,
	`{"lastModified":"2024-01-01T00:00:00Z","securityLabels":{"data":[{"id":1,"name":"TLP:AMBER+STRICT:x","dateAdded":"2016-08-31T00:00:00Z"},{"name":"TLP:RED"},{"id":2},{"name":"PAP:RED","dateAdded":"x"}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","securityLabels":{"data":[{"name":5}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","securityLabels":{"data":null},"tags":{},"associatedGroups":{"data":[]},"attributes":null}`,
	`{"lastModified":"2024-01-01T00:00:00Z","securityLabels":{"data":[]},"tags":{"data":[{"id":1,"name":"","techniqueId":""}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","tags":{"data":[{"name":"t","techniqueId":"T1","tactics":{"count":2,"data":["a","",null,1.0]},"platforms":{"count":2,"data":["Windows","Windows",2,true]},"lastUsed":"2024-06-10T21:51:14Z"}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","tags":{"data":[{"name":3,"techniqueId":4,"tactics":{"data":[]},"platforms":null},{"name":"x","tactics":null,"platforms":{"data":null}}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","tags":{"data":[{"name":"x","tactics":{"count":1}}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","tags":{"data":[{"name":"x","name":"y"}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","tags":{"data":[{}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"id":1}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","summary":"a\"b"}`, `{"lastModified":"2024-01-01T00:00:00Z","x":1}`,
	`{"lastModified":"2024-01-01T00:00:00Z","rating":01}`, `{"lastModified":"2024-01-01T00:00:00Z",}`,
	`{"lastModified":"2024-01-01T00:00:00Z"} x`, `{"lastModified":"2024-01-01T00:00:00Z","dnsResolution":{"a":1}}`,
	"{\n\t\"lastModified\" : \"2024-01-01T00:00:00Z\" ,\r\n \"summary\" : \"a\\tb\u00e9\xff\" }",
	"{\"lastModified\":\"2024-01-01T00:00:00Z\",\"summary\":\"a\tb\u00e9\xff\",\"ownerName\":\"\"}",
	`{"lastModified":"2024-01-01T00:00:00Z","summary":"\u0000\u00E9\uffff\b\f\r\t\"\\\/","tags":{"data":[{"name":"a\\b","techniqueId":"\"","platforms":{"data":["\u0041"]}}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","summary":"\u12","ownerName":"\ud800\udc00"}`, `{"summary":"\`, `{"summary":"\u00`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"id":1,"type":"Email","to":"a@b","from":3,"createdBy":{"id":7,"userName":"u","firstName":"F","lastName":"","owner":"o","pseudonym":null},"attributes":{"data":[{"id":1,"type":"Source","value":"","createdBy":{"id":-0,"userName":"u","x.y":1e2,"n":null}},{"id":2,"source":"s"}]},"fileSize":12,"malware":"TRUE","documentType":"PDF","a.b":1,"userName":"x","ownerId":1.5,"dueDate":"2024-01-01","eventDate":"x"},{"createdBy":null,"attributes":{}},{"createdBy":"c","attributes":null}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"assignments":{"data":[]}}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"generatedReport":"maybe"}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"createdBy":{"id":1,"id":2}}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"attributes":{"data":[{"createdBy":{"a":{}}}]}}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedIndicators":{"data":[{"id":1,"type":"Host","hostName":"h","AS Number":"ASN1","Key Name":"k","Block":"b","Value Name":"v","Value Type":"t","location":"l","confidence":"7","rating":"2.5","ip":"::1","size":3,"dnsActive":"false","webLink":"w","x.y":null,"summary":""},{"ip":null,"confidence":null,"rating":null}]},"attributes":{"data":[{"id":1,"type":"t","value":"v","createdBy":{"firstName":"F","userName":"F"},"userName":"x","pinned":true,"default":"FALSE","dateAdded":"2024-01-01T00:00:00Z"}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","attributes":{"data":[{"a":[]}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedIndicators":{"data":[{"ip":"x"}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedIndicators":{"data":[{"confidence":1.5}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedIndicators":{"data":[{"location":{"a":1}}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","address":"me@x","attributes":{"data":[{"createdBy":{"firstName":"me","lastName":"F"}}]},"associatedGroups":{"data":[{"createdBy":{"lastName":"me"}}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"id":1,"type":"Email","name":"n","to":"a@b","from":3,"createdBy":{"id":7,"userName":"u","firstName":"F","lastName":"","owner":"o","pseudonym":null},"attributes":{"data":[{"id":1,"type":"Source","value":"","createdBy":{"id":-0,"userName":"u","x.y":1e2,"n":null}},{"id":2,"source":"s"}]},"ownerId":1.5,"ownerName":"","eventDate":"x","dateAdded":"2024-01-01","upVoteCount":"0","downVoteCount":0,"webLink":"w","legacyLink":null,"lastModified":"2024-01-01T00:00:00Z","userName":"x"},{"attributes":{}},{"attributes":null,"name":""}]}}`,
	`{"lastModified":"2024-01-01T00:00:00Z","associatedIndicators":{"data":[{"id":1,"type":"Host","hostName":"h","AS Number":"ASN1","Key Name":"k","Block":"b","Value Name":"v","Value Type":"t","confidence":"7","rating":"2.5","ip":"::1","size":3,"dnsActive":"false","webLink":"w","summary":"","active":true,"activeLocked":null,"ownerId":5,"ownerName":"o","md5":"ABC","Mutex":"m","Subject":"s","Hashtag":"h","User Agent String":"u","whoisActive":false,"privateFlag":"TRUE","firstSeen":"2024-01-01T00:00:00Z","lastSeen":"y","description":"d","text":"t","address":"a","sha1":"s","sha256":"s"},{"ip":null,"confidence":null,"rating":null}]}}`,
	`{"rating":nan}`, `{"tags":[`, `{"a`, `[]`, `nul`, "",
}

// indicatorOptions are the options sameIndicator runs with besides the
// tests' own: what writeIndicator writes from the options rather than the
// record.
func indicatorOptions() []NormalizeOptions {
	base := testOptions()
	noExpiry, noIngest, badExpiry, bare, odd := base, base, base, base, base
	noExpiry.ExpirationDuration = ""
	noIngest.Ingested = time.Time{}
	badExpiry.ExpirationDuration = "90x"
	bare.Dataset, bare.Tags, bare.Ingested, bare.ExpirationDuration = "", nil, time.Time{}, ""
	odd.Tags = []string{"", "a\"b\u00e9", "preserve_original_event", ""}
	odd.Ingested = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	odd.ExpirationDuration = "1h"
	return []NormalizeOptions{base, noExpiry, noIngest, badExpiry, bare, odd}
}

// generated returns generated records of all twelve types, with the
// default fields and with every association.
func generated(n int) [][]byte {
	return append(benchRecords(n, false), benchRecords(n, true)...)
}

// addScanSeeds adds the seeds of the fast path's fuzz targets.
func addScanSeeds(f *testing.F) {
	addSeeds(f, "indicator", scanSeeds...)
	for _, r := range generated(24) {
		f.Add(r)
	}
}

// FuzzIndicatorScan checks that the fast path and the general path give
// the same Document for any record, with the tests' options.
func FuzzIndicatorScan(f *testing.F) {
	addScanSeeds(f)
	opts := testOptions()
	f.Fuzz(func(t *testing.T, raw []byte) { sameIndicator(t, opts, raw) })
}

// FuzzIndicatorWriter is FuzzIndicatorScan with the options of
// indicatorOptions.
func FuzzIndicatorWriter(f *testing.F) {
	addScanSeeds(f)
	opts := indicatorOptions()
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, o := range opts {
			sameIndicator(t, o, raw)
		}
	})
}

// TestIndicatorScan checks that the fast path and the general path agree
// on the seeds, the golden inputs and generated records, with the options
// of indicatorOptions, and that the fast path does take the typical
// records.
func TestIndicatorScan(t *testing.T) {
	var raws [][]byte
	for _, s := range scanSeeds {
		raws = append(raws, []byte(s))
	}
	raws = append(raws, ecstest.ReadFiles(t, filepath.Join("testdata", "normalize", "indicator", "*.input.json"))...)
	gen := generated(240)
	raws = append(raws, gen...)
	for _, opts := range indicatorOptions() {
		for _, raw := range raws {
			sameIndicator(t, opts, raw)
		}
	}

	// Every generated record, of every type, with the default fields or
	// every association, is taken.
	types := map[string]bool{}
	for _, raw := range gen {
		if !sameIndicator(t, testOptions(), raw) {
			t.Errorf("the fast path did not take %s", raw)
		}
		types[string(raw)[bytes.Index(raw, []byte(`"type":"`))+8:][:4]] = true
	}
	if len(types) < len(tcnfake.Types)-1 { // "Emai" twice
		t.Errorf("generated types %v", types)
	}
	for _, tc := range []struct {
		raw  string
		fast bool
	}{
		{`{"type":"Address","ip":"10.0.0.1","lastModified":"2024-01-01T00:00:00Z"}`, true},
		{`{"lastModified":"2024-01-01T00:00:00Z","x":1}`, false},                       // a member the pipeline drops
		{`{"lastModified":"2024-01-01T00:00:00Z","summary":"a\"b\\\/\u00e9\n"}`, true}, // escapes
		{`{"lastModified":"2024-01-01T00:00:00Z","summary":"a\ud83d\ude00"}`, false},   // a surrogate pair
		{`{"lastModified":"2024-01-01T00:00:00Z","summary":"a\x"}`, false},             // fastjson keeps it as it is
		{`{"lastModified":"2024-01-01T00:00:00Z","summary":"a","summary":"b"}`, false}, // a duplicate
		{`{"lastModified":"2024-01-01T00:00:00Z","geoLocation":{"a":1}}`, false},       // an object kept as it is
		{`{"lastModified":"2024-01-01T00:00:00Z","rating":01}`, false},                 // not a JSON number
		{`{"lastModified":"2024-01-01T00:00:00Z","rating":"x"}`, false},                // an error
		{`{"type":"Address","lastModified":"2024-01-01T00:00:00Z"}`, false},            // an error
		{`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"id":1,"type":"Email","name":"n","to":"a@b","from":3,"createdBy":{"id":7,"userName":"u","firstName":"F","lastName":"","owner":"o","pseudonym":null},"attributes":{"data":[{"id":1,"type":"Source","value":"","createdBy":{"id":-0,"userName":"u","x.y":1e2,"n":null}},{"id":2,"source":"s"}]},"ownerId":1.5,"ownerName":"","eventDate":"x","dateAdded":"2024-01-01","upVoteCount":"0","downVoteCount":0,"webLink":"w","legacyLink":null,"lastModified":"2024-01-01T00:00:00Z","userName":"x"},{"attributes":{}},{"attributes":null,"name":""}]}}`, true},
		{`{"lastModified":"2024-01-01T00:00:00Z","associatedIndicators":{"data":[{"id":1,"type":"Host","hostName":"h","AS Number":"ASN1","Key Name":"k","Block":"b","Value Name":"v","Value Type":"t","confidence":"7","rating":"2.5","ip":"::1","size":3,"dnsActive":"false","webLink":"w","summary":"","active":true,"activeLocked":null,"ownerId":5,"ownerName":"o","md5":"ABC","Mutex":"m","Subject":"s","Hashtag":"h","User Agent String":"u","whoisActive":false,"privateFlag":"TRUE","firstSeen":"2024-01-01T00:00:00Z","lastSeen":"y","description":"d","text":"t","address":"a","sha1":"s","sha256":"s"},{"ip":null,"confidence":null,"rating":null}]}}`, true},
		{`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{}]}}`, false},                 // an empty element
		{`{"lastModified":"2024-01-01T00:00:00Z","associatedGroups":{"data":[{"assignments":{}}]}}`, false}, // not taken
		{`{"lastModified":"2024-01-01T00:00:00Z","associatedIndicators":{"data":[{"ip":"x"}]}}`, false},     // an error
	} {
		if got := sameIndicator(t, testOptions(), []byte(tc.raw)); got != tc.fast {
			t.Errorf("fast path took %s: %v, want %v", tc.raw, got, tc.fast)
		}
	}
}
