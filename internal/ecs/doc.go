// Package ecs builds Elastic Common Schema documents and holds the pure,
// I/O-free canonicalization shared by the vendor normalizers: URL parts as
// Elasticsearch's uri_parts processor gives them, hash fields by length,
// confidence buckets, IOC expiry durations, ISO 8601 dates and the number
// formats Elasticsearch writes.
package ecs

import (
	"math/bits"
	"slices"
	"strconv"
	"time"
	"unsafe"
)

// TimeLayout is the layout of every date vigil writes: UTC, milliseconds and
// a literal Z, as Elasticsearch's date processor writes it.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// TimeLayoutSeconds is TimeLayout without the milliseconds.
const TimeLayoutSeconds = "2006-01-02T15:04:05Z"

// Doc accumulates the fields of one ECS document as (dotted path, JSON
// value) pairs and encodes them as nested JSON objects with sorted keys.
//
// Empty values are never stored: an empty string, a list whose elements are
// all empty and a raw value that is null, "", {} or [] are skipped, as
// Elastic's clean-up script removes them. So the encoded document has no
// empty objects either.
//
// When two fields have the same path, the one added last wins. When a path
// is both a value and the parent of other fields ("a.b" and "a.b.c"), the
// object wins.
//
// Fields may be added in any order, but adding them in sorted order (as
// comparePaths orders dotted paths: segment by segment) is much faster: the
// document is then written as the fields come, and never sorted.
//
// A Doc is reusable: Reset keeps its buffers. It is not safe for concurrent
// use. Paths must stay valid until AppendJSON or Reset; values are copied
// when they are added.
type Doc struct {
	fields []field
	// buf holds the values. While the fields arrive in sorted order
	// (streaming), it is the document itself, without its closing braces:
	// the keys and braces sit between the values.
	buf       []byte
	streaming bool
	depth     int  // objects open in buf while streaming
	comma     bool // the next member written to buf needs a comma
	keys      []sortKey
	paths     []byte // arena for paths made by Join
	stack     []string
}

type field struct {
	path       string
	start, end int32 // range of the encoded value in buf
}

// sortKey orders a field when the fields must be sorted: k packs the first
// 24 bytes of its path (big endian, '.' mapped to 0, zero padded), so that
// most comparisons need not look at the path. It holds no pointers, so
// sorting it is cheap.
type sortKey struct {
	k    [3]uint64
	idx  int32 // index in fields, also the insertion order
	slow bool  // the path has a NUL byte in the packed part
}

// Reset empties d, keeping its memory.
func (d *Doc) Reset() {
	d.fields = d.fields[:0]
	d.buf = append(d.buf[:0], '{')
	d.streaming = true
	d.depth = 0
	d.comma = false
	d.paths = d.paths[:0]
}

// Len returns the number of fields added since the last Reset.
func (d *Doc) Len() int { return len(d.fields) }

