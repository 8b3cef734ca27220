package matcher

import (
	"encoding/binary"
	"unsafe"

	"github.com/vigil-ti/vigil/internal/hugemem"
	"github.com/vigil-ti/vigil/internal/prefetch"
)

// A filter is a blocked Bloom filter in front of a table: a value's hash
// sets filterK bits in one 64-bit word, so a lookup of a value that the
// table does not hold (nearly every lookup: events are mostly clean) costs
// one read of a small array instead of a probe of the table's map, which
// is much larger than the CPU caches and takes several dependent cache
// misses. It has no false negatives; about 2 % of absent values pass it.
type filter struct {
	words []uint64 // nil: no value
}

const (
	filterBits = 10 // bits per value
	filterK    = 3  // bits set per value, in one word
)

// newFilter returns an empty filter sized for n values.
func newFilter(n int) filter {
	if n == 0 {
		return filter{}
	}
	words := (n*filterBits + 63) / 64
	if words*8 < hugemem.HugePage/2 {
		return filter{words: make([]uint64, words)}
	}
	// A filter of megabytes is probed at random, one word per lookup: on
	// huge pages, without a TLB miss per probe.
	return filter{words: hugemem.Slice[uint64](words)}
}

// word returns the index of h's word and its bits.
func (f *filter) word(h uint64) (int, uint64) {
	i := int((h >> 32) * uint64(len(f.words)) >> 32)
	m := uint64(1)<<(h&63) | uint64(1)<<(h>>6&63) | uint64(1)<<(h>>12&63)
	return i, m
}

func (f *filter) add(h uint64) {
	i, m := f.word(h)
	f.words[i] |= m
}

// mayHave reports whether a value of hash h may be in the table; false is
// certain.
func (f *filter) mayHave(h uint64) bool {
	if len(f.words) == 0 {
		return false
	}
	i, m := f.word(h)
	return f.words[i]&m == m
}

// prefetch adds the word of h to pf.
func (f *filter) prefetch(pf *prefetch.Addrs, h uint64) {
	if len(f.words) > 0 {
		i, _ := f.word(h)
		pf.Add(unsafe.Pointer(&f.words[i]))
	}
}

func (f *filter) bytes() int64 { return int64(cap(f.words)) * 8 }

// mix64 is a 64-bit finalizer (MurmurHash3's): every input bit affects
// every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// fixedHash hashes a fixed-size key (a uint32, or a byte array of 16 bytes
// or more) for its table's filter. Equal keys have equal hashes, which is
// all the filter needs to have no false negatives.
func fixedHash[K comparable](k *K) uint64 {
	n := int(unsafe.Sizeof(*k))
	b := unsafe.Slice((*byte)(unsafe.Pointer(k)), n)
	if n < 8 {
		return mix64(uint64(binary.LittleEndian.Uint32(b)))
	}
	h := uint64(n)
	for ; len(b) >= 8; b = b[8:] {
		h = mix64(h ^ binary.LittleEndian.Uint64(b))
	}
	if len(b) >= 4 {
		h = mix64(h ^ uint64(binary.LittleEndian.Uint32(b)))
	}
	return h
}
