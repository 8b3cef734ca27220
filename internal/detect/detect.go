// Package detect raises alerts on events that match indicators: the
// built-in indicator match rules (Rules), run over ECS events one NDJSON
// line at a time against a matcher index of the store's live indicators.
//
// An Engine reads each event once (see the field extractor in extract.go),
// looks each value of each rule's fields up in the current Snapshot, and
// only for an event that matched builds an alert document per matching
// rule: the event's own fields, event.id unchanged, plus
// threat.enrichments[] in the shape Elastic's indicator match rules write,
// rule.id, rule.name, kibana.alert.* (severity, risk score, the alert's id
// and the event's original time) and the alert's @timestamp. The matched
// indicator documents are read from the store (Documents) for matched
// Refs only and kept in a small cache, so the index holds no metadata.
//
// The same (rule, event, indicator) triple raises one alert within the
// suppression window; an event is identified by its event.id, or by a hash
// of its line when it has none. An alert's ID is a hash of the rule, the
// event and the sorted indicators, so it is stable across runs and stores
// (a store keeps one copy per ID, a receiver drops a duplicate).
//
// For retro-hunts, an Engine can record the values that matched nothing as
// sightings (RecordSightings, sightings.go), and a RetroHunter checks the
// indicators that arrive later against them (retrohunt.go).
package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/hugemem"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/prefetch"
)

// Documents reads the stored documents that alerts enrich events with.
// *sqlite.DB implements it.
type Documents interface {
	// LiveDocument returns the document of (view, dataset, key) in its live
	// view, expired or not, and whether there is one.
	LiveDocument(ctx context.Context, view vigil.View, dataset, key string) (vigil.Document, bool, error)
}

// DocumentsAt is Documents that can also read a document back by the Loc
// it gave in Live: the version a Snapshot indexed, in one read. *sqlite.DB
// implements it. LiveDocumentAt returns false when it cannot (the
// document's segment is gone), and the document is then read by key.
type DocumentsAt interface {
	Documents
	LiveDocumentAt(ctx context.Context, loc vigil.Loc) ([]byte, bool, error)
}

// Stats counts what an Engine did.
type Stats struct {
	Events     int // events read (malformed lines not included)
	Malformed  int // lines that were not a JSON object
	Alerts     int // alerts raised
	Suppressed int // alerts not raised: every indicator was raised within the window
	// MissingDocs counts matched indicators whose document was gone from
	// the store when the alert was built; their enrichment carries only
	// what the index knew.
	MissingDocs int
}

// Engine matches events. It is not safe for concurrent use: run one
// Engine per goroutine, with the same Snapshot swapped into each.
type Engine struct {
	rules    []*activeRule
	tree     *fieldTree
	uses     [][]use // per field slot: the rules that match it
	idSlot   int32   // event.id
	tsSlot   int32   // @timestamp
	excludes []int32 // per rule: the slot of its Exclude field, or -1
	docs     Documents
	clock    vigil.Clock
	snap     atomic.Pointer[Snapshot]

	x      extractor
	misses missCache
	refs   []uint32
	probes []probe           // the event's values to look up
	urls   []matcher.URLKeys // the prepared URLs of probes
	pf     prefetch.Addrs
	// ahead is the line that MatchAhead read after the one it matched,
	// for the next call.
	ahead struct {
		x    extractor
		line []byte // nil: none
		err  error  // what scanning it gave
	}
	hits    []hit
	out     []vigil.Detection
	meta    metaCache
	supp    suppressor
	members memberScanner
	stats   Stats
	sight   *recorder  // nil: sightings are not recorded
	ev      eventState // of the event being matched, for sight
	// now is the time of the event being matched, read from the clock
	// when first needed (nowOK): most events match nothing and record no
	// sighting, and need none.
	now   time.Time
	nowOK bool
	// batch is the state of StartBatch: the clock's reading that the
	// events of a batch share for sightings, and for how many more.
	batch struct {
		on   bool
		now  time.Time
		left int // events that may still share now: 0, read the clock
	}
}

// use is one rule that matches a field.
type use struct {
	rule   int32
	lookup lookup
}

// probe is one value of an event to look up under one rule.
type probe struct {
	h   uint64 // the miss cache's hash of (lookup, value)
	val int32  // index in the extractor's values
	url int32  // a URL's prepared keys in Engine.urls, or -1
	use use
}

