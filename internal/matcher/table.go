package matcher

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"net/netip"
	"unsafe"

	"github.com/gaissmai/bart"
	"github.com/vigil-ti/vigil/internal/prefetch"
)

// A table maps each distinct value of one kind to an entry in a byte arena
// that holds the value's postings: the (ref, expiry) records of the
// indicators that have that value, in the order they were added. An entry
// is contiguous, so a hit costs the map probe and about one cache line.
// The maps and the bart table hold no pointers (keys are integers or byte
// arrays, values are arena offsets), so the garbage collector never scans
// them.
//
// Entry layout, all integers little-endian:
//
//	[uvarint len][len bytes of value]   strTable only: the value, to verify
//	[1 byte prefix length | hasParent]  cidrTable only
//	[uvarint n][n × (uint32 ref, int64 expiry)]
//
// Expiries are Unix nanoseconds (see expiryNanos). Offsets are uint32, so a
// table's arena holds at most 4 GiB.

// recSize is the size of one (ref, expiry) record in an entry.
const recSize = 12

// rec is one indicator while a table is being built.
type rec struct {
	id, ref uint32 // id: dense value id, in order of first appearance
	exp     int64
}

// appendLive appends the refs of the records at data[p:] that are
// unexpired at now.
func appendLive(dst []uint32, data []byte, p int, now int64) []uint32 {
	n := uint64(data[p])
	if n < 0x80 {
		p++
	} else {
		var w int
		n, w = binary.Uvarint(data[p:])
		p += w
	}
	for ; n > 0; n-- {
		r := data[p : p+recSize : p+recSize]
		if int64(binary.LittleEndian.Uint64(r[4:])) > now {
			dst = append(dst, binary.LittleEndian.Uint32(r))
		}
		p += recSize
	}
	return dst
}

// builder collects records and lays them out in an arena.
type builder struct {
	recs   []rec
	values uint32 // distinct values so far
	size   int    // bound on the arena size
}

// reserve accounts for a record and, if newValue, a value of n head bytes,
// and fails when the arena would pass 4 GiB.
func (b *builder) reserve(newValue bool, n int) error {
	d := recSize
	if newValue {
		d += binary.MaxVarintLen32 + n
	}
	if b.size+d > math.MaxUint32 {
		return ErrFull
	}
	b.size += d
	return nil
}

func (b *builder) newID() uint32 {
	id := b.values
	b.values++
	return id
}

func (b *builder) add(id, ref uint32, exp int64) {
	b.recs = append(grow(b.recs, 1), rec{id: id, ref: ref, exp: exp})
}

// grow returns s with room for n more elements, doubling its capacity
// when it must grow. append grows a large slice by a quarter at a time:
// for the build's arrays of millions of elements, that copied (and faulted
// in) four to five times their final size, against about once.
func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	g := make([]T, len(s), max(2*cap(s), len(s)+n, 64))
	copy(g, s)
	return g
}

func (b *builder) count() int { return len(b.recs) }

