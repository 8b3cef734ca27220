package matcher

import (
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/vigil-ti/vigil/internal/prefetch"
)

// Index is an immutable set of indicators, safe for concurrent use. A nil
// *Index is empty.
//
// Every Match method appends to dst the Refs of the indicators whose value
// matches and that are unexpired at now (ExpiresAt after now), and returns
// the extended slice. Refs of one value come in the order they were added.
type Index struct {
	t        *tables
	rejected int
}

// b2s views b as a string; the string must not outlive b's next change.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// MatchIP appends the Refs of every indicator whose value contains ip: an
// equal host address first, then the CIDR ranges that contain it, longest
// prefix first. Every containing range is reported, not just the longest,
// since each is an indicator of its own. IPv4-mapped IPv6 addresses match
// as IPv4; IPv6 ranges shorter than /96 do not contain IPv4 addresses. The
// zone is ignored.
func (x *Index) MatchIP(dst []uint32, ip netip.Addr, now time.Time) []uint32 {
	if x == nil || !ip.IsValid() {
		return dst
	}
	ip = ip.WithZone("").Unmap()
	n := nowNanos(now)
	if ip.Is4() {
		dst = x.t.ipv4.match(dst, ipv4Key(ip), n)
	} else {
		dst = x.t.ipv6.match(dst, ip.As16(), n)
	}
	return x.t.cidr.match(dst, ip, n)
}

// MatchIPString is MatchIP for an address in text form; a value that is
// not an IP address matches nothing.
func (x *Index) MatchIPString(dst []uint32, ip string, now time.Time) []uint32 {
	a, ok := parseAddr(trimSpace(ip))
	if !ok {
		return dst
	}
	return x.MatchIP(dst, a, now)
}

// PrefetchIP adds to pf what MatchIPString(ip) reads first, at random:
// the word of its host table's Bloom filter, and its block's word of the
// CIDR ranges' prefilter. A caller prefetches them, does other work, then
// matches.
func (x *Index) PrefetchIP(pf *prefetch.Addrs, ip string) {
	if x == nil {
		return
	}
	a, ok := parseAddr(trimSpace(ip))
	if !ok {
		return
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		k := ipv4Key(a)
		x.t.ipv4.filter.prefetch(pf, fixedHash(&k))
		x.t.cidr.prefetchV4(pf, k)
		return
	}
	k := a.As16()
	x.t.ipv6.filter.prefetch(pf, fixedHash(&k))
}

// MatchHash appends the Refs of the file indicators with hash h, compared
// in normal form (see NormalizeHash). Hex digests of every length match
// whatever the ECS field they came from.
func (x *Index) MatchHash(dst []uint32, h string, now time.Time) []uint32 {
	if x == nil {
		return dst
	}
	h = trimSpace(h)
	n := nowNanos(now)
	t := x.t
	var k [64]byte
	if decodeHex(k[:], h) {
		switch len(h) {
		case 32:
			return t.md5.match(dst, [16]byte(k[:16]), n)
		case 40:
			return t.sha1.match(dst, [20]byte(k[:20]), n)
		case 64:
			return t.sha256.match(dst, [32]byte(k[:32]), n)
		case 96:
			return t.sha384.match(dst, [48]byte(k[:48]), n)
		default:
			return t.sha512.match(dst, k, n)
		}
	}
	if len(t.hash.ids) == 0 {
		return dst
	}
	var buf [normBufSize]byte
	return t.hash.match(dst, b2s(appendHash(buf[:0], h)), n)
}

// MatchDomain appends the Refs of the domain indicators equal to d, in
// normal form (see NormalizeDomain). With subdomains, it also appends those
// of every parent domain, most specific first: "a.b.evil.example" then
// matches an indicator "evil.example" (and one "example", should a feed
// list a bare top-level domain).
func (x *Index) MatchDomain(dst []uint32, d string, subdomains bool, now time.Time) []uint32 {
	if x == nil {
		return dst
	}
	var buf [normBufSize]byte
	v := b2s(appendDomain(buf[:0], d))
	if v == "" {
		return dst
	}
	n := nowNanos(now)
	t := &x.t.domain
	dst = t.match(dst, v, n)
	if !subdomains {
		return dst
	}
	mask := x.t.domainLabels
	labels := strings.Count(v, ".") + 1
	for {
		i := strings.IndexByte(v, '.')
		if i < 0 {
			break
		}
		v = v[i+1:]
		labels--
		if mask&(1<<min(labels, 63)) != 0 && v != "" {
			dst = t.match(dst, v, n)
		}
	}
	return dst
}

// MatchURL appends the Refs of the URL indicators equal to u in normal form
// (see NormalizeURL), exact matches first. A value without a scheme, as
// feeds write web URLs, stands for the same URL under http and https:
// "http://evil.example/a" and "https://evil.example/a" match an indicator
// "evil.example/a", and "evil.example/a" matches indicators
// "http://evil.example/a" and "https://evil.example/a".
func (x *Index) MatchURL(dst []uint32, u string, now time.Time) []uint32 {
	if x == nil || len(x.t.url.ids) == 0 {
		return dst
	}
	var buf [3 * normBufSize]byte
	var ends [3]int
	b, n := x.appendURLForms(buf[:0], u, &ends)
	t, at, start := &x.t.url, nowNanos(now), 0
	for _, end := range ends[:n] {
		dst = t.match(dst, b2s(b[start:end]), at)
		start = end
	}
	return dst
}

