package ecs

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// safeASCII[b] is true for the ASCII bytes that a JSON string may hold
// unescaped.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// AppendString appends s to dst as a JSON string. Control characters, quotes
// and backslashes are escaped; invalid UTF-8 bytes become U+FFFD, so the
// result is always valid JSON.
func AppendString(dst []byte, s string) []byte {
	// Reserve room for s, its quotes and a few escapes, and write with
	// indexes: appending byte by byte costs more.
	w := len(dst)
	dst = grow(dst, len(s)+len(s)/8+16)
	buf := dst[:cap(dst)]
	buf[w] = '"'
	w++
	start := 0 // s[start:i] is plain and not yet copied
	i := 0
	for {
		// Find the next byte that needs care, eight bytes at a time.
		for i+8 <= len(s) {
			m := special8(load64(s, i))
			if m == 0 {
				i += 8
				continue
			}
			// The lowest flagged byte is always a real one.
			i += bits.TrailingZeros64(m) / 8
			goto found
		}
		for i < len(s) && s[i] < utf8.RuneSelf && safeASCII[s[i]] {
			i++
		}
		if i >= len(s) {
			break
		}
	found:
		b := s[i]
		if b >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size > 1 {
				i += size
				continue
			}
		}
		// Copy the plain run, then the escape (at most 6 bytes). Runs
		// between quotes are short: copy eight bytes at once and keep the
		// ones wanted.
		if need := w + (i - start) + 8 + 1; need > len(buf) {
			dst = grow(buf[:w], need-w+len(s)-i+len(s)/8)
			buf = dst[:cap(dst)]
		}
		if n := i - start; n <= 8 && start+8 <= len(s) {
			binary.LittleEndian.PutUint64(buf[w:w+8], load64(s, start))
			w += n
		} else {
			w += copy(buf[w:], s[start:i])
		}
		switch b {
		case '"', '\\':
			buf[w], buf[w+1] = '\\', b
			w += 2
		case '\n':
			buf[w], buf[w+1] = '\\', 'n'
			w += 2
		case '\r':
			buf[w], buf[w+1] = '\\', 'r'
			w += 2
		case '\t':
			buf[w], buf[w+1] = '\\', 't'
			w += 2
		case '\b':
			buf[w], buf[w+1] = '\\', 'b'
			w += 2
		case '\f':
			buf[w], buf[w+1] = '\\', 'f'
			w += 2
		default:
			if b >= utf8.RuneSelf { // an invalid UTF-8 byte
				w += copy(buf[w:], `\ufffd`)
			} else {
				w += copy(buf[w:], `\u00`)
				buf[w], buf[w+1] = hexDigits[b>>4], hexDigits[b&0xF]
				w += 2
			}
		}
		i++
		start = i
	}
	if need := w + (len(s) - start) + 1; need > len(buf) {
		dst = grow(buf[:w], need-w)
		buf = dst[:cap(dst)]
	}
	w += copy(buf[w:], s[start:])
	buf[w] = '"'
	return buf[:w+1]
}

// grow returns b with room for n more bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	return append(b, make([]byte, n)...)[:len(b)]
}

