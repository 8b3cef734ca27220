package matcher

import (
	"encoding/binary"
	"math/bits"
)

// skimObject calls fn with the raw key and the raw value of each member of
// the JSON object src, finding value ends without parsing the values: it
// matches brackets and skips strings, so it costs a fraction of a full
// parse. It returns false when src is not an object it can walk; the
// caller then parses src in full. It does not validate the values it skips.
func skimObject(src []byte, fn func(key, val []byte)) bool {
	i := skipSpace(src, 0)
	if i >= len(src) || src[i] != '{' {
		return false
	}
	i = skipSpace(src, i+1)
	if i < len(src) && src[i] == '}' {
		return skipSpace(src, i+1) == len(src)
	}
	for {
		if i >= len(src) || src[i] != '"' {
			return false
		}
		end := skipString(src, i)
		if end < 0 {
			return false
		}
		key := src[i+1 : end-1]
		i = skipSpace(src, end)
		if i >= len(src) || src[i] != ':' {
			return false
		}
		i = skipSpace(src, i+1)
		end = skipValue(src, i)
		if end < 0 {
			return false
		}
		fn(key, src[i:end])
		i = skipSpace(src, end)
		if i >= len(src) {
			return false
		}
		switch src[i] {
		case ',':
			i = skipSpace(src, i+1)
		case '}':
			return skipSpace(src, i+1) == len(src)
		default:
			return false
		}
	}
}

func skipSpace(src []byte, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\n' || src[i] == '\r' || src[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts with the quote
// at src[i], or -1. It looks at eight bytes at a time for a quote or a
// backslash.
func skipString(src []byte, i int) int {
	j := i + 1
	for {
		for j+8 <= len(src) {
			x := binary.LittleEndian.Uint64(src[j:])
			m := hasByte(x, '"') | hasByte(x, '\\')
			if m == 0 {
				j += 8
				continue
			}
			j += bits.TrailingZeros64(m) / 8
			break
		}
		if j >= len(src) {
			return -1
		}
		switch src[j] {
		case '"':
			return j + 1
		case '\\':
			j += 2
		default:
			j++
		}
	}
}

// hasByte returns a mask whose lowest set bit is the high bit of the first
// byte of x (little-endian) equal to c, or 0.
func hasByte(x uint64, c byte) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	y := x ^ (lo * uint64(c))
	return (y - lo) &^ y & hi
}

// skipValue returns the index after the value that starts at src[i], or
// -1.
func skipValue(src []byte, i int) int {
	if i >= len(src) {
		return -1
	}
	switch src[i] {
	case '"':
		return skipString(src, i)
	case '{', '[':
		depth := 0
		for i < len(src) {
			switch src[i] {
			case '"':
				i = skipString(src, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	// A number or a literal.
	start := i
	for i < len(src) {
		switch src[i] {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			if i == start {
				return -1
			}
			return i
		}
		i++
	}
	return -1
}
