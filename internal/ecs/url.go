package ecs

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// URLParts holds the fields Elasticsearch's uri_parts processor writes.
// Empty strings stand for absent fields; Port is -1 when there is none.
type URLParts struct {
	Original  string
	Scheme    string
	Domain    string
	Port      int
	Path      string
	Extension string
	Query     string
	Fragment  string
	Username  string
	Password  string
	UserInfo  string
	// OK is false when the value could not be parsed; then only Original
	// is set.
	OK bool
}

// ParseURL splits s as Elasticsearch's uri_parts processor does. That
// processor parses with java.net.URI (RFC 2396 with Java's deviations) and,
// if that fails, with java.net.URL; ParseURL reproduces both:
//
//   - A value without a scheme is a relative reference: "example.com/" has
//     path "example.com/" and no domain.
//   - An authority that is not a valid server (for example a host name with
//     an underscore) is a registry-based authority: it has no domain.
//   - path, query, fragment and user_info are percent-decoded when java.net.URI
//     parsed them, and left as they are when java.net.URL did.
//   - extension is the text after the last '.' of the path, as the
//     processor computed it up to Elasticsearch 8.x ("example.com/" → "com/").
//
// If both parsers fail, only Original is set and OK is false. The URL
// fallback knows the protocols of a stock JVM that matter here: http, https,
// ftp, file and mailto.
func ParseURL(s string) URLParts {
	u := URLParts{Original: s, Port: -1}
	var p uriParser
	p.s = s
	if p.parse() {
		u.OK = true
		u.Scheme = p.scheme
		u.Domain = p.host
		u.Port = p.port
		if p.hasPath {
			u.Path = decodePercent(p.path)
		}
		u.Query = decodePercent(p.query)
		u.Fragment = decodePercent(p.fragment)
		if p.hasUserInfo {
			u.UserInfo = decodePercent(p.userInfo)
			u.splitUserInfo()
		}
	} else if !parseJavaURL(s, &u) {
		return URLParts{Original: s, Port: -1}
	}
	if i := strings.LastIndexByte(u.Path, '.'); i >= 0 {
		u.Extension = u.Path[i+1:]
	}
	return u
}

func (u *URLParts) splitUserInfo() {
	if i := strings.IndexByte(u.UserInfo, ':'); i >= 0 {
		u.Username = u.UserInfo[:i]
		u.Password = u.UserInfo[i+1:]
	}
}

// Character sets of java.net.URI (RFC 2396 plus RFC 2732 brackets), for
// ASCII. Where escapes are allowed, %XX and non-ASCII "other" characters
// are accepted as well (see scanSet).
type charSet [utf8.RuneSelf]bool

func makeSet(parts ...string) (t charSet) {
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			t[p[i]] = true
		}
	}
	return t
}

const (
	alphaChars  = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars  = "0123456789"
	markChars   = "-_.!~*'()"
	unreserved  = alphaChars + digitChars + markChars
	reserved    = ";/?:@&=+$,[]"
	pcharExtra  = ":@&=+$,"
	userExtra   = ";:&=+$,"
	regExtra    = "$,;:@&=+"
	serverExtra = "-.:@[]"
)

var (
	alphaSet     = makeSet(alphaChars)
	alphaNumSet  = makeSet(alphaChars, digitChars)
	alphaNumDash = makeSet(alphaChars, digitChars, "-")
	hexSet       = makeSet(digitChars, "abcdefABCDEF")
	uricSet      = makeSet(unreserved, reserved)
	pathSet      = makeSet(unreserved, pcharExtra, ";/")
	userInfoSet  = makeSet(unreserved, userExtra)
	regNameSet   = makeSet(unreserved, regExtra)
	serverSet    = makeSet(unreserved, userExtra, alphaChars, digitChars, serverExtra)
	serverPctSet = makeSet(unreserved, userExtra, alphaChars, digitChars, serverExtra, "%")
	schemeSet    = makeSet(alphaChars, digitChars, "+-.")
	scopeIDSet   = makeSet(alphaChars, digitChars, "_.")
)

func (t *charSet) has(c byte) bool { return c < utf8.RuneSelf && t[c] }

// isOtherRune reports whether java.net.URI accepts r unescaped where
// escapes are allowed: above U+0080, neither an ISO control nor a space.
func isOtherRune(r rune) bool {
	if r == utf8.RuneError {
		return true // an invalid byte; Java would have seen U+FFFD
	}
	return r >= 0xA0 && !unicode.In(r, unicode.Zs, unicode.Zl, unicode.Zp)
}

