package matcher

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The normalizers below are used both when an index is built and when it is
// queried, so an indicator and an event field that differ only in what the
// normalizer removes always match. Each is idempotent:
// Normalize(Normalize(x)) == Normalize(x), which the fuzz targets check.
//
// Each exported NormalizeX returns its argument unchanged (no allocation)
// when it is already normal. The appendX forms write the normal form to dst;
// lookups use them with a stack buffer so that a miss allocates nothing.

// normBufSize is the stack buffer lookups normalize into; longer values
// spill to the heap.
const normBufSize = 256

// NormalizeHash returns the canonical form of a file hash: surrounding
// white space removed and, for hexadecimal digests (md5, sha1, sha256,
// sha384, sha512, and TLSH with or without its "T1" version prefix), lower
// case. Any other value, such as an ssdeep hash whose base64 text is case
// sensitive, is only trimmed.
func NormalizeHash(s string) string {
	var buf [normBufSize]byte
	return result(s, appendHash(buf[:0], s))
}

// NormalizeDomain returns the canonical form of a domain name: surrounding
// white space and trailing dots removed, lower case (Unicode simple case
// mapping; IDNA is not applied, so a Unicode name and its punycode form
// differ).
func NormalizeDomain(s string) string {
	var buf [normBufSize]byte
	return result(s, appendDomain(buf[:0], s))
}

// NormalizeURL returns the canonical form of a URL:
//
//   - surrounding white space is removed;
//   - the scheme and the host are lower-cased, and trailing dots of the
//     host removed;
//   - the port is removed when it is empty or the scheme's default (80 for
//     http and ws, 443 for https and wss, 21 for ftp); a value without a
//     scheme, as indicator feeds write web URLs ("evil.example/a.php"),
//     loses port 80 and 443;
//   - an empty path after a non-empty authority becomes "/"
//     ("http://evil.example" and "http://evil.example/" are one URL);
//   - user info, path, query and fragment keep their case and their
//     percent-encoding.
//
// A value without "://" whose first component is a scheme without an
// authority (mailto, data, javascript, urn, about, tel) only has that
// scheme lower-cased.
func NormalizeURL(s string) string {
	var buf [normBufSize]byte
	b, _ := appendURL(buf[:0], s)
	return result(s, b)
}

// NormalizeEmail returns the canonical form of an e-mail address:
// surrounding white space and angle brackets removed, lower case.
func NormalizeEmail(s string) string {
	var buf [normBufSize]byte
	return result(s, appendEmail(buf[:0], s))
}

// NormalizeRegistryPath returns the canonical form of a Windows registry
// path, which Windows compares without regard to case:
//
//   - lower case;
//   - runs of backslashes collapsed to one, leading and trailing
//     backslashes and white space removed;
//   - the hive written by its short name: HKEY_LOCAL_MACHINE and HKLM both
//     become "hklm" (likewise hkcu, hkcr, hku and hkcc), and so do the
//     kernel forms \REGISTRY\MACHINE (hklm) and \REGISTRY\USER (hku);
//   - a "Computer\" prefix before a hive, as regedit copies it, removed.
//
// Forward slashes are kept: they are legal in key names.
func NormalizeRegistryPath(s string) string {
	var buf [normBufSize]byte
	return result(s, appendRegistry(buf[:0], s))
}

// NormalizeCVE returns the canonical form of a CVE id: surrounding white
// space removed, upper case ("cve-2024-1234" becomes "CVE-2024-1234").
func NormalizeCVE(s string) string {
	var buf [normBufSize]byte
	return result(s, appendCVE(buf[:0], s))
}

// result returns s if b holds the same bytes, else a copy of b.
func result(s string, b []byte) string {
	if string(b) == s {
		return s
	}
	return string(b)
}

func isSpace(r rune) bool { return unicode.IsSpace(r) }

func isSpaceOrDot(r rune) bool { return r == '.' || unicode.IsSpace(r) }

func isSpaceOrBackslash(r rune) bool { return r == '\\' || unicode.IsSpace(r) }

