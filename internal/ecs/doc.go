// Package ecs builds Elastic Common Schema documents and holds the pure,
// I/O-free canonicalization shared by the vendor normalizers: URL parts as
// Elasticsearch's uri_parts processor gives them, hash fields by length,
// confidence buckets, IOC expiry durations, ISO 8601 dates and the number
// formats Elasticsearch writes.
package ecs

import (
	"encoding/binary"
	"math"
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
// Fields are named by dotted strings or by compiled Paths (see At), which
// are faster; the two can be mixed.
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
	depth     int // objects open in buf while streaming
	keys      []sortKey
	order     []uint64 // (rank, index) pairs, see appendSorted
	paths     []byte   // arena for paths made by Join
	strPaths  []string // the dotted paths of fields, see field.path
	reg       []*Path  // the Paths by id, loaded from the registry as needed
	ranks     []int32  // their ranks, loaded with reg

	// last is the id of the Path of the last field while streaming, or
	// noField at the start and dottedField after a dotted path.
	last int32
	// trans caches, by Path id, the braces and keys written before the
	// last field added at that Path and the Path before it: documents of
	// one kind repeat the same transitions, which are then copied rather
	// than worked out.
	trans []transition
	dates dateCache // see putTime
}

const (
	noField     = -1
	dottedField = -2
)

// transition is a cached streaming step from the Path numbered prev to
// another: step[:n] is what it writes. Longer steps are not cached.
type transition struct {
	prev int32
	n    int32
	step [48]byte
}

// field is a field added to a Doc. It holds no pointers, so that recording
// it costs no write barrier and the GC need not scan d.fields.
type field struct {
	path       int32 // the id of a Path, or ^i for the dotted d.strPaths[i]
	start, end int32 // range of the encoded value in buf
}

// key names a field: a compiled Path, or the dotted s when p is nil.
type key struct {
	p *Path
	s string
}

func (k key) dotted() string {
	if k.p != nil {
		return k.p.dotted
	}
	return k.s
}

// sortKey orders a field when the fields must be sorted: k packs the first
// 24 bytes of its path (big endian, '.' mapped to 0, zero padded), so that
// most comparisons need not look at the path. It holds no pointers, so
// sorting it is cheap.
type sortKey struct {
	k    [3]uint64
	idx  int32 // index in fields, also the insertion order
	rank int32 // the rank of the field's Path (see pathTable), or -1
	slow bool  // the path has a NUL byte in the packed part
}

// Reset empties d, keeping its memory.
func (d *Doc) Reset() {
	d.fields = d.fields[:0]
	d.buf = d.buf[:0]
	d.buf = append(d.buf, '{')
	d.streaming = true
	d.last = noField
	d.depth = 0
	d.paths = d.paths[:0]
	d.strPaths = d.strPaths[:0]
}

// pathOf returns the dotted path of f.
func (d *Doc) pathOf(f *field) string {
	if f.path >= 0 {
		return d.compiledPath(f.path).dotted
	}
	return d.strPaths[^f.path]
}

