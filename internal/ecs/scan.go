package ecs

// The helpers below scan JSON text in place, for the fast paths of the
// normalizers, which take a record's values as ranges of its text instead
// of parsing it into values. Indexes are into s; an index past the end
// means the text ended.

// numberBytes[c] is true for the bytes fastjson takes into a number.
var numberBytes = func() (t [256]bool) {
	for _, c := range "0123456789.-+eE" {
		t[c] = true
	}
	return t
}()

// NumberByte reports whether fastjson takes c into a number's text.
func NumberByte(c byte) bool { return numberBytes[c] }

// HasAt reports whether s has word at i; it reports false for an i out of
// range.
func HasAt(s string, i int, word string) bool {
	return i >= 0 && len(s)-i >= len(word) && s[i:i+len(word)] == word
}

// SkipSpace returns the index of the first byte from i on that is not
// JSON white space.
func SkipSpace[T ~string | ~[]byte](s T, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// StartObject scans the '{' that opens the JSON object s holds, white
// space around it allowed, and returns where its first key starts. For an
// object without members it reports empty, and ok only when nothing but
// white space follows the '}'.
func StartObject(s string) (i int, empty, ok bool) {
	i = SkipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return 0, false, false
	}
	i = SkipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return i + 1, true, SkipSpace(s, i+1) == len(s)
	}
	return i, false, true
}

// NextItem scans the separator after a value at s[i:] in an array or
// object that closer ends, and returns where the next value or key
// starts, or, done, the index after closer.
func NextItem(s string, i int, closer byte) (next int, done, ok bool) {
	i = SkipSpace(s, i)
	if i >= len(s) {
		return 0, false, false
	}
	switch s[i] {
	case ',':
		return SkipSpace(s, i+1), false, true
	case closer:
		return i + 1, true, true
	}
	return 0, false, false
}

// ScanKey scans the member key at s[i:] and the colon after it, and
// returns the key and where its value starts. A key with an escape is
// refused, as is anything but a key.
func ScanKey(s string, i int) (key string, next int, ok bool) {
	if i >= len(s) || s[i] != '"' {
		return "", 0, false
	}
	end := IndexStringEnd(s[i+1:])
	if end < 0 || s[i+1+end] != '"' {
		return "", 0, false // unterminated, or an escape
	}
	key = s[i+1 : i+1+end]
	i += end + 2
	if i >= len(s) || s[i] != ':' {
		if i = SkipSpace(s, i); i >= len(s) || s[i] != ':' {
			return "", 0, false
		}
	}
	i++
	if i < len(s) && s[i] <= ' ' {
		i = SkipSpace(s, i)
	}
	return key, i, true
}