// hit is one indicator that matched one value of an event under one rule.
type hit struct {
	rule int32
	val  int32 // index in the extractor's values
	ref  uint32
}

// New returns an Engine for cfg that reads matched documents from docs and
// tells the time with clock (the wall clock when nil). It matches nothing
// until a Snapshot is swapped in. An unknown rule id in cfg.Rules is an
// error that lists the rule ids.
func New(cfg Config, docs Documents, clock vigil.Clock) (*Engine, error) {
	rules, err := compileRules(cfg)
	if err != nil {
		return nil, err
	}
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	e := &Engine{rules: rules, docs: docs, clock: clock}
	var fields []string
	slot := func(f string) int32 {
		if i := slices.Index(fields, f); i >= 0 {
			return int32(i)
		}
		fields = append(fields, f)
		return int32(len(fields) - 1)
	}
	e.idSlot = slot("event.id")
	e.tsSlot = slot("@timestamp")
	anyValue := map[string]bool{"event.id": true, "@timestamp": true}
	for ri, r := range rules {
		for _, f := range r.fields {
			s := slot(f)
			for int(s) >= len(e.uses) {
				e.uses = append(e.uses, nil)
			}
			e.uses[s] = append(e.uses[s], use{rule: int32(ri), lookup: r.lookup})
		}
		ex := int32(-1)
		if r.Exclude != "" {
			ex = slot(r.Exclude)
			anyValue[r.Exclude] = true
		}
		e.excludes = append(e.excludes, ex)
	}
	for len(e.uses) < len(fields) {
		e.uses = append(e.uses, nil)
	}
	e.tree = newFieldTree(fields, anyValue)
	e.x.t, e.ahead.x.t = e.tree, e.tree
	e.meta.max = cfg.IndicatorCache
	if e.meta.max <= 0 {
		e.meta.max = DefaultIndicatorCache
	}
	e.supp.window = cfg.SuppressionWindow
	e.supp.max = cfg.SuppressionMax
	if e.supp.max <= 0 {
		e.supp.max = DefaultSuppressionMax
	}
	return e, nil
}

// Swap makes s the Snapshot that events are matched against and returns
// the previous one.
func (e *Engine) Swap(s *Snapshot) *Snapshot { return e.snap.Swap(s) }

// Snapshot returns the current Snapshot.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// CountMalformed counts a line the caller found malformed without passing
// it to Match (a line too long to read, say).
func (e *Engine) CountMalformed() { e.stats.Malformed++ }

// Stats returns the counts so far.
func (e *Engine) Stats() Stats { return e.stats }

// Rules returns the enabled rules, in order.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.Rule
		out[i].Fields = slices.Clone(r.fields)
	}
	return out
}

// Match matches one event, an NDJSON line (its line end may be included),
// and returns the alerts it raised, one per rule that matched, in rule
// order. The Detections are the caller's to keep. A line that is not a
// JSON object gives a *SyntaxError and counts as malformed; another error
// (reading the store) means the event could not be handled.
func (e *Engine) Match(ctx context.Context, line []byte) ([]vigil.Detection, error) {
	return e.match(ctx, line, nil)
}

// MatchAhead is Match for line, given the line to be matched next (nil:
// none yet). It asks for the memory that line's values will be looked up
// in, reads next while that memory comes, then looks them up: at 10M
// indicators, most such lookups miss the CPU's caches, and one event
// alone has too few values to hide the wait. The following call, Match
// or MatchAhead, uses what was read of next when its line is next (the
// same bytes, at the same address), so next must not change until then:
// a caller whose lines stay put in memory (vigil match's mapped file) can
// use it, one that reuses a buffer cannot.
func (e *Engine) MatchAhead(ctx context.Context, line, next []byte) ([]vigil.Detection, error) {
	return e.match(ctx, line, next)
}

// sameBytes reports whether a and b are the same bytes of memory.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

