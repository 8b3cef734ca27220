package matcher

import (
	"errors"
	"hash/maphash"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/vigil-ti/vigil/internal/prefetch"
)

var (
	testNow   = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	testLater = testNow.Add(24 * time.Hour)
)

// buildIndex builds an Index of inds, failing the test on any Add error.
func buildIndex(t testing.TB, inds ...Indicator) *Index {
	t.Helper()
	var b Builder
	for _, ind := range inds {
		if err := b.Add(ind); err != nil {
			t.Fatalf("Add(%+v): %v", ind, err)
		}
	}
	return b.Build()
}

func ind(ref uint32, typ, v string) Indicator {
	return Indicator{Ref: ref, Type: typ, Value: v, ExpiresAt: testLater}
}

type matchCase struct {
	name  string
	query string
	want  []uint32
}

func checkMatches(t *testing.T, match func([]uint32, string) []uint32, cases []matchCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := match(nil, c.query)
			if !slices.Equal(got, c.want) {
				t.Errorf("match(%q) = %v, want %v", c.query, got, c.want)
			}
		})
	}
}

func TestMatchIP(t *testing.T) {
	x := buildIndex(t,
		ind(1, TypeIPv4, "198.51.100.23"),
		ind(2, TypeIPv4, "10.0.0.0/8"),
		ind(3, TypeIPv4, "10.1.0.0/16"),
		ind(4, TypeIPv4, "10.1.2.0/24"),
		ind(5, TypeIPv4, "10.1.2.3/32"), // a host
		ind(6, TypeIPv4, "10.1.2.3"),
		ind(7, TypeIPv6, "2001:db8:85a3::8a2e:370:7334"),
		ind(8, TypeIPv6, "2001:db8::/32"),
		ind(9, TypeIPv6, "2001:db8:85a3::/48"),
		ind(10, TypeIPv6, "2001:db8:85a3::1/128"),
		ind(11, TypeIPv6, "::ffff:192.0.2.1"),       // v4-mapped host is IPv4
		ind(12, TypeIPv6, "::ffff:203.0.113.0/120"), // v4-mapped range is IPv4 /24
		ind(13, TypeIPv4, "172.16.5.4/12"),          // host bits masked: 172.16.0.0/12
		ind(14, TypeIPv6, "fe80::1%eth0"),           // zone dropped
		ind(15, TypeIPv4, "10.1.0.0/16"),            // same range, another source
	)
	checkMatches(t, func(dst []uint32, q string) []uint32 { return x.MatchIPString(dst, q, testNow) }, []matchCase{
		{"host", "198.51.100.23", []uint32{1}},
		{"host miss", "198.51.100.24", nil},
		{"host then every range, longest first", "10.1.2.3", []uint32{5, 6, 4, 3, 15, 2}},
		{"ranges only", "10.1.2.4", []uint32{4, 3, 15, 2}},
		{"outer range", "10.200.0.1", []uint32{2}},
		{"ipv6 host and ranges", "2001:db8:85a3::8a2e:370:7334", []uint32{7, 9, 8}},
		{"ipv6 /128", "2001:db8:85a3::1", []uint32{10, 9, 8}},
		{"ipv6 outer", "2001:db8:ffff::1", []uint32{8}},
		{"ipv6 miss", "2001:db9::1", nil},
		{"v4 event, mapped indicator", "192.0.2.1", []uint32{11}},
		{"mapped event, v4 indicator", "::ffff:198.51.100.23", []uint32{1}},
		{"mapped event, mapped range", "::ffff:203.0.113.77", []uint32{12}},
		{"v4 event, mapped range", "203.0.113.77", []uint32{12}},
		{"masked range", "172.31.255.255", []uint32{13}},
		{"zone ignored", "fe80::1%eth1", []uint32{14}},
		{"zone-free query", "fe80::1", []uint32{14}},
		{"not an address", "10.1.2", nil},
		{"empty", "", nil},
	})
}

