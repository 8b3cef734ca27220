package detect

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/hugemem"
	"github.com/vigil-ti/vigil/internal/matcher"
)

// Sightings. While an Engine reads events it can record, for a
// retro-hunt (see RetroHunter), the values of the rules' fields that
// matched nothing: per (kind, value, UTC day of the event's @timestamp)
// the first and last @timestamp, a count of events, and one event to
// refer to (its event.id, or a hash of its line). Values that matched are
// not recorded: they raised their alerts when they were read.
//
// Recording is cheap for the values a stream repeats: the hash the miss
// cache already computed for (lookup, value as the event wrote it), mixed
// with the day, selects a set of four 16-byte slots in one cache line; a
// slot counts the value's events and widens its first and last seen in
// place, and is written back to the value's entry when another value
// takes it and before the batch is written. A value not in its set is
// found in a map keyed by that hash. A value seen again in the same batch
// costs no normalization and no allocation, and mostly one cache line. A
// new value is normalized (as the matcher normalizes it), and only then
// is the event's identity computed, once per event; it takes a slot only
// when one of its set is free, so that values seen once (a file's hash) do
// not push out those that come again and again. Two spellings of one
// value ("EVIL.example", "evil.example") get two entries, which the store
// merges. A hash collision would merge two values' counts (odds about
// 2^-64 per pair, as for the miss cache).
//
// A batch holds at most half of SightingsConfig.MaxValues values; when it
// is full, or FlushInterval has passed, it is handed to the store on a
// goroutine of its own while the next batch fills, so at most MaxValues
// values are in memory. Events are recorded only while a Snapshot is in
// place, and only when their @timestamp is within the window (a missing or
// future one counts as the time the event was read, or the first of its
// batch: see StartBatch).

// SightingStore keeps sightings. *sqlite.DB implements it.
type SightingStore interface {
	// AddSightingBatch adds a batch of sightings; the batch is not kept.
	AddSightingBatch(ctx context.Context, b *vigil.SightingBatch) error
}

// SightingsConfig configures the recording of sightings.
type SightingsConfig struct {
	Store SightingStore
	// Window is how far back events are recorded: an event whose
	// @timestamp is older than now - Window is not.
	Window time.Duration
	// MaxValues bounds the values held in memory: the batch being filled
	// holds half of them, the batch being written the other half. 0 means
	// DefaultMaxSightings.
	MaxValues int
	// FlushInterval is how long a value may wait in memory while events
	// come; 0 means DefaultSightingsFlush. FlushSightings writes at once.
	FlushInterval time.Duration
}

// Defaults of SightingsConfig.
const (
	DefaultMaxSightings   = 1 << 19
	DefaultSightingsFlush = time.Minute
)

// MaxSightingKey is the longest value recorded, in normal form; a longer
// one is not (its events raise no retro-hunt alert).
const MaxSightingKey = 4096

// lookupNames are the sighting kinds, by rule lookup.
var lookupNames = [...]string{
	lookupIP: "ip", lookupHash: "hash", lookupURL: "url", lookupRegistry: "registry",
	lookupEmail: "email", lookupCVE: "cve", lookupDomain: "domain",
}

// lookupNamed returns the lookup of a sighting kind.
func lookupNamed(kind string) (lookup, bool) {
	for l, n := range lookupNames {
		if n == kind {
			return lookup(l), true
		}
	}
	return 0, false
}

// sightSlots is the size of the cache of a recorder (1 MiB): four-way set
// associative, a set per 64-byte cache line.
const sightSlots = 1 << 16

// maxSightingData bounds the bytes of keys and event references a batch
// holds (SightingEntry refers to them with 32-bit offsets): a batch is
// handed to the store once it holds more.
const maxSightingData = 1 << 30

// The batch being filled is nearly in the form the store takes: its
// entries (the lookup as their kind, the field slot as their field) refer
// to its keys and event references by offsets into one byte slice, so that
// a new value costs no allocation; each also holds the last event it
// counted, and is copied without it when the batch is handed over.
type recorder struct {
	cfg   SightingsConfig
	half  int
	slots []sightSlot
	m     tagTable // tag → index in ents
	ents  []sightEnt
	data  []byte // the keys and event references of ents
	gen   uint64 // batches handed over
	key   []byte
	start int64 // when the batch's first value came, Unix ns

	// The batch being written, on its goroutine.
	writing bool
	done    chan error
	out     vigil.SightingBatch
	err     error
}