type uriParser struct {
	s                            string
	scheme, userInfo, host, path string
	query, fragment              string
	hasPath, hasUserInfo         bool
	port                         int
	failed                       bool
}

// scanSet returns the index of the first byte in [p, n) that set rejects.
// With escapes, a '%' must start a %XX escape (else the parse fails) and
// non-ASCII "other" characters are accepted.
func (u *uriParser) scanSet(p, n int, set *charSet, escapes bool) int {
	s := u.s
	for p < n {
		c := s[p]
		if c < utf8.RuneSelf {
			if set[c] {
				p++
				continue
			}
			if escapes && c == '%' {
				if p+3 <= n && hexSet.has(s[p+1]) && hexSet.has(s[p+2]) {
					p += 3
					continue
				}
				u.failed = true
			}
			return p
		}
		if !escapes {
			return p
		}
		r, size := utf8.DecodeRuneInString(s[p:n])
		if !isOtherRune(r) {
			return p
		}
		p += size
	}
	return p
}

func (u *uriParser) checkChars(p, n int, set *charSet, escapes bool) bool {
	return u.scanSet(p, n, set, escapes) == n && !u.failed
}

// indexAny returns the index of the first byte of stop in [p, n), or n.
func (u *uriParser) indexAny(p, n int, stop string) int {
	if i := strings.IndexAny(u.s[p:n], stop); i >= 0 {
		return p + i
	}
	return n
}

func (u *uriParser) at(p, n int, c byte) bool { return p < n && u.s[p] == c }

func (u *uriParser) parse() bool {
	s := u.s
	n := len(s)
	u.port = -1
	p := 0
	// The scheme ends at the first ':' that comes before any of "/?#".
	colon := -1
	for i := 0; i < n; i++ {
		c := s[i]
		if c == '/' || c == '?' || c == '#' {
			break
		}
		if c == ':' {
			colon = i
			break
		}
	}
	if colon >= 0 {
		if colon == 0 || !alphaSet.has(s[0]) {
			return false
		}
		for i := 1; i < colon; i++ {
			if !schemeSet.has(s[i]) {
				return false
			}
		}
		u.scheme = s[:colon]
		p = colon + 1
		if u.at(p, n, '/') {
			if p = u.parseHierarchical(p, n); p < 0 {
				return false
			}
		} else {
			// Opaque: scheme-specific part up to '#', not empty.
			q := u.indexAny(p, n, "#")
			if q <= p || !u.checkChars(p, q, &uricSet, true) {
				return false
			}
			p = q
		}
	} else if p = u.parseHierarchical(0, n); p < 0 {
		return false
	}
	if u.at(p, n, '#') {
		if !u.checkChars(p+1, n, &uricSet, true) {
			return false
		}
		u.fragment = s[p+1:]
		p = n
	}
	return p == n
}

func (u *uriParser) parseHierarchical(p, n int) int {
	s := u.s
	if u.at(p, n, '/') && u.at(p+1, n, '/') {
		p += 2
		q := u.indexAny(p, n, "/?#")
		if q > p {
			if !u.parseAuthority(p, q) {
				return -1
			}
			p = q
		} else if q >= n {
			return -1 // authority expected
		}
	}
	q := u.indexAny(p, n, "?#")
	if !u.checkChars(p, q, &pathSet, true) {
		return -1
	}
	u.path = s[p:q]
	u.hasPath = true
	p = q
	if u.at(p, n, '?') {
		p++
		q = u.indexAny(p, n, "#")
		if !u.checkChars(p, q, &uricSet, true) {
			return -1
		}
		u.query = s[p:q]
		p = q
	}
	return p
}

func (u *uriParser) parseAuthority(p, n int) bool {
	var serverChars bool
	if u.indexAny(p, n, "]") > p {
		// Contains (or may contain) an IPv6 literal, so '%' is allowed.
		serverChars = u.scanSet(p, n, &serverPctSet, true) == n
	} else {
		serverChars = u.scanSet(p, n, &serverSet, true) == n
	}
	if u.failed {
		return false
	}
	regChars := u.scanSet(p, n, &regNameSet, true) == n
	if u.failed {
		return false
	}
	if regChars && !serverChars {
		return true // registry-based authority: no host
	}
	if serverChars {
		if u.parseServer(p, n) {
			return true
		}
		// Not a server: undo, and try a registry-based authority.
		u.userInfo, u.hasUserInfo, u.host, u.port = "", false, "", -1
	}
	return regChars
}