func TestMatchIPZeroAndFullPrefixes(t *testing.T) {
	x := buildIndex(t,
		ind(1, TypeIPv4, "0.0.0.0/0"),
		ind(2, TypeIPv6, "::/0"),
		ind(3, TypeIPv4, "192.0.2.7/32"),
		ind(4, TypeIPv6, "2001:db8::7/128"),
		ind(5, TypeIPv4, "192.0.2.0/31"),
	)
	checkMatches(t, func(dst []uint32, q string) []uint32 { return x.MatchIPString(dst, q, testNow) }, []matchCase{
		{"v4 /0", "8.8.8.8", []uint32{1}},
		{"v6 /0", "2001:4860::8888", []uint32{2}},
		{"v4 /32 then /31 then /0", "192.0.2.7", []uint32{3, 1}},
		{"v4 /31", "192.0.2.1", []uint32{5, 1}},
		{"v6 /128 then /0", "2001:db8::7", []uint32{4, 2}},
		// An IPv6 range does not contain IPv4 addresses, even ::/0.
		{"v4 not in ::/0", "::ffff:8.8.8.8", []uint32{1}},
	})
	if got := x.MatchIP(nil, netip.Addr{}, testNow); got != nil {
		t.Errorf("MatchIP(invalid) = %v", got)
	}
}

func TestMatchHash(t *testing.T) {
	const (
		md5    = "0c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2"
		sha1   = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
		sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
		ssdeep = "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C"
	)
	sha384 := strings.Repeat("38b060a751ac9638", 6)
	sha512 := strings.Repeat("cf83e1357eefb8bd", 8)
	x := buildIndex(t,
		ind(1, TypeFile, md5),
		ind(2, TypeFile, strings.ToUpper(sha1)),
		ind(3, TypeFile, sha256),
		ind(4, TypeFile, sha384),
		ind(5, TypeFile, sha512),
		ind(6, TypeFile, ssdeep),
		ind(7, TypeFile, "deadbeefcafe"),
		ind(8, TypeFile, md5), // another source
	)
	checkMatches(t, func(dst []uint32, q string) []uint32 { return x.MatchHash(dst, q, testNow) }, []matchCase{
		{"md5, two sources", md5, []uint32{1, 8}},
		{"md5 upper case", strings.ToUpper(md5), []uint32{1, 8}},
		{"sha1 indexed upper", sha1, []uint32{2}},
		{"sha256", sha256, []uint32{3}},
		{"sha256 padded", " " + sha256 + "\n", []uint32{3}},
		{"sha384", strings.ToUpper(sha384), []uint32{4}},
		{"sha512", sha512, []uint32{5}},
		{"ssdeep exact", ssdeep, []uint32{6}},
		{"ssdeep case matters", strings.ToLower(ssdeep), nil},
		{"odd length hex", "DEADBEEFCAFE", []uint32{7}},
		{"md5 miss", "1c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2", nil},
		{"md5-length non-hex", "zc4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2", nil},
		{"empty", "", nil},
	})
}

func TestMatchDomain(t *testing.T) {
	x := buildIndex(t,
		ind(1, TypeDomain, "evil.example"),
		ind(2, TypeDomain, "B.Evil.Example."),
		ind(3, TypeDomain, "other.example"),
		ind(4, TypeDomain, "evil.example"),
	)
	exact := func(dst []uint32, q string) []uint32 { return x.MatchDomain(dst, q, false, testNow) }
	checkMatches(t, exact, []matchCase{
		{"exact", "evil.example", []uint32{1, 4}},
		{"case and trailing dot", "EVIL.Example.", []uint32{1, 4}},
		{"subdomain not matched", "a.b.evil.example", nil},
		{"parent not matched", "example", nil},
		{"suffix is not a subdomain", "notevil.example", nil},
		{"empty", "", nil},
	})
	sub := func(dst []uint32, q string) []uint32 { return x.MatchDomain(dst, q, true, testNow) }
	checkMatches(t, sub, []matchCase{
		{"exact", "evil.example", []uint32{1, 4}},
		{"most specific first", "a.b.evil.example", []uint32{2, 1, 4}},
		{"one level", "www.evil.example", []uint32{1, 4}},
		{"suffix is not a subdomain", "notevil.example", nil},
		{"upper case subdomain", "X.OTHER.EXAMPLE", []uint32{3}},
		{"dot only", ".", nil},
	})

	// Parents of every depth, including a bare top-level domain and names
	// of more than 63 labels.
	deep := strings.Repeat("l.", 70) + "example"
	y := buildIndex(t, ind(1, TypeDomain, "example"), ind(2, TypeDomain, "a..example"),
		ind(3, TypeDomain, deep), ind(4, TypeDomain, "l."+deep))
	checkMatches(t, func(dst []uint32, q string) []uint32 { return y.MatchDomain(dst, q, true, testNow) }, []matchCase{
		{"bare tld", "www.evil.example", []uint32{1}},
		{"empty label", "x.a..example", []uint32{2, 1}},
		{"deep", "x.l." + deep, []uint32{4, 3, 1}},
		{"deep exact", deep, []uint32{3, 1}},
	})
}