// sightSlot caches the entry of a tag, the hash of (lookup, raw value)
// mixed with the day (0: a free slot). data holds the events counted
// since the slot was loaded (10 bits) and the first and last of them, as
// milliseconds of the day (27 bits each); slotInvalid marks a value that
// can never match (not an address, say).
type sightSlot struct {
	tag  uint64
	data uint64
}

const (
	slotWays     = 4
	slotMsBits   = 27
	slotMsMask   = 1<<slotMsBits - 1
	slotCountMax = 1<<(64-2*slotMsBits) - 1
	slotInvalid  = ^uint64(0)
)

func slotData(first, last uint32, count uint64) uint64 {
	return uint64(first) | uint64(last)<<slotMsBits | count<<(2*slotMsBits)
}

func (s *sightSlot) count() uint64 { return s.data >> (2 * slotMsBits) }

// writeBack adds what slot s counted to its entry and zeroes its count.
// A slot that counted nothing has nothing to add: the event that loaded it
// is in its entry, and its first and last seen widen only with an event
// it counts.
func (r *recorder) writeBack(s *sightSlot) {
	if s.tag == 0 || s.data == slotInvalid || s.count() == 0 {
		return
	}
	idx, ok := r.m.get(s.tag)
	if !ok {
		return
	}
	en := &r.ents[idx].SightingEntry
	base := dayOf(en.FirstSeen) * msPerDay
	en.FirstSeen = min(en.FirstSeen, base+int64(s.data&slotMsMask))
	en.LastSeen = max(en.LastSeen, base+int64(s.data>>slotMsBits&slotMsMask))
	en.Count += int64(s.count())
	s.data &= 1<<(2*slotMsBits) - 1
}

// tagTable maps the tags of a batch's values to their entries: open
// addressing with linear probing, at most half full, on huge pages once
// large. A Go map did the same with two dependent cache misses and a hash
// per lookup, for every new value recorded and every slot written back;
// the tags are hashes already.
type tagTable struct {
	slots []tagSlot
	shift uint // 64 - log2(len(slots))
	n     int  // tags held
}

type tagSlot struct {
	tag uint64 // 0: free
	idx int32
}

// tagTableMin is the initial size of a tagTable: a default batch (half
// of DefaultMaxSightings) fits without growing.
const tagTableMin = DefaultMaxSightings

// newTagTable returns an empty table of size slots (a power of two).
func newTagTable(size int) tagTable {
	bits := uint(0)
	for 1<<bits < size {
		bits++
	}
	return tagTable{slots: hugemem.Slice[tagSlot](1 << bits), shift: 64 - bits}
}

// home returns the first slot to probe for tag: its high bits (the low
// ones choose the tag's set of sightSlots).
func (t *tagTable) home(tag uint64) uint64 { return tag >> t.shift }

func (t *tagTable) get(tag uint64) (int32, bool) {
	mask := uint64(len(t.slots) - 1)
	for i := t.home(tag); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.tag == tag {
			return s.idx, true
		}
		if s.tag == 0 {
			return 0, false
		}
	}
}

// homeAddr returns the address of the first slot that get(tag) probes,
// to prefetch.
func (t *tagTable) homeAddr(tag uint64) unsafe.Pointer {
	return unsafe.Pointer(&t.slots[t.home(tag)])
}

// put sets the entry of tag (not 0), doubling the table when it would be
// more than half full.
func (t *tagTable) put(tag uint64, idx int32) {
	if 2*(t.n+1) > len(t.slots) {
		g := newTagTable(2 * len(t.slots))
		for _, s := range t.slots {
			if s.tag != 0 {
				g.put(s.tag, s.idx)
			}
		}
		*t = g
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.home(tag); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.tag == 0 {
			*s = tagSlot{tag: tag, idx: idx}
			t.n++
			return
		}
		if s.tag == tag {
			s.idx = idx
			return
		}
	}
}

// reset empties the table, keeping its size.
func (t *tagTable) reset() {
	clear(t.slots)
	t.n = 0
}

// eventState is what recording learns of the event being matched, each
// part once.
type eventState struct {
	seq     uint64
	timed   bool  // ms, day, skip and readAt are set
	readAt  int64 // when the event was read, Unix ns
	skip    bool  // too old to record
	ms      int64
	day     int32
	msOfDay uint32
	mix     uint64   // mixes the day into slot tags
	counted []uint32 // the slots that counted this event
	// identOK: the event's identity is in the batch of generation
	// identGen, at data[identAt[0]:identAt[1]].
	identOK  bool
	identGen uint64
	identAt  [2]uint32
}

