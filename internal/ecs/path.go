package ecs

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"
)

// A Path is a dotted field path compiled once, for the fields a normalizer
// writes in every document: its keys are split and encoded ahead, so that
// a Doc adds a value at a Path (see Doc.At) without looking at its text.
// Create Paths once, in package variables; they are never freed.
type Path struct {
	dotted string
	id     int32 // index in the registry's table, what a Doc's fields record
	depth  int32 // len(segs) - 1, the objects that enclose the value
	// open is the encoded keys that lead to the value, `"a":{"b":{"c":`;
	// open[at[k]:] opens the path when its first k segments are already
	// open objects.
	open string
	at   []int32
	segs []string // the segments, to order paths that differ in one
	// prefix[k] identifies the first k+1 segments among all Paths: two
	// Paths share their first k+1 segments if and only if their prefix[k]
	// are equal.
	prefix  []uint32
	sortKey sortKey // see pathKey
}

// registry numbers the Paths and their prefixes.
var registry struct {
	mu       sync.Mutex
	prefixes map[string]uint32
	sorted   []string // the distinct dotted paths, sorted
	// table is published anew by each NewPath, under mu; readers load it
	// without locking.
	table atomic.Pointer[pathTable]
}

// pathTable is every Path there was at some point.
type pathTable struct {
	paths []*Path // by id
	// ranks orders the Paths by id as comparePaths orders their dotted
	// paths: sorting fields by rank is sorting them by path.
	ranks []int32
}

// NewPath compiles the dotted path s and registers it, for the life of the
// process. The Doc methods given s and the Setter methods of
// At(NewPath(s)) write the same document. It is safe for concurrent use.
func NewPath(s string) *Path {
	p := &Path{dotted: s}
	var open []byte
	for k, start := 0, 0; ; k++ {
		end := len(s)
		if dot := indexDot(s[start:]); dot >= 0 {
			end = start + dot
		}
		p.at = append(p.at, int32(len(open)))
		p.segs = append(p.segs, s[start:end])
		open = AppendString(open, s[start:end])
		open = append(open, ':')
		if end == len(s) {
			break
		}
		open = append(open, '{')
		start = end + 1
	}
	p.open = string(open)
	p.depth = int32(len(p.segs) - 1)
	p.sortKey = pathKey(s)

	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.prefixes == nil {
		registry.prefixes = make(map[string]uint32)
	}
	end := 0
	for _, seg := range p.segs {
		end += len(seg)
		id, ok := registry.prefixes[s[:end]]
		if !ok {
			id = uint32(len(registry.prefixes))
			registry.prefixes[s[:end]] = id
		}
		p.prefix = append(p.prefix, id)
		end++ // the dot
	}
	old := registry.table.Load()
	if old == nil {
		old = new(pathTable)
	}
	p.id = int32(len(old.paths))
	// Readers never look past the length they loaded, so appending in
	// place is safe.
	t := &pathTable{paths: append(old.paths, p)}
	rank, found := slices.BinarySearchFunc(registry.sorted, s, comparePaths)
	if !found {
		registry.sorted = slices.Insert(registry.sorted, rank, s)
	}
	t.ranks = make([]int32, len(t.paths))
	for id, r := range old.ranks {
		if !found && int(r) >= rank {
			r++
		}
		t.ranks[id] = r
	}
	t.ranks[p.id] = int32(rank)
	registry.table.Store(t)
	return p
}

// String returns the dotted path.
func (p *Path) String() string { return p.dotted }

// compiledPath returns the Path numbered id.
func (d *Doc) compiledPath(id int32) *Path {
	if int(id) >= len(d.reg) {
		t := registry.table.Load()
		d.reg, d.ranks = t.paths, t.ranks
	}
	return d.reg[id]
}

// samePath reports whether p and q have the same dotted path.
func samePath(p, q *Path) bool {
	return len(p.prefix) == len(q.prefix) && p.prefix[len(p.prefix)-1] == q.prefix[len(q.prefix)-1]
}

// shared returns how many leading segments p and q have in common.
func (p *Path) shared(q *Path) int {
	n := min(len(p.prefix), len(q.prefix))
	k := 0
	for k < n && p.prefix[k] == q.prefix[k] {
		k++
	}
	return k
}

// A Setter sets the value of one field of a Doc; see Doc.At. Its methods
// are those of Doc without the path.
type Setter struct {
	d *Doc
	p *Path
}

// At returns the Setter of the field at p. Adding fields by Path is faster
// than by dotted string, above all in sorted order.
func (d *Doc) At(p *Path) Setter { return Setter{d, p} }

// Str is Doc.Str at the Setter's path.
func (s Setter) Str(v string) {
	if v != "" {
		s.d.str(key{p: s.p}, v)
	}
}

// Strs is Doc.Strs at the Setter's path.
func (s Setter) Strs(list []string) { s.d.strs(key{p: s.p}, list) }

// Int is Doc.Int at the Setter's path.
func (s Setter) Int(v int64) { s.d.int(key{p: s.p}, v) }

// Float is Doc.Float at the Setter's path.
func (s Setter) Float(v float64) { s.d.float(key{p: s.p}, v, 64) }

// Float32 is Doc.Float32 at the Setter's path.
func (s Setter) Float32(v float32) { s.d.float(key{p: s.p}, float64(v), 32) }

// Num is Doc.Num at the Setter's path.
func (s Setter) Num(v string) bool { return s.d.num(key{p: s.p}, v) }

// Bool is Doc.Bool at the Setter's path.
func (s Setter) Bool(v bool) { s.d.bool(key{p: s.p}, v) }

// Time is Doc.Time at the Setter's path.
func (s Setter) Time(t time.Time) { s.d.time(key{p: s.p}, t, millis, "") }

// TimeLayout is Doc.TimeLayout at the Setter's path.
func (s Setter) TimeLayout(t time.Time, layout string) {
	s.d.time(key{p: s.p}, t, formatOf(layout), layout)
}

// Raw is Doc.Raw at the Setter's path.
func (s Setter) Raw(js []byte) {
	if !isEmptyJSON(js) {
		s.d.raw(key{p: s.p}, js)
	}
}

// Value is Doc.Value at the Setter's path.
func (s Setter) Value(v *fastjson.Value) bool { return s.d.value(key{p: s.p}, v) }
