package importer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// Indicator types: ECS threat.indicator.type, the STIX cyber observable
// names.
const (
	TypeAS          = "autonomous-system"
	TypeArtifact    = "artifact"
	TypeDirectory   = "directory"
	TypeDomain      = "domain-name"
	TypeEmail       = "email-addr"
	TypeFile        = "file"
	TypeIPv4        = "ipv4-addr"
	TypeIPv6        = "ipv6-addr"
	TypeMAC         = "mac-addr"
	TypeMutex       = "mutex"
	TypePort        = "port"
	TypeProcess     = "process"
	TypeSoftware    = "software"
	TypeURL         = "url"
	TypeUserAccount = "user-account"
	TypeRegistry    = "windows-registry-key"
	TypeX509        = "x509-certificate"
	// TypeVulnerability is not an indicator type: a CVE id goes to the
	// vulnerability view as vulnerability.id.
	TypeVulnerability = "vulnerability"
)

// Types lists the types --type accepts: ECS's threat.indicator.type values,
// then TypeVulnerability.
var Types = []string{
	TypeAS, TypeArtifact, TypeDirectory, TypeDomain, TypeEmail, TypeFile, TypeIPv4, TypeIPv6, TypeMAC, TypeMutex,
	TypePort, TypeProcess, TypeSoftware, TypeURL, TypeUserAccount, TypeRegistry, TypeX509, TypeVulnerability,
}

// typeAliases are the other names a CSV type column may use.
var typeAliases = map[string]string{
	"ip": TypeIPv4, "ipv4": TypeIPv4, "ipv6": TypeIPv6, "cidr": TypeIPv4, "ip-addr": TypeIPv4,
	"domain": TypeDomain, "hostname": TypeDomain, "host": TypeDomain, "fqdn": TypeDomain,
	"uri": TypeURL, "email": TypeEmail, "e-mail": TypeEmail,
	"hash": TypeFile, "md5": TypeFile, "sha1": TypeFile, "sha256": TypeFile, "sha384": TypeFile, "sha512": TypeFile,
	"registry": TypeRegistry, "registry-key": TypeRegistry,
	"cve": TypeVulnerability, "asn": TypeAS, "as": TypeAS, "mac": TypeMAC,
}