// layout groups the records by value id, keeping their order, and writes
// each value's entry to a new arena: head(id, dst) appends what precedes the
// postings (nil for nothing). It returns the arena and each id's offset,
// and releases the records.
func (b *builder) layout(head func(id uint32, dst []byte) []byte, headSize func(id uint32) int) ([]byte, []uint32) {
	n := b.values
	start := make([]uint32, n+1)
	for _, r := range b.recs {
		start[r.id+1]++
	}
	size := 0
	for id := range n {
		c := start[id+1]
		size += uvarintLen(uint64(c)) + int(c)*recSize
		if headSize != nil {
			size += headSize(id)
		}
	}
	if size > math.MaxUint32 {
		panic("matcher: arena over 4 GiB") // the tables' add methods prevent it
	}
	for i := uint32(1); i <= n; i++ {
		start[i] += start[i-1]
	}
	// Group the records: fill each id's slots from its end, so that start
	// itself needs no copy.
	grouped := make([]rec, len(b.recs))
	next := make([]uint32, n)
	copy(next, start[1:])
	for i := len(b.recs) - 1; i >= 0; i-- {
		r := b.recs[i]
		next[r.id]--
		grouped[next[r.id]] = r
	}
	b.recs = nil
	data := make([]byte, 0, size)
	offs := next // reuse: offs[id] is the id's entry offset
	for id := range n {
		offs[id] = uint32(len(data))
		if head != nil {
			data = head(id, data)
		}
		g := grouped[start[id]:start[id+1]]
		data = binary.AppendUvarint(data, uint64(len(g)))
		for _, r := range g {
			data = binary.LittleEndian.AppendUint32(data, r.ref)
			data = binary.LittleEndian.AppendUint64(data, uint64(r.exp))
		}
	}
	*b = builder{}
	return data, offs
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// mapBytes estimates the heap size of a Go map with n entries of the given
// slot size. Go's swiss tables keep 8 slots and 8 control bytes per group;
// a table grown by insertion is between 7/16 and 7/8 full, 0.63 on average.
func mapBytes(n int, slot uintptr) int64 {
	return int64(float64(n) * (float64(slot) + 1) / 0.63)
}

// fixedTable indexes values that fit a fixed-size key: IPv4 addresses as
// uint32, IPv6 addresses and binary digests as byte arrays. While building,
// the map values are value ids; after finish, entry offsets.
type fixedTable[K comparable] struct {
	ids    map[K]uint32
	filter filter
	data   []byte
	recs   int
	b      builder
}

func (t *fixedTable[K]) add(k K, ref uint32, exp int64) error {
	if t.ids == nil {
		t.ids = make(map[K]uint32)
	}
	id, ok := t.ids[k]
	if err := t.b.reserve(!ok, 0); err != nil {
		return err
	}
	if !ok {
		id = t.b.newID()
		t.ids[k] = id
	}
	t.b.add(id, ref, exp)
	return nil
}

func (t *fixedTable[K]) finish() {
	t.recs = t.b.count()
	data, offs := t.b.layout(nil, nil)
	t.data = data
	t.filter = newFilter(len(t.ids))
	for k, id := range t.ids {
		t.ids[k] = offs[id]
		t.filter.add(fixedHash(&k))
	}
}

func (t *fixedTable[K]) match(dst []uint32, k K, now int64) []uint32 {
	if !t.filter.mayHave(fixedHash(&k)) {
		return dst
	}
	if off, ok := t.ids[k]; ok {
		dst = appendLive(dst, t.data, int(off), now)
	}
	return dst
}

func (t *fixedTable[K]) stats() KindStats {
	var k K
	return KindStats{
		Indicators: t.recs,
		Values:     len(t.ids),
		Bytes:      mapBytes(len(t.ids), unsafe.Sizeof(k)+4) + int64(cap(t.data)) + t.filter.bytes(),
	}
}

// strTable indexes strings by a 64-bit seeded hash and verifies every hit
// against the value kept in its entry. The few values whose hash collides
// with another value's go to a small string-keyed map.
type strTable struct {
	seed   maphash.Seed
	ids    map[uint64]uint32
	filter filter // of the hashes of every value
	coll   map[string]uint32
	data   []byte
	recs   int
	n      int // distinct values
	// While building: value id i is vals[off[i]:off[i+1]].
	vals []byte
	off  []uint32
	b    builder
}

func (t *strTable) init(seed maphash.Seed) {
	t.seed = seed
	t.ids = make(map[uint64]uint32)
	t.off = []uint32{0}
}

// buildValue returns value id's bytes while building.
func (t *strTable) buildValue(id uint32) []byte { return t.vals[t.off[id]:t.off[id+1]] }

// add indexes the normal form v, which it copies.
func (t *strTable) add(v []byte, ref uint32, exp int64) error {
	h := maphash.Bytes(t.seed, v)
	id, ok := t.ids[h]
	collides := ok && string(t.buildValue(id)) != string(v)
	if collides {
		id, ok = t.coll[string(v)]
	}
	if err := t.b.reserve(!ok, len(v)); err != nil {
		return err
	}
	if !ok {
		id = t.newValue(v)
		if collides {
			if t.coll == nil {
				t.coll = make(map[string]uint32)
			}
			t.coll[string(v)] = id
		} else {
			t.ids[h] = id
		}
	}
	t.b.add(id, ref, exp)
	return nil
}

func (t *strTable) newValue(v []byte) uint32 {
	t.vals = append(grow(t.vals, len(v)), v...)
	t.off = append(grow(t.off, 1), uint32(len(t.vals)))
	return t.b.newID()
}

func (t *strTable) finish() {
	t.recs = t.b.count()
	t.n = int(t.b.values)
	data, offs := t.b.layout(func(id uint32, dst []byte) []byte {
		v := t.buildValue(id)
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		return append(dst, v...)
	}, func(id uint32) int {
		n := len(t.buildValue(id))
		return uvarintLen(uint64(n)) + n
	})
	t.data = data
	// A colliding value has the hash of a value in ids: the filter of
	// the ids' hashes passes it.
	t.filter = newFilter(len(t.ids))
	for h, id := range t.ids {
		t.ids[h] = offs[id]
		t.filter.add(h)
	}
	for v, id := range t.coll {
		t.coll[v] = offs[id]
	}
	t.vals, t.off = nil, nil
}

// entry returns the value of the entry at off and the offset of its
// postings.
func (t *strTable) entry(off uint32) (string, int) {
	p := int(off)
	n := uint64(t.data[p])
	if n < 0x80 {
		p++
	} else {
		var w int
		n, w = binary.Uvarint(t.data[p:])
		p += w
	}
	v := t.data[p : p+int(n)]
	return unsafe.String(unsafe.SliceData(v), len(v)), p + int(n)
}

func (t *strTable) match(dst []uint32, v string, now int64) []uint32 {
	return t.matchHashed(dst, v, t.hash(v), now)
}

// hash is the table's hash of v.
func (t *strTable) hash(v string) uint64 { return maphash.String(t.seed, v) }

// matchHashed is match for v of hash h.
func (t *strTable) matchHashed(dst []uint32, v string, h uint64, now int64) []uint32 {
	if !t.filter.mayHave(h) {
		return dst
	}
	off, ok := t.ids[h]
	if !ok {
		return dst
	}
	if w, p := t.entry(off); w == v {
		return appendLive(dst, t.data, p, now)
	}
	if len(t.coll) == 0 {
		return dst
	}
	if off, ok = t.coll[v]; ok {
		_, p := t.entry(off)
		dst = appendLive(dst, t.data, p, now)
	}
	return dst
}

func (t *strTable) stats() KindStats {
	return KindStats{
		Indicators: t.recs,
		Values:     t.n,
		Bytes:      mapBytes(len(t.ids), 8+4) + int64(cap(t.data)) + int64(len(t.coll))*64 + t.filter.bytes(),
	}
}

// Estimated bart sizes per prefix, from gaissmai/iprbench and our
// benchmarks; bart does not report its size.
const (
	bartBytes4 = 80
	bartBytes6 = 400
)

// cidrTable indexes IPv4 and IPv6 prefixes in a bart table for longest
// prefix match. While building, the prefixes are in a map.
//
// Two bitsets in front of the table let most addresses that no prefix
// contains skip the trie walk: v4 has a bit for every /20 block that some
// IPv4 prefix overlaps, v6 a bit for the hash of the /32 of every IPv6
// prefix of /32 or longer (v6All is set when a shorter one exists).
type cidrTable struct {
	t     bart.Table[uint32]
	v4    []uint64 // nil: no IPv4 prefix
	v6    []uint64 // nil: no IPv6 prefix
	v6All bool
	data  []byte
	recs  int
	// While building: prefix → value id, and each id's prefix.
	ids  map[netip.Prefix]uint32
	pfxs []netip.Prefix
	b    builder
}

// add indexes the masked prefix p.
func (t *cidrTable) add(p netip.Prefix, ref uint32, exp int64) error {
	if t.ids == nil {
		t.ids = make(map[netip.Prefix]uint32)
	}
	id, ok := t.ids[p]
	if err := t.b.reserve(!ok, 1); err != nil {
		return err
	}
	if !ok {
		id = t.b.newID()
		t.ids[p] = id
		t.pfxs = append(t.pfxs, p)
	}
	t.b.add(id, ref, exp)
	return nil
}

func (t *cidrTable) finish() {
	t.recs = t.b.count()
	data, offs := t.b.layout(func(id uint32, dst []byte) []byte {
		return append(dst, uint8(t.pfxs[id].Bits()))
	}, func(uint32) int { return 1 })
	t.data = data
	for id, p := range t.pfxs {
		t.t.Insert(p, offs[id])
	}
	for _, p := range t.pfxs {
		t.mark(p)
	}
	// Mark the prefixes that have a covering prefix, so that a lookup
	// stops at the last one without a failing probe.
	for id, p := range t.pfxs {
		if p.Bits() == 0 {
			continue
		}
		if _, ok := t.t.LookupPrefix(netip.PrefixFrom(p.Addr(), p.Bits()-1)); ok {
			t.data[offs[id]] |= hasParent
		}
	}
	t.ids, t.pfxs = nil, nil
}

// hasParent flags, in an entry's prefix length byte, a prefix that another
// prefix contains.
const hasParent = 0x80

// Prefilter sizes: 2^20 bits each (128 KiB).
const (
	v4BlockBits = 20 // IPv4 blocks are /20s
	v6KeyBits   = 20
	v6KeyPrefix = 32 // IPv6 prefixes are keyed by their /32
)

// v6Key hashes the first 32 bits of a to a v6 bit index.
func v6Key(a netip.Addr) uint32 {
	b := a.As16()
	return binary.BigEndian.Uint32(b[:4]) * 0x9e3779b1 >> (32 - v6KeyBits)
}

func setBit(bs []uint64, i uint32) { bs[i>>6] |= 1 << (i & 63) }

func hasBit(bs []uint64, i uint32) bool { return bs[i>>6]&(1<<(i&63)) != 0 }

// v4Block returns the number of the IPv4 block of key k.
func v4Block(k uint32) uint32 { return k >> (32 - v4BlockBits) }

// prefetchV4 adds to pf the prefilter's word that mayContain reads for the
// IPv4 address of key k.
func (t *cidrTable) prefetchV4(pf *prefetch.Addrs, k uint32) {
	if t.v4 != nil {
		pf.Add(unsafe.Pointer(&t.v4[v4Block(k)>>6]))
	}
}

// mark records prefix p in the prefilter.
func (t *cidrTable) mark(p netip.Prefix) {
	if p.Addr().Is4() {
		if t.v4 == nil {
			t.v4 = make([]uint64, 1<<v4BlockBits/64)
		}
		first := v4Block(ipv4Key(p.Addr()))
		n := uint32(1)
		if p.Bits() < v4BlockBits {
			n = 1 << (v4BlockBits - p.Bits())
		}
		for i := first; i < first+n; i++ {
			setBit(t.v4, i)
		}
		return
	}
	if t.v6 == nil {
		t.v6 = make([]uint64, 1<<v6KeyBits/64)
	}
	if p.Bits() < v6KeyPrefix {
		t.v6All = true
		return
	}
	setBit(t.v6, v6Key(p.Addr()))
}

// mayContain reports whether some prefix may contain ip; false is certain.
func (t *cidrTable) mayContain(ip netip.Addr) bool {
	if ip.Is4() {
		return t.v4 != nil && hasBit(t.v4, v4Block(ipv4Key(ip)))
	}
	return t.v6 != nil && (t.v6All || hasBit(t.v6, v6Key(ip)))
}

// match appends the live refs of every prefix that contains ip, longest
// prefix first. ip must be unmapped and zone-free.
func (t *cidrTable) match(dst []uint32, ip netip.Addr, now int64) []uint32 {
	if !t.mayContain(ip) {
		return dst
	}
	off, ok := t.t.Lookup(ip)
	for ok {
		h := t.data[off]
		dst = appendLive(dst, t.data, int(off)+1, now)
		if h&hasParent == 0 {
			break
		}
		off, ok = t.t.LookupPrefix(netip.PrefixFrom(ip, int(h&^hasParent)-1))
	}
	return dst
}

func (t *cidrTable) stats() KindStats {
	return KindStats{
		Indicators: t.recs,
		Values:     t.t.Size(),
		Bytes: int64(t.t.Size4())*bartBytes4 + int64(t.t.Size6())*bartBytes6 + int64(cap(t.data)) +
			int64(cap(t.v4)+cap(t.v6))*8,
	}
}
