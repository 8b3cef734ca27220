package matcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
)

// indicatorDoc returns a live indicator document of type typ whose
// threat.indicator object is ti (JSON members).
func indicatorDoc(typ, key, ti string) vigil.Document {
	return vigil.Document{
		Dataset:   "ti_test.ioc",
		View:      vigil.ViewIndicators,
		Key:       key,
		Type:      typ,
		ExpiresAt: testLater,
		Source: fmt.Appendf(nil, `{"@timestamp":"2024-05-30T08:15:42.123Z","event":{"kind":"enrichment"},`+
			`"rapid7":{"tc":{"ioc":{"value":"ignored.example","file":{"hash":"ffff"}}}},`+
			`"threat":{"indicator":{"type":%q,"name":%q%s}}}`, typ, key, ti),
	}
}

type tv struct{ typ, value string }

func TestFromDocument(t *testing.T) {
	md5 := "0c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2"
	sha1 := "da39a3ee5e6b4b0d3255bfef95601890afd80709"
	sha384 := "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b"
	cases := []struct {
		name string
		doc  vigil.Document
		want []tv
		err  error
	}{
		{"ipv4", indicatorDoc("ipv4-addr", "198.51.100.23", `,"ip":"198.51.100.23","geo":{"country_iso_code":"NL"}`),
			[]tv{{TypeIPv4, "198.51.100.23"}}, nil},
		{"ipv6", indicatorDoc("ipv6-addr", "2001:db8:85a3::8a2e:370:7334", `,"ip":"2001:db8:85a3::8a2e:370:7334"`),
			[]tv{{TypeIPv6, "2001:db8:85a3::8a2e:370:7334"}}, nil},
		{"cidr in name only", indicatorDoc("ipv4-addr", "10.0.0.0/8", ``),
			[]tv{{TypeIPv4, "10.0.0.0/8"}}, nil},
		{"ip array", indicatorDoc("ipv4-addr", "x", `,"ip":["192.0.2.1","192.0.2.2",7]`),
			[]tv{{TypeIPv4, "192.0.2.1"}, {TypeIPv4, "192.0.2.2"}}, nil},
		{"domain", indicatorDoc("domain-name", "login-portal.example.com", `,"url":{"domain":"login-portal.example.com"}`),
			[]tv{{TypeDomain, "login-portal.example.com"}}, nil},
		{"domain from name", indicatorDoc("domain-name", "evil.example", ``),
			[]tv{{TypeDomain, "evil.example"}}, nil},
		{"domain with ip (MISP domain|ip)", indicatorDoc("domain-name", "evil.example", `,"url":{"domain":"evil.example"},"ip":"192.0.2.9"`),
			[]tv{{TypeIPv4, "192.0.2.9"}, {TypeDomain, "evil.example"}}, nil},
		{"url: full and original equal, domain not a domain indicator",
			indicatorDoc("url", "https://www.example.org:8443/a?b#c", `,"url":{"domain":"www.example.org","full":"https://www.example.org:8443/a?b#c","original":"https://www.example.org:8443/a?b#c","scheme":"https"}`),
			[]tv{{TypeURL, "https://www.example.org:8443/a?b#c"}}, nil},
		{"url: full and original equal in normal form",
			indicatorDoc("url", "x", `,"url":{"full":"HTTP://Evil.Example:80/A","original":"http://evil.example/A"}`),
			[]tv{{TypeURL, "HTTP://Evil.Example:80/A"}}, nil},
		{"url: original only, no scheme", indicatorDoc("url", "files.example.org/a b.zip", `,"url":{"original":"files.example.org/a b.zip"}`),
			[]tv{{TypeURL, "files.example.org/a b.zip"}}, nil},
		{"file: every hash", indicatorDoc("file", md5, `,"file":{"hash":{"md5":"`+md5+`","sha1":"`+sha1+`","ssdeep":"3:a:b","tlsh":""},"name":"evil.exe"}`),
			[]tv{{TypeFile, md5}, {TypeFile, sha1}, {TypeFile, "3:a:b"}}, nil},
		{"file: hash named but not in file.hash", indicatorDoc("file", sha384, ``),
			[]tv{{TypeFile, sha384}}, nil},
		{"file: odd length, no name (Rapid7)", indicatorDoc("file", "", ``), nil, ErrNotIndicator},
		{"file: no hash, name is not a digest", indicatorDoc("file", "evil.exe", `,"file":{"name":"evil.exe"}`), nil, ErrNoValue},
		{"email", indicatorDoc("email-addr", "billing@example.com", `,"email":{"address":"billing@example.com"}`),
			[]tv{{TypeEmail, "billing@example.com"}}, nil},
		{"registry", indicatorDoc("windows-registry-key", `HKLM\\Software\\Run\\x`, `,"registry":{"path":"HKEY_LOCAL_MACHINE\\Software\\Run\\x","hive":"HKLM"}`),
			[]tv{{TypeRegistry, `HKEY_LOCAL_MACHINE\Software\Run\x`}}, nil},
		{"unsupported type", indicatorDoc("mac-addr", "00:00:5e:00:53:01", ``), nil, ErrUnsupportedType},
		{"unsupported type with an ip", indicatorDoc("autonomous-system", "AS64496", `,"ip":"192.0.2.3"`),
			[]tv{{TypeIPv4, "192.0.2.3"}}, nil},
		{"dotted keys", vigil.Document{View: vigil.ViewIndicators, Key: "k", ExpiresAt: testLater,
			Source: []byte(`{"threat.indicator.type":"url","threat":{"indicator.url":{"full":"http://a.example/"}},"threat.indicator.file.hash.md5":"` + md5 + `"}`)},
			[]tv{{TypeFile, md5}, {TypeURL, "http://a.example/"}}, nil},
		{"type from the source", vigil.Document{View: vigil.ViewIndicators, Key: "evil.example", ExpiresAt: testLater,
			Source: []byte(`{"threat":{"indicator":{"type":"domain-name","url":{"domain":"evil.example"}}}}`)},
			[]tv{{TypeDomain, "evil.example"}}, nil},
		{"vulnerability", vigil.Document{View: vigil.ViewVulnerabilities, Key: "CVE-2024-12345", Type: "Critical", ExpiresAt: testLater,
			Source: []byte(`{"vulnerability":{"id":"CVE-2024-12345","enumeration":"CVE"},"threat":{"indicator":{"ip":"1.2.3.4"}}}`)},
			[]tv{{TypeVulnerability, "CVE-2024-12345"}}, nil},
		{"vulnerability from key", vigil.Document{View: vigil.ViewVulnerabilities, Key: "CVE-2024-1", ExpiresAt: testLater, Source: []byte(`{}`)},
			[]tv{{TypeVulnerability, "CVE-2024-1"}}, nil},
		{"alert", vigil.Document{View: vigil.ViewAlerts, Key: "a1", Source: []byte(`{}`)}, nil, ErrNotIndicator},
		{"pipeline error", vigil.Document{View: vigil.ViewIndicators, Key: "k", Error: "bad", Source: []byte(`{}`)}, nil, ErrNotIndicator},
		{"not json", vigil.Document{View: vigil.ViewIndicators, Key: "k", Type: "url", Source: []byte(`{`)}, nil, ErrNoValue},
		{"not an object", vigil.Document{View: vigil.ViewIndicators, Key: "1.2.3.4", Type: "ipv4-addr", Source: []byte(`[]`)},
			[]tv{{TypeIPv4, "1.2.3.4"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inds, err := FromDocument(c.doc)
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			var got []tv
			for _, ind := range inds {
				if ind.Ref != 0 || !ind.ExpiresAt.Equal(c.doc.ExpiresAt) {
					t.Errorf("Indicator %+v: want Ref 0 and the document's ExpiresAt", ind)
				}
				got = append(got, tv{ind.Type, ind.Value})
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// fakeStore serves live documents from memory.
type fakeStore struct {
	vigil.Store
	docs []vigil.Document
	err  error // returned by Live after the documents
}

func (s *fakeStore) Live(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error {
	for _, d := range s.docs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.View != f.View {
			continue
		}
		// The store reuses its buffers between documents.
		d.Source = append([]byte(nil), d.Source...)
		if err := fn(d); err != nil {
			return err
		}
		clear(d.Source)
	}
	return s.err
}

func TestLoad(t *testing.T) {
	expired := indicatorDoc("domain-name", "old.example", ``)
	expired.ExpiresAt = testNow
	s := &fakeStore{docs: []vigil.Document{
		indicatorDoc("ipv4-addr", "198.51.100.23", `,"ip":"198.51.100.23"`),
		indicatorDoc("mac-addr", "00:00:5e:00:53:01", ``),
		indicatorDoc("file", "x", `,"file":{"hash":{"md5":"0c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2","sha1":"not hex but fine"}}`),
		indicatorDoc("ipv4-addr", "bad", `,"ip":["198.51.100.300","192.0.2.1"]`),
		expired,
		{View: vigil.ViewVulnerabilities, Dataset: "ti_test.vulnerability", Key: "CVE-2024-12345", Source: []byte(`{"vulnerability":{"id":"CVE-2024-12345"}}`)},
	}}
	var keys []string
	var b Builder
	st, err := b.Load(t.Context(), s, func(d vigil.Document) (uint32, error) {
		keys = append(keys, d.Key)
		return uint32(len(keys) - 1), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (LoadStats{Documents: 6, Indexed: 5, Indicators: 6, Skipped: 1, Invalid: 1}); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	if want := []string{"198.51.100.23", "x", "bad", "old.example", "CVE-2024-12345"}; !slices.Equal(keys, want) {
		t.Errorf("refs given to %q, want %q", keys, want)
	}
	x := b.Build()
	for _, c := range []struct {
		name string
		got  []uint32
		want []uint32
	}{
		{"ip", x.MatchIPString(nil, "198.51.100.23", testNow), []uint32{0}},
		{"md5", x.MatchHash(nil, "0C4FE1A5B2D1B4E8D8F8A6F1C9E7B3A2", testNow), []uint32{1}},
		{"sha1 field that is not a digest", x.MatchHash(nil, "not hex but fine", testNow), []uint32{1}},
		{"valid ip of a document with an invalid one", x.MatchIPString(nil, "192.0.2.1", testNow), []uint32{2}},
		{"expired", x.MatchDomain(nil, "old.example", false, testNow), nil},
		{"before expiry", x.MatchDomain(nil, "old.example", false, testNow.Add(-time.Second)), []uint32{3}},
		{"cve", x.MatchCVE(nil, "cve-2024-12345", testNow), []uint32{4}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	docs := []vigil.Document{indicatorDoc("domain-name", "a.example", ``)}
	refErr := errors.New("ref table full")
	var b Builder
	_, err := b.Load(t.Context(), &fakeStore{docs: docs}, func(vigil.Document) (uint32, error) { return 0, refErr })
	if !errors.Is(err, refErr) {
		t.Errorf("ref error: got %v", err)
	}
	storeErr := errors.New("disk on fire")
	_, err = b.Load(t.Context(), &fakeStore{err: storeErr}, func(vigil.Document) (uint32, error) { return 0, nil })
	if !errors.Is(err, storeErr) {
		t.Errorf("store error: got %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = b.Load(ctx, &fakeStore{docs: docs}, func(vigil.Document) (uint32, error) { return 0, nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestAddDocument(t *testing.T) {
	var b Builder
	n, err := b.AddDocument(5, indicatorDoc("ipv4-addr", "x", `,"ip":["198.51.100.300","192.0.2.1"]`))
	if n != 1 || !errors.Is(err, ErrInvalidValue) {
		t.Errorf("AddDocument = %d, %v; want 1 and ErrInvalidValue", n, err)
	}
	n, err = b.AddDocument(6, indicatorDoc("mac-addr", "x", ``))
	if n != 0 || !errors.Is(err, ErrUnsupportedType) {
		t.Errorf("AddDocument = %d, %v; want 0 and ErrUnsupportedType", n, err)
	}
	x := b.Build()
	if got := x.MatchIPString(nil, "192.0.2.1", testNow); !slices.Equal(got, []uint32{5}) {
		t.Errorf("match = %v", got)
	}
	if s := x.Stats(); s.Rejected != 2 {
		t.Errorf("Rejected = %d, want 2", s.Rejected)
	}
}
