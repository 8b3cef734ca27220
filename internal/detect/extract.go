package detect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// The event field extractor reads an NDJSON line once, from left to right,
// validating it as JSON (as encoding/json.Valid does) and pulling out the
// values of the wanted dotted fields only. It builds no tree and allocates
// nothing per event: a string without escapes is returned as a view of the
// line, one with escapes is decoded into a reused buffer.
//
// Fields are found as Elasticsearch finds them in a _source: through
// nested objects ({"source":{"ip":…}}), dotted keys ({"source.ip":…}) or a
// mix ({"source":{"geo.city_name":…}}), at any level; arrays of values and
// arrays of objects are flattened ({"email":{"to":{"address":["a","b"]}}}).
// Strings are decoded exactly as encoding/json decodes them, invalid UTF-8
// and lone surrogates included (they become U+FFFD).

// maxDepth is the nesting depth past which a line is rejected, as
// encoding/json rejects it.
const maxDepth = 10000

// fieldTree is the set of wanted fields as a tree of their dotted parts.
type fieldTree struct {
	nodes []fnode
	names []string // field name of each slot
}

type fnode struct {
	slot     int32 // the field ending here, or -1
	anyValue bool  // the slot takes values of any type, not only strings
	children []fchild
	// byFirst[c&63] is 1 + the index of the first child whose name starts
	// with a byte c (0: none); the children of a bucket are chained.
	byFirst [64]int32
}

type fchild struct {
	name string
	node int32
	next int32 // 1 + the index of the next child of the bucket, or 0
}

// newFieldTree returns the tree of fields; slot i is fields[i]. A field in
// anyValue takes values of every type (a presence test), the others only
// strings. Fields must be distinct, with non-empty parts.
func newFieldTree(fields []string, anyValue map[string]bool) *fieldTree {
	t := &fieldTree{nodes: []fnode{{slot: -1}}, names: fields}
	for slot, f := range fields {
		n := int32(0)
		for part := range bytes.SplitSeq([]byte(f), []byte{'.'}) {
			c := t.child(n, part)
			if c < 0 {
				c = int32(len(t.nodes))
				t.nodes = append(t.nodes, fnode{slot: -1})
				nd := &t.nodes[n]
				nd.children = append(nd.children, fchild{name: string(part), node: c})
				link := &nd.byFirst[part[0]&63]
				for *link != 0 {
					link = &nd.children[*link-1].next
				}
				*link = int32(len(nd.children))
			}
			n = c
		}
		t.nodes[n].slot = int32(slot)
		t.nodes[n].anyValue = anyValue[f]
	}
	return t
}

// child returns the child of node n named name, or -1.
func (t *fieldTree) child(n int32, name []byte) int32 {
	for _, c := range t.nodes[n].children {
		if len(c.name) == len(name) && c.name == b2s(name) {
			return c.node
		}
	}
	return -1
}

// resolve returns the node that the key (dotted or not) leads to from node
// n, or -1. A child matches a key that it is the whole of, or the part of
// before a dot (names have no dots).
func (t *fieldTree) resolve(n int32, key []byte) int32 {
	for {
		if len(key) == 0 {
			return -1
		}
		// Only the children that start with the key's first byte (most
		// keys no rule wants have none) are compared.
		nd := &t.nodes[n]
		next := int32(-1)
		for ci := nd.byFirst[key[0]&63]; ci != 0; {
			c := &nd.children[ci-1]
			ci = c.next
			l := len(c.name)
			if l > len(key) || l < len(key) && key[l] != '.' || c.name != b2s(key[:l]) {
				continue
			}
			if l == len(key) {
				return c.node
			}
			next, key = c.node, key[l+1:]
			break
		}
		if next < 0 {
			return -1
		}
		n = next
	}
}

// fieldValue is one value found, by offsets, since the scratch buffer may
// move while the line is read.
type fieldValue struct {
	slot       int32
	rawA, rawB int32 // the value's JSON text in the line (quotes included)
	a, b       int32 // the decoded string: in the line, or in scratch when esc
	esc        bool
	str        bool // a string (otherwise a number, a boolean or an object)
}

// extractor scans lines for the fields of a fieldTree. It keeps its
// buffers between lines and is not safe for concurrent use.
type extractor struct {
	t       *fieldTree
	src     []byte
	vals    []fieldValue
	scratch []byte
	keybuf  []byte
	err     error
	// The event's @timestamp in Unix milliseconds, parsed once a line
	// (see timestamp): the line read ahead is parsed for its day first.
	tsMs         int64
	tsDone, tsOK bool
}

// SyntaxError is a line that is not a JSON object.
type SyntaxError struct {
	Offset int // byte offset in the line
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("not valid JSON: %s at byte %d", e.Msg, e.Offset)
}