// keyOf returns the key of f.
func (d *Doc) keyOf(f *field) key {
	if f.path >= 0 {
		return key{p: d.compiledPath(f.path)}
	}
	return key{s: d.strPaths[^f.path]}
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

// begin starts the value of a new field at k: while streaming, it writes
// the braces and keys that lead to it, or stops streaming if k does not
// sort after the previous field. It returns where the value starts in buf.
func (d *Doc) begin(k key) int {
	if p := k.p; p != nil && d.streaming && int(p.id) < len(d.trans) {
		if t := &d.trans[p.id]; t.prev == d.last && t.n > 0 {
			d.addArray(&t.step, int(t.n))
			d.depth = int(p.depth)
			return len(d.buf)
		}
	}
	if len(d.buf) == 0 {
		d.Reset() // a zero Doc
	}
	if !d.streaming {
		return len(d.buf)
	}
	n := len(d.fields)
	if n == 0 {
		return d.step(key{}, false, k)
	}
	prev := d.keyOf(&d.fields[n-1])
	var after bool // k sorts after prev and neither lies under the other
	if k.p != nil && prev.p != nil {
		p, q := k.p, prev.p
		shared := p.shared(q)
		after = shared < len(p.segs) && shared < len(q.segs) && p.segs[shared] > q.segs[shared]
	} else {
		path, last := k.dotted(), prev.dotted()
		i := commonPrefix(path, last)
		switch {
		case i == len(path): // path == last, or path is a prefix of last
		case i == len(last):
			after = path[i] != '.' // last is a value and path not under it
		default:
			after = last[i] == '.' || path[i] != '.' && path[i] > last[i]
		}
	}
	if !after {
		d.streaming = false
		return len(d.buf)
	}
	return d.step(prev, true, k)
}

// step writes the braces and keys from the field at prev, if any, to the
// field at k, and caches them when it can.
func (d *Doc) step(prev key, hasPrev bool, k key) int {
	start := len(d.buf)
	d.buf, d.depth = appendKeys(d.buf, d.depth, prev, hasPrev, k)
	if k.p != nil && d.last != dottedField {
		d.cacheTransition(k.p, d.buf[start:])
	}
	return len(d.buf)
}

// appendKeys appends to dst, in which depth objects are open after the
// field at prev, if any, the braces and keys that lead to the field at k,
// which sorts after prev, and returns dst and the objects then open.
func appendKeys(dst []byte, depth int, prev key, hasPrev bool, k key) ([]byte, int) {
	shared := 0 // parent segments k shares with prev
	rest := k.dotted()
	if hasPrev {
		if k.p != nil && prev.p != nil {
			shared = k.p.shared(prev.p)
		} else {
			// The shared segments end at the last '.' of the common prefix.
			path := rest
			if j := lastDot(path[:commonPrefix(path, prev.dotted())]); j >= 0 {
				shared = countDots(path[:j+1])
				rest = path[j+1:]
			}
		}
	}
	for depth > shared {
		n := min(depth-shared, len(closers))
		dst = append(dst, closers[:n]...)
		depth -= n
	}
	if hasPrev {
		dst = append(dst, ',')
	}
	if k.p != nil {
		return append(dst, k.p.open[k.p.at[shared]:]...), int(k.p.depth)
	}
	plain := isPlain(rest)
	for {
		dot := indexDot(rest)
		if dot < 0 {
			break
		}
		dst = appendKey(dst, rest[:dot], plain)
		dst = append(dst, ':', '{')
		depth++
		rest = rest[dot+1:]
	}
	dst = appendKey(dst, rest, plain)
	return append(dst, ':'), depth
}

// cacheTransition records that step was written before p, after d.last.
func (d *Doc) cacheTransition(p *Path, step []byte) {
	if int(p.id) >= len(d.trans) {
		d.trans = append(d.trans, make([]transition, int(p.id)+1-len(d.trans))...)
	}
	t := &d.trans[p.id]
	if len(step) > len(t.step) {
		t.n = 0
		return
	}
	t.prev, t.n = d.last, int32(copy(t.step[:], step))
}

// The writes to d.buf below avoid storing its pointer unless it grows:
// while the GC marks, every pointer stored to the heap costs a write
// barrier, and d.buf = append(d.buf, s...) or d.buf = f(d.buf) store it.
// d.buf = d.buf[:n] stores only the length.

// add appends s to d.buf.
func (d *Doc) add(s string) {
	n := len(d.buf)
	if cap(d.buf)-n < len(s) {
		d.buf = grow(d.buf, len(s))
	}
	d.buf = d.buf[:n+len(s)]
	copy(d.buf[n:], s)
}

// addArray appends a[:n] to d.buf. It copies all of a with six word
// moves rather than call memmove, whose branches on the varying lengths of
// short copies mispredict.
func (d *Doc) addArray(a *[48]byte, n int) {
	w := len(d.buf)
	if cap(d.buf)-w < len(a) {
		d.buf = grow(d.buf, len(a))
	}
	dst := d.buf[w : w+len(a)]
	le := binary.LittleEndian
	x0, x1, x2 := le.Uint64(a[0:]), le.Uint64(a[8:]), le.Uint64(a[16:])
	x3, x4, x5 := le.Uint64(a[24:]), le.Uint64(a[32:]), le.Uint64(a[40:])
	le.PutUint64(dst[0:], x0)
	le.PutUint64(dst[8:], x1)
	le.PutUint64(dst[16:], x2)
	le.PutUint64(dst[24:], x3)
	le.PutUint64(dst[32:], x4)
	le.PutUint64(dst[40:], x5)
	d.buf = d.buf[:w+n]
}

// addString appends s to d.buf as a JSON string (see AppendString).
func (d *Doc) addString(s string) {
	n := len(d.buf)
	if room := escapeRoom(s); cap(d.buf)-n < room {
		d.buf = grow(d.buf, room)
	}
	buf := d.buf[n:cap(d.buf)]
	if len(s) <= 16 { // most values
		if w, ok := copyPlain16(buf[1:], s); ok {
			buf[0], buf[w+1] = '"', '"'
			d.buf = d.buf[:n+w+2]
			return
		}
	}
	w, i := escapeTo(buf[1:], s)
	if i < len(s) {
		d.buf = AppendString(d.buf, s) // many escapes: start again with room
		return
	}
	d.buf = d.buf[:n+w+2]
	d.buf[n] = '"'
	d.buf[n+w+1] = '"'
}

// closers closes objects, a slice at a time.
const closers = "}}}}}}}}}}}}}}}}"

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
	streaming bool
}

