package detect

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/matcher"
)

// indicatorType is the indicator type each lookup matches.
var indicatorType = [...]string{
	lookupIP: matcher.TypeIPv4, lookupHash: matcher.TypeFile, lookupURL: matcher.TypeURL,
	lookupRegistry: matcher.TypeRegistry, lookupEmail: matcher.TypeEmail, lookupCVE: matcher.TypeVulnerability,
	lookupDomain: matcher.TypeDomain,
}

// retroSeeds are (lookup, indicator, event value) triples, matching and
// not.
var retroSeeds = []struct {
	l          lookup
	ind, event string
}{
	{lookupIP, "198.51.100.7", "198.51.100.7"},
	{lookupIP, "198.51.100.0/24", "198.51.100.250"},
	{lookupIP, "::ffff:198.51.100.0/120", "::ffff:198.51.100.9"},
	{lookupIP, "2001:db8::/32", "2001:db8:1::5%eth0"},
	{lookupIP, "0.0.0.0/0", "203.0.113.1"},
	{lookupIP, "::/0", "2001:db8::1"},
	{lookupIP, "10.0.0.0/8", "11.0.0.1"},
	{lookupDomain, "evil.example", "CDN.Evil.Example."},
	{lookupDomain, "evil.example", "notevil.example"},
	{lookupDomain, "example", "a.b.example"},
	{lookupURL, "evil.example/a.php", "https://evil.example:443/a.php"},
	{lookupURL, "evil.example/a.php", "http://evil.example:443/a.php"},
	{lookupURL, "evil.example/a.php", "https://evil.example:80/a.php"},
	{lookupURL, "http://evil.example/a.php", "evil.example/a.php"},
	{lookupURL, "https://evil.example:8443/a", "evil.example:8443/a"},
	{lookupURL, "user@evil.example/x", "http://user@evil.example:443/x"},
	{lookupURL, "[2001:db8::1]/x", "https://[2001:db8::1]:80/x"},
	{lookupURL, "HTTP://Evil.Example", "http://evil.example/"},
	{lookupURL, "mailto:a@b.example", "MAILTO:a@b.example"},
	{lookupHash, "44D88612FEA8A8F36DE82E1278ABB02F", "44d88612fea8a8f36de82e1278abb02f"},
	{lookupHash, "3:abc:Def", "3:abc:Def"},
	{lookupEmail, "Phish@Evil.Example", "<phish@evil.example>"},
	{lookupRegistry, `HKEY_LOCAL_MACHINE\Software\Run`, `hklm\software\run`},
	{lookupCVE, "cve-2024-3400", "CVE-2024-3400"},
}

// FuzzRetroCandidates: whenever an event value matches an indicator, the
// value's sighting key is among the keys and ranges a retro-hunt looks up
// for the indicator; and matching the value decoded from its key gives
// what matching the raw value gives.
func FuzzRetroCandidates(f *testing.F) {
	for _, s := range retroSeeds {
		f.Add(uint8(s.l), s.ind, s.event)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, lb uint8, ind, event string) {
		l := lookup(lb % uint8(len(lookupNames)))
		var b matcher.Builder
		typ := indicatorType[l]
		if l == lookupIP && strings.Contains(ind, ":") {
			typ = matcher.TypeIPv6
		}
		if b.Add(matcher.Indicator{Type: typ, Value: ind, Ref: 1}) != nil {
			return
		}
		idx := b.Build()
		raw := lookupValue(idx, l, event, now, nil)
		key, ok := appendSightingKey(nil, l, event)
		if !ok {
			if len(raw) > 0 {
				t.Fatalf("%s: %q matches %q but has no sighting key", lookupNames[l], event, ind)
			}
			return
		}
		dec := sightingValue(l, string(key))
		if got := lookupValue(idx, l, dec, now, nil); len(got) != len(raw) {
			t.Fatalf("%s: %q matches %q %d times, its sighting value %q %d times", lookupNames[l], event, ind, len(raw), dec, len(got))
		}
		if again, _ := appendSightingKey(nil, l, dec); string(again) != string(key) {
			t.Fatalf("%s: key of %q is %q, of its value %q %q", lookupNames[l], event, key, dec, again)
		}
		if len(raw) == 0 || len(key) > MaxSightingKey {
			return
		}
		for _, r := range appendCandidates(nil, l, ind) {
			if r.Kind != lookupNames[l] {
				t.Fatalf("candidate of kind %s for lookup %s", r.Kind, lookupNames[l])
			}
			k := string(key)
			switch {
			case r.Prefix && strings.HasPrefix(k, r.Lo),
				!r.Prefix && r.Hi == "" && k == r.Lo,
				r.Hi != "" && r.Lo <= k && k <= r.Hi:
				return
			}
		}
		t.Fatalf("%s: %q (key %q) matches %q, which is not among its candidates %+v", lookupNames[l], event, key, ind, appendCandidates(nil, l, ind))
	})
}