// RecordSightings makes the Engine record sightings into cfg.Store. Call
// FlushSightings before the store is read (a retro-hunt) and before the
// Engine is dropped: values still in memory are otherwise lost.
func (e *Engine) RecordSightings(cfg SightingsConfig) {
	if cfg.MaxValues <= 0 {
		cfg.MaxValues = DefaultMaxSightings
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultSightingsFlush
	}
	half := max(cfg.MaxValues/2, 1)
	room := min(half, maxBatchRoom)
	e.sight = &recorder{
		cfg:   cfg,
		half:  half,
		slots: hugemem.Slice[sightSlot](sightSlots), // read at random, one set per value
		m:     newTagTable(tagTableMin),
		// A batch's whole capacity at once: see reserve.
		ents: make([]sightEnt, 0, room),
		data: make([]byte, 0, room*sightingDataPerValue),
		done: make(chan error, 1),
	}
}

// maxBatchRoom bounds the values a batch has room for from the start,
// should MaxValues be very large.
const maxBatchRoom = 1 << 20

// sightingDataPerValue is the room made at first for the key and event
// reference of each value of a batch (most keys are shorter than 40 bytes,
// an event.id reference about 25, and an event's reference is shared by
// its values).
const sightingDataPerValue = 64

// maxBatchData is the most a batch's data can hold: handoff comes once it
// holds more than maxSightingData, and a value adds its key and maybe its
// event's reference.
const maxBatchData = maxSightingData + MaxSightingKey + identityRoom

// identityRoom is the room reserved for an event's reference: "line:" and
// 32 hex digits, or "event.id:" and most ids (a longer one grows the data
// as append does).
const identityRoom = 64

// reserve makes room for n more bytes of keys and event references,
// doubling the room when it has to grow, up to what a batch can hold. A
// batch's buffers are made whole when the recorder is, and reused from
// batch to batch. Grown by append, a quarter at a time, they were copied,
// and fresh pages faulted in and zeroed, many times over while the first
// batches filled: 8 % of the CPU of `vigil match` over a million events
// went to those page faults. Room not yet used is not faulted in until a
// batch fills it (it does count in the Go heap's size, about 60 MiB with
// the default MaxValues).
func (r *recorder) reserve(n int) {
	if len(r.data)+n <= cap(r.data) {
		return
	}
	d := make([]byte, len(r.data), max(min(2*cap(r.data), maxBatchData), len(r.data)+n))
	copy(d, r.data)
	r.data = d
}

// FlushSightings hands the values held to the store, waits until they are
// written, and returns the first error of a write since the last call.
func (e *Engine) FlushSightings(ctx context.Context) error {
	r := e.sight
	if r == nil {
		return nil
	}
	e.handoff(ctx)
	r.wait()
	err := r.err
	r.err = nil
	return err
}

// SightingsHeld returns how many values the Engine holds in memory: those
// of the batch being filled and of the batch being written.
func (e *Engine) SightingsHeld() int {
	r := e.sight
	if r == nil {
		return 0
	}
	n := len(r.ents)
	if r.writing {
		n += len(r.out.Entries)
	}
	return n
}

// wait waits for the batch being written.
func (r *recorder) wait() {
	if !r.writing {
		return
	}
	if err := <-r.done; err != nil && r.err == nil {
		r.err = err
	}
	r.writing = false
}

// handoff starts writing the batch being filled, after the previous one is
// written, and starts a new one.
func (e *Engine) handoff(ctx context.Context) {
	r := e.sight
	if len(r.ents) == 0 {
		return
	}
	r.wait()
	r.dropSlots()
	// The batch written last gives its buffers to the next one; the first
	// one written gets buffers of a whole batch.
	ents, data := r.out.Entries[:0], r.out.Data
	if cap(ents) < len(r.ents) {
		ents = make([]vigil.SightingEntry, 0, cap(r.ents))
	}
	if data == nil {
		data = make([]byte, 0, cap(r.data))
	}
	for i := range r.ents {
		ents = append(ents, r.ents[i].SightingEntry)
	}
	r.out = vigil.SightingBatch{Data: r.data, Kinds: lookupNames[:], Fields: e.tree.names, Entries: ents}
	r.writing = true
	out := &r.out
	go func() { r.done <- r.cfg.Store.AddSightingBatch(ctx, out) }()
	r.ents, r.data = r.ents[:0], data[:0]
	r.gen++
	r.m.reset()
}