func TestMatchURL(t *testing.T) {
	x := buildIndex(t,
		ind(1, TypeURL, "https://user:secret@www.example.org:8443/download/payload.exe?id=42&x=%7E#top"),
		ind(2, TypeURL, "HTTP://Evil.Example:80/Login.PHP"),
		ind(3, TypeURL, "malicious.example.net/landing/"), // no scheme, as feeds write them
		ind(4, TypeURL, "https://files.example.org"),
		ind(5, TypeURL, "http://files.example.org/a b.zip"),
		ind(6, TypeURL, "ftp://ftp.example.org:21/x"),
		ind(7, TypeURL, "https://malicious.example.net/landing/"),
	)
	// The same cases through PrepareURL and MatchURLKeys, with one URLKeys
	// reused from case to case.
	var keys URLKeys
	var pf prefetch.Addrs
	for name, match := range map[string]func([]uint32, string) []uint32{
		"MatchURL": func(dst []uint32, q string) []uint32 { return x.MatchURL(dst, q, testNow) },
		"MatchURLKeys": func(dst []uint32, q string) []uint32 {
			x.PrepareURL(&pf, q, &keys)
			pf.Fetch()
			return x.MatchURLKeys(dst, &keys, testNow)
		},
	} {
		t.Run(name, func(t *testing.T) { checkURLMatches(t, match) })
	}
}

func checkURLMatches(t *testing.T, match func([]uint32, string) []uint32) {
	checkMatches(t, match, []matchCase{
		{"full url", "https://user:secret@WWW.EXAMPLE.ORG:8443/download/payload.exe?id=42&x=%7E#top", []uint32{1}},
		{"default port and case", "http://evil.example/Login.PHP", []uint32{2}},
		{"explicit default port", "http://EVIL.example:80/Login.PHP", []uint32{2}},
		{"path case kept", "http://evil.example/login.php", nil},
		{"scheme differs", "https://evil.example/Login.PHP", nil},
		{"http matches schemeless", "http://malicious.example.net/landing/", []uint32{3}},
		{"https matches exact then schemeless", "https://malicious.example.net:443/landing/", []uint32{7, 3}},
		{"schemeless event", "malicious.example.net/landing/", []uint32{3, 7}},
		{"empty path", "https://files.example.org/", []uint32{4}},
		{"no path", "https://FILES.example.org", []uint32{4}},
		{"space in path", "http://files.example.org/a b.zip", []uint32{5}},
		{"ftp default port", "FTP://ftp.example.org/x", []uint32{6}},
		{"miss", "https://www.example.org/", nil},
		{"empty", "", nil},
	})
}

func TestMatchEmail(t *testing.T) {
	x := buildIndex(t, ind(1, TypeEmail, "Billing@Example.com"), ind(2, TypeEmail, "billing@example.com"))
	checkMatches(t, func(dst []uint32, q string) []uint32 { return x.MatchEmail(dst, q, testNow) }, []matchCase{
		{"lower", "billing@example.com", []uint32{1, 2}},
		{"upper", "BILLING@EXAMPLE.COM", []uint32{1, 2}},
		{"brackets", "<billing@example.com>", []uint32{1, 2}},
		{"miss", "billing@example.org", nil},
	})
}