// fail records a syntax error at offset i and returns -1.
func (x *extractor) fail(i int, msg string) int {
	if x.err == nil {
		x.err = &SyntaxError{Offset: i, Msg: msg}
	}
	return -1
}

func (x *extractor) failAt(i int, what string) int {
	if i >= len(x.src) {
		return x.fail(i, "unexpected end of line, expecting "+what)
	}
	return x.fail(i, fmt.Sprintf("invalid character %s, expecting %s", quoteChar(x.src[i]), what))
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string([]byte{c}))
	return "'" + s[1:len(s)-1] + "'"
}

// scan reads one line. It returns a *SyntaxError when the line is not one
// JSON object (white space around it allowed).
func (x *extractor) scan(src []byte) error {
	x.src, x.vals, x.scratch, x.err = src, x.vals[:0], x.scratch[:0], nil
	x.tsDone = false
	i := skipWS(src, 0)
	if i == len(src) {
		return &SyntaxError{Offset: i, Msg: "an empty line, expecting a JSON object"}
	}
	if src[i] != '{' {
		// Valid JSON that is not an object is still not an event.
		if end := x.value(i, -1, 0); end >= 0 {
			if skipWS(src, end) == len(src) {
				return &SyntaxError{Offset: i, Msg: "a JSON value that is not an object"}
			}
			x.failAt(skipWS(src, end), "the end of the line")
		}
		return x.err
	}
	end := x.object(i, 0, 1)
	if end < 0 {
		return x.err
	}
	if end = skipWS(src, end); end != len(src) {
		x.failAt(end, "the end of the line after the object")
		return x.err
	}
	return nil
}

// str returns the decoded value of v; it views the line or the scratch
// buffer and is valid until the next scan.
func (x *extractor) str(v *fieldValue) string {
	if v.esc {
		return b2s(x.scratch[v.a:v.b])
	}
	return b2s(x.src[v.a:v.b])
}

// raw returns v's JSON text.
func (x *extractor) raw(v *fieldValue) []byte { return x.src[v.rawA:v.rawB] }

// skipWS returns the offset of the first byte at or after i that is not
// white space.
func skipWS(src []byte, i int) int {
	if i < len(src) && src[i] > ' ' {
		return i
	}
	return ecs.SkipSpace(src, i)
}

// object reads the object at src[i] ('{'), looking fields up from node n
// (-1: nothing wanted below), and returns the offset after it.
func (x *extractor) object(i int, n int32, depth int) int {
	if depth > maxDepth {
		return x.fail(i, "nesting too deep")
	}
	src := x.src
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(src) || src[i] != '"' {
			return x.failAt(i, "a string key")
		}
		end, flags := x.string(i)
		if end < 0 {
			return -1
		}
		child := int32(-1)
		if n >= 0 {
			key := src[i+1 : end-1]
			if flags&strEscaped != 0 {
				x.keybuf = appendUnquote(x.keybuf[:0], key)
				key = x.keybuf
			}
			child = x.t.resolve(n, key)
		}
		i = skipWS(src, end)
		if i >= len(src) || src[i] != ':' {
			return x.failAt(i, "':' after a key")
		}
		i = skipWS(src, i+1)
		if child >= 0 {
			i = x.value(i, child, depth)
		} else {
			i = x.skipMember(i, depth)
		}
		if i < 0 {
			return -1
		}
		i = skipWS(src, i)
		if i >= len(src) {
			return x.failAt(i, "',' or '}'")
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case '}':
			return i + 1
		default:
			return x.failAt(i, "',' or '}' after an object member")
		}
	}
}

// value reads the value at src[i] for node n and returns the offset after
// it.
func (x *extractor) value(i int, n int32, depth int) int {
	src := x.src
	if i >= len(src) {
		return x.failAt(i, "a value")
	}
	if n < 0 {
		return x.skip(i, depth)
	}
	slot, anyValue := x.t.nodes[n].slot, x.t.nodes[n].anyValue
	switch c := src[i]; c {
	case '"':
		end, flags := x.string(i)
		if end >= 0 && slot >= 0 {
			x.addString(slot, i, end, flags)
		}
		return end
	case '{':
		var end int
		if len(x.t.nodes[n].children) > 0 {
			end = x.object(i, n, depth+1)
		} else {
			end = x.skipObject(i, depth+1)
		}
		if end >= 0 && anyValue {
			x.vals = append(x.vals, fieldValue{slot: slot, rawA: int32(i), rawB: int32(end), a: int32(i), b: int32(end)})
		}
		return end
	case '[':
		return x.array(i, n, depth+1)
	case 't':
		return x.literal(i, "true", slot, anyValue)
	case 'f':
		return x.literal(i, "false", slot, anyValue)
	case 'n':
		return x.literal(i, "null", -1, false) // null is no value
	default:
		if c == '-' || '0' <= c && c <= '9' {
			end := x.number(i)
			if end >= 0 && anyValue {
				x.vals = append(x.vals, fieldValue{slot: slot, rawA: int32(i), rawB: int32(end), a: int32(i), b: int32(end)})
			}
			return end
		}
		return x.failAt(i, "a value")
	}
}