// record notes that the event being matched carried val in field slot,
// under lookup l, and matched nothing; h is the miss cache's hash of (l,
// val). Match calls it only after recorded(h) found no slot for the
// value.
func (e *Engine) record(ctx context.Context, h uint64, l lookup, slot int32, val string, line []byte) {
	r := e.sight
	ev := &e.ev
	if !e.sightSet(ctx) {
		return
	}
	tag, base, set := r.set(h, ev)
	// The way to replace: a free one, else the one that counted fewest
	// events since it was loaded.
	way := 0
	for i := 1; i < slotWays && set[way].tag != 0; i++ {
		if set[i].tag == 0 || set[i].count() < set[way].count() {
			way = i
		}
	}
	sl := &set[way]
	if idx, ok := r.m.get(tag); ok {
		// Seen twice: worth the slot.
		r.touch(idx, ev)
		r.load(sl, tag, uint32(base)+uint32(way), ev)
		return
	}
	var ok bool
	r.key, ok = appendSightingKey(r.key[:0], l, val)
	if !ok || len(r.key) > MaxSightingKey {
		if sl.tag == 0 {
			*sl = sightSlot{tag: tag, data: slotInvalid}
		}
		return
	}
	if len(r.ents) >= r.half || len(r.data) > maxSightingData {
		e.handoff(ctx) // frees every slot
	}
	if len(r.ents) == 0 {
		r.start = ev.readAt
	}
	r.reserve(len(r.key) + identityRoom)
	if !ev.identOK || ev.identGen != r.gen {
		// Once per event and batch.
		a := len(r.data)
		r.data = e.appendIdentity(r.data, line)
		ev.identOK, ev.identGen, ev.identAt = true, r.gen, [2]uint32{uint32(a), uint32(len(r.data))}
	}
	idx := int32(len(r.ents))
	a := len(r.data)
	r.data = append(r.data, r.key...)
	r.ents = append(r.ents, sightEnt{vigil.SightingEntry{Key: [2]uint32{uint32(a), uint32(len(r.data))}, Event: ev.identAt,
		Kind: uint32(l), Field: uint32(slot), FirstSeen: ev.ms, LastSeen: ev.ms, Count: 1, EventTime: ev.ms}, ev.seq})
	r.m.put(tag, idx)
	if sl.tag == 0 {
		r.load(sl, tag, uint32(base)+uint32(way), ev)
	}
}

// set returns the tag of the miss cache's hash h for the event being
// matched, and the tag's set of slots with the number of its first.
func (r *recorder) set(h uint64, ev *eventState) (uint64, uint64, []sightSlot) {
	return r.setMix(h, ev.mix)
}

// setMix is set for the day of mix (see dayMix).
func (r *recorder) setMix(h, mix uint64) (uint64, uint64, []sightSlot) {
	tag := h ^ mix
	if tag == 0 {
		tag = 1
	}
	base := tag & (sightSlots - slotWays)
	return tag, base, r.slots[base : base+slotWays : base+slotWays]
}

// has reports whether the value of the miss cache's hash h has a slot for
// the event being matched, changing nothing.
func (r *recorder) has(h uint64, ev *eventState) bool {
	tag, _, set := r.set(h, ev)
	for i := range set {
		if set[i].tag == tag {
			return true
		}
	}
	return false
}

// count counts the event being matched in tag's slot, if the tag has one
// in set (the slots of base on), and reports whether it has.
func (r *recorder) count(tag, base uint64, set []sightSlot, ev *eventState) bool {
	for i := range set {
		sl := &set[i]
		if sl.tag != tag {
			continue
		}
		d := sl.data
		if d == slotInvalid {
			return true
		}
		count := d >> (2 * slotMsBits)
		if at := uint32(base) + uint32(i); !slices.Contains(ev.counted, at) {
			ev.counted = append(ev.counted, at)
			count++
		}
		sl.data = slotData(min(uint32(d&slotMsMask), ev.msOfDay), max(uint32(d>>slotMsBits&slotMsMask), ev.msOfDay), count)
		if count == slotCountMax {
			r.writeBack(sl)
		}
		return true
	}
	return false
}

