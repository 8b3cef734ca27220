package mispfeed

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/config"
)

func TestValues(t *testing.T) {
	cases := []struct {
		name, doc, key string
		want           string // "type|value" joined by spaces
		err            string
	}{
		{"domain from url.domain", `{"threat":{"indicator":{"type":"domain-name","url":{"domain":"Login.Example.COM."}}}}`, "x", "domain|login.example.com", ""},
		{"domain from the name", `{"threat":{"indicator":{"type":"domain-name"}}}`, "evil.example", "domain|evil.example", ""},
		{"domain, one label", `{"threat":{"indicator":{"type":"domain-name","url":{"domain":"localhost"}}}}`, "x", "", "not a domain name MISP accepts"},
		{"IDN domain", `{"threat":{"indicator":{"type":["domain-name"],"url":{"domain":"bücher.example"}}}}`, "x", "domain|bücher.example", ""},
		{"url keeps its case", `{"threat":{"indicator":{"type":"url","url":{"original":"HTTP://A.example/X?y=Z","full":"http://a.example/X?y=Z"}}}}`, "x", "url|HTTP://A.example/X?y=Z", ""},
		{"url with a space", `{"threat":{"indicator":{"type":"url","url":{"original":"http://a.example/x y"}}}}`, "x", "", "white space"},
		{"ipv4", `{"threat":{"indicator":{"type":"ipv4-addr","ip":"203.0.113.7"}}}`, "x", "ip-dst|203.0.113.7", ""},
		{"ipv6 compressed", `{"threat":{"indicator":{"type":"ipv6-addr","ip":"2001:DB8:0:0:0:0:0:1"}}}`, "x", "ip-dst|2001:db8::1", ""},
		{"ipv4-mapped", `{"threat":{"indicator":{"type":"ipv6-addr","ip":"::ffff:10.0.0.1"}}}`, "x", "ip-dst|10.0.0.1", ""},
		{"cidr", `{"threat":{"indicator":{"type":"ipv4-addr","ip":"10.1.2.3/8"}}}`, "x", "ip-dst|10.0.0.0/8", ""},
		{"/32", `{"threat":{"indicator":{"type":"ipv4-addr","ip":"10.1.2.3/32"}}}`, "x", "ip-dst|10.1.2.3", ""},
		{"bad ip", `{"threat":{"indicator":{"type":"ipv4-addr","ip":"10.1.2"}}}`, "x", "", `ip "10.1.2" is not`},
		{"email", `{"threat":{"indicator":{"type":"email-addr","email":{"address":"<Billing@Example.COM>"}}}}`, "x", "email-src|billing@example.com", ""},
		{"bad email", `{"threat":{"indicator":{"type":"email-addr"}}}`, "nobody", "", "not one MISP accepts"},
		{"file, three hashes", `{"threat":{"indicator":{"type":["file"],"file":{"hash":{"md5":"F14F23E404348A5D7C89B2F515C1349B","sha1":"5c5375464a600616301d6dbd7c5eb8206edf3636","sha256":"22a39bb33942922feab33cf293ebd80c13fc638b73daeb6dee411bbf15fc865e","sha512":"ab"}}}}}`, "x",
			"md5|f14f23e404348a5d7c89b2f515c1349b sha1|5c5375464a600616301d6dbd7c5eb8206edf3636 sha256|22a39bb33942922feab33cf293ebd80c13fc638b73daeb6dee411bbf15fc865e", ""},
		{"file, one bad hash", `{"threat":{"indicator":{"type":"file","file":{"hash":{"md5":"zz","sha1":"5c5375464a600616301d6dbd7c5eb8206edf3636"}}}}}`, "x",
			"sha1|5c5375464a600616301d6dbd7c5eb8206edf3636", `md5 "zz" is not 32 hexadecimal digits`},
		{"file, name only", `{"threat":{"indicator":{"type":"file"}}}`, strings.Repeat("A", 40), "sha1|" + strings.Repeat("a", 40), ""},
		{"file, sha512 only", `{"threat":{"indicator":{"type":"file","file":{"hash":{"sha512":"ab"}}}}}`, strings.Repeat("a", 128), "", "has no md5, sha1 or sha256"},
		{"mutex", `{"threat":{"indicator":{"type":"mutex"}}}`, "x", "", "has no MISP type in the feed"},
		{"no type", `{"threat":{"indicator":{}}}`, "x", "", "has no MISP type"},
		{"no indicator", `{}`, "x", "", "no threat.indicator"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals, err := values(fastjson.MustParse(c.doc), c.key)
			var got []string
			for _, v := range vals {
				got = append(got, v.Type+"|"+v.Value)
			}
			if strings.Join(got, " ") != c.want {
				t.Errorf("values %v, want %s", got, c.want)
			}
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Errorf("error %v, want %q", err, c.err)
			}
		})
	}
}