// appendURLForms appends to dst the normal forms of u that MatchURL looks
// up, in its order, end to end from len(dst) on, and sets ends to where
// each ends; it returns dst and how many forms there are (0 to 3).
func (x *Index) appendURLForms(dst []byte, u string, ends *[3]int) ([]byte, int) {
	start := len(dst)
	b, class := appendURL(dst, u)
	if len(b) == start {
		return b, 0
	}
	ends[0] = len(b)
	v := b2s(b[start:]) // b only grows: v stays as it is
	switch class {
	case urlScheme:
		if x.t.urlBare == 0 {
			return b, 1
		}
		var rest string
		if r, ok := strings.CutPrefix(v, "http://"); ok {
			rest = r
		} else if r, ok := strings.CutPrefix(v, "https://"); ok {
			rest = r
		} else {
			return b, 1
		}
		if b, _ = appendURL(b, rest); b2s(b[ends[0]:]) == v {
			return b[:ends[0]], 1
		}
		ends[1] = len(b)
		return b, 2
	case urlNoScheme:
		n := 1
		var alt [normBufSize]byte
		for _, scheme := range [...]string{"http://", "https://"} {
			// The normal form of scheme+v; v's authority has already lost
			// the ports that are defaults without a scheme.
			a := append(alt[:0], scheme...)
			a = append(a, v...)
			b, _ = appendURL(b, b2s(a))
			ends[n] = len(b)
			n++
		}
		return b, n
	}
	return b, 1
}

// URLKeys holds the normal forms of one URL that MatchURL looks up, with
// their hashes: PrepareURL makes them, MatchURLKeys looks them up, so that
// a caller can prefetch what the lookups read first and do other work
// meanwhile. Its buffer is reused.
type URLKeys struct {
	data []byte
	ends [3]int
	hash [3]uint64
	n    int
}

// PrepareURL sets k to the forms of u that MatchURL looks up and adds the
// words of the Bloom filter they read first to pf.
func (x *Index) PrepareURL(pf *prefetch.Addrs, u string, k *URLKeys) {
	k.n = 0
	if x == nil || len(x.t.url.ids) == 0 {
		return
	}
	t := &x.t.url
	k.data, k.n = x.appendURLForms(k.data[:0], u, &k.ends)
	start := 0
	for i, end := range k.ends[:k.n] {
		k.hash[i] = t.hash(b2s(k.data[start:end]))
		t.filter.prefetch(pf, k.hash[i])
		start = end
	}
}

// MatchURLKeys is MatchURL for the URL that k was prepared from by this
// Index.
func (x *Index) MatchURLKeys(dst []uint32, k *URLKeys, now time.Time) []uint32 {
	if x == nil || k.n == 0 {
		return dst
	}
	t, at, start := &x.t.url, nowNanos(now), 0
	for i, end := range k.ends[:k.n] {
		dst = t.matchHashed(dst, b2s(k.data[start:end]), k.hash[i], at)
		start = end
	}
	return dst
}

// MatchEmail appends the Refs of the e-mail indicators equal to e in normal
// form (see NormalizeEmail).
func (x *Index) MatchEmail(dst []uint32, e string, now time.Time) []uint32 {
	if x == nil {
		return dst
	}
	var buf [normBufSize]byte
	return x.t.email.match(dst, b2s(appendEmail(buf[:0], e)), nowNanos(now))
}

// MatchRegistry appends the Refs of the registry indicators equal to p in
// normal form (see NormalizeRegistryPath): without regard to case, and with
// a hive's short and full names equal.
func (x *Index) MatchRegistry(dst []uint32, p string, now time.Time) []uint32 {
	if x == nil {
		return dst
	}
	var buf [normBufSize]byte
	return x.t.reg.match(dst, b2s(appendRegistry(buf[:0], p)), nowNanos(now))
}

// MatchCVE appends the Refs of the vulnerabilities with CVE id id, in
// normal form (see NormalizeCVE).
func (x *Index) MatchCVE(dst []uint32, id string, now time.Time) []uint32 {
	if x == nil {
		return dst
	}
	var buf [normBufSize]byte
	return x.t.cve.match(dst, b2s(appendCVE(buf[:0], id)), nowNanos(now))
}

// KindStats counts one kind of value.
type KindStats struct {
	Indicators int   // indicators (records), expired ones included
	Values     int   // distinct values
	Bytes      int64 // approximate heap bytes
}

// Stats describes an Index.
type Stats struct {
	Kinds [NumKinds]KindStats
	Total KindStats
	// Rejected counts the values the Builder refused and the documents it
	// could not read (AddDocument).
	Rejected int
}

// Stats returns the counts per kind and the approximate heap size. Map and
// bart sizes are estimated from their lengths; the benchmarks measure the
// real figure.
func (x *Index) Stats() Stats {
	var s Stats
	if x == nil {
		return s
	}
	t := x.t
	s.Rejected = x.rejected
	s.Kinds[KindIPv4] = t.ipv4.stats()
	s.Kinds[KindIPv6] = t.ipv6.stats()
	s.Kinds[KindCIDR] = t.cidr.stats()
	for _, h := range []KindStats{t.md5.stats(), t.sha1.stats(), t.sha256.stats(), t.sha384.stats(), t.sha512.stats(), t.hash.stats()} {
		s.Kinds[KindHash].add(h)
	}
	s.Kinds[KindDomain] = t.domain.stats()
	s.Kinds[KindURL] = t.url.stats()
	s.Kinds[KindEmail] = t.email.stats()
	s.Kinds[KindRegistry] = t.reg.stats()
	s.Kinds[KindCVE] = t.cve.stats()
	for _, k := range s.Kinds {
		s.Total.add(k)
	}
	return s
}

func (s *KindStats) add(o KindStats) {
	s.Indicators += o.Indicators
	s.Values += o.Values
	s.Bytes += o.Bytes
}