// Join returns prefix + "." + key as a path that stays valid until Reset,
// without allocating once d has warmed up.
func (d *Doc) Join(prefix, key string) string {
	start := len(d.paths)
	if cap(d.paths)-start < len(prefix)+1+len(key) {
		// Grow into a new array: paths already handed out keep pointing at
		// the old one, which stays alive and unchanged.
		n := make([]byte, start, 2*cap(d.paths)+len(prefix)+len(key)+64)
		copy(n, d.paths)
		d.paths = n
	}
	d.paths = append(d.paths, prefix...)
	d.paths = append(d.paths, '.')
	d.paths = append(d.paths, key...)
	b := d.paths[start:]
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// begin starts the value of a new field at path: while streaming, it
// writes the braces and keys that lead to it, or stops streaming if path
// does not sort after the previous field. It returns where the value
// starts in buf.
func (d *Doc) begin(path string) int {
	if len(d.buf) == 0 {
		d.Reset() // a zero Doc
	}
	if !d.streaming {
		return len(d.buf)
	}
	shared := 0 // parent segments path shares with the previous field
	rest := path
	if n := len(d.fields); n > 0 {
		prev := d.fields[n-1].path
		i := commonPrefix(prev, path)
		// path must sort after prev and not lie under it.
		switch {
		case i == len(path):
			d.streaming = false // path == prev, or path is a prefix of prev
			return len(d.buf)
		case i == len(prev):
			if path[i] == '.' {
				d.streaming = false // prev is a value and path under it
				return len(d.buf)
			}
		case prev[i] != '.' && (path[i] == '.' || path[i] < prev[i]):
			d.streaming = false
			return len(d.buf)
		}
		// The shared segments end at the last '.' of the common prefix.
		if j := lastDot(path[:i]); j >= 0 {
			shared = countDots(path[:j+1])
			rest = path[j+1:]
		}
	}
	for d.depth > shared {
		d.buf = append(d.buf, '}')
		d.depth--
		d.comma = true
	}
	plain := isPlain(rest)
	for {
		dot := indexDot(rest)
		if dot < 0 {
			break
		}
		if d.comma {
			d.buf = append(d.buf, ',')
		}
		d.buf = appendKey(d.buf, rest[:dot], plain)
		d.buf = append(d.buf, ':', '{')
		d.depth++
		d.comma = false
		rest = rest[dot+1:]
	}
	if d.comma {
		d.buf = append(d.buf, ',')
	}
	d.buf = appendKey(d.buf, rest, plain)
	d.buf = append(d.buf, ':')
	d.comma = true
	return len(d.buf)
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// state is what begin changes, to undo a field that turns out empty.
type docState struct {
	buf       int
	depth     int
	comma     bool
	streaming bool
}

func (d *Doc) save() docState {
	return docState{len(d.buf), d.depth, d.comma, d.streaming}
}

func (d *Doc) restore(s docState) {
	d.buf = d.buf[:s.buf]
	d.depth, d.comma, d.streaming = s.depth, s.comma, s.streaming
}

// end records the field whose value is buf[start:].
func (d *Doc) end(path string, start int) {
	d.fields = append(d.fields, field{path: path, start: int32(start), end: int32(len(d.buf))})
}

// Str sets path to the string s. An empty s is skipped.
func (d *Doc) Str(path, s string) {
	if s == "" {
		return
	}
	start := d.begin(path)
	d.buf = AppendString(d.buf, s)
	d.end(path, start)
}

// Strs sets path to a list of strings. Empty strings are left out, and a
// list with nothing left is skipped.
func (d *Doc) Strs(path string, list []string) {
	n := 0
	for _, s := range list {
		if s != "" {
			n++
		}
	}
	if n == 0 {
		return
	}
	start := d.begin(path)
	d.buf = append(d.buf, '[')
	n = 0
	for _, s := range list {
		if s == "" {
			continue
		}
		if n > 0 {
			d.buf = append(d.buf, ',')
		}
		d.buf = AppendString(d.buf, s)
		n++
	}
	d.buf = append(d.buf, ']')
	d.end(path, start)
}

// Int sets path to the integer v.
func (d *Doc) Int(path string, v int64) {
	start := d.begin(path)
	d.buf = strconv.AppendInt(d.buf, v, 10)
	d.end(path, start)
}

// Float sets path to the double v, formatted as Elasticsearch writes a
// double (16 → 16.0). NaN and infinities are skipped.
func (d *Doc) Float(path string, v float64) {
	var tmp [32]byte
	if b, ok := AppendJavaFloat64(tmp[:0], v); ok {
		d.raw(path, b)
	}
}

// Float32 sets path to the float v, formatted as Elasticsearch writes a
// float (16.451612903225808 → 16.451612). NaN and infinities are skipped.
func (d *Doc) Float32(path string, v float32) {
	var tmp [32]byte
	if b, ok := AppendJavaFloat32(tmp[:0], v); ok {
		d.raw(path, b)
	}
}

// Num sets path to the JSON number text s, as Elasticsearch writes back a
// number it parsed (see AppendNumber). It reports false, adding nothing, when
// s is not a valid JSON number.
func (d *Doc) Num(path, s string) bool {
	var tmp [64]byte
	b, ok := AppendNumber(tmp[:0], s)
	if ok {
		d.raw(path, b)
	}
	return ok
}

// Bool sets path to v.
func (d *Doc) Bool(path string, v bool) {
	if v {
		d.raw(path, []byte("true"))
	} else {
		d.raw(path, []byte("false"))
	}
}

// Time sets path to t in UTC as TimeLayout (milliseconds). A zero t is
// skipped.
func (d *Doc) Time(path string, t time.Time) {
	d.TimeLayout(path, t, TimeLayout)
}

// TimeLayout sets path to t in UTC formatted with layout. A zero t is
// skipped.
func (d *Doc) TimeLayout(path string, t time.Time, layout string) {
	if t.IsZero() {
		return
	}
	start := d.begin(path)
	d.buf = append(d.buf, '"')
	d.buf = AppendTime(d.buf, t, layout)
	d.buf = append(d.buf, '"')
	d.end(path, start)
}

// AppendTime appends t in UTC formatted with layout, quickly for
// TimeLayout and TimeLayoutSeconds.
func AppendTime(dst []byte, t time.Time, layout string) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 || (layout != TimeLayout && layout != TimeLayoutSeconds) {
		return t.AppendFormat(dst, layout)
	}
	hour, minute, sec := t.Clock()
	dst = append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if layout == TimeLayout {
		ms := t.Nanosecond() / 1e6
		dst = append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	}
	return append(dst, 'Z')
}

// Raw sets path to the encoded JSON value js, for example an array of
// objects. The caller guarantees that js is valid JSON; it is copied as is,
// so it should already be clean (no empty values inside). null, "", {} and
// [] are skipped.
func (d *Doc) Raw(path string, js []byte) {
	if isEmptyJSON(js) {
		return
	}
	d.raw(path, js)
}

func (d *Doc) raw(path string, js []byte) {
	start := d.begin(path)
	d.buf = append(d.buf, js...)
	d.end(path, start)
}

func isEmptyJSON(js []byte) bool {
	// Trim JSON white space.
	i, j := 0, len(js)
	for i < j && isSpace(js[i]) {
		i++
	}
	for j > i && isSpace(js[j-1]) {
		j--
	}
	s := js[i:j]
	switch len(s) {
	case 0:
		return true
	case 2:
		return string(s) == `""` || string(s) == "{}" || string(s) == "[]"
	case 4:
		return string(s) == "null"
	}
	if s[0] == '{' || s[0] == '[' {
		// "{ }" and the like.
		k := 1
		for k < len(s)-1 && isSpace(s[k]) {
			k++
		}
		return k == len(s)-1
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// comparePaths orders dotted paths segment by segment: a '.' sorts before
// every other byte, so "a.b" < "a-c" as "a" < "a-c".
func comparePaths(a, b string) int {
	i := commonPrefix(a, b)
	if i == len(a) || i == len(b) {
		return len(a) - len(b)
	}
	wa, wb := int(a[i])+1, int(b[i])+1
	if a[i] == '.' {
		wa = 0
	}
	if b[i] == '.' {
		wb = 0
	}
	return wa - wb
}

// commonPrefix returns the length of the longest common prefix of a and b.
// Paths share long ones ("rapid7.tc.ioc.", "threat.indicator."), so it
// compares eight bytes at a time.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i+8 <= n {
		if x := load64(a, i) ^ load64(b, i); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
		i += 8
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// countDots returns the number of '.' in s.
func countDots(s string) int {
	n, i := 0, 0
	for ; i+8 <= len(s); i += 8 {
		n += bits.OnesCount64(zeroBytes(load64(s, i) ^ dot))
	}
	for ; i < len(s); i++ {
		if s[i] == '.' {
			n++
		}
	}
	return n
}

const (
	lo7 = 0x7F7F7F7F7F7F7F7F
	dot = '.' * lsb
)

// zeroBytes returns 0x80 in each byte of x that is zero, and 0 elsewhere.
func zeroBytes(x uint64) uint64 { return ^(((x & lo7) + lo7) | x | lo7) }

func pathKey(path string) (k sortKey) {
	for w := 0; w < 3; w++ {
		base := 8 * w
		if base >= len(path) {
			break
		}
		var x uint64
		if base+8 <= len(path) {
			x = bits.ReverseBytes64(load64(path, base))
			if zeroBytes(x) != 0 {
				k.slow = true
				return k
			}
			x &^= (zeroBytes(x^dot) >> 7) * 0xFF
		} else {
			for i := base; i < base+8; i++ {
				var c byte
				if i < len(path) {
					c = path[i]
					if c == 0 {
						k.slow = true
						return k
					}
					if c == '.' {
						c = 0
					}
				}
				x = x<<8 | uint64(c)
			}
		}
		k.k[w] = x
	}
	return k
}

func (d *Doc) compareKeys(a, b sortKey) int {
	if !a.slow && !b.slow {
		for i := range a.k {
			if a.k[i] != b.k[i] {
				if a.k[i] < b.k[i] {
					return -1
				}
				return 1
			}
		}
	}
	if c := comparePaths(d.fields[a.idx].path, d.fields[b.idx].path); c != 0 {
		return c
	}
	return int(a.idx - b.idx)
}

// isParent reports whether child lies under parent ("a.b" under "a").
func isParent(parent, child string) bool {
	return len(child) > len(parent) && child[len(parent)] == '.' && child[:len(parent)] == parent
}

// SizeHint returns the size of the encoded document when the fields came
// in sorted order, and a lower estimate otherwise.
func (d *Doc) SizeHint() int {
	if d.streaming {
		return len(d.buf) + d.depth + 2
	}
	n := len(d.buf) + 2
	for i := range d.fields {
		n += len(d.fields[i].path) + 8
	}
	return n
}

// AppendJSON appends the document as a JSON object to dst. d can still be
// appended to and encoded again.
func (d *Doc) AppendJSON(dst []byte) []byte {
	if len(d.buf) == 0 {
		return append(dst, '{', '}')
	}
	if d.streaming {
		dst = append(dst, d.buf...)
		for range d.depth {
			dst = append(dst, '}')
		}
		return append(dst, '}')
	}
	return d.appendSorted(dst)
}

// appendSorted sorts the fields and writes them.
func (d *Doc) appendSorted(dst []byte) []byte {
	ks := d.keys[:0]
	for i := range d.fields {
		k := pathKey(d.fields[i].path)
		k.idx = int32(i)
		ks = append(ks, k)
	}
	slices.SortFunc(ks, d.compareKeys)
	d.keys = ks
	dst = append(dst, '{')
	stack := d.stack[:0]
	comma := false
	for i := range ks {
		f := &d.fields[ks[i].idx]
		if i+1 < len(ks) {
			next := d.fields[ks[i+1].idx].path
			if next == f.path || isParent(f.path, next) {
				continue // overridden by a later value or by an object
			}
		}
		plain := isPlain(f.path)
		// Split the path into its parent segments and leaf key, matching the
		// parents against the objects already open.
		rest := f.path
		depth := 0
		for {
			dot := indexDot(rest)
			if dot < 0 {
				break
			}
			seg := rest[:dot]
			rest = rest[dot+1:]
			if depth < len(stack) && stack[depth] == seg {
				depth++
				continue
			}
			for len(stack) > depth {
				dst = append(dst, '}')
				stack = stack[:len(stack)-1]
				comma = true
			}
			if comma {
				dst = append(dst, ',')
			}
			dst = appendKey(dst, seg, plain)
			dst = append(dst, ':', '{')
			stack = append(stack, seg)
			depth++
			comma = false
		}
		for len(stack) > depth {
			dst = append(dst, '}')
			stack = stack[:len(stack)-1]
			comma = true
		}
		if comma {
			dst = append(dst, ',')
		}
		dst = appendKey(dst, rest, plain)
		dst = append(dst, ':')
		dst = append(dst, d.buf[f.start:f.end]...)
		comma = true
	}
	for range stack {
		dst = append(dst, '}')
	}
	d.stack = stack[:0]
	return append(dst, '}')
}

func appendKey(dst []byte, key string, plain bool) []byte {
	if plain {
		dst = append(dst, '"')
		dst = append(dst, key...)
		return append(dst, '"')
	}
	return AppendString(dst, key)
}

func indexDot(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}