// ParseType returns the type named s: one of Types. With aliases (a CSV
// type column), common other names are accepted too (ip, domain, hash,
// md5, email, cve, ...), in any case.
func ParseType(s string, aliases bool) (string, error) {
	for _, t := range Types {
		if s == t {
			return t, nil
		}
	}
	if aliases {
		l := strings.ToLower(strings.TrimSpace(s))
		for _, t := range Types {
			if l == t {
				return t, nil
			}
		}
		if t, ok := typeAliases[l]; ok {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown indicator type %q (allowed: %s)", s, strings.Join(Types, ", "))
}

// value is one indicator value in normal form.
type value struct {
	typ string // one of Types
	// name is the normal form, threat.indicator.name (vulnerability.id).
	name string
	// key is what identifies the value within its type, without the type:
	// name, or a case-folded form of it.
	key string
	// Typed fields, by type.
	hashField string // file: md5, sha1, ...
	url       ecs.URLParts
	domain    string // domain-name: url.domain
	hive      string // windows-registry-key: the hive as written, and the
	regKey    string // key under it
	number    int64  // autonomous-system, port
}

// normalizer turns raw values into values. Names and keys may view its
// scratch buffers, valid until the next call.
type normalizer struct {
	name, key, refang []byte
}

// errUndetected is the message of a value whose type is not recognized.
var errUndetected = errors.New("type not recognized: not an IP address or CIDR, domain, URL, e-mail address, " +
	"md5/sha1/sha256/sha384/sha512 hash, Windows registry path or CVE id (force a type with --type)")

var errEmpty = errors.New("empty value")

// detect recognizes the type of s, trimmed, and normalizes it.
func (n *normalizer) detect(s string) (value, error) {
	if s == "" {
		return value{}, errEmpty
	}
	s = n.unDefang(s)
	switch {
	case isRegistry(s):
		return n.normalize(TypeRegistry, s)
	case isCVE(s):
		return n.normalize(TypeVulnerability, s)
	}
	if i := indexSpaceOrCtl(s); i >= 0 {
		return value{}, fmt.Errorf("%s: has white space or a control character inside; one value per line", quote(s))
	}
	switch {
	case isDigest(s):
		return n.normalize(TypeFile, s)
	case strings.Contains(s, "://"):
		return n.normalize(TypeURL, s)
	}
	if maybeIP(s) {
		v, err := n.ip("", s)
		if err == nil || looksLikeIP(s) && !isBareURL(s) {
			return v, err
		}
	}
	if strings.IndexByte(s, '@') >= 0 && strings.IndexByte(s, '/') < 0 {
		return n.normalize(TypeEmail, s)
	}
	if isBareURL(s) {
		return n.normalize(TypeURL, s)
	}
	if validDomain(strings.TrimSuffix(s, "."), true) {
		return n.normalize(TypeDomain, s)
	}
	return value{}, fmt.Errorf("%s: %w", quote(s), errUndetected)
}

// quote quotes s for a message, shortened to 80 bytes.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return strconv.Quote(s)
}

// normalize checks that s, trimmed, is a value of type typ and returns its
// normal form.
func (n *normalizer) normalize(typ, s string) (value, error) {
	if s == "" {
		return value{}, errEmpty
	}
	if typ != TypeRegistry && typ != TypeSoftware && typ != TypeProcess && typ != TypeDirectory &&
		typ != TypeUserAccount && typ != TypeArtifact && typ != TypeX509 && typ != TypeMutex {
		if indexSpaceOrCtl(s) >= 0 {
			return value{}, fmt.Errorf("%s: %s has white space or a control character inside", typ, quote(s))
		}
	} else if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return value{}, fmt.Errorf("%s: has a control character", typ)
	}
	if !utf8.ValidString(s) {
		return value{}, fmt.Errorf("%s: not valid UTF-8", typ)
	}
	v := value{typ: typ, name: s, key: s}
	switch typ {
	case TypeIPv4, TypeIPv6:
		return n.ip(typ, s)
	case TypeFile:
		if !isDigest(s) {
			return value{}, fmt.Errorf("file: %s is not an md5, sha1, sha256, sha384 or sha512 hex digest", quote(s))
		}
		v.hashField, _ = ecs.HashField(s)
		n.name = appendLower(n.name[:0], s)
		v.name = b2s(n.name)
		v.key = v.name
	case TypeDomain:
		s = strings.TrimSuffix(s, ".")
		if !validDomain(s, false) {
			return value{}, fmt.Errorf("domain-name: %s is not a valid domain name", quote(s))
		}
		n.name = appendLower(n.name[:0], s)
		v.name = b2s(n.name)
		v.key, v.domain = v.name, v.name
	case TypeURL:
		if i := strings.Index(s, "://"); i >= 0 && (!isScheme(s[:i]) || i+3 == len(s)) {
			return value{}, fmt.Errorf("url: %s has no valid scheme and host before and after ://", quote(s))
		}
		if strings.Contains(s, "://") {
			v.url = ecs.ParseURL(s)
		} else {
			// A URL without a scheme, as lists write web URLs: its
			// parts are those of the http URL, without the scheme.
			v.url = ecs.ParseURL("http://" + s)
			v.url.Original, v.url.Scheme = s, ""
		}
		n.key = appendURLKey(n.key[:0], s)
		v.key = b2s(n.key)
	case TypeEmail:
		s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
		at := strings.LastIndexByte(s, '@')
		if at <= 0 || !validDomain(s[at+1:], false) {
			return value{}, fmt.Errorf("email-addr: %s is not an e-mail address (local@domain)", quote(s))
		}
		n.name = appendLower(n.name[:0], s)
		v.name = b2s(n.name)
		v.key = v.name
	case TypeRegistry:
		s = strings.TrimRight(s, `\`)
		hive, rest, ok := splitHive(s)
		if !ok {
			return value{}, fmt.Errorf("windows-registry-key: %s does not start with a hive (HKEY_LOCAL_MACHINE or HKLM, HKEY_CURRENT_USER or HKCU, HKEY_CLASSES_ROOT or HKCR, HKEY_USERS or HKU, HKEY_CURRENT_CONFIG or HKCC)", quote(s))
		}
		v.name, v.hive, v.regKey = s, hive, rest
		n.key = appendRegistryKey(n.key[:0], hive, rest)
		v.key = b2s(n.key)
	case TypeVulnerability:
		if !isCVE(s) {
			return value{}, fmt.Errorf("vulnerability: %s is not a CVE id (CVE-YYYY-NNNN)", quote(s))
		}
		v.name = strings.ToUpper(s)
		v.key = v.name
	case TypeAS:
		num := s
		if len(num) > 2 && (num[0] == 'A' || num[0] == 'a') && (num[1] == 'S' || num[1] == 's') {
			num = num[2:]
		}
		u, err := strconv.ParseUint(num, 10, 32)
		if err != nil || !isDigits(num) {
			return value{}, fmt.Errorf("autonomous-system: %s is not an AS number (e.g. AS64500 or 64500)", quote(s))
		}
		v.number = int64(u)
		n.name = strconv.AppendUint(append(n.name[:0], "AS"...), u, 10)
		v.name = b2s(n.name)
		v.key = v.name
	case TypePort:
		u, err := strconv.ParseUint(s, 10, 16)
		if err != nil || !isDigits(s) {
			return value{}, fmt.Errorf("port: %s is not a port number (0 to 65535)", quote(s))
		}
		v.number = int64(u)
		n.name = strconv.AppendUint(n.name[:0], u, 10)
		v.name = b2s(n.name)
		v.key = v.name
	case TypeMAC:
		hw, err := net.ParseMAC(s)
		if err != nil {
			return value{}, fmt.Errorf("mac-addr: %s is not a MAC address (e.g. 00:00:5e:00:53:01)", quote(s))
		}
		n.name = append(n.name[:0], hw.String()...)
		v.name = b2s(n.name)
		v.key = v.name
	}
	return v, nil
}

// ip normalizes an address or CIDR range. The type follows the family
// (typ may name either): an IPv4-mapped IPv6 address is IPv4, a /32 or
// /128 range is its address, and a range is masked.
func (n *normalizer) ip(typ, s string) (value, error) {
	var text []byte
	var v4 bool
	if strings.IndexByte(s, '/') < 0 {
		if strings.IndexByte(s, '%') >= 0 {
			return value{}, fmt.Errorf("%s: %s has a zone; give the address without it", orIP(typ), quote(s))
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return value{}, fmt.Errorf("%s: %s is not an IP address or CIDR range", orIP(typ), quote(s))
		}
		a = a.Unmap()
		v4 = a.Is4()
		text = a.AppendTo(n.name[:0])
	} else {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return value{}, fmt.Errorf("%s: %s is not an IP address or CIDR range", orIP(typ), quote(s))
		}
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		v4 = a.Is4()
		if bits == a.BitLen() {
			text = a.AppendTo(n.name[:0])
		} else {
			text = netip.PrefixFrom(a, bits).Masked().AppendTo(n.name[:0])
		}
	}
	n.name = text
	v := value{typ: TypeIPv6, name: b2s(text)}
	if v4 {
		v.typ = TypeIPv4
	}
	v.key = v.name
	return v, nil
}

// isScheme reports whether s is a URI scheme (RFC 3986).
func isScheme(s string) bool {
	if s == "" || !('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i] | 0x20
		if !('a' <= c && c <= 'z') && !('0' <= s[i] && s[i] <= '9') && s[i] != '+' && s[i] != '-' && s[i] != '.' {
			return false
		}
	}
	return true
}

func orIP(typ string) string {
	if typ == "" {
		return "ip"
	}
	return typ
}

// maybeIP reports whether s could be an IP address or range: it starts
// with a hex digit or ':' and has a '.' or a ':'.
func maybeIP(s string) bool {
	if s == "" || !isHexDigit(s[0]) && s[0] != ':' {
		return false
	}
	return strings.IndexByte(s, '.') >= 0 || strings.IndexByte(s, ':') >= 0
}

// looksLikeIP reports whether s can only have been meant as an IP address
// or range: digits, dots and a '/' with a dot, or hex digits and colons
// with a colon, and anything after a '%'.
func looksLikeIP(s string) bool {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	digits, hex := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', c == '/':
		case c == '.':
			hex = hex && strings.IndexByte(s, ':') >= 0
		case c == ':':
			digits = false
		case isHexDigit(c):
			digits = false
		default:
			return false
		}
	}
	return digits && strings.IndexByte(s, '.') >= 0 || hex && strings.IndexByte(s, ':') >= 0
}

// isDigest reports whether s is a hex digest of an md5, sha1, sha256,
// sha384 or sha512 length.
func isDigest(s string) bool {
	if _, ok := ecs.HashField(s); !ok {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// isHexDigit reports whether c is a hexadecimal digit, in either case.
func isHexDigit(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f' }

// isCVE reports whether s is a CVE id: CVE-, a four-digit year, '-' and
// at least four digits, in any case.
func isCVE(s string) bool {
	if len(s) < 13 || !strings.EqualFold(s[:4], "cve-") || s[8] != '-' {
		return false
	}
	return isDigits(s[4:8]) && isDigits(s[9:])
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// hives are the registry hives, long and short names.
var hives = [...]struct{ long, short string }{
	{"HKEY_LOCAL_MACHINE", "HKLM"},
	{"HKEY_CURRENT_USER", "HKCU"},
	{"HKEY_CLASSES_ROOT", "HKCR"},
	{"HKEY_USERS", "HKU"},
	{"HKEY_CURRENT_CONFIG", "HKCC"},
}

// splitHive splits a registry path into its hive, as written, and the key
// under it ("" for the hive itself). A "Computer\" prefix, as regedit
// copies paths, is dropped.
func splitHive(s string) (hive, rest string, ok bool) {
	if len(s) > 9 && strings.EqualFold(s[:9], `computer\`) {
		s = s[9:]
	}
	h, rest, _ := strings.Cut(s, `\`)
	for _, x := range hives {
		if strings.EqualFold(h, x.long) || strings.EqualFold(h, x.short) {
			return h, rest, true
		}
	}
	return "", "", false
}

// hiveShort returns the short name of a hive spelled either way.
func hiveShort(h string) string {
	for _, x := range hives {
		if strings.EqualFold(h, x.long) || strings.EqualFold(h, x.short) {
			return x.short
		}
	}
	return h
}

func isRegistry(s string) bool {
	_, _, ok := splitHive(s)
	return ok
}

// appendRegistryKey appends the key form of a registry path: the hive's
// short name and the rest, lower case (Windows ignores case), with runs of
// backslashes collapsed.
func appendRegistryKey(dst []byte, hive, rest string) []byte {
	dst = appendLower(dst, hiveShort(hive))
	for _, c := range strings.Split(rest, `\`) {
		if c == "" {
			continue
		}
		dst = append(dst, '\\')
		dst = appendLower(dst, c)
	}
	return dst
}

// isBareURL reports whether s is a URL without a scheme: a host (domain or
// IP address, with an optional port) followed by a path, query or
// fragment, or a host with a port.
func isBareURL(s string) bool {
	end := strings.IndexAny(s, "/?#")
	host, tail := s, ""
	if end >= 0 {
		host, tail = s[:end], s[end:]
	}
	port := ""
	if strings.HasPrefix(host, "[") {
		j := strings.IndexByte(host, ']')
		if j < 0 {
			return false
		}
		if _, err := netip.ParseAddr(host[1:j]); err != nil {
			return false
		}
		if rest := host[j+1:]; rest != "" {
			if rest[0] != ':' || !isDigits(rest[1:]) {
				return false
			}
			port = rest[1:]
		}
	} else {
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host, port = host[:i], host[i+1:]
			if !isDigits(port) {
				return false
			}
		}
		_, err := netip.ParseAddr(host)
		if err != nil && !validDomain(host, true) {
			return false
		}
		if err == nil && port == "" && len(tail) > 1 && len(tail) <= 4 && isDigits(tail[1:]) {
			return false // a CIDR range, not a path
		}
	}
	return tail != "" || port != ""
}

// validDomain reports whether s is a domain name: labels of 1 to 63 bytes
// of letters (any script, for IDNs), digits, '-' and '_', at most 253
// bytes. With detect, as for a value whose type is not given, it also
// needs two labels and a last label that is not all digits (so that
// 1.2.3.999 is not a domain).
func validDomain(s string, detect bool) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			continue
		}
		label := s[start:i]
		if len(label) == 0 || len(label) > 63 || !validLabel(label) {
			return false
		}
		labels++
		if i == len(s) && detect && (labels < 2 || isDigits(label)) {
			return false
		}
		start = i + 1
	}
	return true
}

func validLabel(l string) bool {
	for i := 0; i < len(l); {
		c := l[i]
		if c < utf8.RuneSelf {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(l[i:])
		if r == utf8.RuneError || !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)) {
			return false
		}
		i += size
	}
	return true
}

// indexSpaceOrCtl returns the index of the first white space or control
// character of s, or -1.
func indexSpaceOrCtl(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f {
			return i
		}
		if c >= utf8.RuneSelf {
			return strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
		}
	}
	return -1
}

// appendURLKey appends the key form of a URL: trimmed, with the scheme and
// the host lower-cased and a trailing dot of the host removed.
func appendURLKey(dst []byte, s string) []byte {
	if i := strings.Index(s, "://"); i > 0 {
		dst = appendLower(dst, s[:i+3])
		s = s[i+3:]
	}
	end := strings.IndexAny(s, "/?#")
	if end < 0 {
		end = len(s)
	}
	auth := s[:end]
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		dst = append(dst, auth[:at+1]...)
		auth = auth[at+1:]
	}
	host, port := auth, ""
	if i := strings.LastIndexByte(auth, ':'); i >= 0 && !strings.HasSuffix(auth, "]") {
		host, port = auth[:i], auth[i:]
	}
	dst = appendLower(dst, strings.TrimSuffix(host, "."))
	dst = append(dst, port...)
	return append(dst, s[end:]...)
}

// unDefang undoes the usual defanging of indicators shared as text:
// hxxp:// and hxxps:// for http(s)://, [.] (.) {.} for '.', [:] for ':',
// [@] and [at] for '@', and [/] for '/'. It returns s itself when there is
// nothing to undo.
func (n *normalizer) unDefang(s string) string {
	if strings.IndexAny(s, "[({") < 0 && !hasPrefixFold(s, "hxxp") && !hasPrefixFold(s, "fxp") {
		return s
	}
	b := n.refang[:0]
	switch {
	case hasPrefixFold(s, "hxxp"):
		b = append(b, "http"...)
		s = s[4:]
	case hasPrefixFold(s, "fxp"):
		b = append(b, "ftp"...)
		s = s[3:]
	}
	for i := 0; i < len(s); {
		matched := false
		for _, d := range defangs {
			if len(s)-i >= len(d.from) && strings.EqualFold(s[i:i+len(d.from)], d.from) {
				b = append(b, d.to)
				i += len(d.from)
				matched = true
				break
			}
		}
		if !matched {
			b = append(b, s[i])
			i++
		}
	}
	n.refang = b
	return b2s(b)
}

var defangs = [...]struct {
	from string
	to   byte
}{{"[.]", '.'}, {"(.)", '.'}, {"{.}", '.'}, {"[dot]", '.'}, {"[:]", ':'}, {"[@]", '@'}, {"[at]", '@'}, {"[/]", '/'}}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// appendLower appends s lower-cased (Unicode simple case mapping).
func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			for _, r := range s[i:] {
				dst = utf8.AppendRune(dst, unicode.ToLower(r))
			}
			return dst
		}
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
