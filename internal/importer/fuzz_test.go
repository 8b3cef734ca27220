package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// FuzzDetect checks that detection never panics, gives a known type, and
// is idempotent: the normal form detects as the same type and key.
func FuzzDetect(f *testing.F) {
	for _, s := range []string{"198.51.100.7", "2001:db8::/32", "evil.example.com", "http://a.example/x", "a@b.example",
		strings.Repeat("a", 64), `HKLM\Software\Run`, "CVE-2024-3094", "hxxp://a[.]b/c", "пример.рф", "1.2.3.4:80/x", "[::1]:80/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var n normalizer
		v, err := n.detect(strings.TrimSpace(s))
		if err != nil {
			return
		}
		if !slices.Contains(Types, v.typ) || v.name == "" || v.key == "" {
			t.Fatalf("detect(%q) = %+v", s, v)
		}
		name, typ, key := strings.Clone(v.name), v.typ, strings.Clone(v.key)
		var n2 normalizer
		w, err := n2.detect(name)
		if err != nil {
			t.Fatalf("detect(%q) = %s %q, but its name does not detect: %v", s, typ, name, err)
		}
		if w.typ != typ || w.key != key {
			t.Fatalf("detect(%q) = %s key %q; detect(%q) = %s key %q", s, typ, key, name, w.typ, w.key)
		}
		// Forcing the detected type accepts the value too.
		if _, err := n2.normalize(typ, name); err != nil {
			t.Fatalf("normalize(%s, %q): %v", typ, name, err)
		}
	})
}

// FuzzBuild builds a document from a value and CSV-like metadata: each
// document must be valid JSON carrying its key's value.
func FuzzBuild(f *testing.F) {
	f.Add("198.51.100.7", "", "Feed", "80", "2024-05-01T00:00:00Z")
	f.Add("evil.example.com", "domain-name", "", "High", "")
	f.Add("x\"y", "mutex", "a\\b", "", "")
	f.Add("CVE-2024-1", "vulnerability", "", "", "")
	f.Fuzz(func(t *testing.T, val, typ, provider, conf, seen string) {
		b := builder{provider: "vigil import", expStr: "90d", expDur: 90 * 24 * time.Hour}
		b.start("f.txt", testNow)
		rec := record{value: strings.TrimSpace(val), provider: provider, confidence: conf}
		if typ != "" {
			var err error
			if rec.typ, err = ParseType(typ, true); err != nil {
				return
			}
		}
		if ts, err := time.Parse(time.RFC3339, seen); err == nil {
			rec.lastSeen = ts
		}
		var p page
		p.now = testNow
		if err := b.build(&rec, &p); err != nil {
			return
		}
		if len(p.docs) != 1 {
			t.Fatalf("%d documents", len(p.docs))
		}
		d := p.docs[0]
		v, err := fastjson.ParseBytes(d.Source)
		if err != nil {
			t.Fatalf("source is not JSON: %v\n%s", err, d.Source)
		}
		if d.Key == "" || d.Type == "" || d.ExpiresAt.IsZero() {
			t.Fatalf("document %+v", d)
		}
		if string(v.GetStringBytes("event", "dataset")) != Dataset {
			t.Fatalf("event.dataset of %s", d.Source)
		}
	})
}

// fuzzRead imports content with a real store shared by the fuzz run and
// checks the counts: every record read is imported or reported bad, with
// a line number within the input.
func fuzzRead(f *testing.F, format Format, name string) {
	clock := &testClock{t: testNow}
	db := openStore(f, clock)
	f.Fuzz(func(t *testing.T, content []byte) {
		var bad []BadLine
		im, err := New(Options{Store: db, Clock: clock, Provider: "p", ExpirationDuration: "90d", Format: format,
			OnBad: func(b BadLine) { bad = append(bad, b) }})
		if err != nil {
			t.Fatal(err)
		}
		st, err := im.Read(t.Context(), name, bytes.NewReader(content))
		if err != nil && format != FormatCSV {
			t.Fatalf("read: %v", err)
		}
		if st.Read != st.Imported+st.Bad || len(bad) != st.Bad {
			t.Fatalf("stats %+v with %d bad lines reported", st, len(bad))
		}
		lines := bytes.Count(content, []byte{'\n'}) + 1
		for _, b := range bad {
			if b.Line < 1 || b.Line > lines || b.Err == nil {
				t.Fatalf("bad line %+v of %d lines", b, lines)
			}
		}
	})
}

// addSeeds adds the golden inputs of ext as seeds.
func addSeeds(f *testing.F, ext string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*"+ext))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzText(f *testing.F) {
	addSeeds(f, ".txt")
	f.Add([]byte("\xef\xbb\xbf1.2.3.4\r\n# c\n\n  evil.example.com ; x\n"))
	fuzzRead(f, FormatText, "f.txt")
}

func FuzzCSV(f *testing.F) {
	addSeeds(f, ".csv")
	f.Add([]byte("value,tags\n\"a,b\",c\n\"x\"\"y\",\n\"open\n"))
	fuzzRead(f, FormatCSV, "f.csv")
}

func FuzzNDJSON(f *testing.F) {
	addSeeds(f, ".ndjson")
	f.Add([]byte(`{"threat":{"indicator":{"name":"a.example","threat.indicator.ip":["1.2.3.4"]}}}` + "\n{}\n[]\n"))
	fuzzRead(f, FormatNDJSON, "f.ndjson")
}