func (d *Doc) save() docState {
	return docState{len(d.buf), d.depth, d.streaming}
}

func (d *Doc) restore(s docState) {
	d.buf = d.buf[:s.buf]
	d.depth, d.streaming = s.depth, s.streaming
}

// end records the field at k whose value is buf[start:].
func (d *Doc) end(k key, start int) {
	id := int32(0)
	if k.p != nil {
		id = k.p.id
		d.last = id
	} else {
		id = ^int32(len(d.strPaths))
		d.strPaths = append(d.strPaths, k.s)
		d.last = dottedField
	}
	d.fields = append(d.fields, field{path: id, start: int32(start), end: int32(len(d.buf))})
}

// Str sets path to the string s. An empty s is skipped.
func (d *Doc) Str(path, s string) {
	if s != "" {
		d.str(key{s: path}, s)
	}
}

func (d *Doc) str(k key, s string) {
	start := d.begin(k)
	d.addString(s)
	d.end(k, start)
}

// Strs sets path to a list of strings. Empty strings are left out, and a
// list with nothing left is skipped.
func (d *Doc) Strs(path string, list []string) { d.strs(key{s: path}, list) }

func (d *Doc) strs(k key, list []string) {
	n := 0
	for _, s := range list {
		if s != "" {
			n++
		}
	}
	if n == 0 {
		return
	}
	start := d.begin(k)
	d.buf = append(d.buf, '[')
	n = 0
	for _, s := range list {
		if s == "" {
			continue
		}
		if n > 0 {
			d.buf = append(d.buf, ',')
		}
		d.addString(s)
		n++
	}
	d.buf = append(d.buf, ']')
	d.end(k, start)
}

// Int sets path to the integer v.
func (d *Doc) Int(path string, v int64) { d.int(key{s: path}, v) }

func (d *Doc) int(k key, v int64) {
	start := d.begin(k)
	d.addAppended(strconv.AppendInt(d.spare(24), v, 10))
	d.end(k, start)
}

// Float sets path to the double v, formatted as Elasticsearch writes a
// double (16 → 16.0). NaN and infinities are skipped.
func (d *Doc) Float(path string, v float64) { d.float(key{s: path}, v, 64) }

// Float32 sets path to the float v, formatted as Elasticsearch writes a
// float (16.451612903225808 → 16.451612). NaN and infinities are skipped.
func (d *Doc) Float32(path string, v float32) { d.float(key{s: path}, float64(v), 32) }

func (d *Doc) float(k key, v float64, bits int) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	start := d.begin(k)
	b, _ := appendJavaFloat(d.spare(32), v, bits)
	d.addAppended(b)
	d.end(k, start)
}

// Num sets path to the JSON number text s, as Elasticsearch writes back a
// number it parsed (see AppendNumber). It reports false, adding nothing, when
// s is not a valid JSON number.
func (d *Doc) Num(path, s string) bool { return d.num(key{s: path}, s) }

func (d *Doc) num(k key, s string) bool {
	var tmp [64]byte
	b, ok := AppendNumber(tmp[:0], s)
	if ok {
		d.raw(k, b)
	}
	return ok
}