// recorded counts the event being matched for the value of the miss
// cache's hash h, and reports whether it could: whether the value has a
// slot, which also means that it matched nothing in the current Snapshot
// (the slots are emptied when it changes, see dropSlots). Match asks it
// before the miss cache: a value with a slot then costs one probe instead
// of two.
func (e *Engine) recorded(ctx context.Context, h uint64) bool {
	if !e.sightSet(ctx) {
		return false
	}
	tag, base, set := e.sight.set(h, &e.ev)
	return e.sight.count(tag, base, set, &e.ev)
}

// sightSet reports whether the event being matched is recorded (it is
// not too old), reading its time first when needed; the slot sets of its
// values are then chosen.
func (e *Engine) sightSet(ctx context.Context) bool {
	if !e.ev.timed {
		e.eventTime(ctx, e.sightNow())
	}
	return !e.ev.skip
}

// dropSlots writes every slot back to its entry and empties it: before a
// batch is handed to the store, and when the Snapshot changes (a slot
// means "matched nothing" only in the Snapshot it was filled under).
func (r *recorder) dropSlots() {
	for i := range r.slots {
		r.writeBack(&r.slots[i])
	}
	clear(r.slots)
}

// load gives slot sl, number at, to tag, for the event being matched,
// which the tag's entry has counted.
func (r *recorder) load(sl *sightSlot, tag uint64, at uint32, ev *eventState) {
	r.writeBack(sl)
	*sl = sightSlot{tag: tag, data: slotData(ev.msOfDay, ev.msOfDay, 0)}
	ev.counted = append(ev.counted, at)
}

// sightEnt is an entry of the batch being filled, with the last event it
// counted: 64 bytes, a cache line, for an entry found again by its tag.
type sightEnt struct {
	vigil.SightingEntry
	seq uint64
}

// touch counts the event being matched in entry idx.
func (r *recorder) touch(idx int32, ev *eventState) {
	en := &r.ents[idx]
	if en.seq != ev.seq {
		en.seq = ev.seq
		en.Count++
	}
	en.FirstSeen = min(en.FirstSeen, ev.ms)
	en.LastSeen = max(en.LastSeen, ev.ms)
}

// eventTime sets the event's time: its @timestamp, or now when it has
// none or one in the future; an event older than the window is skipped. It
// hands the batch to the store when it has waited FlushInterval.
func (e *Engine) eventTime(ctx context.Context, now time.Time) {
	r := e.sight
	ev := &e.ev
	ev.timed, ev.readAt = true, now.UnixNano()
	nowMs := now.UnixMilli()
	ms := e.x.eventMillis(e.tsSlot, nowMs)
	ev.skip = ms < nowMs-r.cfg.Window.Milliseconds()
	ev.ms, ev.day = ms, int32(dayOf(ms))
	ev.msOfDay = uint32(ms - int64(ev.day)*msPerDay)
	ev.mix = dayMix(ev.day)
	if len(r.ents) > 0 && ev.readAt-r.start >= int64(r.cfg.FlushInterval) {
		e.handoff(ctx)
	}
}

// eventMillis returns the time of the event that x read, in Unix
// milliseconds: its @timestamp (the value of slot ts), or nowMs when it has
// none or one at or after nowMs.
func (x *extractor) eventMillis(ts int32, nowMs int64) int64 {
	if t, ok := x.timestamp(ts); ok && t < nowMs {
		return t
	}
	return nowMs
}

// timestamp returns the event's @timestamp (the value of slot ts) in Unix
// milliseconds, and whether it has a valid one; it is parsed once a line.
func (x *extractor) timestamp(ts int32) (int64, bool) {
	if x.tsDone {
		return x.tsMs, x.tsOK
	}
	x.tsDone, x.tsMs, x.tsOK = true, 0, false
	for i := range x.vals {
		v := &x.vals[i]
		if v.slot != ts {
			continue
		}
		if v.str {
			x.tsMs, x.tsOK = parseTimestamp(x.str(v))
		} else {
			x.tsMs, x.tsOK = parseEpochMillis(b2s(x.raw(v)))
		}
		break
	}
	return x.tsMs, x.tsOK
}

// dayMix is what a day mixes into the tags of its values.
func dayMix(day int32) uint64 { return uint64(uint32(day)) * 0x9e3779b97f4a7c15 }

// msPerDay is the length of a day in milliseconds.
const msPerDay = 24 * 60 * 60 * 1000

