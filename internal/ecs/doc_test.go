package ecs

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestDocAppendJSON(t *testing.T) {
	tests := []struct {
		name  string
		build func(d *Doc)
		want  string
	}{
		{
			name:  "empty",
			build: func(d *Doc) {},
			want:  `{}`,
		},
		{
			name: "nested and sorted",
			build: func(d *Doc) {
				d.Str("threat.indicator.type", "url")
				d.Str("event.kind", "enrichment")
				d.Str("threat.indicator.name", "x")
				d.Str("@timestamp", "t")
				d.Strs("event.category", []string{"threat"})
				d.Str("threat.indicator.url.path", "/p")
				d.Str("threat.feed", "f")
			},
			want: `{"@timestamp":"t","event":{"category":["threat"],"kind":"enrichment"},"threat":{"feed":"f","indicator":{"name":"x","type":"url","url":{"path":"/p"}}}}`,
		},
		{
			name: "segments sort before longer keys",
			build: func(d *Doc) {
				d.Str("a-c", "1")
				d.Str("a.b", "2")
				d.Str("ab", "3")
				d.Str("a.a", "4")
			},
			want: `{"a":{"a":"4","b":"2"},"a-c":"1","ab":"3"}`,
		},
		{
			name: "empties skipped",
			build: func(d *Doc) {
				d.Str("a.b", "")
				d.Strs("a.c", nil)
				d.Strs("a.d", []string{"", ""})
				d.Strs("a.e", []string{"", "x", ""})
				d.Raw("a.f", []byte("null"))
				d.Raw("a.g", []byte(" { } "))
				d.Raw("a.h", []byte("[]"))
				d.Raw("a.i", []byte(`""`))
				d.Time("a.j", time.Time{})
				d.Str("z.only.empty", "")
			},
			want: `{"a":{"e":["x"]}}`,
		},
		{
			name: "last value wins",
			build: func(d *Doc) {
				d.Str("a", "1")
				d.Str("b", "x")
				d.Str("a", "2")
			},
			want: `{"a":"2","b":"x"}`,
		},
		{
			name: "object wins over value",
			build: func(d *Doc) {
				d.Str("a.b.c", "deep")
				d.Str("a.b", "leaf")
				d.Str("a", "top")
			},
			want: `{"a":{"b":{"c":"deep"}}}`,
		},
		{
			name: "scalars",
			build: func(d *Doc) {
				d.Int("i", -42)
				d.Float("f", 16)
				d.Float32("f32", float32(16.451612903225808))
				d.Num("n", "31.73913043478261")
				d.Num("bad", "01")
				d.Bool("b", false)
				d.Time("t", time.Date(2022, 5, 1, 0, 42, 52, 707_999_999, time.FixedZone("x", 3600)))
				d.Raw("r", []byte(`[{"id":1}]`))
			},
			want: `{"b":false,"f":16.0,"f32":16.451612,"i":-42,"n":31.73913043478261,"r":[{"id":1}],"t":"2022-04-30T23:42:52.707Z"}`,
		},
		{
			name: "escaped keys and values",
			build: func(d *Doc) {
				d.Str("k\"ey.\n", "v\"al\\\x01\xff")
			},
			want: `{"k\"ey":{"\n":"v\"al\\\u0001\ufffd"}}`,
		},
		{
			name: "empty segments",
			build: func(d *Doc) {
				d.Str("a.", "1")
				d.Str(".b", "2")
			},
			want: `{"":{"b":"2"},"a":{"":"1"}}`,
		},
		{
			name: "join",
			build: func(d *Doc) {
				for _, k := range []string{"x", "y", "z"} {
					d.Str(d.Join("rapid7.tc.ioc", k), k)
				}
			},
			want: `{"rapid7":{"tc":{"ioc":{"x":"x","y":"y","z":"z"}}}}`,
		},
	}
	var d Doc
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second round reuses the buffers
				d.Reset()
				tt.build(&d)
				got := string(d.AppendJSON(nil))
				if got != tt.want {
					t.Fatalf("got  %s\nwant %s", got, tt.want)
				}
				if !json.Valid([]byte(got)) {
					t.Fatalf("invalid JSON: %s", got)
				}
			}
		})
	}
}

