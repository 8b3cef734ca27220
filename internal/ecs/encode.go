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
	dst = grow(dst, escapeRoom(s))
	n := len(dst)
	buf := dst[:cap(dst)]
	buf[n] = '"'
	if len(s) <= 16 { // most values
		if w, ok := copyPlain16(buf[n+1:], s); ok {
			buf[n+w+1] = '"'
			return buf[:n+w+2]
		}
	}
	w, i := escapeTo(buf[n+1:], s)
	w += n + 1
	for i < len(s) { // many escapes: make more room
		buf = grow(buf[:w], escapeRoom(s[i:]))
		m, r := escapeTo(buf[w:cap(buf)], s[i:])
		w += m
		i += r
		buf = buf[:cap(buf)]
	}
	buf[w] = '"'
	return buf[:w+1]
}

// escapeRoom is the room AppendString reserves for s: enough for a few
// escapes and for the slack escapeTo needs.
func escapeRoom(s string) int { return len(s) + len(s)/8 + 2 + escapeSlack }

// escapeSlack is the room escapeTo keeps free in dst: a word can grow to 48
// bytes (8 × \u00XX) and the word stores write up to 24.
const escapeSlack = 64

// escapeTo writes s JSON-escaped, without quotes, to dst and returns the
// bytes written and read. It stops early, having read less than len(s),
// when dst is nearly full, and it may write past what it returns.
//
// It looks at eight bytes at a time. Up to the first quote, backslash or
// other special byte it only looks, and copies what it passed in bulk.
// From there on it writes every word, with one store per quote or
// backslash, each getting a backslash inserted before it, rather than with
// a branch per byte: event.original, a JSON text, has a quote every few
// bytes.
func escapeTo(dst []byte, s string) (w, i int) {
	last := len(s) - 8
	for i <= last && special8(load64(s, i)) == 0 {
		i += 8
	}
	if i > last && (last < 0 || special8(load64(s, last)) == 0) {
		// All plain. Copy short strings without memmove, whose branches on
		// the varying lengths mispredict.
		if len(dst) < len(s)+escapeSlack {
			return 0, 0
		}
		if len(s) < 8 && !isPlainShort(s) {
			return escapeBytes(dst, s, 0, 0)
		}
		return copy(dst, s), len(s)
	}
	if len(dst) < i+escapeSlack {
		return 0, 0
	}
	w = copy(dst, s[:i])
	for i <= last {
		if len(dst)-w < escapeSlack {
			return w, i
		}
		x := load64(s, i)
		if hasCtl(x) {
			// A control or non-ASCII byte: a byte or rune at a time.
			for end := i + 8; i < end; {
				n, r := escapeByte(dst[w:], s, i)
				w += n
				i += r
			}
			continue
		}
		// Write x with a backslash before each quote and backslash.
		m := zeroBytes(x^'"'*lsb) | zeroBytes(x^'\\'*lsb)
		o := dst[w : w+24]
		if m2 := m & (m - 1); m2&(m2-1) == 0 {
			// At most two (the common case), at p1 < p2, 8 if missing:
			// insert the backslashes without a branch, which the varying
			// count would mispredict. What is written past the end of the
			// escaped word is overwritten or ignored.
			p1 := uint(bits.TrailingZeros64(m)) / 8
			p2 := uint(bits.TrailingZeros64(m2)) / 8
			binary.LittleEndian.PutUint64(o, x)
			o[p1] = '\\'
			binary.LittleEndian.PutUint64(o[p1+1:], x>>(8*p1&63))
			o[p2+1] = '\\'
			binary.LittleEndian.PutUint64(o[p2+2:], x>>(8*p2&63))
			w += 10 - int(p1/8) - int(p2/8)
			i += 8
			continue
		}
		// The masks tell the compiler that j < 16, sparing bounds checks.
		at, j := 0, 0 // bytes of x written, bytes of o written
		for m != 0 {
			p := bits.TrailingZeros64(m) / 8
			binary.LittleEndian.PutUint64(o[j&15:], x>>(8*at&63))
			j += p - at
			o[j&15] = '\\'
			j++
			at = p
			m &= m - 1
		}
		binary.LittleEndian.PutUint64(o[j&15:], x>>(8*at&63))
		w += j + 8 - at
		i += 8
	}
	return escapeBytes(dst, s, w, i)
}