func (e *Engine) match(ctx context.Context, line, next []byte) ([]vigil.Detection, error) {
	var err error
	if a := &e.ahead; a.line != nil && sameBytes(a.line, line) {
		e.x, a.x = a.x, e.x
		err = a.err
	} else {
		err = e.x.scan(line)
	}
	e.ahead.line, e.ahead.err = nil, nil
	if err != nil {
		e.stats.Malformed++
		return nil, err
	}
	e.stats.Events++
	snap := e.snap.Load()
	if snap == nil {
		return nil, nil
	}
	if e.sight != nil {
		e.ev.seq++
		e.ev.timed, e.ev.identOK = false, false
		e.ev.counted = e.ev.counted[:0]
	}
	x := &e.x
	var excluded uint64 // bit per rule
	for ri, s := range e.excludes {
		if s < 0 {
			continue
		}
		for i := range x.vals {
			if x.vals[i].slot == s {
				excluded |= 1 << uint(ri)
				break
			}
		}
	}
	e.nowOK = false
	idx := snap.index
	if e.misses.snap != snap {
		e.misses.reset(snap)
		if e.sight != nil {
			e.sight.dropSlots()
		}
	}
	// The values to look up, with their hashes, first. Each prefetches
	// what it may be looked up in next, read at random: its set of the
	// miss cache and, with sightings on, its set of sighting slots (a
	// table as large as the L2 cache) and its entry's home in the batch's
	// tag table, so that the cache misses of an event's values overlap
	// instead of coming one after another. At 10M indicators with
	// sightings on, touching the slots (with loads) took 6 % off the CPU
	// of matching; a second pass that then touched the rest for the
	// values without a slot, 8 % more; touching all three in one pass,
	// 3 % more again (8 % with a store that drops the sightings), though
	// most values have a slot and never read the other two. With sightings
	// off, the miss cache alone is prefetched, and only when the next line
	// is read meanwhile: without that work in between, it did not help.
	probes := e.probes[:0]
	pf := &e.pf
	sight := e.sight != nil
	for i := range x.vals {
		v := &x.vals[i]
		if !v.str {
			continue
		}
		for _, u := range e.uses[v.slot] {
			if excluded&(1<<uint(u.rule)) != 0 {
				continue
			}
			h := e.misses.hash(u.lookup, x.str(v))
			probes = append(probes, probe{h: h, val: int32(i), url: -1, use: u})
			if sight && e.sightSet(ctx) {
				tag, _, set := e.sight.set(h, &e.ev)
				pf.Add(unsafe.Pointer(&set[0]))
				pf.Add(e.sight.m.homeAddr(tag))
			} else if next == nil {
				continue
			}
			pf.Add(unsafe.Pointer(e.misses.set(h)))
		}
	}
	e.probes = probes
	if next != nil {
		// The IP addresses and URLs that will be looked up in the index
		// (no sighting slot, not in the miss cache), most of the values
		// that are, prefetch its first reads: the words of their Bloom
		// filters, which miss the caches at 10M indicators. A URL's normal
		// forms are kept for its lookup (URLKeys): normalized twice, the
		// prefetch saved no more than the second normalization cost, and
		// hashes and domains, whose filters the caches mostly hold, lost
		// more than they saved (BenchmarkEnginePairs: 0.953 and 0.972 with
		// the forms kept, 1.006 without; 1.042 for hashes and domains).
		urls := 0
		for i := range probes {
			p := &probes[i]
			switch p.use.lookup {
			case lookupIP:
				if !e.answered(p.h) {
					idx.PrefetchIP(pf, x.str(&x.vals[p.val]))
				}
			case lookupURL:
				if !e.answered(p.h) {
					if urls == len(e.urls) {
						e.urls = append(e.urls, matcher.URLKeys{})
					}
					idx.PrepareURL(pf, x.str(&x.vals[p.val]), &e.urls[urls])
					p.url = int32(urls)
					urls++
				}
			}
		}
	}
	pf.Fetch()
	if next != nil {
		a := &e.ahead
		if a.line, a.err = next, a.x.scan(next); a.err == nil {
			e.prefetchAhead()
		}
	}
	hits := e.hits[:0]
	for _, p := range probes {
		v := &x.vals[p.val]
		val, h, l := x.str(v), p.h, p.use.lookup
		// A value with a sighting slot is counted there: it matched
		// nothing in this Snapshot.
		if e.sight != nil && e.recorded(ctx, h) {
			continue
		}
		if e.misses.known(h) {
			if e.sight != nil {
				e.record(ctx, h, l, v.slot, val, line)
			}
			continue
		}
		// First without regard to expiry (the zero time), which needs no
		// clock: only a value some indicator has is looked up again for
		// those unexpired now.
		if p.url >= 0 {
			k := &e.urls[p.url]
			if e.refs = idx.MatchURLKeys(e.refs[:0], k, time.Time{}); len(e.refs) > 0 {
				e.refs = idx.MatchURLKeys(e.refs[:0], k, e.eventNow())
			}
		} else if e.refs = lookupValue(idx, l, val, time.Time{}, e.refs[:0]); len(e.refs) > 0 {
			e.refs = lookupValue(idx, l, val, e.eventNow(), e.refs[:0])
		}
		if len(e.refs) == 0 {
			e.misses.add(h)
			if e.sight != nil {
				e.record(ctx, h, l, v.slot, val, line)
			}
		}
		for _, r := range e.refs {
			hits = append(hits, hit{rule: p.use.rule, val: p.val, ref: r})
		}
	}
	e.hits = hits
	if len(hits) == 0 {
		return nil, nil
	}
	return e.alerts(ctx, snap, line, e.eventNow())
}