// skip reads the value at src[i], which nothing is wanted of, and returns
// the offset after it: value without the bookkeeping.
func (x *extractor) skip(i int, depth int) int {
	src := x.src
	if i >= len(src) {
		return x.failAt(i, "a value")
	}
	switch c := src[i]; c {
	case '"':
		end, _ := x.string(i)
		return end
	case '{':
		return x.skipObject(i, depth+1)
	case '[':
		return x.skipArray(i, depth+1)
	case 't':
		return x.literal(i, "true", -1, false)
	case 'f':
		return x.literal(i, "false", -1, false)
	case 'n':
		return x.literal(i, "null", -1, false)
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return x.number(i)
		}
		return x.failAt(i, "a value")
	}
}

// skipMember is skip with the commonest members, strings and numbers, read
// without its switch.
func (x *extractor) skipMember(i int, depth int) int {
	if i < len(x.src) {
		if c := x.src[i]; c == '"' {
			end, _ := x.string(i)
			return end
		} else if '0' <= c && c <= '9' {
			return x.number(i)
		}
	}
	return x.skip(i, depth)
}

// skipObject reads the object at src[i], which nothing is wanted of.
func (x *extractor) skipObject(i int, depth int) int {
	if depth > maxDepth {
		return x.fail(i, "nesting too deep")
	}
	src := x.src
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(src) || src[i] != '"' {
			return x.failAt(i, "a string key")
		}
		end, _ := x.string(i)
		if end < 0 {
			return -1
		}
		i = skipWS(src, end)
		if i >= len(src) || src[i] != ':' {
			return x.failAt(i, "':' after a key")
		}
		i = skipWS(src, i+1)
		if i = x.skipMember(i, depth); i < 0 {
			return -1
		}
		i = skipWS(src, i)
		if i >= len(src) {
			return x.failAt(i, "',' or '}'")
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case '}':
			return i + 1
		default:
			return x.failAt(i, "',' or '}' after an object member")
		}
	}
}

// skipArray reads the array at src[i], which nothing is wanted of.
func (x *extractor) skipArray(i int, depth int) int {
	if depth > maxDepth {
		return x.fail(i, "nesting too deep")
	}
	src := x.src
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == ']' {
		return i + 1
	}
	for {
		if i = x.skip(i, depth); i < 0 {
			return -1
		}
		i = skipWS(src, i)
		if i >= len(src) {
			return x.failAt(i, "',' or ']'")
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case ']':
			return i + 1
		default:
			return x.failAt(i, "',' or ']' after an array element")
		}
	}
}

// array reads the array at src[i]; its elements are values of node n.
func (x *extractor) array(i int, n int32, depth int) int {
	if depth > maxDepth {
		return x.fail(i, "nesting too deep")
	}
	src := x.src
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == ']' {
		return i + 1
	}
	for {
		if i = x.value(i, n, depth); i < 0 {
			return -1
		}
		i = skipWS(src, i)
		if i >= len(src) {
			return x.failAt(i, "',' or ']'")
		}
		switch src[i] {
		case ',':
			i = skipWS(src, i+1)
		case ']':
			return i + 1
		default:
			return x.failAt(i, "',' or ']' after an array element")
		}
	}
}

func (x *extractor) literal(i int, lit string, slot int32, anyValue bool) int {
	end := i + len(lit)
	if end > len(x.src) || string(x.src[i:end]) != lit {
		j := i
		for j < end && j < len(x.src) && x.src[j] == lit[j-i] {
			j++
		}
		return x.failAt(j, "the literal "+lit)
	}
	if anyValue {
		x.vals = append(x.vals, fieldValue{slot: slot, rawA: int32(i), rawB: int32(end), a: int32(i), b: int32(end)})
	}
	return end
}