func TestMatchRegistry(t *testing.T) {
	x := buildIndex(t,
		ind(1, TypeRegistry, `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Evil`),
		ind(2, TypeRegistry, `HKCU\Software\Microsoft\Windows\CurrentVersion\RunOnce\x`),
		ind(3, TypeRegistry, `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\evil`),
	)
	checkMatches(t, func(dst []uint32, q string) []uint32 { return x.MatchRegistry(dst, q, testNow) }, []matchCase{
		{"short hive", `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Evil`, []uint32{1, 3}},
		{"long hive, lower", `hkey_local_machine\software\microsoft\windows\currentversion\run\evil`, []uint32{1, 3}},
		{"kernel form", `\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Evil`, []uint32{1, 3}},
		{"hkcu long", `HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\RunOnce\X`, []uint32{2}},
		{"other hive", `HKU\Software\Microsoft\Windows\CurrentVersion\RunOnce\x`, nil},
		{"parent key", `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run`, nil},
	})
}

func TestMatchCVE(t *testing.T) {
	x := buildIndex(t, ind(1, TypeVulnerability, "CVE-2024-12345"), ind(2, TypeVulnerability, "cve-2024-12345"))
	checkMatches(t, func(dst []uint32, q string) []uint32 { return x.MatchCVE(dst, q, testNow) }, []matchCase{
		{"upper", "CVE-2024-12345", []uint32{1, 2}},
		{"lower", "cve-2024-12345", []uint32{1, 2}},
		{"miss", "CVE-2024-1234", nil},
	})
}

// kindProbes has, for each kind, an indicator value, a query that matches
// it, a query that does not, and the kind's lookup.
var kindProbes = []struct {
	typ, value, hit, miss string
	match                 func(x *Index, dst []uint32, q string, now time.Time) []uint32
}{
	{TypeIPv4, "198.51.100.7", "198.51.100.7", "198.51.100.8", (*Index).MatchIPString},
	{TypeIPv4, "203.0.113.0/24", "203.0.113.9", "203.0.114.9", (*Index).MatchIPString},
	{TypeIPv6, "2001:db8::1", "2001:db8::1", "2001:db8::2", (*Index).MatchIPString},
	{TypeFile, "0c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2", "0C4FE1A5B2D1B4E8D8F8A6F1C9E7B3A2", "1c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2", (*Index).MatchHash},
	{TypeFile, "3:abc:DEF", "3:abc:DEF", "3:abc:def", (*Index).MatchHash},
	{TypeDomain, "evil.example", "A.Evil.Example", "a.evil.example.org", func(x *Index, d []uint32, q string, n time.Time) []uint32 {
		return x.MatchDomain(d, q, true, n)
	}},
	{TypeURL, "evil.example/a", "https://EVIL.example:443/a", "https://evil.example/b", (*Index).MatchURL},
	{TypeEmail, "a@evil.example", "A@Evil.Example", "b@evil.example", (*Index).MatchEmail},
	{TypeRegistry, `HKLM\Software\Evil`, `HKEY_LOCAL_MACHINE\SOFTWARE\EVIL`, `HKLM\Software\Evil2`, (*Index).MatchRegistry},
	{TypeVulnerability, "CVE-2024-1", "cve-2024-1", "CVE-2024-2", (*Index).MatchCVE},
}

func TestExpiry(t *testing.T) {
	exp := testNow
	for _, p := range kindProbes {
		t.Run(p.typ+" "+p.value, func(t *testing.T) {
			x := buildIndex(t,
				Indicator{Ref: 1, Type: p.typ, Value: p.value, ExpiresAt: exp},
				Indicator{Ref: 2, Type: p.typ, Value: p.value, ExpiresAt: exp.Add(time.Nanosecond)},
				Indicator{Ref: 3, Type: p.typ, Value: p.value}, // never expires
				Indicator{Ref: 4, Type: p.typ, Value: p.value, ExpiresAt: exp.Add(-time.Hour)},
			)
			for _, c := range []struct {
				now  time.Time
				want []uint32
			}{
				{exp.Add(-time.Nanosecond), []uint32{1, 2, 3}},
				{exp, []uint32{2, 3}}, // ExpiresAt == now never matches
				{exp.Add(time.Nanosecond), []uint32{3}},
				{exp.AddDate(500, 0, 0), []uint32{3}},
			} {
				if got := p.match(x, nil, p.hit, c.now); !slices.Equal(got, c.want) {
					t.Errorf("at %v: got %v, want %v", c.now, got, c.want)
				}
			}
		})
	}
}

