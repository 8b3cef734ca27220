package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ti/vigil/internal/detect/detecttest"
	"github.com/vigil-ti/vigil/internal/matcher/matchertest"
)

// testFields are the fields the extractor tests look for.
var testFields = []string{"source.ip", "destination.ip", "url.full", "email.to.address", "registry.path", "a", "a.b.c", "event.id"}

// extractAll returns the string values found per field, in line order.
func extractAll(x *extractor, line []byte) (map[string][]string, error) {
	if err := x.scan(line); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for i := range x.vals {
		v := &x.vals[i]
		if !v.str {
			continue
		}
		f := x.t.names[v.slot]
		out[f] = append(out[f], x.str(v))
		if raw := x.raw(v); raw[0] != '"' || raw[len(raw)-1] != '"' {
			return nil, fmt.Errorf("raw %q of %s is not a string", raw, f)
		}
	}
	return out, nil
}

// refExtract is the reference: encoding/json's tokens, with the dotted path
// of each string joined the way Elasticsearch reads _source.
func refExtract(line []byte, fields []string) (map[string][]string, bool) {
	if !json.Valid(line) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, false
	}
	out := map[string][]string{}
	var walk func(path string, root, inObject bool) error
	// value reads one value at path.
	var value func(path string) error
	value = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			return walk(path, false, t == '{')
		case string:
			if slices.Contains(fields, path) {
				out[path] = append(out[path], t)
			}
		}
		return nil
	}
	walk = func(path string, root, inObject bool) error {
		for dec.More() {
			p := path
			if inObject {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				if !root {
					p += "."
				}
				p += k.(string)
			}
			if err := value(p); err != nil {
				return err
			}
		}
		_, err := dec.Token() // the closing delimiter
		return err
	}
	if err := walk("", true, true); err != nil {
		panic(err) // json.Valid said it was valid
	}
	return out, true
}

func newTestExtractor() *extractor {
	return &extractor{t: newFieldTree(testFields, map[string]bool{"event.id": true})}
}

func TestExtract(t *testing.T) {
	cases := []struct {
		name string
		line string
		want map[string][]string
	}{
		{"nested", `{"source":{"ip":"10.0.0.1","port":53},"destination":{"ip":"2001:db8::1"}}`,
			map[string][]string{"source.ip": {"10.0.0.1"}, "destination.ip": {"2001:db8::1"}}},
		{"dotted keys", `{"source.ip":"10.0.0.1","url.full":"http://x/"}`,
			map[string][]string{"source.ip": {"10.0.0.1"}, "url.full": {"http://x/"}}},
		{"mixed", `{"email":{"to.address":["a@x","b@x"]},"email.to":{"address":"c@x"}}`,
			map[string][]string{"email.to.address": {"a@x", "b@x", "c@x"}}},
		{"array of objects", `{"email":[{"to":{"address":"a@x"}},{"to":[{"address":["b@x",["c@x"]]}]}]}`,
			map[string][]string{"email.to.address": {"a@x", "b@x", "c@x"}}},
		{"escapes", `{"registry":{"path":"HKLM\\Software\\Run\\x"},"url":{"full":"http:\/\/a\u00e9\ud83d\ude00/"}}`,
			map[string][]string{"registry.path": {`HKLM\Software\Run\x`}, "url.full": {"http://aé😀/"}}},
		{"escaped key", `{"sour\u0063e":{"\u0069p":"1.2.3.4"}}`, map[string][]string{"source.ip": {"1.2.3.4"}}},
		{"lone surrogate and bad utf-8", "{\"a\":\"x\\ud800y\",\"url.full\":\"\xff\xfeok\"}",
			map[string][]string{"a": {"x\uFFFDy"}, "url.full": {"\uFFFD\uFFFDok"}}},
		{"field and parent", `{"a":"top","a.b":{"c":"deep"},"a":{"b":{"c":"again"}}}`,
			map[string][]string{"a": {"top"}, "a.b.c": {"deep", "again"}}},
		{"non-strings ignored", `{"source":{"ip":12},"destination.ip":null,"url":{"full":["u",1,true,{"x":"y"}]}}`,
			map[string][]string{"url.full": {"u"}}},
		{"no fields", `{"message":"source.ip","event":{"kind":"event"}}`, map[string][]string{}},
		{"empty and odd keys", `{"":"x","source.":{"ip":"no"},".source.ip":"no","source..ip":"no"}`, map[string][]string{}},
		{"whitespace", " \t{ \"source\" : { \"ip\" : \"1.1.1.1\" } }\r\n", map[string][]string{"source.ip": {"1.1.1.1"}}},
		{"long strings", `{"url.full":"` + strings.Repeat("abcdefgh", 20) + `é` + strings.Repeat("x", 9) + `"}`,
			map[string][]string{"url.full": {strings.Repeat("abcdefgh", 20) + "é" + strings.Repeat("x", 9)}}},
	}
	x := newTestExtractor()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := extractAll(x, []byte(c.line))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
			ref, ok := refExtract([]byte(c.line), testFields)
			if !ok || fmt.Sprint(ref) != fmt.Sprint(got) {
				t.Errorf("encoding/json reads %q (valid %v)", ref, ok)
			}
		})
	}
}