// Bool sets path to v.
func (d *Doc) Bool(path string, v bool) { d.bool(key{s: path}, v) }

func (d *Doc) bool(k key, v bool) {
	start := d.begin(k)
	if v {
		d.add("true")
	} else {
		d.add("false")
	}
	d.end(k, start)
}

// Time sets path to t in UTC as TimeLayout (milliseconds). A zero t is
// skipped.
func (d *Doc) Time(path string, t time.Time) { d.time(key{s: path}, t, millis, "") }

// TimeLayout sets path to t in UTC formatted with layout. A zero t is
// skipped.
func (d *Doc) TimeLayout(path string, t time.Time, layout string) {
	d.time(key{s: path}, t, formatOf(layout), layout)
}

// timeFormat selects the layout of a time: millis (TimeLayout), seconds
// (TimeLayoutSeconds) or another, given as a string.
type timeFormat int

const (
	millis timeFormat = iota
	seconds
	otherLayout
)

func formatOf(layout string) timeFormat {
	switch layout {
	case TimeLayout:
		return millis
	case TimeLayoutSeconds:
		return seconds
	}
	return otherLayout
}

func (d *Doc) time(k key, t time.Time, f timeFormat, layout string) {
	if t.IsZero() {
		return
	}
	start := d.begin(k)
	b := d.spare(len(TimeLayout) + 2)[:len(TimeLayout)+2]
	if n := putTime((*[len(TimeLayout)]byte)(b[1:]), t, f, &d.dates); n > 0 {
		b[0], b[n+1] = '"', '"'
		d.buf = d.buf[:len(d.buf)+n+2]
	} else {
		b = t.UTC().AppendFormat(append(b[:0], '"'), layoutOf(f, layout))
		d.addAppended(append(b, '"'))
	}
	d.end(k, start)
}

// layoutOf returns the layout of format f; layout is the one given with
// otherLayout.
func layoutOf(f timeFormat, layout string) string {
	switch f {
	case millis:
		return TimeLayout
	case seconds:
		return TimeLayoutSeconds
	}
	return layout
}

// A DateCache remembers the dates AppendTimeValue wrote last, as a Doc
// does: a document's dates, and those of the documents that follow, are
// often the same few. The zero value is ready to use.
type DateCache struct{ dates dateCache }

// AppendTimeValue appends t as Doc.Time writes its value: a JSON string of
// t in UTC as TimeLayout (a year that does not have four digits as
// time.Time.Format writes it: "-0001", "10000"). Unlike Doc.Time, it
// writes a zero t too. dates may be nil.
func AppendTimeValue(dst []byte, t time.Time, dates *DateCache) []byte {
	var cache *dateCache
	if dates != nil {
		cache = &dates.dates
	}
	var b [len(TimeLayout)]byte
	dst = append(dst, '"')
	if n := putTime(&b, t, millis, cache); n > 0 {
		dst = append(dst, b[:n]...)
	} else {
		dst = t.UTC().AppendFormat(dst, TimeLayout)
	}
	return append(dst, '"')
}

// AppendTime appends t in UTC formatted with layout, quickly for
// TimeLayout and TimeLayoutSeconds.
func AppendTime(dst []byte, t time.Time, layout string) []byte {
	var b [len(TimeLayout)]byte
	if n := putTime(&b, t, formatOf(layout), nil); n > 0 {
		return append(dst, b[:n]...)
	}
	return t.UTC().AppendFormat(dst, layout)
}