// Lookups allocate nothing on a miss, nor on a hit when dst has room.
func TestMatchNoAlloc(t *testing.T) {
	var b Builder
	for i, p := range kindProbes {
		if err := b.Add(Indicator{Ref: uint32(i), Type: p.typ, Value: p.value}); err != nil {
			t.Fatal(err)
		}
	}
	x := b.Build()
	dst := make([]uint32, 0, 16)
	for _, p := range kindProbes {
		hit := testing.AllocsPerRun(100, func() {
			if len(p.match(x, dst[:0], p.hit, testNow)) == 0 {
				t.Fatalf("%s %q: no match", p.typ, p.hit)
			}
		})
		miss := testing.AllocsPerRun(100, func() {
			if got := p.match(x, nil, p.miss, testNow); len(got) != 0 {
				t.Fatalf("%s %q: unexpected match %v", p.typ, p.miss, got)
			}
		})
		if hit != 0 || miss != 0 {
			t.Errorf("%s %q: %v allocations on a hit, %v on a miss; want 0", p.typ, p.value, hit, miss)
		}
	}
	// URL lookups without a scheme try three forms.
	if n := testing.AllocsPerRun(100, func() { x.MatchURL(dst[:0], "no.such.example/x", testNow) }); n != 0 {
		t.Errorf("schemeless URL miss: %v allocations", n)
	}
}

func TestAddErrors(t *testing.T) {
	cases := []struct {
		ind  Indicator
		want error
	}{
		{Indicator{Type: "mac-addr", Value: "00:00:5e:00:53:01"}, ErrUnsupportedType},
		{Indicator{Type: "", Value: "x"}, ErrUnsupportedType},
		{Indicator{Type: TypeIPv4, Value: "198.51.100.300"}, ErrInvalidValue},
		{Indicator{Type: TypeIPv4, Value: "10.0.0.0/33"}, ErrInvalidValue},
		{Indicator{Type: TypeIPv6, Value: ""}, ErrInvalidValue},
		{Indicator{Type: TypeDomain, Value: " . "}, ErrInvalidValue},
		{Indicator{Type: TypeURL, Value: ""}, ErrInvalidValue},
		{Indicator{Type: TypeFile, Value: "  "}, ErrInvalidValue},
		{Indicator{Type: TypeEmail, Value: "<>"}, ErrInvalidValue},
		{Indicator{Type: TypeRegistry, Value: `\\`}, ErrInvalidValue},
		{Indicator{Type: TypeVulnerability, Value: ""}, ErrInvalidValue},
	}
	var b Builder
	for _, c := range cases {
		if err := b.Add(c.ind); !errors.Is(err, c.want) {
			t.Errorf("Add(%+v) = %v, want %v", c.ind, err, c.want)
		}
	}
	if b.Len() != 0 {
		t.Errorf("Len = %d after rejected adds", b.Len())
	}
	if s := b.Build().Stats(); s.Rejected != len(cases) || s.Total.Indicators != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestStats(t *testing.T) {
	x := buildIndex(t,
		ind(1, TypeIPv4, "198.51.100.1"), ind(2, TypeIPv4, "198.51.100.1"), ind(3, TypeIPv4, "198.51.100.2"),
		ind(4, TypeIPv6, "2001:db8::1"),
		ind(5, TypeIPv4, "10.0.0.0/8"), ind(6, TypeIPv6, "2001:db8::/32"),
		ind(7, TypeDomain, "evil.example"),
		ind(8, TypeURL, "http://evil.example/"),
		ind(9, TypeFile, "0c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2"), ind(9, TypeFile, "3:a:b"),
		ind(10, TypeEmail, "a@b.example"),
		ind(11, TypeRegistry, `HKLM\x`),
		ind(12, TypeVulnerability, "CVE-2024-1"),
	)
	s := x.Stats()
	want := [NumKinds][2]int{
		KindIPv4: {3, 2}, KindIPv6: {1, 1}, KindCIDR: {2, 2}, KindDomain: {1, 1}, KindURL: {1, 1},
		KindHash: {2, 2}, KindEmail: {1, 1}, KindRegistry: {1, 1}, KindCVE: {1, 1},
	}
	for k := range NumKinds {
		if got := [2]int{s.Kinds[k].Indicators, s.Kinds[k].Values}; got != want[k] {
			t.Errorf("%v: (indicators, values) = %v, want %v", Kind(k), got, want[k])
		}
		if s.Kinds[k].Bytes <= 0 {
			t.Errorf("%v: Bytes = %d", Kind(k), s.Kinds[k].Bytes)
		}
	}
	if s.Total.Indicators != 13 || s.Total.Values != 12 {
		t.Errorf("Total = %+v", s.Total)
	}
	if got := Kind(200).String(); got != "Kind(200)" {
		t.Errorf("Kind(200).String() = %q", got)
	}
}

// A 64-bit hash collision between two values keeps both apart.
func TestStrTableCollision(t *testing.T) {
	var s strTable
	s.init(maphash.MakeSeed())
	hash := func(v string) uint64 { return maphash.String(s.seed, v) }
	if err := s.add([]byte("a"), 1, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	// Make "b" hash to "a"'s slot, as a collision would.
	s.ids[hash("b")] = s.ids[hash("a")]
	for _, ref := range []uint32{2, 3} {
		if err := s.add([]byte("b"), ref, math.MaxInt64); err != nil {
			t.Fatal(err)
		}
	}
	s.finish()
	for _, c := range []struct {
		v    string
		want []uint32
	}{{"a", []uint32{1}}, {"b", []uint32{2, 3}}, {"c", nil}} {
		if got := s.match(nil, c.v, 0); !slices.Equal(got, c.want) {
			t.Errorf("match(%q) = %v, want %v", c.v, got, c.want)
		}
	}
	if st := s.stats(); st.Values != 2 || st.Indicators != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNilIndexAndLive(t *testing.T) {
	var l Live
	x := l.Load()
	if x != nil {
		t.Fatal("zero Live holds an Index")
	}
	for _, p := range kindProbes {
		if got := p.match(x, nil, p.hit, testNow); got != nil {
			t.Errorf("nil Index: %s matched %v", p.typ, got)
		}
	}
	if got := x.MatchIP(nil, netip.MustParseAddr("1.2.3.4"), testNow); got != nil {
		t.Errorf("nil Index: MatchIP = %v", got)
	}
	if s := x.Stats(); s.Total.Indicators != 0 {
		t.Errorf("nil Index: Stats = %+v", s)
	}

	a := buildIndex(t, ind(1, TypeDomain, "evil.example"))
	bIdx := buildIndex(t, ind(2, TypeDomain, "evil.example"))
	if old := l.Swap(a); old != nil {
		t.Errorf("first Swap returned %p", old)
	}
	// Readers see either index, whole, while it is swapped.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				got := l.Load().MatchDomain(nil, "evil.example", false, testNow)
				if !slices.Equal(got, []uint32{1}) && !slices.Equal(got, []uint32{2}) {
					t.Errorf("got %v", got)
					return
				}
			}
		})
	}
	for i := range 100 {
		if i%2 == 0 {
			l.Swap(bIdx)
		} else {
			l.Swap(a)
		}
	}
	wg.Wait()
}