func (u *uriParser) parseServer(p, n int) bool {
	s := u.s
	if q := u.indexAny(p, n, "@"); q < n {
		if !u.checkChars(p, q, &userInfoSet, true) {
			u.failed = false
			return false
		}
		u.userInfo = s[p:q]
		u.hasUserInfo = true
		p = q + 1
	}
	if u.at(p, n, '[') {
		p++
		q := u.indexAny(p, n, "]")
		if q <= p || q >= n {
			return false
		}
		addr := s[p:q]
		if r := strings.IndexByte(addr, '%'); r >= 0 {
			scope := addr[r+1:]
			addr = addr[:r]
			if scope == "" {
				return false
			}
			for i := 0; i < len(scope); i++ {
				if !scopeIDSet.has(scope[i]) {
					return false
				}
			}
		}
		if !validIPv6Literal(addr) {
			return false
		}
		u.host = s[p-1 : q+1]
		p = q + 1
	} else {
		q := u.parseIPv4(p, n)
		if q <= p {
			if q = u.parseHostname(p, n); q < 0 {
				return false
			}
		}
		p = q
	}
	if u.at(p, n, ':') {
		p++
		q := p
		for q < n && s[q] >= '0' && s[q] <= '9' {
			q++
		}
		if q > p {
			port, err := strconv.ParseInt(s[p:q], 10, 32)
			if err != nil {
				return false
			}
			u.port = int(port)
			p = q
		}
	}
	return p >= n
}

