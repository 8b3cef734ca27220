package matcher

import (
	"encoding/binary"
	"unsafe"
)

// Hex digests are read eight characters at a time: each word of eight
// bytes is checked, lower-cased and decoded with integer arithmetic on all
// its bytes at once (every byte below 0x80, so that adding to one never
// carries into the next). File events carry two or three digests each, and
// the matcher, the sightings and the index build each read every digest;
// byte by byte, that took about 4 % of the CPU time of matching distinct
// events at 10M indicators.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// hexWord checks the eight bytes of w: bad is 0 when all are hexadecimal
// digits, in either case, and letters then holds 0x01 in the bytes that
// are letters. (A byte of 0x80 or more makes bad non-zero; what its
// carries do to the other bytes' results does not matter then.)
func hexWord(w uint64) (letters, bad uint64) {
	// A byte x below 0x80 plus 0x80-c has its high bit set when x >= c:
	// '0' <= x < '9'+1, and for the letters, lower-cased ('A'-'F' to
	// 'a'-'f'; digits have the bit already), 'a' <= x < 'f'+1.
	digit := (w + ones*(0x80-'0')) &^ (w + ones*(0x80-'9'-1))
	l := w | ones*0x20
	letter := (l + ones*(0x80-'a')) &^ (l + ones*(0x80-'f'-1)) & highs
	return letter >> 7, (digit|letter)&highs ^ highs | w&highs
}

// isHex reports whether s is a non-empty run of hexadecimal digits.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if _, bad := hexWord(load64(s, i)); bad != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if unhex(s[i]) > 0xf {
			return false
		}
	}
	return true
}

// appendLowerHex appends s, made of hexadecimal digits and ASCII letters
// only, lower-cased: setting bit 0x20 of every byte lower-cases a letter
// and leaves a digit as it is.
func appendLowerHex(dst []byte, s string) []byte {
	n := len(dst)
	dst = append(dst, s...)
	b := dst[n:]
	i := 0
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i : i+8])
		binary.LittleEndian.PutUint64(b[i:i+8], w|ones*0x20)
	}
	for ; i < len(b); i++ {
		b[i] |= 0x20
	}
	return dst
}

// decodeHex decodes s into dst when s is a hex digest of 32, 40, 64, 96 or
// 128 digits, in either case.
func decodeHex(dst []byte, s string) bool {
	switch len(s) {
	case 32, 40, 64, 96, 128:
	default:
		return false
	}
	_ = dst[len(s)/2-1]
	for i := 0; i < len(s); i += 8 {
		w := load64(s, i)
		letters, bad := hexWord(w)
		if bad != 0 {
			return false
		}
		// Each byte's value: its low four bits, plus 9 for a letter
		// ('a' is 0x61: 1 + 9).
		nib := w&(ones*0x0f) + letters*9
		// Byte 2k (the first digit, the high nibble) and 2k+1 into the
		// low byte of 16-bit lane k, then the four lanes' low bytes
		// together.
		v := nib<<4&0x00f000f000f000f0 | nib>>8&0x000f000f000f000f
		v = (v | v>>8) & 0x0000ffff0000ffff
		v = (v | v>>16) & 0x00000000ffffffff
		binary.LittleEndian.PutUint32(dst[i/2:], uint32(v))
	}
	return true
}

// load64 returns s[i:i+8] as a little-endian word.
func load64(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:i+8]), 8))
}