// putTime writes t in UTC formatted as f to b and returns its length, or 0
// for otherLayout or a year that does not have four digits.
//
// dates, if not nil, caches the dates it wrote: a document's dates, and
// those of the documents that follow, are often the same few.
func putTime(b *[len(TimeLayout)]byte, t time.Time, f timeFormat, dates *dateCache) int {
	sec := t.Unix()
	if f == otherLayout || sec < minUnix || sec > maxUnix {
		return 0
	}
	days := (sec - minUnix) / secondsPerDay // sec >= minUnix: no negative division
	clock := uint((sec - minUnix) % secondsPerDay)
	var e *cachedDate
	if dates != nil {
		e = &dates[uint64(days)%uint64(len(dates))]
	}
	if e != nil && e.days == int32(days)+1 {
		*(*[10]byte)(b[:10]) = e.ymd
	} else {
		year, month, day := civil(days + minUnix/secondsPerDay)
		// Constant offsets in an array: no bounds checks.
		put2(b, 0, uint(year)/100)
		put2(b, 2, uint(year)%100)
		b[4] = '-'
		put2(b, 5, uint(month))
		b[7] = '-'
		put2(b, 8, uint(day))
		if e != nil {
			e.days, e.ymd = int32(days)+1, [10]byte(b[:10])
		}
	}
	b[10] = 'T'
	put2(b, 11, clock/3600)
	b[13] = ':'
	put2(b, 14, clock/60%60)
	b[16] = ':'
	put2(b, 17, clock%60)
	if f == seconds {
		b[19] = 'Z'
		return len(TimeLayoutSeconds)
	}
	ms := uint(t.Nanosecond()) / 1e6
	b[19] = '.'
	b[20] = byte('0' + ms/100)
	put2(b, 21, ms%100)
	b[23] = 'Z'
	return len(TimeLayout)
}

// put2 writes v < 100 as two digits at b[i:].
func put2(b *[len(TimeLayout)]byte, i int, v uint) {
	b[i], b[i+1] = byte('0'+v/10), byte('0'+v%10)
}

// dateCache holds dates putTime wrote, by day.
type dateCache [8]cachedDate

type cachedDate struct {
	days int32 // days since minUnix + 1; 0 for none
	ymd  [10]byte
}

const (
	secondsPerDay = 86400
	// minUnix and maxUnix are the Unix times of 0000-01-01T00:00:00Z and
	// 9999-12-31T23:59:59Z, the four-digit years.
	minUnix = -62167219200
	maxUnix = 253402300799
)