// answered reports, changing nothing, whether the value of hash h of the
// event being matched will be answered without the index: by its sighting
// slot or the miss cache. The probes of the event have chosen its
// sighting slots (sightSet).
func (e *Engine) answered(h uint64) bool {
	return e.sight != nil && !e.ev.skip && e.sight.has(h, &e.ev) || e.misses.has(h)
}

// prefetchAhead prefetches the sets that the values of the line read
// ahead are first looked up in: of the miss cache and, with sightings on,
// of sighting slots, and their homes in the batch's tag table. They then
// come while the current line's lookups and alerts are done, and that
// line's own lookups can be prefetched before the lookups (see match).
// The day of the event is taken from its @timestamp, or the current
// event's reading of the clock; a wrong guess costs only the prefetch.
func (e *Engine) prefetchAhead() {
	x, pf, r := &e.ahead.x, &e.pf, e.sight
	var mix uint64
	if r != nil {
		ms := e.ev.readAt / int64(time.Millisecond)
		mix = dayMix(int32(dayOf(x.eventMillis(e.tsSlot, ms))))
	}
	for i := range x.vals {
		v := &x.vals[i]
		if !v.str {
			continue
		}
		for _, u := range e.uses[v.slot] {
			h := e.misses.hash(u.lookup, x.str(v))
			pf.Add(unsafe.Pointer(e.misses.set(h)))
			if r != nil {
				tag, _, set := r.setMix(h, mix)
				pf.Add(unsafe.Pointer(&set[0]))
				pf.Add(r.m.homeAddr(tag))
			}
		}
	}
	pf.Fetch()
}

// maxBatchEvents is how many events at most share one reading of the
// clock in a batch (see StartBatch).
const maxBatchEvents = 1 << 16

// StartBatch tells the Engine that a batch of events has arrived whole (a
// request, a chunk of a file in memory), until EndBatch: while it records
// sightings, the events of the batch then share one reading of the clock,
// taken when the first of them needs it, for what recording needs of it
// (the time of an event without a @timestamp, the window's start, when the
// sightings held are due to be written), and one more every maxBatchEvents
// events. At 10M indicators with sightings on, reading it for each event
// was 1.5 % of the CPU of matching. Expiry still reads the clock for each
// event that an indicator matches. Events that trickle in from a stream
// are not a batch: each reads the clock, as without StartBatch.
func (e *Engine) StartBatch() { e.batch.on, e.batch.left = true, 0 }

// EndBatch ends the batch of StartBatch: each event reads the clock again.
func (e *Engine) EndBatch() { e.batch.on = false }

// sightNow returns the time that recording takes as the event's reading.
func (e *Engine) sightNow() time.Time {
	b := &e.batch
	if !b.on {
		return e.eventNow()
	}
	if b.left == 0 {
		b.now, b.left = e.eventNow(), maxBatchEvents
	}
	b.left--
	return b.now
}

// eventNow returns the time of the event being matched.
func (e *Engine) eventNow() time.Time {
	if !e.nowOK {
		e.now, e.nowOK = e.clock.Now(), true
	}
	return e.now
}

