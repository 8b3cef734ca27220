package ecs

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// refAppendString is AppendString written plainly, a byte or rune at a
// time.
func refAppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		case '\b':
			dst = append(dst, `\b`...)
		case '\f':
			dst = append(dst, `\f`...)
		default:
			if c < 0x20 {
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			} else {
				dst = append(dst, c)
			}
		}
		i++
	}
	return append(dst, '"')
}

func TestAppendStringMatchesReference(t *testing.T) {
	alphabet := []string{"a", "b", "0", " ", "\"", "\\", "\n", "\x00", "\x1f", "\x7f", "é", "☃", "😀", "\xff", "\xc3", "\xe2\x98", "/", "<"}
	r := rand.New(rand.NewPCG(11, 12))
	var d Doc
	for round := range 200000 {
		var b strings.Builder
		n := r.IntN(40)
		if round%100 == 0 {
			n = r.IntN(3000)
		}
		dense := r.IntN(4) // how often special bytes come
		for range n {
			if r.IntN(8) < dense {
				b.WriteString(alphabet[r.IntN(len(alphabet))])
			} else {
				b.WriteByte(byte('a' + r.IntN(26)))
			}
		}
		s := b.String()
		want := string(refAppendString([]byte("x"), s))
		if got := string(AppendString([]byte("x"), s)); got != want {
			t.Fatalf("AppendString(%q)\n got %s\nwant %s", s, got, want)
		}
		// Doc.addString, with a full and an empty buffer.
		d.Reset()
		if round%2 == 0 {
			d.buf = d.buf[:1:1]
		}
		d.Str("k", s)
		if s != "" {
			if got, w := string(d.AppendJSON(nil)), `{"k":`+want[1:]+`}`; got != w {
				t.Fatalf("Doc.Str(%q)\n got %s\nwant %s", s, got, w)
			}
		}
	}
}

func TestIndexStringEnd(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want int
	}{
		{``, -1}, {`abc`, -1}, {`"`, 0}, {`a\`, 1}, {`abcdefgh"`, 8}, {`abcdefg\"`, 7},
		{`abcdefghijklmnop`, -1}, {`abcdefghijklmno"`, 15}, {"\x00\x80\xff\"", 3}, {`ab"cd\`, 2},
	} {
		if got := IndexStringEnd(tt.s); got != tt.want {
			t.Errorf("IndexStringEnd(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}
