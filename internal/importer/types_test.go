package importer

import (
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	cases := []struct {
		in        string
		typ, name string // want; typ "" for an error
		key       string // "" = name
		err       string // substring of the error
	}{
		// IP addresses and ranges.
		{in: "198.51.100.7", typ: TypeIPv4, name: "198.51.100.7"},
		{in: "2001:DB8::1", typ: TypeIPv6, name: "2001:db8::1"},
		{in: "2001:db8:0:0:0:0:0:1", typ: TypeIPv6, name: "2001:db8::1"},
		{in: "::ffff:198.51.100.7", typ: TypeIPv4, name: "198.51.100.7"},
		{in: "::1", typ: TypeIPv6, name: "::1"},
		{in: "198.51.100.0/24", typ: TypeIPv4, name: "198.51.100.0/24"},
		{in: "198.51.100.9/24", typ: TypeIPv4, name: "198.51.100.0/24"},
		{in: "198.51.100.9/32", typ: TypeIPv4, name: "198.51.100.9"},
		{in: "2001:db8::/32", typ: TypeIPv6, name: "2001:db8::/32"},
		{in: "2001:db8::1/128", typ: TypeIPv6, name: "2001:db8::1"},
		{in: "::ffff:198.51.100.0/120", typ: TypeIPv4, name: "198.51.100.0/24"},
		{in: "fe80::1%eth0", err: "zone"},
		{in: "198.51.100.300", err: "not an IP address"},
		{in: "198.51.100.0/33", err: "not an IP address"},
		{in: "2001:db8::g", err: "type not recognized"},
		{in: "1.2.3", err: "not an IP address"},
		// Domains, IDN and punycode.
		{in: "evil.example.com", typ: TypeDomain, name: "evil.example.com"},
		{in: "EVIL.Example.COM.", typ: TypeDomain, name: "evil.example.com"},
		{in: "xn--80ak6aa92e.com", typ: TypeDomain, name: "xn--80ak6aa92e.com"},
		{in: "пример.рф", typ: TypeDomain, name: "пример.рф"},
		{in: "ПРИМЕР.РФ", typ: TypeDomain, name: "пример.рф"},
		{in: "_dmarc.example.com", typ: TypeDomain, name: "_dmarc.example.com"},
		{in: "evil[.]example[.]com", typ: TypeDomain, name: "evil.example.com"},
		{in: "localhost", err: "type not recognized"},
		{in: "a..example.com", err: "type not recognized"},
		{in: strings.Repeat("a", 64) + ".com", err: "type not recognized"},
		{in: "exa$mple.com", err: "type not recognized"},
		// URLs, with and without a scheme.
		{in: "http://evil.example.com/a.php?x=1", typ: TypeURL, name: "http://evil.example.com/a.php?x=1"},
		{in: "HTTPS://Evil.Example.com/A", typ: TypeURL, name: "HTTPS://Evil.Example.com/A", key: "https://evil.example.com/A"},
		{in: "hxxps://evil[.]example[.]com/x", typ: TypeURL, name: "https://evil.example.com/x"},
		{in: "evil.example.com/payload.exe", typ: TypeURL, name: "evil.example.com/payload.exe"},
		{in: "Evil.Example.com/Payload", typ: TypeURL, name: "Evil.Example.com/Payload", key: "evil.example.com/Payload"},
		{in: "198.51.100.7:8080", typ: TypeURL, name: "198.51.100.7:8080"},
		{in: "198.51.100.7/bins/x86", typ: TypeURL, name: "198.51.100.7/bins/x86"},
		{in: "[2001:db8::1]:443/x", typ: TypeURL, name: "[2001:db8::1]:443/x"},
		{in: "evil.example.com:8443", typ: TypeURL, name: "evil.example.com:8443"},
		{in: "ftp://files.example.com/x", typ: TypeURL, name: "ftp://files.example.com/x"},
		{in: "://nohost", err: "no valid scheme"},
		{in: "http://", err: "no valid scheme"},
		// E-mail addresses.
		{in: "Phish@Example.COM", typ: TypeEmail, name: "phish@example.com"},
		{in: "<phish@example.com>", typ: TypeEmail, name: "phish@example.com"},
		{in: "phish[@]example[.]com", typ: TypeEmail, name: "phish@example.com"},
		{in: "@example.com", err: "not an e-mail address"},
		{in: "phish@", err: "not an e-mail address"},
		// Hashes, any case.
		{in: "D41D8CD98F00B204E9800998ECF8427E", typ: TypeFile, name: "d41d8cd98f00b204e9800998ecf8427e"},
		{in: "da39a3ee5e6b4b0d3255bfef95601890afd80709", typ: TypeFile, name: "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
		{in: strings.Repeat("AB", 32), typ: TypeFile, name: strings.Repeat("ab", 32)},
		{in: strings.Repeat("0f", 48), typ: TypeFile, name: strings.Repeat("0f", 48)},
		{in: strings.Repeat("9e", 64), typ: TypeFile, name: strings.Repeat("9e", 64)},
		{in: strings.Repeat("a", 33), err: "type not recognized"},
		// Registry paths and hives.
		{in: `HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Run`, typ: TypeRegistry,
			name: `HKEY_LOCAL_MACHINE\Software\Microsoft\Windows\CurrentVersion\Run`, key: `hklm\software\microsoft\windows\currentversion\run`},
		{in: `HKLM\Software\Run\`, typ: TypeRegistry, name: `HKLM\Software\Run`, key: `hklm\software\run`},
		{in: `hkcu\Software\Evil Corp\Run`, typ: TypeRegistry, name: `hkcu\Software\Evil Corp\Run`, key: `hkcu\software\evil corp\run`},
		{in: `Computer\HKEY_USERS\S-1-5-18`, typ: TypeRegistry, name: `Computer\HKEY_USERS\S-1-5-18`, key: `hku\s-1-5-18`},
		{in: `HKCR`, typ: TypeRegistry, name: `HKCR`, key: `hkcr`},
		{in: `HKEY_CURRENT_CONFIG\System`, typ: TypeRegistry, name: `HKEY_CURRENT_CONFIG\System`, key: `hkcc\system`},
		// CVE ids go to the vulnerability view.
		{in: "cve-2024-3094", typ: TypeVulnerability, name: "CVE-2024-3094"},
		{in: "CVE-2021-44228", typ: TypeVulnerability, name: "CVE-2021-44228"},
		{in: "CVE-2021-4", err: "type not recognized"},
		// Neither.
		{in: "two words", err: "white space"},
		{in: "tab\there", err: "white space"},
		{in: "just-a-word", err: "type not recognized"},
		{in: "12345", err: "type not recognized"},
		{in: "", err: "empty"},
	}
	var n normalizer
	for _, c := range cases {
		v, err := n.detect(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("detect(%q) = %s %q, %v; want an error with %q", c.in, v.typ, v.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("detect(%q): %v", c.in, err)
			continue
		}
		key := c.key
		if key == "" {
			key = c.name
		}
		if v.typ != c.typ || v.name != c.name || v.key != key {
			t.Errorf("detect(%q) = %s %q key %q; want %s %q key %q", c.in, v.typ, v.name, v.key, c.typ, c.name, key)
		}
	}
}

func TestNormalizeForced(t *testing.T) {
	cases := []struct {
		typ, in   string
		wantTyp   string
		name, err string
	}{
		{typ: TypeIPv4, in: "2001:db8::1", wantTyp: TypeIPv6, name: "2001:db8::1"},
		{typ: TypeIPv6, in: "198.51.100.7", wantTyp: TypeIPv4, name: "198.51.100.7"},
		{typ: TypeIPv4, in: "evil.example.com", err: "not an IP address"},
		{typ: TypeDomain, in: "intranet", wantTyp: TypeDomain, name: "intranet"},
		{typ: TypeDomain, in: "198.51.100.7", wantTyp: TypeDomain, name: "198.51.100.7"},
		{typ: TypeDomain, in: "http://x.example", err: "not a valid domain name"},
		{typ: TypeURL, in: "evil.example.com", wantTyp: TypeURL, name: "evil.example.com"},
		{typ: TypeFile, in: "not-a-hash", err: "not an md5, sha1, sha256, sha384 or sha512 hex digest"},
		{typ: TypeEmail, in: "x@y.example", wantTyp: TypeEmail, name: "x@y.example"},
		{typ: TypeRegistry, in: `SOFTWARE\Run`, err: "does not start with a hive"},
		{typ: TypeVulnerability, in: "CVE-2024-1", err: "not a CVE id"},
		{typ: TypeAS, in: "as64500", wantTyp: TypeAS, name: "AS64500"},
		{typ: TypeAS, in: "64500", wantTyp: TypeAS, name: "AS64500"},
		{typ: TypeAS, in: "AS-1", err: "not an AS number"},
		{typ: TypePort, in: "4444", wantTyp: TypePort, name: "4444"},
		{typ: TypePort, in: "70000", err: "not a port number"},
		{typ: TypeMAC, in: "00-00-5E-00-53-01", wantTyp: TypeMAC, name: "00:00:5e:00:53:01"},
		{typ: TypeMAC, in: "zz", err: "not a MAC address"},
		{typ: TypeMutex, in: `Global\evil mutex`, wantTyp: TypeMutex, name: `Global\evil mutex`},
		{typ: TypeMutex, in: "a\x00b", err: "control character"},
		{typ: TypeSoftware, in: "Evil RAT 2.0", wantTyp: TypeSoftware, name: "Evil RAT 2.0"},
		{typ: TypeURL, in: "a b", err: "white space"},
		{typ: TypeUserAccount, in: "\xff", err: "not valid UTF-8"},
	}
	var n normalizer
	for _, c := range cases {
		v, err := n.normalize(c.typ, c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("normalize(%s, %q) = %s %q, %v; want an error with %q", c.typ, c.in, v.typ, v.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("normalize(%s, %q): %v", c.typ, c.in, err)
			continue
		}
		if v.typ != c.wantTyp || v.name != c.name {
			t.Errorf("normalize(%s, %q) = %s %q; want %s %q", c.typ, c.in, v.typ, v.name, c.wantTyp, c.name)
		}
	}
}

func TestParseType(t *testing.T) {
	cases := []struct {
		in      string
		aliases bool
		want    string
	}{
		{"ipv4-addr", false, TypeIPv4},
		{"windows-registry-key", false, TypeRegistry},
		{"vulnerability", false, TypeVulnerability},
		{"IPv4-Addr", false, ""},
		{"ip", false, ""},
		{"ip", true, TypeIPv4},
		{"IPv4-Addr", true, TypeIPv4},
		{" Domain ", true, TypeDomain},
		{"SHA256", true, TypeFile},
		{"cve", true, TypeVulnerability},
		{"hashtag", true, ""},
	}
	for _, c := range cases {
		got, err := ParseType(c.in, c.aliases)
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), "allowed: autonomous-system, artifact") {
				t.Errorf("ParseType(%q, %v) = %q, %v; want an error listing the types", c.in, c.aliases, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseType(%q, %v) = %q, %v; want %q", c.in, c.aliases, got, err, c.want)
		}
	}
}