func isSpaceOrLT(r rune) bool { return r == '<' || unicode.IsSpace(r) }

func isSpaceOrGT(r rune) bool { return r == '>' || unicode.IsSpace(r) }

// trim returns s without the leading and trailing runes for which f is
// true. It is strings.TrimFunc with a fast path for the common case of
// ASCII ends that need no trimming.
func trim(s string, f func(rune) bool) string {
	if s == "" {
		return s
	}
	if first, last := s[0], s[len(s)-1]; first < utf8.RuneSelf && last < utf8.RuneSelf &&
		!f(rune(first)) && !f(rune(last)) {
		return s
	}
	return strings.TrimFunc(s, f)
}

// trimSpace is strings.TrimSpace with the same fast path.
func trimSpace(s string) string { return trim(s, isSpace) }

// appendLower appends s lower-cased with Unicode simple case mapping. Bytes
// that are not valid UTF-8 are copied as they are.
func appendLower(dst []byte, s string) []byte {
	// Copy the leading run that needs no change in one go.
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= utf8.RuneSelf || 'A' <= c && c <= 'Z' {
			break
		}
		i++
	}
	dst = append(dst, s[:i]...)
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, c)
		} else {
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		i += n
	}
	return dst
}

// appendLowerASCII appends s with ASCII letters lower-cased.
func appendLowerASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// appendUpperASCII appends s with ASCII letters upper-cased.
func appendUpperASCII(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func appendHash(dst []byte, s string) []byte {
	s = trimSpace(s)
	h := s
	if len(h) > 2 && (h[0] == 'T' || h[0] == 't') && h[1] == '1' {
		h = h[2:] // TLSH version prefix
	}
	if !isHex(h) {
		return append(dst, s...)
	}
	return appendLowerHex(dst, s) // hex digits, perhaps after "T1"
}

// unhex returns the value of the hexadecimal digit c, or 0xff.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

func appendDomain(dst []byte, s string) []byte {
	if s != "" && s[len(s)-1] == '.' || s != trimSpace(s) {
		s = strings.TrimLeftFunc(s, isSpace)
		s = strings.TrimRightFunc(s, isSpaceOrDot)
	}
	return appendLower(dst, s)
}

func appendEmail(dst []byte, s string) []byte {
	if s != "" && (s[0] == '<' || s[len(s)-1] == '>') || s != trimSpace(s) {
		s = strings.TrimLeftFunc(s, isSpaceOrLT)
		s = strings.TrimRightFunc(s, isSpaceOrGT)
	}
	return appendLower(dst, s)
}

func appendCVE(dst []byte, s string) []byte {
	return appendUpperASCII(dst, trimSpace(s))
}

// Registry hives: every accepted spelling, lower case, and its short name.
var hives = [...]struct{ long, short string }{
	{"hkey_local_machine", "hklm"},
	{"hkey_current_user", "hkcu"},
	{"hkey_classes_root", "hkcr"},
	{"hkey_users", "hku"},
	{"hkey_current_config", "hkcc"},
}

// hiveShort returns the short name of the hive spelled c (any case), or "".
func hiveShort(c string) string {
	for _, h := range hives {
		if strings.EqualFold(c, h.long) || strings.EqualFold(c, h.short) {
			return h.short
		}
	}
	return ""
}

// nextComponent returns the first non-empty backslash-separated component
// of s and the rest after it.
func nextComponent(s string) (comp, rest string) {
	for len(s) > 0 && s[0] == '\\' {
		s = s[1:]
	}
	if i := strings.IndexByte(s, '\\'); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

func appendRegistry(dst []byte, s string) []byte {
	s = trim(s, isSpaceOrBackslash)
	c0, rest := nextComponent(s)
	c1, rest1 := nextComponent(rest)
	switch {
	case strings.EqualFold(c0, "computer") && hiveShort(c1) != "":
		dst = append(dst, hiveShort(c1)...)
		rest = rest1
	case strings.EqualFold(c0, "registry") && strings.EqualFold(c1, "machine"):
		dst = append(dst, "hklm"...)
		rest = rest1
	case strings.EqualFold(c0, "registry") && strings.EqualFold(c1, "user"):
		dst = append(dst, "hku"...)
		rest = rest1
	case hiveShort(c0) != "":
		dst = append(dst, hiveShort(c0)...)
	default:
		dst = appendLower(dst, c0)
	}
	for rest != "" {
		var c string
		c, rest = nextComponent(rest)
		if c == "" {
			break
		}
		dst = append(dst, '\\')
		dst = appendLower(dst, c)
	}
	return dst
}

// URL scheme classes, as appendURL reports them.
const (
	urlNoScheme = iota // "evil.example/a": authority first
	urlScheme          // "scheme://authority/path"
	urlOpaque          // "mailto:a@b.example"
)

// opaqueSchemes are the schemes appendURL recognises without "://".
var opaqueSchemes = [...]string{"mailto", "data", "javascript", "urn", "about", "tel"}

// isScheme reports whether s is an RFC 3986 scheme.
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return 'A' <= c&^0x20 && c&^0x20 <= 'Z' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// defaultPort reports whether port is the default of scheme (lower case);
// for a value without a scheme, 80 and 443 are.
func defaultPort(scheme []byte, port string) bool {
	switch port {
	case "80":
		return len(scheme) == 0 || string(scheme) == "http" || string(scheme) == "ws"
	case "443":
		return len(scheme) == 0 || string(scheme) == "https" || string(scheme) == "wss"
	case "21":
		return string(scheme) == "ftp"
	}
	return false
}

// appendURL appends the normal form of s (see NormalizeURL) and reports its
// class: urlNoScheme, urlScheme or urlOpaque.
func appendURL(dst []byte, s string) ([]byte, int) {
	s = trimSpace(s)
	var scheme []byte
	class := urlNoScheme
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		start := len(dst)
		dst = appendLowerASCII(dst, s[:i])
		scheme = dst[start:]
		dst = append(dst, "://"...)
		s = s[i+3:]
		class = urlScheme
	} else if i := strings.IndexByte(s, ':'); i > 0 {
		for _, o := range opaqueSchemes {
			if strings.EqualFold(s[:i], o) {
				dst = append(dst, o...)
				return append(dst, s[i:]...), urlOpaque
			}
		}
	}
	end := 0
	for end < len(s) && s[end] != '/' && s[end] != '?' && s[end] != '#' {
		end++
	}
	auth, tail := s[:end], s[end:]
	authStart := len(dst)
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		dst = append(dst, auth[:at+1]...)
		auth = auth[at+1:]
	}
	host, port := splitHostPort(auth)
	if strings.IndexByte(host, ':') < 0 && !strings.HasPrefix(host, "[") {
		host = strings.TrimRight(host, ".")
	}
	dst = appendLower(dst, host)
	if port != "" && !defaultPort(scheme, port) {
		dst = append(dst, ':')
		dst = append(dst, port...)
	}
	if len(dst) > authStart && (tail == "" || tail[0] != '/') {
		dst = append(dst, '/')
	}
	return append(dst, tail...), class
}

// splitHostPort splits an authority without user info into host and port.
// The port is "" when absent or empty; an authority whose port part is not
// all digits is all host.
func splitHostPort(a string) (host, port string) {
	if strings.HasPrefix(a, "[") {
		j := strings.IndexByte(a, ']')
		if j < 0 {
			return a, ""
		}
		rest := a[j+1:]
		if rest == "" {
			return a, ""
		}
		if rest[0] == ':' && isDigits(rest[1:]) {
			return a[:j+1], rest[1:]
		}
		return a, ""
	}
	i := strings.IndexByte(a, ':')
	if i < 0 {
		return a, ""
	}
	if strings.IndexByte(a[i+1:], ':') >= 0 || !isDigits(a[i+1:]) {
		return a, ""
	}
	return a[:i], a[i+1:]
}