func TestBuilderReuse(t *testing.T) {
	var b Builder
	_ = b.Add(ind(1, TypeDomain, "a.example"))
	x1 := b.Build()
	if b.Len() != 0 {
		t.Fatalf("Len after Build = %d", b.Len())
	}
	_ = b.Add(ind(2, TypeDomain, "b.example"))
	x2 := b.Build()
	if got := x1.MatchDomain(nil, "b.example", false, testNow); got != nil {
		t.Errorf("first index sees the second build: %v", got)
	}
	if got := x2.MatchDomain(nil, "a.example", false, testNow); got != nil {
		t.Errorf("second index sees the first build: %v", got)
	}
}

// MatchIP agrees with a linear scan over random, often nested, ranges and
// hosts of both families: every indicator whose value contains the
// address, hosts first, then ranges longest first, each value's indicators
// in the order added.
func TestMatchIPAgainstLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	// Addresses cluster under a few bases so that ranges nest and contain
	// the probes.
	bases := []netip.Addr{netip.MustParseAddr("10.20.0.0"), netip.MustParseAddr("192.0.2.0"), netip.MustParseAddr("2001:db8::")}
	randAddr := func() netip.Addr {
		b := bases[r.IntN(len(bases))]
		s := b.AsSlice()
		for i := len(s) / 2; i < len(s); i++ {
			if r.IntN(3) == 0 {
				s[i] = byte(r.IntN(4))
			}
		}
		a, _ := netip.AddrFromSlice(s)
		return a
	}
	type entry struct {
		ref uint32
		p   netip.Prefix
		exp time.Time
	}
	var entries []entry
	var b Builder
	for i := range 3000 {
		a := randAddr()
		bits := a.BitLen() - r.IntN(a.BitLen()/2-3)
		if r.IntN(500) == 0 {
			bits = r.IntN(a.BitLen() + 1)
		}
		p := netip.PrefixFrom(a, bits).Masked()
		e := entry{ref: uint32(i), p: p, exp: testNow.Add(time.Duration(r.IntN(3)-1) * time.Hour)}
		entries = append(entries, e)
		if err := b.Add(Indicator{Ref: e.ref, Type: TypeIPv4, Value: p.String(), ExpiresAt: e.exp}); err != nil {
			t.Fatal(err)
		}
	}
	x := b.Build()
	var hits []entry
	matched, nested := 0, 0
	for range 5000 {
		a := randAddr()
		if r.IntN(3) == 0 { // mostly a miss
			s := a.AsSlice()
			for i := range s {
				s[i] = byte(r.Uint32())
			}
			a, _ = netip.AddrFromSlice(s)
		}
		hits = hits[:0]
		for _, e := range entries {
			if e.p.Contains(a) && e.exp.After(testNow) {
				hits = append(hits, e)
			}
		}
		slices.SortStableFunc(hits, func(x, y entry) int { return y.p.Bits() - x.p.Bits() })
		var want []uint32
		for _, e := range hits {
			want = append(want, e.ref)
		}
		if got := x.MatchIP(nil, a, testNow); !slices.Equal(got, want) {
			t.Fatalf("MatchIP(%v) = %v, want %v", a, got, want)
		}
		matched += min(len(want), 1)
		if len(want) >= 3 {
			nested++
		}
	}
	// The probes exercise both hits, nested ones, and misses.
	t.Logf("%d of 5000 probes matched, %d three or more ranges", matched, nested)
	if matched < 500 || nested < 100 || matched > 4500 {
		t.Errorf("%d of 5000 probes matched, %d three or more ranges", matched, nested)
	}
}