func TestRetroCandidatesSeeds(t *testing.T) {
	// The seeds that match do; FuzzRetroCandidates checks the rest.
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range retroSeeds {
		var b matcher.Builder
		typ := indicatorType[s.l]
		if s.l == lookupIP && strings.Contains(s.ind, ":") {
			typ = matcher.TypeIPv6
		}
		if err := b.Add(matcher.Indicator{Type: typ, Value: s.ind, Ref: 1}); err != nil {
			t.Fatalf("%q: %v", s.ind, err)
		}
		want := !strings.Contains(s.event, "notevil") && s.event != "11.0.0.1"
		if got := len(lookupValue(b.Build(), s.l, s.event, now, nil)) > 0; got != want {
			t.Errorf("%s %q ~ %q: matched %v, want %v", lookupNames[s.l], s.ind, s.event, got, want)
		}
	}
}

// FuzzParseTimestamp: the fast RFC 3339 reader agrees with package time,
// and parseTimestamp reads whatever time.Parse reads as RFC 3339.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{
		"2026-03-01T12:00:00Z", "2026-03-01T12:00:00.123Z", "2026-03-01T12:00:00.1234567+02:00", "1999-12-31T23:59:59-11:30",
		"2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2026-03-01T12:00:00", "2026-03-01",
		"1709294400000", "2026-03-01T24:00:00Z", "2026-13-01T00:00:00Z", "2026-03-01T12:00:00.Z", "2026-03-01 12:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, fok := parseRFC3339Millis(s)
		ref, err := time.Parse(time.RFC3339Nano, s)
		if fok {
			if err != nil {
				t.Fatalf("%q: read as %d, time.Parse: %v", s, fast, err)
			}
			if fast != ref.UnixMilli() {
				t.Fatalf("%q: %d, time.Parse %d", s, fast, ref.UnixMilli())
			}
		}
		if err == nil {
			if got, ok := parseTimestamp(s); !ok || got != ref.UnixMilli() {
				t.Fatalf("%q: parseTimestamp %d %v, want %d", s, got, ok, ref.UnixMilli())
			}
		}
	})
}