func TestDocJoinSurvivesGrowth(t *testing.T) {
	var d Doc
	var paths []string
	for i := range 200 {
		paths = append(paths, d.Join("p", string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	for i, p := range paths {
		want := "p." + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if p != want {
			t.Fatalf("path %d = %q, want %q", i, p, want)
		}
	}
}

func TestDocNoAllocs(t *testing.T) {
	var d Doc
	build := func() {
		d.Reset()
		d.Str("threat.indicator.name", "example.com")
		d.Strs("tags", []string{"a", "b"})
		d.Float32("event.risk_score", 31.73913)
		d.Time("@timestamp", time.Unix(1651000000, 0))
		d.Str(d.Join("rapid7.tc.ioc", "extra"), "x")
	}
	buf := make([]byte, 0, 1024)
	build()
	buf = d.AppendJSON(buf[:0])
	allocs := testing.AllocsPerRun(100, func() {
		build()
		buf = d.AppendJSON(buf[:0])
	})
	if allocs != 0 {
		t.Errorf("allocs per run = %v, want 0", allocs)
	}
}

func TestAppendJavaFloat(t *testing.T) {
	tests32 := []struct {
		in   float64
		want string
	}{
		{16.451612903225808, "16.451612"},
		{31.73913043478261, "31.73913"},
		{13.26086956521739, "13.26087"},
		{100, "100.0"},
		{20, "20.0"},
		{0.5, "0.5"},
		{0, "0.0"},
		{0.001, "0.001"},
		{0.0001, "1.0E-4"},
		{1e7, "1.0E7"},
		{1234567, "1234567.0"},
		{-2.5e10, "-2.5E10"},
	}
	for _, tt := range tests32 {
		got, ok := AppendJavaFloat32(nil, float32(tt.in))
		if !ok || string(got) != tt.want {
			t.Errorf("AppendJavaFloat32(%v) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	tests64 := []struct {
		in   float64
		want string
	}{
		{16, "16.0"},
		{5.4, "5.4"},
		{8.5, "8.5"},
		{31.73913043478261, "31.73913043478261"},
		{1e23, "1.0E23"},
		{1.5e-5, "1.5E-5"},
		{9999999.5, "9999999.5"},
		{12345678.9, "1.23456789E7"},
	}
	for _, tt := range tests64 {
		got, ok := AppendJavaFloat64(nil, tt.in)
		if !ok || string(got) != tt.want {
			t.Errorf("AppendJavaFloat64(%v) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	var negZero float64
	negZero = -negZero
	if got, _ := AppendJavaFloat64(nil, negZero); string(got) != "-0.0" {
		t.Errorf("-0 = %q", got)
	}
}

func TestAppendNumber(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = rejected
	}{
		{"100", "100"},
		{"-0", "0"},
		{"0", "0"},
		{"1e2", "100.0"},
		{"1.50", "1.50"},
		{"0.0012", "0.0012"},
		{"0.0009", "9.0E-4"},
		{"0.000", "0.0"},
		{"-12345678.5", "-1.23456785E7"},
		{"1234567.5", "1234567.5"},
		{"31.73913043478261", "31.73913043478261"},
		{"16.0", "16.0"},
		{"-0.0", "-0.0"},
		{"123456789012345678901234567890", "123456789012345678901234567890"},
		{"01", ""},
		{"1.", ""},
		{".5", ""},
		{"+1", ""},
		{"NaN", ""},
		{"1e400", ""},
		{"", ""},
		{"-", ""},
		{"1e", ""},
	}
	for _, tt := range tests {
		got, ok := AppendNumber(nil, tt.in)
		if tt.want == "" {
			if ok || len(got) != 0 {
				t.Errorf("AppendNumber(%q) = %q, %v; want rejected", tt.in, got, ok)
			}
			continue
		}
		if !ok || string(got) != tt.want {
			t.Errorf("AppendNumber(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"a\"b\\c", `"a\"b\\c"`},
		{"\n\r\t\b\f\x00\x1f", `"\n\r\t\b\f\u0000\u001f"`},
		{"héllo ☃ 😀", `"héllo ☃ 😀"`},
		{"bad\xffbyte\xc3", `"bad\ufffdbyte\ufffd"`},
		{"<>&\u2028", "\"<>&\u2028\""},
	}
	for _, tt := range tests {
		got := string(AppendString(nil, tt.in))
		if got != tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("AppendString(%q) is not valid JSON: %s", tt.in, got)
		}
	}
}

// TestDocStreamingMatchesSorting adds the same fields in sorted order (the
// streaming path) and in random orders (the sorting path) and checks that
// both give the same document.
func TestDocStreamingMatchesSorting(t *testing.T) {
	segs := []string{"a", "a-b", "ab", "b", "event", "kind", "x.y", "", "é", "\""}
	r := rand.New(rand.NewPCG(1, 2))
	var sorted, shuffled Doc
	for round := range 500 {
		// Distinct paths, none a parent of another.
		var paths []string
		seen := map[string]bool{}
		for len(paths) < 1+r.IntN(12) {
			n := 1 + r.IntN(3)
			p := segs[r.IntN(len(segs))]
			for range n - 1 {
				p += "." + segs[r.IntN(len(segs))]
			}
			clash := seen[p]
			for _, q := range paths {
				if isParent(q, p) || isParent(p, q) {
					clash = true
				}
			}
			if !clash {
				seen[p] = true
				paths = append(paths, p)
			}
		}
		slices.SortFunc(paths, comparePaths)
		sorted.Reset()
		for i, p := range paths {
			sorted.Int(p, int64(i))
		}
		if !sorted.streaming {
			t.Fatalf("round %d: sorted paths did not stream: %q", round, paths)
		}
		want := string(sorted.AppendJSON(nil))
		if !json.Valid([]byte(want)) {
			t.Fatalf("round %d: invalid JSON %s", round, want)
		}
		order := r.Perm(len(paths))
		shuffled.Reset()
		for _, i := range order {
			shuffled.Int(paths[i], int64(i))
		}
		if got := string(shuffled.AppendJSON(nil)); got != want {
			t.Fatalf("round %d: paths %q\nsorted   %s\nshuffled %s", round, paths, want, got)
		}
	}
}

func TestDocStreamingThenSorting(t *testing.T) {
	var d Doc
	d.Reset()
	d.Str("a.b", "1")
	d.Str("a.c", "2")
	d.Str("b", "3")
	d.Str("a.a", "0") // out of order: falls back to sorting
	d.Str("c.d", "4")
	if d.streaming {
		t.Fatal("still streaming")
	}
	want := `{"a":{"a":"0","b":"1","c":"2"},"b":"3","c":{"d":"4"}}`
	if got := string(d.AppendJSON(nil)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// A zero Doc works without Reset.
	var z Doc
	if got := string(z.AppendJSON(nil)); got != "{}" {
		t.Fatalf("zero Doc = %s", got)
	}
	z.Str("k", "v")
	if got := string(z.AppendJSON(nil)); got != `{"k":"v"}` {
		t.Fatalf("zero Doc = %s", got)
	}
}
