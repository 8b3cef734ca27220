// Package matcher is the in-memory index that detection matches event
// fields against: the live indicators of every source (IP addresses and
// CIDR ranges, domains, URLs, file hashes, e-mail addresses, Windows
// registry paths) and the CVE ids of the vulnerability view.
//
// A Builder takes indicators one at a time and builds an immutable Index;
// Live holds the current Index so that a new one can be swapped in while
// matching goes on. An Index refers to each indicator by a Ref, a uint32 the
// caller assigns and maps back to the stored document; it keeps only the
// Ref and the expiry of each indicator, so per-indicator metadata stays in
// the store.
//
// Values are compared in normal form (see the Normalize functions), so
// hashes, domains, e-mail addresses, registry paths and the scheme and host
// of URLs match without regard to case. Every indicator is matched on its
// own, as Elastic's indicator match rules do: a lookup reports every live
// indicator whose value matches, several of them when several sources
// report one value. An indicator whose ExpiresAt is at or before the lookup
// time never matches, so expiry needs no rebuild; a new Index is needed only
// when the live view gains or changes indicators.
//
// Lookups append the matching Refs to a caller's slice and allocate nothing
// when nothing matches (nor when the slice has room). The Match methods take
// raw event values and normalize them on a stack buffer; they never retain
// their arguments, so callers may pass strings that view reused buffers.
package matcher

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"strings"
	"time"
)

// Indicator types, as ECS threat.indicator.type (STIX cyber observable
// names) writes them, plus TypeVulnerability for the CVE ids of the
// vulnerability view.
const (
	TypeIPv4          = "ipv4-addr"
	TypeIPv6          = "ipv6-addr"
	TypeDomain        = "domain-name"
	TypeURL           = "url"
	TypeFile          = "file"
	TypeEmail         = "email-addr"
	TypeRegistry      = "windows-registry-key"
	TypeVulnerability = "vulnerability"
)

// Errors returned by Builder.Add, FromDocument and Builder.AddDocument,
// wrapped with the offending type or value.
var (
	// ErrUnsupportedType is returned for an indicator type the index does
	// not hold (mac-addr, autonomous-system, …).
	ErrUnsupportedType = errors.New("unsupported indicator type")
	// ErrInvalidValue is returned for a value that is not valid for its
	// type, such as an unparsable IP address or an empty domain.
	ErrInvalidValue = errors.New("invalid indicator value")
	// ErrNoValue is returned by FromDocument for a document that carries no
	// value the index can hold.
	ErrNoValue = errors.New("document has no indicator value")
	// ErrNotIndicator is returned by FromDocument for a document that is not
	// in the indicator or vulnerability view, or not live.
	ErrNotIndicator = errors.New("not a live indicator or vulnerability document")

	// ErrFull is returned by Builder.Add when a table of the index would
	// pass 4 GiB.
	ErrFull = errors.New("index table full (4 GiB)")
)

// Indicator is one atomic value to index.
type Indicator struct {
	// Ref identifies the indicator to the caller, who maps it back to the
	// stored document. Several Indicators may share a Ref (a file document
	// with several hashes).
	Ref uint32
	// Type is the ECS threat.indicator.type (TypeIPv4, …) or
	// TypeVulnerability.
	Type string
	// Value is the atomic value: an address or CIDR range, a domain, a URL,
	// a hash, an e-mail address, a registry path or a CVE id.
	Value string
	// ExpiresAt is when the indicator stops matching; the zero time means
	// never.
	ExpiresAt time.Time
}

// Kind is a class of indexed values.
type Kind uint8

// The kinds of values an Index holds.
const (
	KindIPv4     Kind = iota // IPv4 host addresses (and /32 ranges)
	KindIPv6                 // IPv6 host addresses (and /128 ranges)
	KindCIDR                 // IPv4 and IPv6 ranges
	KindDomain               // domain names
	KindURL                  // URLs
	KindHash                 // file hashes of every algorithm
	KindEmail                // e-mail addresses
	KindRegistry             // Windows registry paths
	KindCVE                  // CVE ids
	NumKinds     = iota
)