func TestParseTimestamp(t *testing.T) {
	cases := []struct {
		in   string
		want string // RFC 3339 in UTC, or "" for not a time
	}{
		{"2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z"},
		{"2026-03-01T12:00:00.987654Z", "2026-03-01T12:00:00.987Z"},
		{"2026-03-01T12:00:00+02:00", "2026-03-01T10:00:00Z"},
		{"2026-03-01T12:00:00", "2026-03-01T12:00:00Z"},
		{"2026-03-01T12:00:00.5+0100", "2026-03-01T11:00:00.5Z"},
		{"2026-03-01", "2026-03-01T00:00:00Z"},
		{"1772366400000", "2026-03-01T12:00:00Z"},
		{"yesterday", ""},
		{"2026-02-30T00:00:00Z", ""},
	}
	for _, c := range cases {
		ms, ok := parseTimestamp(c.in)
		got := ""
		if ok {
			got = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
		}
		if got != c.want {
			t.Errorf("parseTimestamp(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if d := dayOf(-1); d != -1 {
		t.Errorf("dayOf(-1) = %d", d)
	}
}

// TestTagTable: the recorder's tag table agrees with a map through puts
// (new tags and overwrites), growth past its initial size, tags that share
// a home slot, and a reset.
func TestTagTable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name string
		size int
		n    int
		tag  func(i int) uint64
	}{
		{"random tags, no growth", 1 << 10, 500, func(int) uint64 { return r.Uint64() | 1 }},
		{"random tags, grows", 4, 5000, func(int) uint64 { return r.Uint64() | 1 }},
		{"one home slot", 1 << 6, 30, func(i int) uint64 { return uint64(i + 1) }}, // high bits all zero
		{"repeated tags", 16, 400, func(i int) uint64 { return uint64(i%37+1) << 40 }},
	}
	for _, c := range cases {
		tt := newTagTable(c.size)
		for round := range 2 {
			want := map[uint64]int32{}
			for i := range c.n {
				tag := c.tag(i)
				tt.put(tag, int32(i))
				want[tag] = int32(i)
			}
			if tt.n != len(want) {
				t.Fatalf("%s, round %d: %d tags held, want %d", c.name, round, tt.n, len(want))
			}
			for tag, idx := range want {
				if got, ok := tt.get(tag); !ok || got != idx {
					t.Fatalf("%s, round %d: tag %#x: %d, %v; want %d", c.name, round, tag, got, ok, idx)
				}
			}
			for range 100 {
				tag := r.Uint64() | 1
				if _, held := want[tag]; held {
					continue
				}
				if _, ok := tt.get(tag); ok {
					t.Fatalf("%s, round %d: tag %#x found, never put", c.name, round, tag)
				}
			}
			if 2*tt.n > len(tt.slots) {
				t.Fatalf("%s: %d tags in %d slots: more than half full", c.name, tt.n, len(tt.slots))
			}
			tt.reset()
			for tag := range want {
				if _, ok := tt.get(tag); ok {
					t.Fatalf("%s: tag %#x found after reset", c.name, tag)
				}
			}
		}
	}
}

// dropBatches drops the sightings handed to it.
type dropBatches struct{}

func (dropBatches) AddSightingBatch(context.Context, *vigil.SightingBatch) error { return nil }

// TestSlotsOnePerValue: a value that an event carries in two fields takes
// one sighting slot, also when the event is the first to carry it (its
// first field takes the slot, and its second must find it there).
func TestSlotsOnePerValue(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	e, err := New(Config{}, nil, vigil.ClockFunc(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := NewSnapshot(nil)
	if err != nil {
		t.Fatal(err)
	}
	e.Swap(snap)
	e.RecordSightings(SightingsConfig{Store: dropBatches{}, Window: 7 * 24 * time.Hour})
	for i := range 300 {
		ip := fmt.Sprintf("10.8.%d.%d", i/256, i%256)
		line := fmt.Sprintf(`{"@timestamp":"2026-03-01T11:00:00Z","source":{"ip":%q},"destination":{"ip":%q}}`, ip, ip)
		if _, err := e.Match(t.Context(), []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	slots := e.sight.slots
	held := 0
	for base := 0; base < len(slots); base += slotWays {
		for i := base; i < base+slotWays; i++ {
			if slots[i].tag == 0 {
				continue
			}
			held++
			for j := i + 1; j < base+slotWays; j++ {
				if slots[j].tag == slots[i].tag {
					t.Fatalf("slots %d and %d hold one value", i, j)
				}
			}
		}
	}
	if held != 300 {
		t.Errorf("%d slots held, want one per value (300)", held)
	}
}
