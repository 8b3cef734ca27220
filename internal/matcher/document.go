package matcher

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
)

// Fields read from a document, by their dotted ECS path. Objects may be
// nested ({"threat":{"indicator":{"ip":…}}}) or use dotted keys
// ({"threat.indicator.ip":…}), as Elasticsearch accepts both; a field may
// hold one string or an array of strings.
const (
	fieldType      = "threat.indicator.type"
	fieldName      = "threat.indicator.name"
	fieldIP        = "threat.indicator.ip"
	fieldHash      = "threat.indicator.file.hash" // every sub-field
	fieldURLFull   = "threat.indicator.url.full"
	fieldURLOrig   = "threat.indicator.url.original"
	fieldDomain    = "threat.indicator.url.domain"
	fieldEmail     = "threat.indicator.email.address"
	fieldRegistry  = "threat.indicator.registry.path"
	fieldVulnID    = "vulnerability.id"
	numDocFields   = 10
	hashFieldIndex = 3
)

var docFields = [numDocFields]string{fieldType, fieldName, fieldIP, fieldHash, fieldURLFull, fieldURLOrig, fieldDomain, fieldEmail, fieldRegistry, fieldVulnID}

// extracted is one value found in a document; typ and val view the
// extractor's buffers.
type extracted struct {
	typ string
	val []byte
}

// extractor pulls the indicator values out of ECS documents. It keeps its
// parser and buffers between documents, so it is not safe for concurrent
// use.
type extractor struct {
	p      fastjson.Parser
	skim   []byte // the relevant members of the source
	full   bool   // parse whole sources (tests compare both ways)
	path   []byte
	fields [numDocFields][]*fastjson.Value
	out    []extracted
	norm   []byte // normal forms of out, for de-duplication
	normAt []int  // end of each out's normal form in norm
}

// FromDocument returns the atomic values of a live indicator document
// (View vigil.ViewIndicators) or vulnerability document (View
// vigil.ViewVulnerabilities), with Ref zero for the caller to set and
// ExpiresAt the document's. Values equal in normal form are returned once.
//
// An indicator document gives, whatever its threat.indicator.type, as
// Elastic's indicator match rules read them: every address or range in
// threat.indicator.ip, every threat.indicator.file.hash.* (md5, sha1, …,
// ssdeep, tlsh), threat.indicator.url.full and url.original, and
// threat.indicator.email.address and registry.path. A domain-name document
// also gives threat.indicator.url.domain (a URL document's url.domain is the
// URL's host, not an indicator). When a document of a supported type has no
// value in its type's own field, its threat.indicator.name (the Key) stands
// in. A vulnerability document gives vulnerability.id, or its Key.
//
// Only the top-level members that can hold these fields (threat,
// vulnerability and dotted keys under them) are parsed; the rest of the
// source is skipped over without being validated.
//
// The error wraps ErrNotIndicator, ErrUnsupportedType or ErrNoValue.
// FromDocument allocates a parser per call; Builder.AddDocument reuses one.
func FromDocument(d vigil.Document) ([]Indicator, error) {
	var e extractor
	if err := e.extract(&d); err != nil {
		return nil, err
	}
	inds := make([]Indicator, len(e.out))
	for i, x := range e.out {
		inds[i] = Indicator{Type: x.typ, Value: string(x.val), ExpiresAt: d.ExpiresAt}
	}
	return inds, nil
}

// AddDocument indexes the values of d (see FromDocument) under ref and
// returns how many it indexed. A value that Add refuses is skipped; the
// error then reports the first such value.
func (b *Builder) AddDocument(ref uint32, d vigil.Document) (int, error) {
	if err := b.extractor().extract(&d); err != nil {
		b.rejected++
		return 0, err
	}
	return b.addExtracted(ref, d.ExpiresAt)
}

func (b *Builder) extractor() *extractor {
	if b.ex == nil {
		b.ex = new(extractor)
	}
	return b.ex
}

func (b *Builder) addExtracted(ref uint32, expiresAt time.Time) (int, error) {
	exp := expiryNanos(expiresAt)
	n := 0
	var first error
	for _, x := range b.ex.out {
		if err := b.add(x.typ, b2s(x.val), ref, exp); err != nil {
			b.rejected++
			if first == nil {
				first = err
			}
			continue
		}
		n++
	}
	return n, first
}

// LoadStats counts what Builder.Load read.
type LoadStats struct {
	Documents  int // live documents read
	Indexed    int // documents that gave at least one value
	Indicators int // values indexed
	Skipped    int // documents without a value the index holds
	Invalid    int // values refused, such as unparsable addresses
}

