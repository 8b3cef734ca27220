package ecs

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

func TestHashField(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{32, "md5"}, {40, "sha1"}, {64, "sha256"}, {96, "sha384"}, {128, "sha512"},
		{0, ""}, {31, ""}, {33, ""}, {56, ""}, {127, ""},
	}
	for _, tt := range tests {
		got, ok := HashField(strings.Repeat("a", tt.n))
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("HashField(len %d) = %q, %v; want %q", tt.n, got, ok, tt.want)
		}
	}
}

func TestConfidence(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{-5, "None"}, {0, "None"}, {100.0001, "None"}, {1000, "None"},
		{0.5, ""}, {0.999, ""},
		{1, "Low"}, {13.26, "Low"}, {29.999, "Low"},
		{30, "Medium"}, {31.73913043478261, "Medium"}, {69.99, "Medium"},
		{70, "High"}, {100, "High"},
	}
	for _, tt := range tests {
		if got := Confidence(tt.in); got != tt.want {
			t.Errorf("Confidence(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseExpiration(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		in       string
		want     time.Duration
		fallback bool
		err      bool
	}{
		{in: "90d", want: 90 * day},
		{in: "5d", want: 5 * day},
		{in: "50d", want: 50 * day},
		{in: "12h", want: 12 * time.Hour},
		{in: "30m", want: 30 * time.Minute},
		{in: "0d", want: 0},
		{in: "+5d", want: 5 * day},
		{in: "-1d", want: -day},
		{in: "1w", want: 90 * day, fallback: true},
		{in: "5D", want: 90 * day, fallback: true},
		{in: "1y", want: 90 * day, fallback: true},
		{in: "10s", want: 90 * day, fallback: true},
		{in: "s", want: 90 * day, fallback: true},
		{in: "1.5w", want: 90 * day, fallback: true},
		{in: "5d ", want: 90 * day, fallback: true},
		{in: "", err: true},
		{in: "d", err: true},
		{in: "1.5d", err: true},
		{in: "abcd", err: true},
		{in: " 5d", err: true},
		{in: "5 d", err: true},
		{in: "1_0d", err: true},
		{in: "0x10h", err: true},
		{in: "99999999999999999999d", err: true},
		{in: "9999999d", err: true}, // does not fit a time.Duration
	}
	for _, tt := range tests {
		got, fb, err := ParseExpiration(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("ParseExpiration(%q) = %v, %v, nil; want an error", tt.in, got, fb)
			} else if !strings.Contains(err.Error(), "<integer>d") && !strings.Contains(err.Error(), "too large") {
				t.Errorf("ParseExpiration(%q) error %q does not name the allowed form", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want || fb != tt.fallback {
			t.Errorf("ParseExpiration(%q) = %v, %v, %v; want %v, %v", tt.in, got, fb, err, tt.want, tt.fallback)
		}
	}
	if _, _, err := ParseExpiration("1.5d"); err == nil || !strings.Contains(err.Error(), `"1.5d"`) {
		t.Errorf("error does not name the value: %v", err)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string // TimeLayout, "" = rejected
	}{
		{"2022-04-26T00:42:52.707Z", "2022-04-26T00:42:52.707Z"},
		{"2022-04-26T00:42:52.7071239Z", "2022-04-26T00:42:52.707Z"},
		{"2022-04-26T00:42:52Z", "2022-04-26T00:42:52.000Z"},
		{"2022-04-26T00:42Z", "2022-04-26T00:42:00.000Z"},
		{"2022-04-26T00:42:52.707", "2022-04-26T00:42:52.707Z"},
		{"2022-04-26", "2022-04-26T00:00:00.000Z"},
		{"2022-04-26T02:42:52,5+02:00", "2022-04-26T00:42:52.500Z"},
		{"2022-04-26T02:42:52+0200", "2022-04-26T00:42:52.000Z"},
		{"2022-04-25T22:42:52-02", "2022-04-26T00:42:52.000Z"},
		{"2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"},
		{"2023-02-29T00:00:00Z", ""},
		{"2022-13-01T00:00:00Z", ""},
		{"2022-04-26T24:00:00Z", ""},
		{"2022-04-26T00:60:00Z", ""},
		{"2022-04-26 00:42:52Z", ""},
		{"2022-04-26T00:42:52.Z", ""},
		{"2022-04-26T00:42:52.1234567890Z", ""},
		{"2022-04-26T00:42:52ZZ", ""},
		{"N/A", ""},
		{"", ""},
		{"1651000000", ""},
	}
	for _, tt := range tests {
		got, ok := ParseTime(tt.in)
		if tt.want == "" {
			if ok {
				t.Errorf("ParseTime(%q) = %v; want rejected", tt.in, got)
			}
			continue
		}
		if !ok || got.Format(TimeLayout) != tt.want || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %s", tt.in, got, ok, tt.want)
		}
	}
}

func TestAppendClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{`null`, ``},
		{`""`, ``},
		{`[]`, ``},
		{`{}`, ``},
		{`[null,"",{},[[]],{"a":null}]`, ``},
		{`{"a":"","b":{"c":[]},"d":[null]}`, ``},
		{`[1,"",2]`, `[1,2]`},
		{`{"a":1,"b":null,"c":"x","d":{"e":"","f":false}}`, `{"a":1,"c":"x","d":{"f":false}}`},
		{`{"n":1e2,"m":-0,"s":"\u00e9\n"}`, `{"n":100.0,"m":0,"s":"é\n"}`},
		{`0`, `0`},
		{`true`, `true`},
	}
	var p fastjson.Parser
	for _, tt := range tests {
		v, err := p.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := AppendClean([]byte("prefix"), v)
		if ok != (tt.want != "") || string(got) != "prefix"+tt.want {
			t.Errorf("AppendClean(%s) = %s, %v; want %s", tt.in, got, ok, tt.want)
		}
	}
}
