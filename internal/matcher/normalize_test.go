package matcher

import (
	"strings"
	"testing"
)

type normCase struct{ in, want string }

func runNormCases(t *testing.T, name string, f func(string) string, cases []normCase) {
	t.Helper()
	for _, c := range cases {
		if got := f(c.in); got != c.want {
			t.Errorf("%s(%q) = %q, want %q", name, c.in, got, c.want)
		}
		if got := f(c.want); got != c.want {
			t.Errorf("%s(%q) = %q, want it unchanged", name, c.want, got)
		}
	}
}

func TestNormalizeHash(t *testing.T) {
	runNormCases(t, "NormalizeHash", NormalizeHash, []normCase{
		{"0C4FE1A5B2D1B4E8D8F8A6F1C9E7B3A2", "0c4fe1a5b2d1b4e8d8f8a6f1c9e7b3a2"},
		{" da39a3ee5e6b4b0d3255bfef95601890afd80709\n", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{"T1A2B3C4", "t1a2b3c4"},         // TLSH with its version prefix
		{"DEADBEEFCAFE", "deadbeefcafe"}, // odd length, still hex
		{"3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C", "3:AXGBicFlgVNhBGcL6wCrFQEv:AXGHsNhxLsr2C"}, // ssdeep keeps its case
		{"", ""},
	})
}

func TestNormalizeDomain(t *testing.T) {
	runNormCases(t, "NormalizeDomain", NormalizeDomain, []normCase{
		{"Login-Portal.Example.COM", "login-portal.example.com"},
		{"evil.example.", "evil.example"},
		{" evil.example.. \t", "evil.example"},
		{"ÉVIL.example", "évil.example"},
		{"xn--vil-9la.example", "xn--vil-9la.example"},
		{".", ""},
	})
}

func TestNormalizeURL(t *testing.T) {
	runNormCases(t, "NormalizeURL", NormalizeURL, []normCase{
		{"HTTP://WWW.Example.ORG/Download/Payload.EXE?ID=42", "http://www.example.org/Download/Payload.EXE?ID=42"},
		{"http://evil.example:80/a", "http://evil.example/a"},
		{"https://evil.example:443/a", "https://evil.example/a"},
		{"ftp://evil.example:21/a", "ftp://evil.example/a"},
		{"http://evil.example:443/a", "http://evil.example:443/a"},
		{"https://evil.example:8443/a", "https://evil.example:8443/a"},
		{"http://evil.example:/a", "http://evil.example/a"},
		{"http://evil.example", "http://evil.example/"},
		{"http://evil.example?q=1", "http://evil.example/?q=1"},
		{"http://evil.example.:80/", "http://evil.example/"},
		{"https://User:Secret@WWW.Example.org:8443/x#Top", "https://User:Secret@www.example.org:8443/x#Top"},
		{"http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"},
		{"http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"},
		{"file:///C:/Temp/X.exe", "file:///C:/Temp/X.exe"},
		// Without a scheme, as feeds write them.
		{"Malicious.Example.NET/landing/", "malicious.example.net/landing/"},
		{"malicious.example.net:443/Landing", "malicious.example.net/Landing"},
		{"malicious.example.net:8080", "malicious.example.net:8080/"},
		{"malicious.example.net", "malicious.example.net/"},
		{"evil.example/r?u=HTTP://X", "evil.example/r?u=HTTP://X"},
		// Schemes without an authority.
		{"MAILTO:Billing@Example.com", "mailto:Billing@Example.com"},
		{"  ", ""},
	})
}

func TestNormalizeEmail(t *testing.T) {
	runNormCases(t, "NormalizeEmail", NormalizeEmail, []normCase{
		{"Billing@Example.COM", "billing@example.com"},
		{" <billing@example.com> ", "billing@example.com"},
		{"Ünïcode@Example.com", "ünïcode@example.com"},
	})
}

func TestNormalizeRegistryPath(t *testing.T) {
	const run = `hklm\software\microsoft\windows\currentversion\run\evil`
	runNormCases(t, "NormalizeRegistryPath", NormalizeRegistryPath, []normCase{
		{`HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Evil`, run},
		{`HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Evil`, run},
		{`hklm\\software\microsoft\windows\currentversion\run\evil\`, run},
		{`\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Evil`, run},
		{`Computer\HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\Evil`, run},
		{`HKEY_CURRENT_USER\Software\X`, `hkcu\software\x`},
		{`HKEY_CLASSES_ROOT\exefile`, `hkcr\exefile`},
		{`HKEY_USERS\S-1-5-21-1\Software`, `hku\s-1-5-21-1\software`},
		{`\REGISTRY\USER\S-1-5-21-1\Software`, `hku\s-1-5-21-1\software`},
		{`HKEY_CURRENT_CONFIG\System`, `hkcc\system`},
		{`HKEY_LOCAL_MACHINE`, `hklm`},
		{`hklm\a/b\ c`, `hklm\a/b\ c`}, // slashes and inner spaces are part of names
		{`Computer\Computer\HKLM`, `computer\computer\hklm`},
		{`SOFTWARE\Evil`, `software\evil`},
	})
}

func TestNormalizeCVE(t *testing.T) {
	runNormCases(t, "NormalizeCVE", NormalizeCVE, []normCase{
		{"cve-2024-12345", "CVE-2024-12345"},
		{" CVE-2021-44228 ", "CVE-2021-44228"},
	})
}

// Normalizing a value that is already normal returns the same string
// without allocating.
func TestNormalizeNoAllocWhenNormal(t *testing.T) {
	cases := []struct {
		name string
		f    func(string) string
		in   string
	}{
		{"hash", NormalizeHash, strings.Repeat("ab", 32)},
		{"domain", NormalizeDomain, "evil.example"},
		{"url", NormalizeURL, "https://evil.example/a?b=C"},
		{"email", NormalizeEmail, "a@b.example"},
		{"registry", NormalizeRegistryPath, `hklm\software\x`},
		{"cve", NormalizeCVE, "CVE-2024-1"},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, func() { _ = c.f(c.in) }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", c.name, n)
		}
	}
}
