package matcher_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-ti/vigil/internal/matcher"
)

func Example() {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	var b matcher.Builder
	for _, ind := range []matcher.Indicator{
		{Ref: 0, Type: matcher.TypeIPv4, Value: "198.51.100.0/24", ExpiresAt: now.Add(time.Hour)},
		{Ref: 1, Type: matcher.TypeIPv4, Value: "198.51.100.7", ExpiresAt: now.Add(time.Hour)},
		{Ref: 2, Type: matcher.TypeDomain, Value: "Evil.Example", ExpiresAt: now.Add(time.Hour)},
		{Ref: 3, Type: matcher.TypeRegistry, Value: `HKLM\Software\Microsoft\Windows\CurrentVersion\Run\x`},
		{Ref: 4, Type: matcher.TypeURL, Value: "evil.example/login.php", ExpiresAt: now.Add(-time.Hour)}, // expired
	} {
		if err := b.Add(ind); err != nil {
			fmt.Println(err)
		}
	}

	// Matching goroutines Load the current index; a rebuild Swaps in the
	// next one without pausing them.
	var live matcher.Live
	live.Swap(b.Build())

	x := live.Load()
	var refs []uint32
	refs = x.MatchIP(refs[:0], netip.MustParseAddr("198.51.100.7"), now)
	fmt.Println("ip:", refs)
	refs = x.MatchDomain(refs[:0], "cdn.evil.example", true, now)
	fmt.Println("domain:", refs)
	refs = x.MatchRegistry(refs[:0], `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\X`, now)
	fmt.Println("registry:", refs)
	refs = x.MatchURL(refs[:0], "https://evil.example/login.php", now)
	fmt.Println("expired url:", refs)
	// Output:
	// ip: [1 0]
	// domain: [2]
	// registry: [3]
	// expired url: []
}