// TestPrefetchIP: PrefetchIP names the words that MatchIPString reads
// first, the host table filter's word of the address and, for IPv4, its
// block's word of the CIDR prefilter, and nothing for a value that is
// not an address or an Index that is nil.
func TestPrefetchIP(t *testing.T) {
	x := buildIndex(t,
		ind(1, TypeIPv4, "198.51.100.23"),
		ind(2, TypeIPv4, "10.0.0.0/8"),
		ind(3, TypeIPv6, "2001:db8::1"),
	)
	wordOf := func(f *filter, h uint64) uintptr {
		i, _ := f.word(h)
		return uintptr(unsafe.Pointer(&f.words[i]))
	}
	v4 := func(s string) []uintptr {
		k := ipv4Key(netip.MustParseAddr(s))
		return []uintptr{wordOf(&x.t.ipv4.filter, fixedHash(&k)), uintptr(unsafe.Pointer(&x.t.cidr.v4[k>>(32-v4BlockBits)>>6]))}
	}
	k6 := netip.MustParseAddr("2001:db8::1").As16()
	for _, c := range []struct {
		ip   string
		want []uintptr
	}{
		{"198.51.100.23", v4("198.51.100.23")},
		{" 10.9.8.7 ", v4("10.9.8.7")},
		{"::ffff:10.9.8.7", v4("10.9.8.7")},
		{"2001:db8::1%eth0", []uintptr{wordOf(&x.t.ipv6.filter, fixedHash(&k6))}},
		{"10.1.2", nil},
		{"", nil},
	} {
		var pf prefetch.Addrs
		x.PrefetchIP(&pf, c.ip)
		if got := pf.Slice(); !slices.Equal(got, c.want) {
			t.Errorf("PrefetchIP(%q) = %#x, want %#x", c.ip, got, c.want)
		}
	}
	var pf prefetch.Addrs
	(*Index)(nil).PrefetchIP(&pf, "198.51.100.23")
	if pf.Len() != 0 {
		t.Errorf("a nil Index prefetched %d words", pf.Len())
	}
}