var kindNames = [NumKinds]string{"ipv4", "ipv6", "cidr", "domain", "url", "hash", "email", "registry", "cve"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// expiryNanos returns t as Unix nanoseconds, saturated: the zero time and
// times after 2262 are math.MaxInt64 (never), times before 1678 are
// math.MinInt64.
func expiryNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MaxInt64
	}
	switch sec := t.Unix(); {
	case sec >= math.MaxInt64/int64(time.Second):
		return math.MaxInt64
	case sec <= math.MinInt64/int64(time.Second):
		return math.MinInt64
	}
	return t.UnixNano()
}

// nowNanos returns now as Unix nanoseconds, saturated like expiryNanos
// except that the zero time is the earliest time (everything is live) and
// the latest time is before "never".
func nowNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return min(expiryNanos(t), math.MaxInt64-1)
}

// tables is the content of an Index, filled by a Builder.
type tables struct {
	seed   maphash.Seed
	ipv4   fixedTable[uint32]
	ipv6   fixedTable[[16]byte]
	cidr   cidrTable
	md5    fixedTable[[16]byte]
	sha1   fixedTable[[20]byte]
	sha256 fixedTable[[32]byte]
	sha384 fixedTable[[48]byte]
	sha512 fixedTable[[64]byte]
	hash   strTable // hashes that are not hex digests of those lengths
	domain strTable
	url    strTable
	email  strTable
	reg    strTable
	cve    strTable
	// urlBare counts the URL indicators without a scheme; when there are
	// none, URL lookups skip their scheme-less form.
	urlBare int
	// domainLabels has bit n set when a domain indicator has n labels (63
	// for 63 or more), so that a subdomain walk skips the parents that
	// cannot match.
	domainLabels uint64
}

// labelBit returns the domainLabels bit of domain d.
func labelBit(d string) uint64 {
	return 1 << min(strings.Count(d, ".")+1, 63)
}

func (t *tables) init() {
	t.seed = maphash.MakeSeed()
	for _, s := range []*strTable{&t.hash, &t.domain, &t.url, &t.email, &t.reg, &t.cve} {
		s.init(t.seed)
	}
}

func (t *tables) finish() {
	t.ipv4.finish()
	t.ipv6.finish()
	t.cidr.finish()
	t.md5.finish()
	t.sha1.finish()
	t.sha256.finish()
	t.sha384.finish()
	t.sha512.finish()
	for _, s := range []*strTable{&t.hash, &t.domain, &t.url, &t.email, &t.reg, &t.cve} {
		s.finish()
	}
}

// Builder builds an Index. It is not safe for concurrent use. The zero
// Builder is ready to use.
type Builder struct {
	t        *tables
	rejected int
	buf      []byte     // normal form of the value being added
	ex       *extractor // for AddDocument and Load
}

func (b *Builder) tables() *tables {
	if b.t == nil {
		b.t = new(tables)
		b.t.init()
	}
	return b.t
}

// Add indexes one indicator. It returns an error wrapping
// ErrUnsupportedType or ErrInvalidValue, and indexes nothing, when the
// indicator cannot be indexed.
//
// IP values are addresses or CIDR ranges ("10.0.0.0/8"); a range whose
// address has host bits set is masked ("10.1.2.3/8" is 10.0.0.0/8), a /32
// or /128 range is a host address, and IPv4-mapped IPv6 addresses and
// ranges (::ffff:0:0/96 and longer) are IPv4. Either IP type accepts either
// family. A zone ("fe80::1%eth0") is dropped.
func (b *Builder) Add(ind Indicator) error {
	if err := b.add(ind.Type, ind.Value, ind.Ref, expiryNanos(ind.ExpiresAt)); err != nil {
		b.rejected++
		return err
	}
	return nil
}

func (b *Builder) add(typ, v string, ref uint32, exp int64) error {
	t := b.tables()
	switch typ {
	case TypeIPv4, TypeIPv6:
		return t.addIP(v, ref, exp)
	case TypeFile:
		return b.addHash(v, ref, exp)
	case TypeDomain:
		b.buf = appendDomain(b.buf[:0], v)
		if err := b.addString(&t.domain, v, ref, exp); err != nil {
			return err
		}
		t.domainLabels |= labelBit(b2s(b.buf))
		return nil
	case TypeURL:
		var class int
		b.buf, class = appendURL(b.buf[:0], v)
		if err := b.addString(&t.url, v, ref, exp); err != nil {
			return err
		}
		if class == urlNoScheme {
			t.urlBare++
		}
		return nil
	case TypeEmail:
		b.buf = appendEmail(b.buf[:0], v)
		return b.addString(&t.email, v, ref, exp)
	case TypeRegistry:
		b.buf = appendRegistry(b.buf[:0], v)
		return b.addString(&t.reg, v, ref, exp)
	case TypeVulnerability:
		b.buf = appendCVE(b.buf[:0], v)
		return b.addString(&t.cve, v, ref, exp)
	}
	return fmt.Errorf("%w %q", ErrUnsupportedType, typ)
}