// number reads a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (x *extractor) number(i int) int {
	src := x.src
	if src[i] == '-' {
		i++
	}
	switch {
	case i < len(src) && src[i] == '0':
		i++
	case i < len(src) && '1' <= src[i] && src[i] <= '9':
		i = digits(src, i+1)
	default:
		return x.failAt(i, "a digit")
	}
	if i < len(src) && src[i] == '.' {
		if i+1 >= len(src) || !isDigit(src[i+1]) {
			return x.failAt(i+1, "a digit after the decimal point")
		}
		i = digits(src, i+1)
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if i >= len(src) || !isDigit(src[i]) {
			return x.failAt(i, "a digit in the exponent")
		}
		i = digits(src, i)
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digits(src []byte, i int) int {
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	return i
}

// String flags.
const (
	strEscaped = 1 << iota // has a backslash escape
	strHigh                // may have bytes >= 0x80
)

// SWAR constants: one in each byte, and each byte's high bit.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// hasByte returns a mask whose lowest set bit is the high bit of the first
// byte of x (little-endian) equal to c, or 0.
func hasByte(x uint64, c byte) uint64 {
	y := x ^ (lo8 * uint64(c))
	return (y - lo8) &^ y & hi8
}

// hasLess returns a mask whose lowest set bit is the high bit of the first
// byte of x below n (n <= 128), or 0.
func hasLess(x uint64, n byte) uint64 {
	return (x - lo8*uint64(n)) &^ x & hi8
}

// string validates the string whose opening quote is at src[i] and returns
// the offset after its closing quote, with its flags. It looks at eight
// bytes at a time for a quote, a backslash or a control character.
func (x *extractor) string(i int) (int, int) {
	src := x.src
	j := i + 1
	flags := 0
	if j+8 <= len(src) {
		// Most keys and many values end within their first eight bytes:
		// those are read here, without scanWords's call and loop.
		w := binary.LittleEndian.Uint64(src[j : j+8])
		if w&hi8 != 0 {
			flags = strHigh // maybe past the string's end, as in scanWords
		}
		m := hasByte(w, '"') | hasByte(w, '\\') | hasLess(w, 0x20)
		if m == 0 {
			j += 8
		} else if k := j + bits.TrailingZeros64(m)/8; src[k] == '"' {
			return k + 1, flags
		}
	}
	for {
		var seen uint64
		if j, seen = scanWords(src, j); seen&hi8 != 0 {
			// Maybe past the string's end: it only costs a check.
			flags |= strHigh
		}
		if j >= len(src) {
			return x.fail(i, "unterminated string"), 0
		}
		c := src[j]
		switch {
		case c == '"':
			return j + 1, flags
		case c == '\\':
			flags |= strEscaped
			if j+1 >= len(src) {
				return x.fail(j, "unterminated string"), 0
			}
			switch src[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				for k := j + 2; k < j+6; k++ {
					if k >= len(src) || unhex(src[k]) > 0xf {
						return x.failAt(k, "a hexadecimal digit in a \\u escape"), 0
					}
				}
				j += 6
			default:
				return x.fail(j, fmt.Sprintf("invalid escape %s in a string", quoteChar(src[j+1]))), 0
			}
		case c < 0x20:
			return x.fail(j, fmt.Sprintf("control character %s in a string", quoteChar(c))), 0
		default:
			if c >= utf8.RuneSelf {
				flags |= strHigh
			}
			j++
		}
	}
}

// scanWords returns the offset of the first quote, backslash or control
// character at or after j, looking at eight bytes at a time, or the offset
// past the last whole eight bytes, with the OR of the words read. A leaf
// function, so that its loop keeps everything in registers.
func scanWords(src []byte, j int) (int, uint64) {
	base := unsafe.Pointer(unsafe.SliceData(src))
	var seen uint64
	for j+8 <= len(src) {
		// src[j:j+8], without the bounds checks.
		w := binary.LittleEndian.Uint64(unsafe.Slice((*byte)(unsafe.Add(base, j)), 8))
		seen |= w
		if m := hasByte(w, '"') | hasByte(w, '\\') | hasLess(w, 0x20); m != 0 {
			return j + bits.TrailingZeros64(m)/8, seen
		}
		j += 8
	}
	return j, seen
}

// addString records the string src[i:end] (quotes included) as a value of
// slot, decoding it when it needs to be.
func (x *extractor) addString(slot int32, i, end, flags int) {
	v := fieldValue{slot: slot, rawA: int32(i), rawB: int32(end), a: int32(i + 1), b: int32(end - 1), str: true}
	inner := x.src[i+1 : end-1]
	if flags&strEscaped != 0 || flags&strHigh != 0 && !utf8.Valid(inner) {
		a := len(x.scratch)
		x.scratch = appendUnquote(x.scratch, inner)
		v.a, v.b, v.esc = int32(a), int32(len(x.scratch)), true
	}
	x.vals = append(x.vals, v)
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		h := unhex(c)
		if h > 0xf {
			return -1
		}
		r = r<<4 | rune(h)
	}
	return r
}

// appendUnquote appends the decoded text of the inside of a valid JSON
// string, as encoding/json decodes it: escapes resolved, a surrogate pair
// joined, a lone surrogate and each byte of invalid UTF-8 replaced by
// U+FFFD.
func appendUnquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := getu4(s[i:])
				i += 6
				if utf16.IsSurrogate(r) {
					if dec := utf16.DecodeRune(r, getu4(s[i:])); dec != unicode.ReplacementChar {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
					r = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // " \ /
				dst = append(dst, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, unicode.ReplacementChar)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// b2s views b as a string; the string must not outlive b's next change.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