// missCache remembers values that matched nothing in one Snapshot, so
// that the values events repeat most (popular destinations, internal
// hosts) skip the index, whose tables are much larger than the CPU caches.
// A value that matched nothing never matches later in the same Snapshot
// (expiry only removes matches). Values are kept by a 64-bit hash of
// (lookup, value); a hash collision would hide one value's match (odds
// about 2^-64 per lookup).
//
// The cache is four-way set associative, a set per 32 bytes (half a cache
// line), with its ways in order of recent use: a hit moves its value one
// way up, and a new value takes the last way. Streams mix values that
// come again and again with values seen once (a file's hash, a URL's
// query): the ones seen once replace each other in the last way and
// leave the repeated ones alone. On bench/detect.sh's events at 10M
// indicators, it answers 73 % of the values, where a direct-mapped cache
// answered 52 % in 256 KiB and 74 % in 8 MiB.
type missCache struct {
	snap  *Snapshot
	seed  maphash.Seed
	slots []uint64
}

const (
	missCacheSize = 1 << 16 // slots: 512 KiB, half the L2 cache of a core
	missCacheWays = 4
)

func (c *missCache) reset(s *Snapshot) {
	c.snap = s
	if c.seed == (maphash.Seed{}) {
		c.seed = maphash.MakeSeed()
	}
	if c.slots == nil {
		c.slots = hugemem.Slice[uint64](missCacheSize) // read at random, one set per lookup
	} else {
		clear(c.slots)
	}
}

func (c *missCache) hash(l lookup, v string) uint64 {
	return (maphash.String(c.seed, v) ^ uint64(l)*0x9e3779b97f4a7c15) | 1 // never 0, the empty slot
}

// set returns the set of h.
func (c *missCache) set(h uint64) *[missCacheWays]uint64 {
	i := h >> 32 & (missCacheSize/missCacheWays - 1)
	return (*[missCacheWays]uint64)(c.slots[i*missCacheWays:])
}

// known reports whether h is in the cache, moving it up a way if so.
func (c *missCache) known(h uint64) bool {
	s := c.set(h)
	switch h {
	case s[0]:
		return true
	case s[1]:
		s[0], s[1] = h, s[0]
		return true
	case s[2]:
		s[1], s[2] = h, s[1]
		return true
	case s[3]:
		s[2], s[3] = h, s[2]
		return true
	}
	return false
}

// has reports whether h is in the cache, changing nothing.
func (c *missCache) has(h uint64) bool {
	s := c.set(h)
	return s[0] == h || s[1] == h || s[2] == h || s[3] == h
}

// add puts h in the last way of its set.
func (c *missCache) add(h uint64) { c.set(h)[missCacheWays-1] = h }

// lookupValue appends the Refs that match v.
func lookupValue(x *matcher.Index, l lookup, v string, now time.Time, dst []uint32) []uint32 {
	switch l {
	case lookupIP:
		return x.MatchIPString(dst, v, now)
	case lookupHash:
		return x.MatchHash(dst, v, now)
	case lookupURL:
		return x.MatchURL(dst, v, now)
	case lookupRegistry:
		return x.MatchRegistry(dst, v, now)
	case lookupEmail:
		return x.MatchEmail(dst, v, now)
	case lookupCVE:
		return x.MatchCVE(dst, v, now)
	case lookupDomain:
		return x.MatchDomain(dst, v, true, now)
	}
	return dst
}

// indicatorGroup is one matched indicator and its enrichments.
type indicatorGroup struct {
	meta *indicatorMeta
	ens  []enrichment
}

// enrichment is one (indicator, event field, value) of an alert.
type enrichment struct {
	meta   *indicatorMeta
	field  string
	atomic []byte // the event value's JSON text
}

