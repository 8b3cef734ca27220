package matcher

import (
	"bytes"
	"strings"
	"testing"
)

// The byte-at-a-time forms that hex.go's word-at-a-time code replaces,
// kept as the reference it must agree with.
func isHexBytes(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if unhex(s[i]) > 0xf {
			return false
		}
	}
	return true
}

func decodeHexBytes(dst []byte, s string) bool {
	switch len(s) {
	case 32, 40, 64, 96, 128:
	default:
		return false
	}
	for i := 0; i < len(s); i += 2 {
		hi, lo := unhex(s[i]), unhex(s[i+1])
		if hi > 0xf || lo > 0xf {
			return false
		}
		dst[i/2] = hi<<4 | lo
	}
	return true
}

// checkHex compares hex.go's functions with the byte-at-a-time forms on s.
func checkHex(t *testing.T, s string) {
	t.Helper()
	if got, want := isHex(s), isHexBytes(s); got != want {
		t.Errorf("isHex(%q) = %v, want %v", s, got, want)
	}
	var got, want [64]byte
	okGot, okWant := decodeHex(got[:], s), decodeHexBytes(want[:], s)
	if okGot != okWant || okGot && got != want {
		t.Errorf("decodeHex(%q) = %v %x, want %v %x", s, okGot, got[:len(s)/2], okWant, want[:len(s)/2])
	}
	if isHexBytes(s) {
		if got, want := appendLowerHex([]byte("x"), s), append([]byte("x"), strings.ToLower(s)...); !bytes.Equal(got, want) {
			t.Errorf("appendLowerHex(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestHexWords(t *testing.T) {
	digest := "0123456789abcdefABCDEF0123456789" // 32 digits
	cases := []string{
		"", "a", "F", "0123456", "01234567", "012345678", "g", digest,
		digest + "01234567", digest + digest, digest + digest + digest, digest + digest + digest + digest,
		strings.Repeat("f", 40), strings.ToUpper(strings.Repeat("e3b0c442", 8)),
	}
	// Each byte just outside a range of digits, and bytes that setting
	// bit 0x20 would turn into digits or letters, in every position of a
	// digest.
	for _, c := range []byte{'/', ':', '@', 'G', '`', 'g', 0x10, 0x19, 0x11, 0x21, 0x41 - 0x20, 0x46 - 0x20, 0x7f, 0x80, 0xc1, 0xff, ' '} {
		for i := 0; i < 32; i += 5 {
			b := []byte(digest)
			b[i] = c
			cases = append(cases, string(b))
		}
	}
	for _, s := range cases {
		checkHex(t, s)
	}
}

func FuzzHex(f *testing.F) {
	for _, s := range []string{"", "0123456789abcdefABCDEF0123456789", strings.Repeat("A", 40), "T1" + strings.Repeat("b", 70), "zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkHex(t, s)
		// A digest made of s's bytes: mostly digits of either case, now
		// and then a byte of s as it is.
		const digits = "0123456789abcdefABCDEF"
		for _, n := range []int{32, 40, 64, 96, 128} {
			if len(s) == 0 {
				break
			}
			d := make([]byte, n)
			for i := range d {
				c := s[i%len(s)]
				d[i] = digits[int(c)%len(digits)]
				if c%17 == 0 {
					d[i] = c
				}
			}
			checkHex(t, string(d))
		}
	})
}

// BenchmarkHex: a SHA-256 digest in upper case checked, lower-cased
// (appendHash, as sightings and feeds normalize it) and decoded (the
// index's key), a word at a time against byte at a time.
//
//	go test -run '^$' -bench Hex ./internal/matcher/
func BenchmarkHex(b *testing.B) {
	s := strings.ToUpper("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	var key [64]byte
	buf := make([]byte, 0, 64)
	b.Run("words", func(b *testing.B) {
		for b.Loop() {
			buf = appendHash(buf[:0], s)
			if !decodeHex(key[:], s) {
				b.Fatal("not hex")
			}
		}
	})
	b.Run("bytes", func(b *testing.B) {
		for b.Loop() {
			buf = buf[:0]
			if isHexBytes(s) {
				buf = appendLowerASCII(buf, s)
			}
			if !decodeHexBytes(key[:], s) {
				b.Fatal("not hex")
			}
		}
	})
}
