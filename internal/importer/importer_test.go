package importer

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs/ecstest"
	"github.com/vigil-ti/vigil/internal/matcher"
)

// badLines renders bad lines as "line: message" for comparison.
func badLines(bad []BadLine) []string {
	var out []string
	for _, b := range bad {
		out = append(out, b.String())
	}
	return out
}

// checkBad checks that bad holds exactly the lines want (by number) with
// messages containing the texts given.
func checkBad(t *testing.T, bad []BadLine, file string, want map[int]string) {
	t.Helper()
	got := map[int]string{}
	for _, b := range bad {
		if b.File != file {
			t.Errorf("bad line of file %q, want %q: %v", b.File, file, b)
		}
		got[b.Line] = b.Err.Error()
	}
	for n, msg := range want {
		if !strings.Contains(got[n], msg) {
			t.Errorf("line %d: got %q, want a message with %q", n, got[n], msg)
		}
	}
	for n, msg := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("line %d reported bad: %s", n, msg)
		}
	}
}

func keys(m map[string]vigil.Document) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestText(t *testing.T) {
	clock := &testClock{t: testNow}
	db := openStore(t, clock)
	im, bad := testImporter(t, db, clock, nil)
	content := "\xef\xbb\xbf# a list\r\n" + // BOM, CRLF
		"198.51.100.7\r\n" +
		"\r\n" +
		"   \t\n" +
		"EVIL.example.com.   \n" + // trailing spaces and dot
		"; a comment in DROP style\n" +
		"198.51.100.0/24 ; SBL123\n" +
		"http://evil.example.com/x # inline comment\n" +
		"two words\n" +
		"D41D8CD98F00B204E9800998ECF8427E\n" +
		"not_a_value\n" +
		"CVE-2024-3094\n" +
		"198.51.100.7\n" + // again: one live row
		"phish@example.com" // no final newline
	st := importText(t, im, db, "list.txt", content)
	want := FileStats{File: "list.txt", Format: FormatText, Read: 10, Imported: 8, Bad: 2}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	checkBad(t, *bad, "list.txt", map[int]string{9: `"two words": has white space`, 11: `"not_a_value": type not recognized`})
	inds := live(t, db, vigil.ViewIndicators)
	wantKeys := []string{
		"domain-name:evil.example.com", "email-addr:phish@example.com", "file:d41d8cd98f00b204e9800998ecf8427e",
		"ipv4-addr:198.51.100.0/24", "ipv4-addr:198.51.100.7", "url:http://evil.example.com/x",
	}
	if got := keys(inds); !slices.Equal(got, wantKeys) {
		t.Errorf("live indicators %q, want %q", got, wantKeys)
	}
	if v := live(t, db, vigil.ViewVulnerabilities); len(v) != 1 || v["CVE-2024-3094"].Type != TypeVulnerability {
		t.Errorf("live vulnerabilities %q, want CVE-2024-3094", keys(v))
	}
	for k, d := range inds {
		if !d.Timestamp.Equal(testNow) || !d.ExpiresAt.Equal(testNow.Add(90*24*time.Hour)) {
			t.Errorf("%s: timestamp %v, expires %v; want the import time and 90 days later", k, d.Timestamp, d.ExpiresAt)
		}
	}
}

func TestForcedType(t *testing.T) {
	clock := &testClock{t: testNow}
	db := openStore(t, clock)
	im, bad := testImporter(t, db, clock, func(o *Options) { o.Type = TypeDomain; o.Provider = "my list" })
	st := importText(t, im, db, "hosts.txt", "intranet\nevil.example.com\nhttp://x.example/\n")
	if st.Imported != 2 || st.Bad != 1 {
		t.Errorf("stats %+v, want 2 imported and 1 bad", st)
	}
	checkBad(t, *bad, "hosts.txt", map[int]string{3: "not a valid domain name"})
	d, ok := live(t, db, vigil.ViewIndicators)["domain-name:intranet"]
	if !ok {
		t.Fatal("intranet not imported as a domain")
	}
	m := ecstest.Decode(t, d.Source)
	for path, want := range map[string]string{"threat.indicator.provider": "my list", "threat.feed.name": "my list", "threat.indicator.url.domain": "intranet"} {
		if got, _ := ecstest.Get(m, path); got != want {
			t.Errorf("%s = %v, want %q", path, got, want)
		}
	}
	if _, err := New(Options{Store: db, Provider: "x", ExpirationDuration: "90d", Type: "ip"}); err == nil || !strings.Contains(err.Error(), "allowed: autonomous-system") {
		t.Errorf("New with type ip: %v, want an error listing the types", err)
	}
}

