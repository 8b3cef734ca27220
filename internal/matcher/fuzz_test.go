package matcher

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
)

// fuzzIdempotent checks that f is idempotent and returns normal input
// unchanged.
func fuzzIdempotent(f *testing.F, norm func(string) string, seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := norm(s)
		if twice := norm(once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
	})
}

func FuzzNormalizeHash(f *testing.F) {
	fuzzIdempotent(f, NormalizeHash, "0C4FE1A5B2D1B4E8D8F8A6F1C9E7B3A2", " T1AB ", "3:AbC:dEf", "")
}

func FuzzNormalizeDomain(f *testing.F) {
	fuzzIdempotent(f, NormalizeDomain, "Evil.Example.", " a . .", "ÉVIL.example", "\xc3.")
}

func FuzzNormalizeURL(f *testing.F) {
	fuzzIdempotent(f, NormalizeURL,
		"HTTP://User@WWW.Example.ORG:80/A?B#C", "evil.example:443", "http://[::1]:80", "ab:/://x",
		"1http://x", "mailto:X@Y", "Abc:@x://y", "http://a.:/", "user@", "file:///C:/x", "//x")
}

func FuzzNormalizeEmail(f *testing.F) {
	fuzzIdempotent(f, NormalizeEmail, "A@B.example", "<<a@b>> ", "Ünï@x")
}

func FuzzNormalizeRegistryPath(f *testing.F) {
	fuzzIdempotent(f, NormalizeRegistryPath,
		`HKEY_LOCAL_MACHINE\Software\X`, `\REGISTRY\MACHINE\X`, `Computer\HKCU\x`,
		`hklm\x \\ \`, `Computer\Computer\HKLM`, `registry\user`)
}

func FuzzNormalizeCVE(f *testing.F) {
	fuzzIdempotent(f, NormalizeCVE, "cve-2024-1234", " CVE-1-2 ")
}

// FuzzSelfMatch checks that every value the index accepts matches itself,
// and its normal form, by the lookup of its kind.
func FuzzSelfMatch(f *testing.F) {
	types := []string{TypeIPv4, TypeDomain, TypeURL, TypeFile, TypeEmail, TypeRegistry, TypeVulnerability}
	f.Add(uint8(0), "10.0.0.0/8")
	f.Add(uint8(0), "::ffff:1.2.3.4")
	f.Add(uint8(1), "Evil.Example.")
	f.Add(uint8(2), "evil.example:443/x")
	f.Add(uint8(2), "HTTP://X:80")
	f.Add(uint8(3), "ABCDEF0123456789ABCDEF0123456789")
	f.Add(uint8(4), "A@B")
	f.Add(uint8(5), `HKEY_USERS\x`)
	f.Add(uint8(6), "cve-1")
	now := time.Unix(1e9, 0)
	f.Fuzz(func(t *testing.T, ti uint8, v string) {
		typ := types[int(ti)%len(types)]
		var b Builder
		if err := b.Add(Indicator{Ref: 7, Type: typ, Value: v}); err != nil {
			return
		}
		x := b.Build()
		var got []uint32
		switch typ {
		case TypeIPv4:
			a, err := netip.ParsePrefix(v)
			if err != nil {
				got = x.MatchIPString(nil, v, now)
			} else {
				got = x.MatchIP(nil, a.Masked().Addr(), now)
			}
		case TypeDomain:
			got = x.MatchDomain(nil, NormalizeDomain(v), false, now)
			if g := x.MatchDomain(nil, v, true, now); !slices.Equal(g, []uint32{7}) {
				t.Fatalf("MatchDomain(%q, subdomains) = %v", v, g)
			}
		case TypeURL:
			got = x.MatchURL(nil, NormalizeURL(v), now)
		case TypeFile:
			got = x.MatchHash(nil, NormalizeHash(v), now)
		case TypeEmail:
			got = x.MatchEmail(nil, NormalizeEmail(v), now)
		case TypeRegistry:
			got = x.MatchRegistry(nil, NormalizeRegistryPath(v), now)
		case TypeVulnerability:
			got = x.MatchCVE(nil, NormalizeCVE(v), now)
		}
		if !slices.Equal(got, []uint32{7}) {
			t.Fatalf("%s %q: match of itself = %v, want [7]", typ, v, got)
		}
	})
}

// FuzzFromDocument checks that extraction never panics and that every
// value it returns can be indexed or is reported invalid.
func FuzzFromDocument(f *testing.F) {
	f.Add("ipv4-addr", `{"threat":{"indicator":{"type":"ipv4-addr","ip":"198.51.100.23","name":"198.51.100.23"}}}`)
	f.Add("file", `{"threat":{"indicator":{"file":{"hash":{"md5":"0c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2","sha1":["a","b"]}}}}}`)
	f.Add("url", `{"threat.indicator.url.full":"http://X/","threat":{"indicator.url":{"original":"http://x"}}}`)
	f.Add("", `{"vulnerability":{"id":"CVE-2024-1"}}`)
	f.Add("domain-name", `[1,2]`)
	f.Fuzz(func(t *testing.T, typ, src string) {
		for _, view := range []vigil.View{vigil.ViewIndicators, vigil.ViewVulnerabilities} {
			d := vigil.Document{View: view, Key: "k", Type: typ, Source: []byte(src)}
			inds, err := FromDocument(d)
			if err != nil {
				continue
			}
			if len(inds) == 0 {
				t.Fatalf("no values and no error for %q", src)
			}
			var b Builder
			for _, ind := range inds {
				_ = b.Add(ind)
			}
			var b2 Builder
			n, _ := b2.AddDocument(1, d)
			if n != b.Len() {
				t.Fatalf("AddDocument indexed %d values, Add %d, for %q", n, b.Len(), src)
			}
		}
	})
}

// FuzzSkim checks that reading only the relevant members of a valid
// document gives what parsing all of it gives.
func FuzzSkim(f *testing.F) {
	f.Add(`{"event":{"original":"{\"threat\":1}"},"threat":{"indicator":{"ip":"1.2.3.4"}},"x":[1,{"a":"]"}]}`)
	f.Add(`{"threat.indicator.url.full":"http://x/","threat":{"indicator.url":{"original":"http://x"}},"vulnerability":{"id":"CVE-1"}}`)
	f.Add(` { "a" : "\\" , "threat" : { "indicator" : { "name" : "a\"b" , "type" : "url" } } } `)
	f.Add(`{"thr\u0065at":{"indicator":{"ip":"1.2.3.4"}}}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, src string) {
		if fastjson.Validate(src) != nil {
			return
		}
		for _, view := range []vigil.View{vigil.ViewIndicators, vigil.ViewVulnerabilities} {
			d := vigil.Document{View: view, Key: "k", Source: []byte(src)}
			var skim, full extractor
			full.full = true
			errS, errF := skim.extract(&d), full.extract(&d)
			if (errS == nil) != (errF == nil) {
				t.Fatalf("%q: skim error %v, full error %v", src, errS, errF)
			}
			if len(skim.out) != len(full.out) {
				t.Fatalf("%q: skim %d values, full %d", src, len(skim.out), len(full.out))
			}
			for i := range skim.out {
				if skim.out[i].typ != full.out[i].typ || string(skim.out[i].val) != string(full.out[i].val) {
					t.Fatalf("%q: value %d: skim %s %q, full %s %q", src, i,
						skim.out[i].typ, skim.out[i].val, full.out[i].typ, full.out[i].val)
				}
			}
		}
	})
}