// load64 reads the eight bytes of s at i as a little-endian word.
func load64(s string, i int) uint64 {
	_ = s[i+7]
	return uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special8 returns a mask with the high bit set in the bytes of x that
// need escaping or UTF-8 checking (below 0x20, '"', '\\', 0x80 and above).
// Bytes above the lowest flagged one may be flagged wrongly (borrows), the
// lowest never is.
func special8(x uint64) uint64 {
	ctl := (x - 0x20*lsb) &^ x // high bit where a byte < 0x20 (or >= 0x80)
	q := x ^ ('"' * lsb)       // zero byte where x has '"'
	bs := x ^ ('\\' * lsb)     // zero byte where x has '\\'
	quote := (q - lsb) &^ q    // high bit where a byte of q is zero
	back := (bs - lsb) &^ bs
	return (ctl | quote | back | x) & msb
}

// plain8 reports whether none of the eight bytes of x needs escaping or
// UTF-8 checking.
func plain8(x uint64) bool { return special8(x) == 0 }

// AppendJavaFloat64 appends f formatted as Java's Double.toString does, which
// is how Elasticsearch writes a double it produced (for example with the
// convert processor): 16 → "16.0", 5.4 → "5.4", 1e-5 → "1.0E-5".
// NaN and infinities, which JSON cannot hold, append nothing and return false.
func AppendJavaFloat64(dst []byte, f float64) ([]byte, bool) {
	return appendJavaFloat(dst, f, 64)
}

// AppendJavaFloat32 appends f formatted as Java's Float.toString does:
// float32(16.451612903225808) → "16.451612", 100 → "100.0".
// NaN and infinities append nothing and return false.
func AppendJavaFloat32(dst []byte, f float32) ([]byte, bool) {
	return appendJavaFloat(dst, float64(f), 32)
}

func appendJavaFloat(dst []byte, f float64, bits int) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...), true
		}
		return append(dst, "0.0"...), true
	}
	if a := math.Abs(f); a >= 1e-3 && a < 1e7 {
		start := len(dst)
		dst = strconv.AppendFloat(dst, f, 'f', -1, bits)
		for _, c := range dst[start:] {
			if c == '.' {
				return dst, true
			}
		}
		return append(dst, '.', '0'), true
	}
	// Computerized scientific notation: d.dddE[-]n.
	var buf [32]byte
	s := strconv.AppendFloat(buf[:0], f, 'e', -1, bits)
	e := 0
	for e < len(s) && s[e] != 'e' {
		e++
	}
	mant, exp := s[:e], s[e+1:]
	dst = append(dst, mant...)
	hasDot := false
	for _, c := range mant {
		if c == '.' {
			hasDot = true
			break
		}
	}
	if !hasDot {
		dst = append(dst, '.', '0')
	}
	dst = append(dst, 'E')
	if len(exp) > 0 && (exp[0] == '+' || exp[0] == '-') {
		if exp[0] == '-' {
			dst = append(dst, '-')
		}
		exp = exp[1:]
	}
	for len(exp) > 1 && exp[0] == '0' {
		exp = exp[1:]
	}
	return append(dst, exp...), true
}

// ValidNumber reports whether s is a JSON number (RFC 8259 grammar).
func ValidNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	switch {
	case s[i] == '0':
		i++
	case s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == len(s)
}

// isIntLiteral reports whether the valid JSON number s has no fraction or
// exponent.
func isIntLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return true
}

// AppendNumber appends the JSON number text s as Elasticsearch writes back
// a number it parsed, keeping the text as given where that is the same
// number: integers keep their digits (Java Integer, Long or BigInteger;
// "-0" becomes "0"), and decimals without an exponent in Java's plain range
// (0.001 <= |x| < 10^7) are kept as they are ("31.73913043478261"). Other
// numbers become a Java double ("1e2" → "100.0", "1e-5" → "1.0E-5").
// It returns false, appending nothing, when s is not a JSON number or does
// not fit a double.
func AppendNumber(dst []byte, s string) ([]byte, bool) {
	if !ValidNumber(s) {
		return dst, false
	}
	if isIntLiteral(s) {
		if s == "-0" {
			return append(dst, '0'), true
		}
		return append(dst, s...), true
	}
	if plainDecimal(s) {
		return append(dst, s...), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return dst, false
	}
	return AppendJavaFloat64(dst, f)
}

// plainDecimal reports whether the valid JSON number s, which has a
// fraction, has no exponent and lies where Java writes doubles without one.
func plainDecimal(s string) bool {
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	dot := 0
	for dot < len(digits) && digits[dot] != '.' {
		dot++
	}
	if dot == len(digits) {
		return false
	}
	for i := dot + 1; i < len(digits); i++ {
		if c := digits[i]; c == 'e' || c == 'E' {
			return false
		}
	}
	if dot > 7 {
		return false // >= 10^7
	}
	if digits[0] == '0' {
		// 0.xxx: below 0.001 when the fraction starts with three zeros.
		frac := digits[dot+1:]
		nonzero := false
		for i := 0; i < len(frac) && i < 3; i++ {
			if frac[i] != '0' {
				nonzero = true
				break
			}
		}
		if !nonzero {
			return false
		}
	}
	return true
}

// isPlain reports whether s can be written as a JSON string without
// escaping: printable ASCII without '"' or '\\'.
func isPlain(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !plain8(load64(s, i)) {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || !safeASCII[c] {
			return false
		}
	}
	return true
}

// b2s views b as a string without copying. The caller must not change b
// while the string is in use.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