// addString indexes the normal form in b.buf of v.
func (b *Builder) addString(s *strTable, v string, ref uint32, exp int64) error {
	if len(b.buf) == 0 {
		return fmt.Errorf("%w %q: empty", ErrInvalidValue, v)
	}
	if err := s.add(b.buf, ref, exp); err != nil {
		return fmt.Errorf("index %q: %w", v, err)
	}
	return nil
}

func (b *Builder) addHash(v string, ref uint32, exp int64) error {
	t := b.tables()
	h := trimSpace(v)
	var k [64]byte
	if !decodeHex(k[:], h) {
		b.buf = appendHash(b.buf[:0], h)
		return b.addString(&t.hash, v, ref, exp)
	}
	var err error
	switch len(h) {
	case 32:
		err = t.md5.add([16]byte(k[:16]), ref, exp)
	case 40:
		err = t.sha1.add([20]byte(k[:20]), ref, exp)
	case 64:
		err = t.sha256.add([32]byte(k[:32]), ref, exp)
	case 96:
		err = t.sha384.add([48]byte(k[:48]), ref, exp)
	default:
		err = t.sha512.add(k, ref, exp)
	}
	if err != nil {
		return fmt.Errorf("index %q: %w", v, err)
	}
	return nil
}

func (t *tables) addIP(v string, ref uint32, exp int64) error {
	s := trimSpace(v)
	var err error
	if !strings.Contains(s, "/") {
		a, ok := parseAddr(s)
		if !ok {
			return fmt.Errorf("%w: %q is not an IP address", ErrInvalidValue, v)
		}
		err = t.addHost(a, ref, exp)
	} else {
		p, perr := netip.ParsePrefix(s)
		if perr != nil {
			return fmt.Errorf("%w: %q: %w", ErrInvalidValue, v, perr)
		}
		a, bits := p.Addr(), p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		if bits == a.BitLen() {
			err = t.addHost(a, ref, exp)
		} else {
			err = t.cidr.add(netip.PrefixFrom(a, bits).Masked(), ref, exp)
		}
	}
	if err != nil {
		return fmt.Errorf("index %q: %w", v, err)
	}
	return nil
}

func (t *tables) addHost(a netip.Addr, ref uint32, exp int64) error {
	if a.Is4() {
		return t.ipv4.add(ipv4Key(a), ref, exp)
	}
	return t.ipv6.add(a.As16(), ref, exp)
}

func ipv4Key(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// ParseAddr parses an event's IP address as MatchIPString reads it:
// surrounding white space and a zone dropped, IPv4-mapped IPv6 addresses
// unmapped. It does not allocate.
func ParseAddr(s string) (netip.Addr, bool) { return parseAddr(trimSpace(s)) }

// parseAddr parses an IP address without its zone, and unmaps IPv4-mapped
// IPv6 addresses. It does not allocate.
func parseAddr(s string) (netip.Addr, bool) {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// Len returns the number of indicators added so far.
func (b *Builder) Len() int {
	if b.t == nil {
		return 0
	}
	t := b.t
	n := len(t.ipv4.b.recs) + len(t.ipv6.b.recs) + len(t.cidr.b.recs) +
		len(t.md5.b.recs) + len(t.sha1.b.recs) + len(t.sha256.b.recs) +
		len(t.sha384.b.recs) + len(t.sha512.b.recs)
	for _, s := range []*strTable{&t.hash, &t.domain, &t.url, &t.email, &t.reg, &t.cve} {
		n += len(s.b.recs)
	}
	return n
}

// Build returns the Index of the indicators added so far and resets the
// Builder.
func (b *Builder) Build() *Index {
	t := b.tables()
	t.finish()
	x := &Index{t: t, rejected: b.rejected}
	b.t, b.rejected, b.buf = nil, 0, nil
	return x
}