// dayOf returns the UTC day of a Unix millisecond time, rounded down.
func dayOf(ms int64) int64 {
	d := ms / msPerDay
	if ms%msPerDay < 0 {
		d--
	}
	return d
}

// appendSightingKey appends the sighting key of the event value v under
// lookup l and reports whether v can match at all. The key is the value
// in the matcher's normal form, except that an address is its 16 bytes
// (IPv4 mapped into IPv6), so that a CIDR range is one range of keys, and
// a domain has its labels in reverse order ("example.evil.cdn"), so that a
// domain's subdomains are one range.
func appendSightingKey(dst []byte, l lookup, v string) ([]byte, bool) {
	var n string
	switch l {
	case lookupIP:
		a, ok := matcher.ParseAddr(v)
		if !ok {
			return dst, false
		}
		b := a.As16()
		return append(dst, b[:]...), true
	case lookupDomain:
		n = matcher.NormalizeDomain(v)
		if n == "" {
			return dst, false
		}
		return appendReversedLabels(dst, n), true
	case lookupHash:
		n = matcher.NormalizeHash(v)
	case lookupURL:
		n = matcher.NormalizeURL(v)
	case lookupRegistry:
		n = matcher.NormalizeRegistryPath(v)
	case lookupEmail:
		n = matcher.NormalizeEmail(v)
	case lookupCVE:
		n = matcher.NormalizeCVE(v)
	}
	return append(dst, n...), n != ""
}

// SightingValue returns the value of a sighting's key, in the matcher's
// normal form ("" for an unknown kind).
func SightingValue(kind, key string) string {
	l, ok := lookupNamed(kind)
	if !ok {
		return ""
	}
	return sightingValue(l, key)
}

// sightingValue returns the value of a sighting key of lookup l, in the
// matcher's normal form: the inverse of appendSightingKey.
func sightingValue(l lookup, key string) string {
	switch l {
	case lookupIP:
		if len(key) != 16 {
			return ""
		}
		return netip.AddrFrom16([16]byte([]byte(key))).Unmap().String()
	case lookupDomain:
		return string(appendReversedLabels(nil, key))
	}
	return key
}

// appendReversedLabels appends d with its dot-separated labels in reverse
// order.
func appendReversedLabels(dst []byte, d string) []byte {
	for first := true; ; first = false {
		if !first {
			dst = append(dst, '.')
		}
		i := strings.LastIndexByte(d, '.')
		if i < 0 {
			return append(dst, d...)
		}
		dst = append(dst, d[i+1:]...)
		d = d[:i]
	}
}

// parseTimestamp returns the Unix milliseconds of an event's @timestamp:
// an ISO 8601 date and time as Elasticsearch's default date format reads
// it (a fraction and a zone, Z or ±hh:mm, optional; none is UTC), a date
// alone, or a number of milliseconds since the epoch in a string. The
// usual RFC 3339 form is read without package time.
func parseTimestamp(s string) (int64, bool) {
	if ms, ok := parseRFC3339Millis(s); ok {
		return ms, true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), true
		}
	}
	return parseEpochMillis(s)
}

// parseEpochMillis reads a number of milliseconds since the epoch.
func parseEpochMillis(s string) (int64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1<<62 || f < -(1<<62) {
		return 0, false
	}
	return int64(f), true
}

// parseRFC3339Millis reads "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)",
// the form almost every event has, without allocating.
func parseRFC3339Millis(s string) (int64, bool) {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	h, ok4 := num(11, 2)
	mi, ok5 := num(14, 2)
	sec, ok6 := num(17, 2)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	i := 19
	ms := 0
	if s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if i-start < 3 {
				ms = ms*10 + int(s[i]-'0')
			}
			i++
		}
		if i == start {
			return 0, false
		}
		for n := i - start; n < 3; n++ {
			ms *= 10
		}
	}
	off := 0
	switch {
	case i == len(s)-1 && s[i] == 'Z':
	case i == len(s)-6 && (s[i] == '+' || s[i] == '-') && s[i+3] == ':':
		oh, ok1 := num(i+1, 2)
		om, ok2 := num(i+4, 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		off = (oh*60 + om) * 60
		if s[i] == '-' {
			off = -off
		}
	default:
		return 0, false
	}
	days := daysFromCivil(y, mo, d)
	return ((days*86400+int64(h*3600+mi*60+sec)-int64(off))*1000 + int64(ms)), true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to y-m-d (proleptic
// Gregorian calendar).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