func TestExtractAnyValue(t *testing.T) {
	x := newTestExtractor()
	line := []byte(`{"event":{"id":"e1"},"event.id":[7,true,null,{"k":1},"e2"]}`)
	if err := x.scan(line); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range x.vals {
		got = append(got, string(x.raw(&x.vals[i])))
	}
	if want := []string{`"e1"`, `7`, `true`, `{"k":1}`, `"e2"`}; !slices.Equal(got, want) {
		t.Errorf("event.id values %q, want %q (null is no value)", got, want)
	}
}

func TestExtractMalformed(t *testing.T) {
	cases := []struct {
		line string
		msg  string
		off  int
	}{
		{`{"a":1`, "unexpected end of line, expecting ',' or '}'", 6},
		{`{"a":1,}`, `invalid character '}', expecting a string key`, 7},
		{`{"a" 1}`, `invalid character '1', expecting ':' after a key`, 5},
		{`{"a":tru}`, `invalid character '}', expecting the literal true`, 8},
		{`{"a":01}`, `invalid character '1', expecting ',' or '}' after an object member`, 6},
		{`{"a":1.}`, `invalid character '}', expecting a digit after the decimal point`, 7},
		{`{"a":-}`, `invalid character '}', expecting a digit`, 6},
		{`{"a":1e+}`, `invalid character '}', expecting a digit in the exponent`, 8},
		{`{"a":"x\q"}`, `invalid escape 'q' in a string`, 7},
		{`{"a":"\u12g4"}`, `invalid character 'g', expecting a hexadecimal digit in a \u escape`, 10},
		{"{\"a\":\"tab\there\"}", `control character '\t' in a string`, 9},
		{`{"a":"unterminated}`, "unterminated string", 5},
		{`{"a":[1,2}`, `invalid character '}', expecting ',' or ']' after an array element`, 9},
		{`{"a":1} x`, `invalid character 'x', expecting the end of the line after the object`, 8},
		{`{"a":1}{"b":2}`, `invalid character '{', expecting the end of the line after the object`, 7},
		{`[1,2]`, "a JSON value that is not an object", 0},
		{`"event"`, "a JSON value that is not an object", 0},
		{`nope`, "invalid character 'o', expecting the literal null", 1},
		{` `, "an empty line, expecting a JSON object", 1},
		{"\xef\xbb\xbf{}", `invalid character '\xef', expecting a value`, 0},
		{strings.Repeat("[", 10001) + strings.Repeat("]", 10001), "nesting too deep", 10000},
		{strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "a JSON value that is not an object", 0},
		{`{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "nesting too deep", 10004},
	}
	x := newTestExtractor()
	for _, c := range cases {
		err := x.scan([]byte(c.line))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%.40q: error %v, want a SyntaxError", c.line, err)
			continue
		}
		if se.Msg != c.msg || se.Offset != c.off {
			t.Errorf("%.40q: %q at %d, want %q at %d", c.line, se.Msg, se.Offset, c.msg, c.off)
		}
	}
}

// FuzzExtract checks the extractor against encoding/json: it accepts
// exactly the lines that are a valid JSON object, and finds the same
// strings at the same dotted paths.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		`{"source":{"ip":"10.0.0.1"},"destination.ip":"::1","url":{"full":["a","b"]}}`,
		`{"registry":{"path":"HKLM\\Run"},"a":{"b.c":"\ud83d\ude00"},"email":[{"to":{"address":"x@y"}}]}`,
		`{"a":1.5e-3,"b":[true,false,null],"c":{}}`,
		`{"a":"\u00e9\ud800","a.b":{"c":"é"}}`,
		"{\"url.full\":\"\xff\"}",
		`{"a":1}x`, `[]`, `{"a":-0.0E+1}`,
	} {
		f.Add([]byte(s))
	}
	x := newTestExtractor()
	f.Fuzz(func(t *testing.T, line []byte) {
		got, err := extractAll(x, line)
		ref, ok := refExtract(line, testFields)
		if ok != (err == nil) {
			t.Fatalf("%q: extractor error %v, encoding/json valid object %v", line, err, ok)
		}
		if ok && fmt.Sprint(got) != fmt.Sprint(ref) {
			t.Fatalf("%q:\ngot  %q\nwant %q", line, got, ref)
		}
	})
}

// BenchmarkExtract scans generated ECS events of about 600 bytes for the
// built-in rules' fields: the extractor alone (BenchmarkMatch adds the
// lookups and the alerts).
func BenchmarkExtract(b *testing.B) {
	cfg := matchertest.DefaultConfig()
	g := matchertest.New(cfg)
	ev := detecttest.New(detecttest.Config{Indicators: g, N: 1000, HitRate: 0.01, Seed: 1, Now: cfg.Now})
	const n = 1 << 12
	lines := make([][]byte, n)
	size := 0
	for i := range lines {
		lines[i] = ev.Append(nil, uint64(i))
		size += len(lines[i])
	}
	e, err := New(Config{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size / n))
	for i := 0; b.Loop(); i++ {
		if err := e.x.scan(lines[i&(n-1)]); err != nil {
			b.Fatal(err)
		}
	}
}