func TestCSV(t *testing.T) {
	clock := &testClock{t: testNow}
	db := openStore(t, clock)
	im, bad := testImporter(t, db, clock, nil)
	content := "# exported list\n" +
		"Indicator,Type,Provider,Confidence,Tags,First Seen,Last Seen,Description,extra\n" +
		"198.51.100.7,ip,Feed A,85,\"c2, botnet\",2024-05-01T00:00:00Z,2024-05-30 10:00:00,\"C2 of \"\"X\"\"\",ignored\n" +
		"evil.example.com,,,,,,,,\n" +
		"short.example.com\n" + // missing trailing columns
		"\"quoted, value\",,,,,,,,\n" +
		"10.0.0.1,,,,,,,,,too,many\n" +
		"10.0.0.2,,,maybe,,,,,\n" +
		"10.0.0.3,,,,,yesterday,,,\n" +
		"10.0.0.4,nonsense,,,,,,,\n" +
		",,,,,,,,\n" +
		"\"unterminated,,,,,,,,\n" +
		"\"a\"b,,,,,,,,\n" +
		"CVE-2024-3094,cve,,,,,,Backdoor in xz,\n"
	st := importText(t, im, db, "list.csv", content)
	want := FileStats{File: "list.csv", Format: FormatCSV, Read: 12, Imported: 4, Bad: 8}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	checkBad(t, *bad, "list.csv", map[int]string{
		6:  `"quoted, value": has white space`,
		7:  "has 11 fields, the header has 9",
		8:  `confidence: "maybe" is not a score`,
		9:  `column "First Seen": "yesterday" is not an ISO 8601 date`,
		10: `column "Type": unknown indicator type "nonsense"`,
		11: `column "Indicator" is empty`,
		12: "quoted field is not closed on this line",
		13: "text after the closing quote",
	})
	inds := live(t, db, vigil.ViewIndicators)
	d, ok := inds["ipv4-addr:198.51.100.7"]
	if !ok {
		t.Fatalf("198.51.100.7 not live: %q", keys(inds))
	}
	lastSeen := time.Date(2024, 5, 30, 10, 0, 0, 0, time.UTC)
	if !d.Timestamp.Equal(lastSeen) || !d.ExpiresAt.Equal(lastSeen.Add(90*24*time.Hour)) {
		t.Errorf("timestamp %v expires %v; want last_seen and 90 days later", d.Timestamp, d.ExpiresAt)
	}
	m := ecstest.Decode(t, d.Source)
	for path, want := range map[string]any{
		"threat.indicator.provider":    "Feed A",
		"threat.feed.name":             "Feed A",
		"threat.indicator.confidence":  "High",
		"threat.indicator.description": `C2 of "X"`,
		"threat.indicator.first_seen":  "2024-05-01T00:00:00.000Z",
		"threat.indicator.last_seen":   "2024-05-30T10:00:00.000Z",
		"@timestamp":                   "2024-05-30T10:00:00.000Z",
	} {
		if got, _ := ecstest.Get(m, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if tags, _ := ecstest.Get(m, "tags"); ecstest.Show(tags) != `["c2","botnet"]` {
		t.Errorf("tags = %s", ecstest.Show(tags))
	}
	for _, k := range []string{"domain-name:evil.example.com", "domain-name:short.example.com"} {
		if _, ok := inds[k]; !ok {
			t.Errorf("%s not live", k)
		}
	}
	v, ok := live(t, db, vigil.ViewVulnerabilities)["CVE-2024-3094"]
	if !ok {
		t.Fatal("CVE-2024-3094 not live")
	}
	if got, _ := ecstest.Get(ecstest.Decode(t, v.Source), "vulnerability.description"); got != "Backdoor in xz" {
		t.Errorf("vulnerability.description = %v", got)
	}
}

func TestCSVHeaders(t *testing.T) {
	cases := []struct {
		name, column, content string
		keys                  []string
		err                   string
	}{
		{name: "ioc column", content: "id,ioc\n1,198.51.100.7\n", keys: []string{"ipv4-addr:198.51.100.7"}},
		{name: "column flag", column: "URL", content: "id,url,status\n1,http://a.example/x,online\n", keys: []string{"url:http://a.example/x"}},
		{name: "tab separated", content: "value\ttags\nevil.example.com\tx\n", keys: []string{"domain-name:evil.example.com"}},
		{name: "semicolon separated", content: "value;tags\nevil.example.com;x\n", keys: []string{"domain-name:evil.example.com"}},
		{name: "commented header", column: "url", content: "# URLhaus\n# id,dateadded,url\n\"1\",\"2024-05-01 10:00:00\",\"http://b.example/y\"\n\"2\",\"2024-05-01 11:00:00\",\"http://c.example/z\"\n",
			keys: []string{"url:http://b.example/y", "url:http://c.example/z"}},
		{name: "no value column", content: "id,name\n1,x\n", err: "header has no value column: name one value, indicator or ioc, or give --column (columns: id, name)"},
		{name: "missing named column", column: "url", content: "id,value\n1,x\n", err: `header has no column "url" (columns: id, value)`},
		{name: "empty file", content: "", keys: nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := &testClock{t: testNow}
			db := openStore(t, clock)
			im, _ := testImporter(t, db, clock, func(o *Options) { o.Column = c.column; o.Format = FormatCSV })
			_, err := im.Read(t.Context(), "x.csv", strings.NewReader(c.content))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := keys(live(t, db, vigil.ViewIndicators)); !slices.Equal(got, c.keys) {
				t.Errorf("live %q, want %q", got, c.keys)
			}
		})
	}
}

func TestNDJSON(t *testing.T) {
	clock := &testClock{t: testNow}
	db := openStore(t, clock)
	im, bad := testImporter(t, db, clock, nil)
	lines := []string{
		// Full document, kept as given apart from the dataset.
		`{"@timestamp":"2024-05-20T08:00:00.000Z","event":{"dataset":"ti_other.ioc","kind":"enrichment","category":["threat"],"type":["indicator"]},"threat":{"indicator":{"type":"ipv4-addr","ip":"198.51.100.7","name":"198.51.100.7","confidence":"High","provider":"Other"}},"labels":{"x":"y"}}`,
		// Dotted keys, no type: detected from the typed field.
		`{"threat.indicator.url.full":"http://evil.example.com/a","threat.indicator.description":"dropper"}`,
		// Only a name.
		`{"threat":{"indicator":{"name":"evil.example.org"}}}`,
		``,
		`not json`,
		`[1,2]`,
		`{"event":{"kind":"alert"}}`,
		`{"threat":{"indicator":{"type":"bogus","name":"x"}}}`,
		`{"threat":{"indicator":{"type":"ipv4-addr","ip":"nope"}}}`,
		`{"@timestamp":"yesterday","threat":{"indicator":{"name":"198.51.100.8"}}}`,
		`{"threat":{"indicator":{"description":"no value"}}}`,
		// A hash given in its field with the file type, upper case.
		`{"threat":{"indicator":{"type":"file","file":{"hash":{"sha256":"` + strings.Repeat("AB", 32) + `"}}}}}`,
	}
	st := importText(t, im, db, "docs.ndjson", strings.Join(lines, "\n")+"\n")
	want := FileStats{File: "docs.ndjson", Format: FormatNDJSON, Read: 11, Imported: 4, Bad: 7}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	checkBad(t, *bad, "docs.ndjson", map[int]string{
		5:  "not valid JSON",
		6:  "not a JSON object but array",
		7:  "not an ECS indicator document",
		8:  `threat.indicator.type: unknown indicator type "bogus"`,
		9:  `"nope" is not an IP address`,
		10: `@timestamp: "yesterday" is not an ISO 8601 date`,
		11: "no indicator value",
	})
	inds := live(t, db, vigil.ViewIndicators)
	wantKeys := []string{"domain-name:evil.example.org", "file:" + strings.Repeat("ab", 32), "ipv4-addr:198.51.100.7", "url:http://evil.example.com/a"}
	if got := keys(inds); !slices.Equal(got, wantKeys) {
		t.Fatalf("live %q, want %q", got, wantKeys)
	}
	first := ecstest.Decode(t, inds["ipv4-addr:198.51.100.7"].Source)
	for path, want := range map[string]any{
		"event.dataset":               Dataset,
		"@timestamp":                  "2024-05-20T08:00:00.000Z",
		"threat.indicator.provider":   "Other",
		"threat.feed.name":            "vigil import",
		"threat.indicator.confidence": "High",
		"labels.x":                    "y",
		"vigil.import.deleted_at":     "2024-08-18T08:00:00.000Z",
	} {
		if got, _ := ecstest.Get(first, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	name := ecstest.Decode(t, inds["domain-name:evil.example.org"].Source)
	for path, want := range map[string]any{"threat.indicator.type": TypeDomain, "threat.indicator.url.domain": "evil.example.org", "event.kind": "enrichment"} {
		if got, _ := ecstest.Get(name, path); got != want {
			t.Errorf("name only: %s = %v, want %v", path, got, want)
		}
	}
}

// TestReimportUpdates imports a list twice, the second time later and with
// changes: each value keeps one live row, holding the newer document.
func TestReimportUpdates(t *testing.T) {
	clock := &testClock{t: testNow}
	db := openStore(t, clock)
	im, _ := testImporter(t, db, clock, nil)
	importText(t, im, db, "a.csv", "value,description\n198.51.100.7,first\nEVIL.example.com,first\n")
	clock.set(testNow.Add(time.Hour))
	// The same values, written differently.
	importText(t, im, db, "b.csv", "value,description\n::ffff:198.51.100.7,second\nevil.example.com.,second\n")
	inds := live(t, db, vigil.ViewIndicators)
	if got := keys(inds); !slices.Equal(got, []string{"domain-name:evil.example.com", "ipv4-addr:198.51.100.7"}) {
		t.Fatalf("live %q, want one row per value", got)
	}
	for k, d := range inds {
		if got, _ := ecstest.Get(ecstest.Decode(t, d.Source), "threat.indicator.description"); got != "second" {
			t.Errorf("%s: description %v, want the re-imported one", k, got)
		}
		if want := testNow.Add(time.Hour + 90*24*time.Hour); !d.ExpiresAt.Equal(want) {
			t.Errorf("%s: expires %v, want %v (renewed)", k, d.ExpiresAt, want)
		}
	}
}

// TestExpiry moves the clock past the expiration duration: the imported
// indicators leave the live view, as `vigil get indicators` reads it.
func TestExpiry(t *testing.T) {
	clock := &testClock{t: testNow}
	db := openStore(t, clock)
	im, _ := testImporter(t, db, clock, func(o *Options) { o.ExpirationDuration = "2d" })
	st := importText(t, im, db, "list.csv", "value,last_seen\nfresh.example.com,\nold.example.com,2024-05-01T00:00:00Z\n")
	if st.Imported != 2 || st.Expired != 1 {
		t.Errorf("stats %+v, want 2 imported, 1 of them expired already", st)
	}
	if got := keys(live(t, db, vigil.ViewIndicators)); !slices.Equal(got, []string{"domain-name:fresh.example.com"}) {
		t.Fatalf("live %q, want only the fresh one", got)
	}
	clock.set(testNow.Add(2*24*time.Hour - time.Millisecond))
	if n := len(live(t, db, vigil.ViewIndicators)); n != 1 {
		t.Fatalf("%d live just before expiry, want 1", n)
	}
	clock.set(testNow.Add(2 * 24 * time.Hour))
	if got := keys(live(t, db, vigil.ViewIndicators)); len(got) != 0 {
		t.Fatalf("live after expiry: %q", got)
	}
}

func TestGzipAndFormatDetection(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	cases := []struct {
		file    string
		content []byte
		format  Format
		key     string
	}{
		{"a.txt", []byte("evil.example.com\n"), FormatText, "domain-name:evil.example.com"},
		{"a.txt.gz", gz("evil.example.com\n"), FormatText, "domain-name:evil.example.com"},
		{"a.gz", gz("# x\nvalue,tags\nevil.example.com,x\n"), FormatCSV, "domain-name:evil.example.com"},
		{"a.csv.gz", gz("ioc\nevil.example.com\n"), FormatCSV, "domain-name:evil.example.com"},
		{"a.jsonl", []byte(`{"threat.indicator.name":"evil.example.com"}` + "\n"), FormatNDJSON, "domain-name:evil.example.com"},
		{"a.json", []byte(`{"threat.indicator.name":"evil.example.com"}`), FormatNDJSON, "domain-name:evil.example.com"},
		{"export", gz("\n{\"threat.indicator.name\":\"evil.example.com\"}\n"), FormatNDJSON, "domain-name:evil.example.com"},
		{"blocklist", []byte("# x\n198.51.100.7\n"), FormatText, "ipv4-addr:198.51.100.7"},
		{"data", []byte("indicator;type\n198.51.100.7;ip\n"), FormatCSV, "ipv4-addr:198.51.100.7"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			clock := &testClock{t: testNow}
			db := openStore(t, clock)
			im, bad := testImporter(t, db, clock, nil)
			path := filepath.Join(dir, c.file)
			if err := os.WriteFile(path, c.content, 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := im.File(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if st.Format != c.format || st.Imported != 1 || len(*bad) > 0 {
				t.Errorf("stats %+v, bad %q; want format %s, 1 imported", st, badLines(*bad), c.format)
			}
			if _, ok := live(t, db, vigil.ViewIndicators)[c.key]; !ok {
				t.Errorf("%s not live", c.key)
			}
		})
	}
	t.Run("format flag", func(t *testing.T) {
		clock := &testClock{t: testNow}
		db := openStore(t, clock)
		im, _ := testImporter(t, db, clock, func(o *Options) { o.Format = FormatText })
		st := importText(t, im, db, "x.csv", "value\n198.51.100.7\n")
		if st.Format != FormatText || st.Imported != 1 || st.Bad != 1 {
			t.Errorf("stats %+v: want format text, the header a bad line and the address imported", st)
		}
	})
	t.Run("corrupt gzip", func(t *testing.T) {
		clock := &testClock{t: testNow}
		db := openStore(t, clock)
		im, _ := testImporter(t, db, clock, nil)
		data := gz(strings.Repeat("evil.example.com\n", 1000))
		_, err := im.Read(t.Context(), "x.txt.gz", bytes.NewReader(data[:len(data)/2]))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("truncated gzip: %v, want a read error", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		clock := &testClock{t: testNow}
		db := openStore(t, clock)
		im, _ := testImporter(t, db, clock, nil)
		if _, err := im.File(t.Context(), filepath.Join(dir, "nope.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("missing file: %v", err)
		}
	})
}

// TestMatcherIndexesEveryType imports one value of every matchable type
// and builds a matcher index from the live view: every document must be
// indexed, and its value found.
func TestMatcherIndexesEveryType(t *testing.T) {
	clock := &testClock{t: testNow}
	db := openStore(t, clock)
	im, bad := testImporter(t, db, clock, nil)
	list := []string{
		"198.51.100.7", "2001:db8::7", "203.0.113.0/24", "2001:db8:1::/48", "evil.example.com", "пример.рф",
		"http://evil.example.net/a.php", "evil.example.org/b", "phish@example.com",
		strings.Repeat("a", 32), strings.Repeat("b", 40), strings.Repeat("c", 64), strings.Repeat("d", 96), strings.Repeat("e", 128),
		`HKLM\Software\Evil`, "CVE-2024-3094",
	}
	st := importText(t, im, db, "all.txt", strings.Join(list, "\n"))
	if st.Imported != len(list) || len(*bad) > 0 {
		t.Fatalf("stats %+v, bad %q", st, badLines(*bad))
	}
	ndj := `{"threat":{"indicator":{"type":"url","url":{"original":"http://nd.example/x"}}}}`
	importText(t, im, db, "one.ndjson", ndj)
	var b matcher.Builder
	var docs []vigil.Document
	ls, err := b.Load(t.Context(), db, func(d vigil.Document) (uint32, error) {
		docs = append(docs, d)
		return uint32(len(docs) - 1), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ls.Documents != len(list)+1 || ls.Indexed != ls.Documents || ls.Skipped != 0 || ls.Invalid != 0 {
		t.Fatalf("load %+v, want all %d documents indexed", ls, len(list)+1)
	}
	x := b.Build()
	now := testNow
	probes := []struct {
		kind  string
		value string
	}{
		{"ip", "198.51.100.7"}, {"ip", "2001:db8::7"}, {"ip", "203.0.113.99"}, {"ip", "2001:db8:1::5"},
		{"domain", "www.evil.example.com"}, {"domain", "пример.рф"},
		{"url", "http://evil.example.net/a.php"}, {"url", "http://evil.example.org/b"}, {"url", "http://nd.example/x"},
		{"email", "Phish@Example.com"},
		{"hash", strings.Repeat("A", 32)}, {"hash", strings.Repeat("b", 40)}, {"hash", strings.Repeat("c", 64)},
		{"hash", strings.Repeat("d", 96)}, {"hash", strings.Repeat("e", 128)},
		{"registry", `HKEY_LOCAL_MACHINE\SOFTWARE\Evil`}, {"cve", "cve-2024-3094"},
	}
	for _, p := range probes {
		var refs []uint32
		switch p.kind {
		case "ip":
			refs = x.MatchIPString(refs, p.value, now)
		case "domain":
			refs = x.MatchDomain(refs, p.value, true, now)
		case "url":
			refs = x.MatchURL(refs, p.value, now)
		case "email":
			refs = x.MatchEmail(refs, p.value, now)
		case "hash":
			refs = x.MatchHash(refs, p.value, now)
		case "registry":
			refs = x.MatchRegistry(refs, p.value, now)
		case "cve":
			refs = x.MatchCVE(refs, p.value, now)
		}
		if len(refs) != 1 {
			t.Errorf("%s %q: %d matches, want 1", p.kind, p.value, len(refs))
		}
	}
}

// TestWriteFailure imports into a store that is closed: the write error is
// returned and the reading stops.
func TestWriteFailure(t *testing.T) {
	clock := &testClock{t: testNow}
	db := openStore(t, clock)
	im, _ := testImporter(t, db, clock, func(o *Options) { o.PageSize = 10 })
	db.Close()
	st, err := im.Read(t.Context(), "x.txt", strings.NewReader(strings.Repeat("198.51.100.7\n", 1000)))
	if err == nil || !strings.Contains(err.Error(), "import: x.txt: store:") {
		t.Fatalf("error %v, want the store's", err)
	}
	if st.Imported != 0 || st.Read >= 1000 {
		t.Errorf("stats %+v: want nothing imported and the reading stopped early", st)
	}
	// Every page came back: a second file fails the same way, without
	// waiting for a page forever.
	if _, err := im.Read(t.Context(), "y.txt", strings.NewReader(strings.Repeat("198.51.100.7\n", 1000))); err == nil {
		t.Fatal("second import into a closed store succeeded")
	}
}