func validIPv6Literal(s string) bool {
	if s == "" || strings.IndexByte(s, ':') < 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != ':' && c != '.' && !hexSet.has(c) {
			return false
		}
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// parseIPv4 parses a dotted-quad IPv4 address at p and returns its end, or
// -1. An address followed by anything but ':' does not count.
func (u *uriParser) parseIPv4(p, n int) int {
	s := u.s
	m := p
	for m < n && (s[m] >= '0' && s[m] <= '9' || s[m] == '.') {
		m++
	}
	if m <= p {
		return -1
	}
	q := p
	for part := 0; part < 4; part++ {
		if part > 0 {
			if q >= m || s[q] != '.' {
				return -1
			}
			q++
		}
		start := q
		for q < m && s[q] >= '0' && s[q] <= '9' {
			q++
		}
		// Java checks the value, not the number of digits: "0001" is 1.
		if q == start {
			return -1
		}
		if v, err := strconv.Atoi(s[start:q]); err != nil || v > 255 {
			return -1
		}
	}
	if q < m {
		return -1
	}
	if q < n && s[q] != ':' {
		return -1
	}
	u.host = s[p:q]
	return q
}

// parseHostname parses an RFC 2396 host name at p and returns its end, or
// -1. Labels are alphanumerics with inner dashes; the last label of a
// dotted name must start with a letter.
func (u *uriParser) parseHostname(p, n int) int {
	s := u.s
	start := p
	last := -1
	for p < n {
		q := p
		for q < n && alphaNumSet.has(s[q]) {
			q++
		}
		if q <= p {
			break
		}
		last = p
		p = q
		for q < n && alphaNumDash.has(s[q]) {
			q++
		}
		if q > p {
			if s[q-1] == '-' {
				return -1
			}
			p = q
		}
		if p < n && s[p] == '.' {
			p++
			continue
		}
		break
	}
	if p < n && s[p] != ':' {
		return -1
	}
	if last < 0 {
		return -1
	}
	if last > start && !alphaSet.has(s[last]) {
		return -1
	}
	u.host = s[start:p]
	return p
}

// decodePercent decodes %XX escapes as java.net.URI's getters do: each run
// of escapes is decoded as UTF-8, invalid bytes becoming U+FFFD.
func decodePercent(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	var run []byte
	for i < len(s) {
		if s[i] != '%' {
			b = append(b, s[i])
			i++
			continue
		}
		run = run[:0]
		for i+2 < len(s) && s[i] == '%' {
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				break
			}
			run = append(run, h<<4|l)
			i += 3
		}
		if len(run) == 0 {
			b = append(b, s[i])
			i++
			continue
		}
		for len(run) > 0 {
			r, size := utf8.DecodeRune(run)
			if r == utf8.RuneError && size <= 1 {
				b = append(b, "\uFFFD"...)
				run = run[1:]
				continue
			}
			b = append(b, run[:size]...)
			run = run[size:]
		}
	}
	return string(b)
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseJavaURL is java.net.URL's lenient parse, used by uri_parts when
// java.net.URI rejects the value: it needs a known protocol and checks
// little else. Nothing is decoded.
func parseJavaURL(spec string, u *URLParts) bool {
	start, limit := 0, len(spec)
	for limit > 0 && spec[limit-1] <= ' ' {
		limit--
	}
	for start < limit && spec[start] <= ' ' {
		start++
	}
	if limit-start >= 4 && strings.EqualFold(spec[start:start+4], "url:") {
		start += 4
	}
	protocol := ""
	if start < len(spec) && spec[start] != '#' {
		for i := start; i < limit && spec[i] != '/'; i++ {
			if spec[i] == ':' {
				if s := strings.ToLower(spec[start:i]); validProtocol(s) {
					protocol = s
					start = i + 1
				}
				break
			}
		}
	}
	switch protocol {
	case "http", "https", "ftp", "file", "mailto":
	default:
		return false // no protocol, or no handler for it
	}
	ref := ""
	if i := strings.IndexByte(spec[start:limit], '#'); i >= 0 {
		i += start
		ref = spec[i+1 : limit]
		limit = i
	}
	if protocol == "mailto" {
		file := ""
		if start < limit {
			file = spec[start:limit]
		}
		if strings.TrimFunc(file, unicode.IsSpace) == "" {
			return false // "No email address"
		}
		path, query := file, ""
		if q := strings.LastIndexByte(file, '?'); q >= 0 {
			path, query = file[:q], file[q+1:]
		}
		*u = URLParts{Original: u.Original, Scheme: protocol, Path: path, Query: query, Port: -1, OK: true}
		return true
	}
	var host, path, query, userInfo string
	hasAuthority := false
	port := -1
	if start < limit {
		if q := strings.IndexByte(spec, '?'); q >= 0 && q < limit {
			query = spec[q+1 : limit]
			limit = q
			spec = spec[:q]
		}
	}
	isUNC := start <= limit-4 && spec[start:start+4] == "////"
	if !isUNC && start <= limit-2 && spec[start:start+2] == "//" {
		start += 2
		i := strings.IndexByte(spec[start:], '/')
		if i < 0 || start+i > limit {
			i = limit
		} else {
			i += start
		}
		authority := spec[start:i]
		hasAuthority = true
		h := authority
		if at := strings.IndexByte(authority, '@'); at >= 0 {
			if at != strings.LastIndexByte(authority, '@') {
				h = "" // not server-based
			} else {
				userInfo = authority[:at]
				h = authority[at+1:]
			}
		}
		if len(h) > 0 && h[0] == '[' {
			ind := strings.IndexByte(h, ']')
			if ind <= 2 {
				return false
			}
			lit := h[1:ind]
			if z := strings.IndexByte(lit, '%'); z >= 0 {
				lit = lit[:z]
			}
			if a, err := netip.ParseAddr(lit); err != nil || !a.Is6() {
				return false
			}
			rest := h[ind+1:]
			h = h[:ind+1]
			if rest != "" {
				if rest[0] != ':' {
					return false
				}
				if len(rest) > 1 {
					v, err := strconv.ParseInt(rest[1:], 10, 32)
					if err != nil {
						return false
					}
					port = int(v)
				}
			}
		} else if c := strings.IndexByte(h, ':'); c >= 0 {
			if len(h) > c+1 {
				v, err := strconv.ParseInt(h[c+1:], 10, 32)
				if err != nil {
					return false
				}
				port = int(v)
			}
			h = h[:c]
		}
		if port < -1 {
			return false
		}
		host = h
		start = i
	}
	if start < limit {
		if spec[start] == '/' {
			path = spec[start:limit]
		} else {
			sep := ""
			if hasAuthority {
				sep = "/"
			}
			path = sep + spec[start:limit]
		}
	}
	*u = URLParts{
		Original: u.Original,
		Scheme:   protocol,
		Domain:   host,
		Port:     port,
		Path:     path,
		Query:    query,
		Fragment: ref,
		UserInfo: userInfo,
		OK:       true,
	}
	u.splitUserInfo()
	return true
}

func validProtocol(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 0 && !alphaSet.has(c) || !schemeSet.has(c) {
			return false
		}
	}
	return true
}