// Load indexes every live document of the indicator and vulnerability
// views of s. It calls ref once for each document that has a value to
// index, in the order s reads them and on the goroutine s calls back on,
// and indexes the values under the Ref it returns, so the caller can map
// Refs back to (View, Dataset, Key). The Document passed to ref is valid
// only during the call: its Source is a reused buffer. Documents without a
// value are counted as Skipped and get no Ref. An error from s or ref stops
// the load.
//
// JSON extraction runs on a second goroutine while the store is read and
// the index filled, so a load uses two cores.
func (b *Builder) Load(ctx context.Context, s vigil.Store, ref func(vigil.Document) (uint32, error)) (LoadStats, error) {
	var st LoadStats
	ex := b.extractor()
	work := make(chan *loadBatch, loadDepth)
	done := make(chan *loadBatch, loadDepth)
	go func() {
		defer close(done)
		for lb := range work {
			lb.extract(ex)
			done <- lb
		}
	}()
	free := make([]*loadBatch, 0, loadDepth+1)
	for range loadDepth + 1 {
		free = append(free, new(loadBatch))
	}
	inflight := 0
	// insert waits for the oldest batch in flight and indexes it.
	insert := func() error {
		lb := <-done
		inflight--
		err := lb.insert(b, ref, &st)
		lb.reset()
		free = append(free, lb)
		return err
	}
	cur := free[len(free)-1]
	free = free[:len(free)-1]
	send := func() error {
		work <- cur
		inflight++
		if len(free) == 0 {
			if err := insert(); err != nil {
				return err
			}
		}
		cur = free[len(free)-1]
		free = free[:len(free)-1]
		return nil
	}
	err := func() error {
		for _, view := range [...]vigil.View{vigil.ViewIndicators, vigil.ViewVulnerabilities} {
			// add copies the source.
			err := s.Live(ctx, vigil.LiveFilter{View: view, Transient: true}, func(d vigil.Document) error {
				st.Documents++
				if cur.add(d) {
					return send()
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("matcher: load %s view: %w", view, err)
			}
		}
		if len(cur.docs) > 0 {
			if err := send(); err != nil {
				return err
			}
		}
		for inflight > 0 {
			if err := insert(); err != nil {
				return err
			}
		}
		return nil
	}()
	close(work)
	for range done { // let the worker finish
	}
	return st, err
}

// Load pipeline sizes: batches in flight, documents and source bytes per
// batch.
const (
	loadDepth     = 2
	loadBatchDocs = 512
	loadBatchSrc  = 1 << 20
)

// loadBatch carries documents to the extraction goroutine and their values
// back.
type loadBatch struct {
	docs []vigil.Document
	src  []byte // the documents' sources, end to end
	ends []int  // end of each source in src
	// Filled by extract:
	vals  []byte     // the values, end to end
	items []loadItem // in document order
	ok    []bool     // whether each document gave values
}

type loadItem struct {
	doc  int
	typ  string
	a, z int // value is vals[a:z]
}

// add appends d, copying its source, and reports whether the batch is full.
func (lb *loadBatch) add(d vigil.Document) bool {
	lb.src = append(lb.src, d.Source...)
	lb.ends = append(lb.ends, len(lb.src))
	d.Source = nil
	lb.docs = append(lb.docs, d)
	return len(lb.docs) >= loadBatchDocs || len(lb.src) >= loadBatchSrc
}

func (lb *loadBatch) source(i int) []byte {
	a := 0
	if i > 0 {
		a = lb.ends[i-1]
	}
	return lb.src[a:lb.ends[i]:lb.ends[i]]
}

func (lb *loadBatch) extract(ex *extractor) {
	for i := range lb.docs {
		lb.docs[i].Source = lb.source(i)
		err := ex.extract(&lb.docs[i])
		lb.ok = append(lb.ok, err == nil)
		if err != nil {
			continue
		}
		for _, x := range ex.out {
			a := len(lb.vals)
			lb.vals = append(lb.vals, x.val...)
			lb.items = append(lb.items, loadItem{doc: i, typ: x.typ, a: a, z: len(lb.vals)})
		}
	}
}

func (lb *loadBatch) insert(b *Builder, ref func(vigil.Document) (uint32, error), st *LoadStats) error {
	items := lb.items
	for i := range lb.docs {
		d := &lb.docs[i]
		if !lb.ok[i] {
			st.Skipped++
			continue
		}
		r, err := ref(*d)
		if err != nil {
			return fmt.Errorf("ref of %s %q: %w", d.Dataset, d.Key, err)
		}
		exp := expiryNanos(d.ExpiresAt)
		n := 0
		for len(items) > 0 && items[0].doc == i {
			it := items[0]
			items = items[1:]
			if err := b.add(it.typ, b2s(lb.vals[it.a:it.z]), r, exp); err != nil {
				b.rejected++
				st.Invalid++
				continue
			}
			n++
		}
		st.Indicators += n
		if n > 0 {
			st.Indexed++
		}
	}
	return nil
}

func (lb *loadBatch) reset() {
	clear(lb.docs) // drop the strings for the GC
	lb.docs, lb.src, lb.ends = lb.docs[:0], lb.src[:0], lb.ends[:0]
	lb.vals, lb.items, lb.ok = lb.vals[:0], lb.items[:0], lb.ok[:0]
}

// extract fills e.out with the values of d.
func (e *extractor) extract(d *vigil.Document) error {
	if !d.Live() || (d.View != vigil.ViewIndicators && d.View != vigil.ViewVulnerabilities) {
		return fmt.Errorf("%w: view %q, key %q", ErrNotIndicator, d.View, d.Key)
	}
	e.out, e.norm, e.normAt = e.out[:0], e.norm[:0], e.normAt[:0]
	for i := range e.fields {
		e.fields[i] = e.fields[i][:0]
	}
	src := d.Source
	if !e.full {
		src = e.relevant(src)
	}
	v, err := e.p.ParseBytes(src)
	if err != nil {
		return fmt.Errorf("%w: %s %q: source: %w", ErrNoValue, d.Dataset, d.Key, err)
	}
	if v.Type() == fastjson.TypeObject {
		e.path = e.path[:0]
		e.walk(v, 0)
	}
	if d.View == vigil.ViewVulnerabilities {
		e.emitField(TypeVulnerability, fieldVulnID)
		if len(e.out) == 0 {
			e.emit(TypeVulnerability, []byte(d.Key))
		}
		return nil
	}
	typ := d.Type
	if typ == "" {
		if vs := e.fields[0]; len(vs) > 0 {
			typ = string(vs[0].GetStringBytes())
		}
	}
	e.emitField(TypeIPv4, fieldIP)
	e.emitField(TypeFile, fieldHash)
	e.emitField(TypeURL, fieldURLFull)
	e.emitField(TypeURL, fieldURLOrig)
	e.emitField(TypeEmail, fieldEmail)
	e.emitField(TypeRegistry, fieldRegistry)
	if typ == TypeDomain {
		e.emitField(TypeDomain, fieldDomain)
	}
	if kindType(typ) != "" && !e.has(kindType(typ)) {
		// The name stands in for a missing typed field; a file's name
		// only when it is a digest.
		name := d.Key
		if vs := e.fields[1]; len(vs) > 0 {
			if s := vs[0].GetStringBytes(); len(s) > 0 {
				name = b2s(s)
			}
		}
		var k [64]byte
		if typ != TypeFile || decodeHex(k[:], trimSpace(name)) {
			e.emit(kindType(typ), []byte(name))
		}
	}
	if len(e.out) > 0 {
		return nil
	}
	if kindType(typ) == "" {
		return fmt.Errorf("%w %q: %s %q", ErrUnsupportedType, typ, d.Dataset, d.Key)
	}
	return fmt.Errorf("%w: %s %q of type %q", ErrNoValue, d.Dataset, d.Key, typ)
}

// relevant returns the members of src that can hold a wanted field
// (threat, vulnerability, and dotted keys under them) as a JSON object, so
// that the parser skips the rest of the document (event.original, vendor
// fields), which is most of it. It returns src itself when src cannot be
// skimmed (not an object, invalid JSON, escaped keys); the parser then
// reports the problem.
func (e *extractor) relevant(src []byte) []byte {
	e.skim = append(e.skim[:0], '{')
	ok := true
	n := 0
	skimmed := skimObject(src, func(k, v []byte) {
		if bytes.IndexByte(k, '\\') >= 0 {
			ok = false
			return
		}
		if !isWantedRoot(k) {
			return
		}
		if n > 0 {
			e.skim = append(e.skim, ',')
		}
		n++
		e.skim = append(e.skim, '"')
		e.skim = append(e.skim, k...)
		e.skim = append(e.skim, '"', ':')
		e.skim = append(e.skim, v...)
	})
	if !skimmed || !ok {
		return src
	}
	return append(e.skim, '}')
}

// isWantedRoot reports whether the top-level key k leads to a wanted field.
func isWantedRoot(k []byte) bool {
	for _, root := range [...]string{"threat", "vulnerability"} {
		if len(k) >= len(root) && string(k[:len(root)]) == root && (len(k) == len(root) || k[len(root)] == '.') {
			return true
		}
	}
	return false
}

// kindType returns the Type under which values of indicator type typ are
// extracted (both IP types give TypeIPv4), or "" if typ is not indexed.
func kindType(typ string) string {
	switch typ {
	case TypeIPv4, TypeIPv6:
		return TypeIPv4
	case TypeDomain, TypeURL, TypeFile, TypeEmail, TypeRegistry:
		return typ
	}
	return ""
}

func (e *extractor) has(typ string) bool {
	for _, x := range e.out {
		if x.typ == typ {
			return true
		}
	}
	return false
}

// classify returns the index in docFields of the field at dotted path p,
// or -1, and whether the walk must descend into p when it is an object.
func classify(p string) (field int, descend bool) {
	switch p {
	case "threat", "threat.indicator", "threat.indicator.url", "threat.indicator.file",
		"threat.indicator.email", "threat.indicator.registry", "vulnerability":
		return -1, true
	case fieldType:
		return 0, false
	case fieldName:
		return 1, false
	case fieldIP:
		return 2, false
	case fieldHash:
		return hashFieldIndex, true
	case fieldURLFull:
		return 4, false
	case fieldURLOrig:
		return 5, false
	case fieldDomain:
		return 6, false
	case fieldEmail:
		return 7, false
	case fieldRegistry:
		return 8, false
	case fieldVulnID:
		return 9, false
	}
	if len(p) > len(fieldHash) && p[len(fieldHash)] == '.' && strings.HasPrefix(p, fieldHash) {
		return hashFieldIndex, true // file.hash.<algorithm>
	}
	// A dotted key covering several levels ("threat.indicator.url") is a
	// prefix of a wanted path without being one of the cases above.
	if strings.IndexByte(p, '.') >= 0 {
		for _, f := range docFields {
			if len(f) > len(p) && f[len(p)] == '.' && strings.HasPrefix(f, p) {
				return -1, true
			}
		}
	}
	return -1, false
}

// walk visits the members of object v whose dotted path leads to a wanted
// field, collecting the values of wanted fields. e.path holds the path of v
// followed by a dot (empty at the root).
func (e *extractor) walk(v *fastjson.Value, depth int) {
	if depth > 8 {
		return
	}
	o, _ := v.Object()
	base := len(e.path)
	o.Visit(func(k []byte, c *fastjson.Value) {
		e.path = append(e.path[:base], k...)
		field, descend := classify(b2s(e.path))
		isObj := c.Type() == fastjson.TypeObject
		switch {
		case descend && isObj:
			e.path = append(e.path, '.')
			e.walk(c, depth+1)
		case field >= 0:
			e.fields[field] = append(e.fields[field], c)
		}
	})
	e.path = e.path[:base]
}

// emitField emits the strings of field f (one string or an array).
func (e *extractor) emitField(typ, f string) {
	i := 0
	for i < numDocFields && docFields[i] != f {
		i++
	}
	for _, v := range e.fields[i] {
		if v.Type() == fastjson.TypeArray {
			for _, a := range v.GetArray() {
				if s, err := a.StringBytes(); err == nil {
					e.emit(typ, s)
				}
			}
		} else if s, err := v.StringBytes(); err == nil {
			e.emit(typ, s)
		}
	}
}

// emit adds (typ, val) to e.out unless it is empty or equal in normal form
// to a value already there. Normal forms are computed only once a document
// has a second value.
func (e *extractor) emit(typ string, val []byte) {
	if len(bytes.TrimSpace(val)) == 0 {
		return
	}
	if typ == TypeIPv4 && bytes.IndexByte(val, ':') >= 0 {
		typ = TypeIPv6
	}
	if len(e.out) > 0 {
		for len(e.normAt) < len(e.out) {
			x := e.out[len(e.normAt)]
			e.norm = appendNormKey(e.norm, x.typ, x.val)
			e.normAt = append(e.normAt, len(e.norm))
		}
		start := len(e.norm)
		e.norm = appendNormKey(e.norm, typ, val)
		key := e.norm[start:]
		prev := 0
		for _, end := range e.normAt {
			if bytes.Equal(e.norm[prev:end], key) {
				e.norm = e.norm[:start]
				return
			}
			prev = end
		}
		e.normAt = append(e.normAt, len(e.norm))
	}
	e.out = append(e.out, extracted{typ: typ, val: val})
}

// appendNormKey appends the de-duplication key of (typ, val): the kind and
// the normal form.
func appendNormKey(dst []byte, typ string, val []byte) []byte {
	dst = append(dst, kindType(typ)...)
	dst = append(dst, 0)
	return appendNormal(dst, typ, b2s(val))
}

// appendNormal appends the normal form of v as a value of type typ, for
// de-duplication.
func appendNormal(dst []byte, typ, v string) []byte {
	switch typ {
	case TypeFile:
		return appendHash(dst, v)
	case TypeDomain:
		return appendDomain(dst, v)
	case TypeURL:
		dst, _ = appendURL(dst, v)
		return dst
	case TypeEmail:
		return appendEmail(dst, v)
	case TypeRegistry:
		return appendRegistry(dst, v)
	case TypeVulnerability:
		return appendCVE(dst, v)
	}
	return append(dst, trimSpace(v)...)
}