func TestSelects(t *testing.T) {
	doc := fastjson.MustParse(`{"tags":["forwarded","APT"],"threat":{"indicator":{"type":"url","confidence":"Medium","provider":["Feed A","Feed B"]}},
		"threat_connect":{"indicator":{"tags":{"data":[{"name":"c2"},{"name":"technique-T1","technique":{"id":"T1"}}]}}}}`)
	cases := []struct {
		g    config.MISPGroup
		want bool
	}{
		{config.MISPGroup{}, true},
		{config.MISPGroup{Types: []string{"domain-name", "url"}}, true},
		{config.MISPGroup{Types: []string{"file"}}, false},
		{config.MISPGroup{Datasets: []string{"ds"}}, true},
		{config.MISPGroup{Datasets: []string{"other"}}, false},
		{config.MISPGroup{MinConfidence: "Medium"}, true},
		{config.MISPGroup{MinConfidence: "High"}, false},
		{config.MISPGroup{MinConfidence: "None"}, true},
		{config.MISPGroup{Providers: []string{"feed b"}}, true},
		{config.MISPGroup{Providers: []string{"Feed C"}}, false},
		{config.MISPGroup{Tags: []string{"apt"}}, true},
		{config.MISPGroup{Tags: []string{"C2"}}, true},
		{config.MISPGroup{Tags: []string{"technique-t1"}}, true},
		{config.MISPGroup{Tags: []string{"forwarded"}}, false}, // the integrations' own tag
		{config.MISPGroup{Types: []string{"url"}, Tags: []string{"nope"}}, false},
	}
	for i, c := range cases {
		if got := selects(&c.g, "ds", doc); got != c.want {
			t.Errorf("%d %+v: %v", i, c.g, got)
		}
	}
	// No confidence at all fails any min_confidence but None.
	bare := fastjson.MustParse(`{"threat":{"indicator":{"type":"url"}}}`)
	if selects(&config.MISPGroup{MinConfidence: "Low"}, "ds", bare) || !selects(&config.MISPGroup{MinConfidence: "None"}, "ds", bare) {
		t.Error("missing confidence")
	}
}

func TestWithinLimit(t *testing.T) {
	ev := func(n ...int) []EventMeta {
		out := make([]EventMeta, len(n))
		for i, x := range n {
			out[i].Attributes = x
		}
		return out
	}
	cases := []struct {
		events []EventMeta
		limit  int
		want   int
	}{
		{nil, 3, 0},
		{ev(3), 3, 1},
		{ev(2, 1, 1), 3, 2},
		{ev(1, 1, 1), 3, 3},
		{ev(5, 1), 3, 1}, // the newest is always listed
		{ev(1, 5, 1), 3, 1},
	}
	for _, c := range cases {
		if got := WithinLimit(c.events, c.limit); got != c.want {
			t.Errorf("%v limit %d: %d, want %d", c.events, c.limit, got, c.want)
		}
	}
}

func TestTagValue(t *testing.T) {
	for in, want := range map[string]string{`a"b\c`: "abc", "x\ny": "x y", "  ok  ": "ok", `""`: ""} {
		if got := tagValue(in); got != want {
			t.Errorf("%q: %q", in, got)
		}
	}
	if _, ok := machineTag("vigil:source", `""`); ok {
		t.Error("an empty machine tag")
	}
}

// FuzzValues checks that whatever a document holds, values never panics
// and returns only values MISP accepts for their type.
func FuzzValues(f *testing.F) {
	for _, s := range []string{
		`{"threat":{"indicator":{"type":"domain-name","url":{"domain":"a.example"}}}}`,
		`{"threat":{"indicator":{"type":["file"],"file":{"hash":{"md5":"F14F23E404348A5D7C89B2F515C1349B"}}}}}`,
		`{"threat":{"indicator":{"type":"ipv6-addr","ip":"::1/128"}}}`,
		`{"threat":{"indicator":{"type":"email-addr","email":{"address":1}}}}`,
		`{"threat":{"indicator":{"type":"url","url":{"original":["a","b"]}}},"tags":[1,null]}`,
	} {
		f.Add(s, "key")
	}
	f.Fuzz(func(t *testing.T, doc, key string) {
		v, err := fastjson.Parse(doc)
		if err != nil {
			return
		}
		vals, _ := values(v, key)
		for _, x := range vals {
			if category(x.Type) == "" || x.Value == "" || strings.ContainsFunc(x.Value, isSpaceOrControl) {
				t.Fatalf("value %+v", x)
			}
			if n, ok := hashLen[x.Type]; ok && !isHexLen(x.Value, n) {
				t.Fatalf("hash %+v", x)
			}
			if x.Type == "ip-dst" {
				if again, err := canonicalIP(x.Value); err != nil || again != x.Value {
					t.Fatalf("ip %+v: %q %v", x, again, err)
				}
			}
		}
		e := enrich(v)
		if e.LastSeen.Before(e.FirstSeen) {
			t.Fatalf("first %v after last %v", e.FirstSeen, e.LastSeen)
		}
		for _, tag := range e.tags() {
			if strings.Count(tag.Name, `"`) != 0 && strings.Count(tag.Name, `"`) != 2 {
				t.Fatalf("tag %q", tag.Name)
			}
		}
		_ = fmt.Sprint(e.comment())
	})
}