// alerts builds the alerts of the event whose hits are in e.hits.
func (e *Engine) alerts(ctx context.Context, snap *Snapshot, line []byte, now time.Time) ([]vigil.Detection, error) {
	x := &e.x
	// Hits come grouped by value; order them by rule, keeping the event's
	// order within a rule, and drop repeats of (rule, slot, value, ref).
	slices.SortStableFunc(e.hits, func(a, b hit) int { return int(a.rule) - int(b.rule) })
	identity := e.identity(line)
	e.out = e.out[:0]
	for i := 0; i < len(e.hits); {
		j := i
		for j < len(e.hits) && e.hits[j].rule == e.hits[i].rule {
			j++
		}
		r := e.rules[e.hits[i].rule]
		// The indicators, in order of first match, each with its
		// (field, value) pairs.
		var groups []indicatorGroup
		for _, h := range e.hits[i:j] {
			v := &x.vals[h.val]
			en := enrichment{field: x.t.names[v.slot], atomic: x.raw(v)}
			g := slices.IndexFunc(groups, func(g indicatorGroup) bool { return g.meta.ref == h.ref })
			if g < 0 {
				m, err := e.meta.get(ctx, snap, e.docs, h.ref)
				if err != nil {
					return nil, err
				}
				if m.missing {
					e.stats.MissingDocs++
				}
				groups = append(groups, indicatorGroup{meta: m})
				g = len(groups) - 1
			}
			if !slices.ContainsFunc(groups[g].ens, func(o enrichment) bool {
				return o.field == en.field && string(o.atomic) == string(en.atomic)
			}) {
				en.meta = groups[g].meta
				groups[g].ens = append(groups[g].ens, en)
			}
		}
		i = j
		var ens []enrichment
		var refs []DocRef
		for _, g := range groups {
			if e.supp.suppressed(tripleKey(r.ID, identity, g.meta.doc), now) {
				continue
			}
			ens = append(ens, g.ens...)
			refs = append(refs, g.meta.doc)
		}
		if len(refs) == 0 {
			e.stats.Suppressed++
			continue
		}
		for _, d := range refs {
			e.supp.record(tripleKey(r.ID, identity, d), now)
		}
		id := alertID(r.ID, identity, refs)
		doc, err := e.buildAlert(line, r, ens, id, now)
		if err != nil {
			return nil, err
		}
		e.out = append(e.out, vigil.Detection{
			ID: id, RuleID: r.ID, RuleName: r.Name, Timestamp: now,
			Actions: slices.Clone(r.actions), Source: doc,
		})
		e.stats.Alerts++
	}
	return e.out, nil
}

// identity returns the event's identity: its event.id, or a hash of its
// line when it has none.
func (e *Engine) identity(line []byte) string { return string(e.appendIdentity(nil, line)) }

// appendIdentity appends the event's identity to dst.
func (e *Engine) appendIdentity(dst, line []byte) []byte {
	x := &e.x
	for i := range x.vals {
		v := &x.vals[i]
		if v.slot != e.idSlot {
			continue
		}
		dst = append(dst, "event.id:"...)
		if v.str {
			return append(dst, x.str(v)...)
		}
		return append(dst, x.raw(v)...)
	}
	sum := sha256.Sum256(trimLine(line))
	return hex.AppendEncode(append(dst, "line:"...), sum[:16])
}

// trimLine removes the white space around a line.
func trimLine(b []byte) []byte {
	return []byte(strings.TrimSpace(b2s(b)))
}

// tripleKey is the suppression key of (rule, event, indicator).
func tripleKey(rule, identity string, d DocRef) [16]byte {
	h := sha256.New()
	for _, s := range []string{rule, identity, string(d.View), d.Dataset, d.Key} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var k [16]byte
	copy(k[:], h.Sum(nil))
	return k
}

// alertID is the alert's stable id: a hash of the rule, the event's
// identity and the sorted indicators, as 32 hexadecimal digits.
func alertID(rule, identity string, refs []DocRef) string {
	keys := make([]string, len(refs))
	for i, d := range refs {
		keys[i] = string(d.View) + "\x1f" + d.Dataset + "\x1f" + d.Key
	}
	slices.Sort(keys)
	h := sha256.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(identity))
	for _, k := range keys {
		h.Write([]byte{0})
		h.Write([]byte(k))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Deliveries returns one delivery of each detection to each of its
// actions, keyed by the detection's ID (the outbox skips one already
// queued or done).
func Deliveries(dets []vigil.Detection) []vigil.Delivery {
	var out []vigil.Delivery
	var ms memberScanner
	for _, d := range dets {
		if len(d.Actions) == 0 {
			continue
		}
		subject := ms.subject(&d)
		for _, a := range d.Actions {
			out = append(out, vigil.Delivery{Key: d.ID, Connector: a, Subject: subject, Body: d.Source})
		}
	}
	return out
}

// errf wraps an error with the package prefix.
func errf(format string, args ...any) error { return fmt.Errorf("detect: "+format, args...) }