// civil returns the proleptic Gregorian date of the given days since
// 1970-01-01 (Howard Hinnant's civil_from_days), for years 0 to 9999.
func civil(days int64) (year, month, day int) {
	z := days + 719468           // days since 0000-03-01
	era := (z+146097)/146097 - 1 // floor division: z >= -60 from year 0 on
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if month > 12 {
		month -= 12
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day
}

// daysSinceEpoch returns the days since 1970-01-01 of the proleptic
// Gregorian date (Howard Hinnant's days_from_civil), for years 0 to 9999.
func daysSinceEpoch(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y-- // the year starts in March, so that leap days come last
	}
	era := (y+400)/400 - 1 // floor division: y >= -1
	yoe := y - era*400
	m := int64(month)
	if m > 2 {
		m -= 3
	} else {
		m += 9
	}
	doy := (153*m+2)/5 + int64(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// Raw sets path to the encoded JSON value js, for example an array of
// objects. The caller guarantees that js is valid JSON; it is copied as is,
// so it should already be clean (no empty values inside). null, "", {} and
// [] are skipped.
func (d *Doc) Raw(path string, js []byte) {
	if !isEmptyJSON(js) {
		d.raw(key{s: path}, js)
	}
}

// spare returns the spare capacity of d.buf, at least n bytes, as an empty
// slice: values appended to it are written in place, and the bytes need
// not be copied, nor loaded back as words right after they were stored a
// byte at a time, which stalls.
func (d *Doc) spare(n int) []byte {
	if cap(d.buf)-len(d.buf) < n {
		d.buf = grow(d.buf, n)
	}
	return d.buf[len(d.buf):len(d.buf)]
}

// addAppended adds b, appended to what spare returned, to d.buf.
func (d *Doc) addAppended(b []byte) {
	if n := len(d.buf); cap(b) == cap(d.buf)-n {
		d.buf = d.buf[:n+len(b)] // in place
	} else {
		d.add(b2s(b)) // b outgrew the spare room
	}
}

func (d *Doc) raw(k key, js []byte) {
	start := d.begin(k)
	d.add(b2s(js))
	d.end(k, start)
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
	if a.rank >= 0 && b.rank >= 0 {
		if a.rank != b.rank {
			return int(a.rank - b.rank)
		}
		return int(a.idx - b.idx)
	}
	// A Path against a dotted path: compare their paths.
	if a.rank >= 0 {
		a = d.packedKey(a)
	}
	if b.rank >= 0 {
		b = d.packedKey(b)
	}
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
	if c := comparePaths(d.pathOf(&d.fields[a.idx]), d.pathOf(&d.fields[b.idx])); c != 0 {
		return c
	}
	return int(a.idx - b.idx)
}

// packedKey returns k, the key of a field at a Path, with its path packed.
func (d *Doc) packedKey(k sortKey) sortKey {
	pk := d.compiledPath(d.fields[k.idx].path).sortKey
	pk.idx = k.idx
	return pk
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
		n += len(d.pathOf(&d.fields[i])) + 8
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

// Encode returns the document as a JSON object in a new slice with room for
// extra more bytes, allocated once. It costs less than AppendJSON to a new
// slice: the document's bytes are not zeroed before they are copied.
func (d *Doc) Encode(extra int) []byte {
	if len(d.buf) == 0 || !d.streaming {
		return d.AppendJSON(make([]byte, 0, d.SizeHint()+extra))
	}
	src := d.buf
	n := len(src) + d.depth + 1
	// The compiler turns make-then-copy from a variable into one
	// allocation that zeroes only what copy leaves.
	out := make([]byte, n+extra)
	copy(out, src)
	for i := len(src); i < n; i++ {
		out[i] = '}'
	}
	return out[:n]
}

// allPaths reports whether every field is at a Path, and loads d.ranks
// for all of them.
func (d *Doc) allPaths() bool {
	all := true
	for i := range d.fields {
		if f := &d.fields[i]; f.path >= 0 {
			d.compiledPath(f.path)
		} else {
			all = false
		}
	}
	return all
}

// smallDoc is the most fields appendSorted sorts by insertion.
const smallDoc = 8

// appendSorted sorts the fields and writes them.
func (d *Doc) appendSorted(dst []byte) []byte {
	ks := d.keys[:0]
	if d.allPaths() {
		// Sort (rank, index) pairs as integers: no comparison function.
		order := d.order[:0]
		for i := range d.fields {
			order = append(order, uint64(d.ranks[d.fields[i].path])<<32|uint64(i))
		}
		slices.Sort(order)
		for _, o := range order {
			ks = append(ks, sortKey{idx: int32(uint32(o))})
		}
		d.order = order
	} else if len(d.fields) <= smallDoc {
		// An insertion sort on the paths themselves: packing keys costs
		// more than it saves for a few fields, such as an array element's.
		for i := range d.fields {
			k := sortKey{idx: int32(i)}
			path := d.pathOf(&d.fields[i])
			j := len(ks)
			for j > 0 && comparePaths(d.pathOf(&d.fields[ks[j-1].idx]), path) > 0 {
				j--
			}
			ks = slices.Insert(ks, j, k)
		}
	} else {
		for i := range d.fields {
			var k sortKey
			if f := &d.fields[i]; f.path >= 0 {
				k.rank = d.ranks[f.path]
			} else {
				k = pathKey(d.strPaths[^f.path])
				k.rank = -1
			}
			k.idx = int32(i)
			ks = append(ks, k)
		}
		slices.SortFunc(ks, d.compareKeys)
	}
	d.keys = ks
	dst = append(dst, '{')
	depth := 0
	var prev key
	hasPrev := false
	for i := range ks {
		f := &d.fields[ks[i].idx]
		k := d.keyOf(f)
		if i+1 < len(ks) && overridden(k, d.keyOf(&d.fields[ks[i+1].idx])) {
			continue
		}
		dst, depth = appendKeys(dst, depth, prev, hasPrev, k)
		dst = append(dst, d.buf[f.start:f.end]...)
		prev, hasPrev = k, true
	}
	for ; depth > 0; depth-- {
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// overridden reports whether the field at k, followed in sorted order by
// the field at next, is overridden: by a later value at the same path or
// by an object.
func overridden(k, next key) bool {
	if k.p != nil && next.p != nil {
		return samePath(k.p, next.p) || len(next.p.segs) > len(k.p.segs) && next.p.shared(k.p) == len(k.p.segs)
	}
	path, next2 := k.dotted(), next.dotted()
	return next2 == path || isParent(path, next2)
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