// escapeBytes is escapeTo for s[i:], fewer than eight bytes, written at
// dst[w:], a byte at a time.
func escapeBytes(dst []byte, s string, w, i int) (int, int) {
	if len(dst)-w < escapeSlack {
		return w, i
	}
	for i < len(s) {
		n, r := escapeByte(dst[w:], s, i)
		w += n
		i += r
	}
	return w, i
}

// copyPlain16 copies s, at most 16 bytes, to dst, which has room for 16,
// and reports true if s needs no escaping. It loads and stores two
// overlapping words, or half words, whatever the length: short strings,
// most values, are then written without loops, whose exits at varying
// lengths mispredict, nor memmove.
func copyPlain16(dst []byte, s string) (int, bool) {
	le := binary.LittleEndian
	switch n := len(s); {
	case n >= 8:
		lo, hi := load64(s, 0), load64(s, n-8)
		if special8(lo)|special8(hi) != 0 {
			return 0, false
		}
		le.PutUint64(dst[0:], lo)
		le.PutUint64(dst[n-8:], hi)
	case n >= 4:
		lo, hi := load32(s, 0), load32(s, n-4)
		if special8(uint64(lo)|uint64(hi)<<32) != 0 {
			return 0, false
		}
		le.PutUint32(dst[0:], lo)
		le.PutUint32(dst[n-4:], hi)
	default:
		for i := 0; i < n; i++ {
			if !plainByte[s[i]] {
				return 0, false
			}
			dst[i] = s[i]
		}
	}
	return len(s), true
}

// isPlainShort is isPlain for short strings.
func isPlainShort(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// load32 reads the four bytes of s at i as a little-endian word.
func load32(s string, i int) uint32 {
	b := s[i : i+4]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// plainByte[b] is true for the bytes that a JSON string may hold
// unescaped and that need no UTF-8 check: printable ASCII but '"' and '\\'.
var plainByte = func() (t [256]bool) {
	copy(t[:], safeASCII[:])
	return t
}()

// hasCtl reports whether x has a byte below 0x20 or above 0x7F.
func hasCtl(x uint64) bool { return ((x-0x20*lsb)&^x|x)&msb != 0 }

// escapeByte writes the byte or rune at s[i] to dst, escaped, and returns
// the bytes written and read. dst has room for 6.
func escapeByte(dst []byte, s string, i int) (w, r int) {
	c := s[i]
	if c >= utf8.RuneSelf {
		rn, size := utf8.DecodeRuneInString(s[i:])
		if rn == utf8.RuneError && size == 1 {
			return copy(dst, `\ufffd`), 1
		}
		return copy(dst, s[i:i+size]), size
	}
	if safeASCII[c] {
		dst[0] = c
		return 1, 1
	}
	dst[0] = '\\'
	switch c {
	case '"', '\\':
		dst[1] = c
	case '\n':
		dst[1] = 'n'
	case '\r':
		dst[1] = 'r'
	case '\t':
		dst[1] = 't'
	case '\b':
		dst[1] = 'b'
	case '\f':
		dst[1] = 'f'
	default:
		copy(dst, `\u00`)
		dst[4], dst[5] = hexDigits[c>>4], hexDigits[c&0xF]
		return 6, 1
	}
	return 2, 1
}

// grow returns b with room for n more bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	return append(b, make([]byte, n)...)[:len(b)]
}

// load64 reads the eight bytes of s at i as a little-endian word. It slices
// first: the compiler then checks the bounds once instead of eight times.
func load64(s string, i int) uint64 {
	b := s[i : i+8]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
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

// IndexStringEnd returns the index of the first '"' or '\\' in s, or -1:
// where a JSON string's text ends, or the first escape in it. It looks at
// eight bytes at a time.
func IndexStringEnd(s string) int {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := load64(s, i)
		if m := zeroBytes(x^'"'*lsb) | zeroBytes(x^'\\'*lsb); m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			return i
		}
	}
	return -1
}
