package ecs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"http://example.com/test/abc", "example.com/", "https://u:p@[::1]:8080/a.b?c#d",
		"http://exa mple.com/%zz", "mailto:x@y", "//h/p", "http://my_host/", "", "url:http://x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u := ParseURL(s)
		if u.Original != s {
			t.Fatalf("Original = %q", u.Original)
		}
		if !u.OK && u != (URLParts{Original: s, Port: -1}) {
			t.Fatalf("failed parse sets more than Original: %+v", u)
		}
		if !strings.HasSuffix(u.Path, u.Extension) {
			t.Fatalf("extension %q is not a suffix of path %q", u.Extension, u.Path)
		}
		if u.Port < -1 {
			t.Fatalf("port %d", u.Port)
		}
		if u.Username != "" || u.Password != "" {
			if u.UserInfo != u.Username+":"+u.Password {
				t.Fatalf("user info %q vs %q:%q", u.UserInfo, u.Username, u.Password)
			}
		}
	})
}

func FuzzParseExpiration(f *testing.F) {
	for _, s := range []string{"90d", "5h", "30m", "1w", "", "d", "1.5d", " 5d", "-3d", "99999999999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, fallback, err := ParseExpiration(s)
		switch {
		case err != nil:
			if d != 0 || fallback {
				t.Fatalf("error with d=%v fallback=%v", d, fallback)
			}
			if !strings.Contains(err.Error(), "<integer>d") && !strings.Contains(err.Error(), "too large") {
				t.Fatalf("error without the allowed form: %v", err)
			}
		case fallback:
			if d != DefaultExpiration {
				t.Fatalf("fallback d = %v", d)
			}
			if c := s[len(s)-1]; c == 'd' || c == 'h' || c == 'm' {
				t.Fatalf("fallback for a known unit: %q", s)
			}
		default:
			if c := s[len(s)-1]; c != 'd' && c != 'h' && c != 'm' {
				t.Fatalf("parsed an unknown unit: %q", s)
			}
		}
	})
}

func FuzzDocJSON(f *testing.F) {
	f.Add("a.b", "value", "a.b.c", "x", `{"k":[1,null,""]}`, 1.5, int64(7))
	f.Add("", "", ".", "\xff", `null`, -0.0, int64(-1))
	f.Add("event.kind", "enrichment", "event", "\"", `[{}]`, 1e300, int64(0))
	f.Fuzz(func(t *testing.T, p1, v1, p2, v2, raw string, fl float64, n int64) {
		var d Doc
		var p fastjson.Parser
		for round := 0; round < 2; round++ {
			d.Reset()
			d.Str(p1, v1)
			d.Strs(p2, []string{v1, v2, ""})
			d.Str(d.Join(p2, v1), v2)
			d.Float(p1+".f", fl)
			d.Float32(p2+".f32", float32(fl))
			d.Int(p1, n)
			d.Num(p2, v2)
			d.Bool(v1, true)
			d.Time(v2, time.Unix(n%1e10, 0))
			if v, err := p.Parse(raw); err == nil {
				if b, ok := AppendClean(nil, v); ok {
					if !json.Valid(b) {
						t.Fatalf("AppendClean(%q) = invalid %q", raw, b)
					}
					d.Raw(p1+"."+p2, b)
				}
			}
			out := d.AppendJSON(nil)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %q", out)
			}
		}
	})
}
