package detect

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/matcher"
)

// Retro-hunts. A RetroHunter checks the indicators that arrived since its
// last run (the live, unexpired documents written after the store's
// retro-hunt watermark) against the sightings of the window, and raises an
// alert for each (sighting, indicator) that matches, through the same
// store and outbox as live matching. It indexes the new indicators alone,
// as a Snapshot, so that a sighting matches exactly when an event with its
// value would have: CIDR ranges, subdomains, URLs with and without a
// scheme. To find the sightings, it looks up the keys (and key ranges:
// CIDR ranges, a domain's subdomains) that an indicator can match; when
// one kind has more of them than ScanAbove, it reads that kind's sightings
// whole instead. The watermark moves after the alerts are stored, so a
// crash makes the next run check the same indicators again; alert ids are
// stable (a hash of the rule, the sighting's event and the indicator), so
// nothing is doubled.

// RetroStore is what a retro-hunt reads and writes. *sqlite.DB implements
// it.
type RetroStore interface {
	Documents
	// Sync folds every page written into the live views.
	Sync(ctx context.Context) error
	// RetroHuntMark and SetRetroHuntMark read and move the watermark.
	RetroHuntMark(ctx context.Context) (int64, error)
	SetRetroHuntMark(ctx context.Context, seg int64) error
	// LiveAfter calls fn for each live, unexpired indicator and
	// vulnerability document written after the watermark after, and
	// returns the watermark to go on from.
	LiveAfter(ctx context.Context, after int64, fn func(vigil.Document) error) (int64, error)
	// Sightings calls fn for each sighting in the ranges last seen at or
	// after since.
	Sightings(ctx context.Context, since time.Time, rs []vigil.SightingRange, fn func(vigil.Sighting) error) error
	// AddDetections stores alerts and queues their deliveries.
	AddDetections(ctx context.Context, dets []vigil.Detection, deliveries []vigil.Delivery) (int, error)
}

// RetroStats counts what a retro-hunt did.
type RetroStats struct {
	// Indicators counts the documents new or changed since the last hunt
	// that hold a value an enabled rule matches.
	Indicators int
	// Lookups counts the keys and key ranges looked up among the
	// sightings; Scanned names the kinds read whole instead.
	Lookups int
	Scanned []string
	// Sightings counts the (kind, value) sightings that matched.
	Sightings int
	// Alerts counts the alerts raised, Stored those new in the store.
	Alerts int
	Stored int
	// MissingDocs counts matched indicators whose document was gone from
	// the store when the alert was built.
	MissingDocs int
}

// DefaultScanAbove is the default of RetroHunter.ScanAbove.
const DefaultScanAbove = 50000

// retroBatch is how many alerts a hunt stores in one transaction.
const retroBatch = 1024

// RetroHunter runs retro-hunts. It is not safe for concurrent use.
type RetroHunter struct {
	// ScanAbove is how many keys and ranges of one kind are looked up at
	// most; past it, every sighting of the kind in the window is read and
	// matched. 0 means DefaultScanAbove.
	ScanAbove int

	store  RetroStore
	window time.Duration
	clock  vigil.Clock
	rules  []*activeRule
	rule   [len(lookupNames)]int32 // per lookup: its rule, or -1
	meta   metaCache
}

// NewRetroHunter returns a RetroHunter of the rules of cfg (enabled, their
// fields and actions) that checks new indicators against the sightings of
// the last window, telling the time with clock (the wall clock when nil).
func NewRetroHunter(cfg Config, store RetroStore, window time.Duration, clock vigil.Clock) (*RetroHunter, error) {
	rules, err := compileRules(cfg)
	if err != nil {
		return nil, err
	}
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	h := &RetroHunter{store: store, window: window, clock: clock, rules: rules}
	for i := range h.rule {
		h.rule[i] = -1
	}
	for i, r := range rules {
		h.rule[r.lookup] = int32(i)
	}
	h.meta.max = cfg.IndicatorCache
	if h.meta.max <= 0 {
		h.meta.max = DefaultIndicatorCache
	}
	return h, nil
}

// Run checks the indicators written since the last run against the
// sightings of the window, stores the alerts, and moves the watermark.
func (h *RetroHunter) Run(ctx context.Context) (RetroStats, error) {
	var st RetroStats
	if err := h.store.Sync(ctx); err != nil {
		return st, errf("retro-hunt: %w", err)
	}
	mark, err := h.store.RetroHuntMark(ctx)
	if err != nil {
		return st, errf("retro-hunt: %w", err)
	}
	scanAbove := h.ScanAbove
	if scanAbove <= 0 {
		scanAbove = DefaultScanAbove
	}
	var b matcher.Builder
	snap := &Snapshot{}
	var c candidates
	hi, err := h.store.LiveAfter(ctx, mark, func(d vigil.Document) error {
		inds, err := matcher.FromDocument(d)
		if err != nil {
			return nil // nothing a rule matches
		}
		ref, n := snap.refs.n, 0
		for _, ind := range inds {
			l, ok := typeLookup(ind.Type)
			if !ok || h.rule[l] < 0 {
				continue
			}
			ind.Ref = ref
			if b.Add(ind) != nil {
				continue
			}
			n++
			c.add(l, ind.Value, scanAbove)
		}
		if n == 0 {
			return nil
		}
		st.Indicators++
		_, err = snap.refs.add(d)
		return err
	})
	if err != nil {
		return st, errf("retro-hunt: %w", err)
	}
	if st.Indicators > 0 {
		snap.index = b.Build()
		if err := h.hunt(ctx, snap, &c, &st); err != nil {
			return st, err
		}
	}
	if hi != mark {
		if err := h.store.SetRetroHuntMark(ctx, hi); err != nil {
			return st, errf("retro-hunt: %w", err)
		}
	}
	return st, nil
}

// retroHit is a sighting (kind, value) that matched new indicators: the
// sum of its days, and the day it was seen last.
type retroHit struct {
	l     lookup
	last  vigil.Sighting // the day seen last: its event is referred to
	first time.Time
	count int64
	days  []int64
	refs  []uint32
}

// hunt finds the sightings that the indicators of snap match and stores
// their alerts.
func (h *RetroHunter) hunt(ctx context.Context, snap *Snapshot, c *candidates, st *RetroStats) error {
	now := h.clock.Now()
	rs := c.ranges(st)
	hits := map[string]*retroHit{}
	var refs []uint32
	err := h.store.Sightings(ctx, now.Add(-h.window), rs, func(s vigil.Sighting) error {
		l, ok := lookupNamed(s.Kind)
		if !ok || h.rule[l] < 0 {
			return nil
		}
		day := dayOf(s.FirstSeen.UnixMilli())
		k := s.Kind + "\x00" + s.Key
		if hit := hits[k]; hit != nil {
			if !slices.Contains(hit.days, day) { // a row in two ranges comes twice
				hit.add(s, day)
			}
			return nil
		}
		refs = lookupValue(snap.index, l, sightingValue(l, s.Key), now, refs[:0])
		if len(refs) == 0 {
			return nil
		}
		hit := &retroHit{l: l, last: s, first: s.FirstSeen, count: s.Count, days: []int64{day},
			refs: slices.Compact(slices.Sorted(slices.Values(refs)))}
		hits[k] = hit
		return nil
	})
	if err != nil {
		return errf("retro-hunt: %w", err)
	}
	st.Sightings = len(hits)
	sorted := make([]*retroHit, 0, len(hits))
	for _, hit := range hits {
		sorted = append(sorted, hit)
	}
	slices.SortFunc(sorted, func(a, b *retroHit) int {
		return cmp.Or(strings.Compare(a.last.Kind, b.last.Kind), strings.Compare(a.last.Key, b.last.Key))
	})
	var dets []vigil.Detection
	store := func() error {
		n, err := h.store.AddDetections(ctx, dets, Deliveries(dets))
		if err != nil {
			return errf("retro-hunt: %w", err)
		}
		st.Stored += n
		clear(dets)
		dets = dets[:0]
		return nil
	}
	for _, hit := range sorted {
		r := h.rules[h.rule[hit.l]]
		value := sightingValue(hit.l, hit.last.Key)
		for _, ref := range hit.refs {
			m, err := h.meta.get(ctx, snap, h.store, ref)
			if err != nil {
				return errf("retro-hunt: %w", err)
			}
			if m.missing {
				st.MissingDocs++
			}
			id := alertID(r.ID, hit.last.Event, []DocRef{m.doc})
			dets = append(dets, vigil.Detection{
				ID: id, RuleID: r.ID, RuleName: r.Name, Timestamp: now,
				Actions: slices.Clone(r.actions), Source: retroAlert(r, hit, value, m, id, now),
			})
			st.Alerts++
			if len(dets) >= retroBatch {
				if err := store(); err != nil {
					return err
				}
			}
		}
	}
	if len(dets) > 0 {
		return store()
	}
	return nil
}

// add adds another day of the sighting.
func (hit *retroHit) add(s vigil.Sighting, day int64) {
	hit.days = append(hit.days, day)
	hit.count += s.Count
	if s.FirstSeen.Before(hit.first) {
		hit.first = s.FirstSeen
	}
	if s.LastSeen.After(hit.last.LastSeen) {
		hit.last = s
	}
}

// typeLookup returns the rule lookup that matches indicators of type typ.
func typeLookup(typ string) (lookup, bool) {
	switch typ {
	case matcher.TypeIPv4, matcher.TypeIPv6:
		return lookupIP, true
	case matcher.TypeDomain:
		return lookupDomain, true
	case matcher.TypeURL:
		return lookupURL, true
	case matcher.TypeFile:
		return lookupHash, true
	case matcher.TypeEmail:
		return lookupEmail, true
	case matcher.TypeRegistry:
		return lookupRegistry, true
	case matcher.TypeVulnerability:
		return lookupCVE, true
	}
	return 0, false
}

// candidates are the sighting keys and key ranges that new indicators can
// match, per lookup; all marks the lookups whose sightings are read whole.
type candidates struct {
	rs  [len(lookupNames)][]vigil.SightingRange
	all [len(lookupNames)]bool
}

func (c *candidates) add(l lookup, v string, scanAbove int) {
	if c.all[l] {
		return
	}
	c.rs[l] = appendCandidates(c.rs[l], l, v)
	if len(c.rs[l]) > scanAbove {
		c.all[l], c.rs[l] = true, nil
	}
}

// ranges returns every lookup's ranges, de-duplicated, and counts them.
func (c *candidates) ranges(st *RetroStats) []vigil.SightingRange {
	var out []vigil.SightingRange
	for l := range c.rs {
		if c.all[l] {
			out = append(out, vigil.SightingRange{Kind: lookupNames[l], All: true})
			st.Scanned = append(st.Scanned, lookupNames[l])
			continue
		}
		rs := c.rs[l]
		slices.SortFunc(rs, func(a, b vigil.SightingRange) int {
			return cmp.Or(strings.Compare(a.Lo, b.Lo), strings.Compare(a.Hi, b.Hi), cmp.Compare(btoi(a.Prefix), btoi(b.Prefix)))
		})
		rs = slices.Compact(rs)
		st.Lookups += len(rs)
		out = append(out, rs...)
	}
	return out
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// appendCandidates appends the sighting keys and key ranges that the
// indicator value v of lookup l can match: a superset of the sightings it
// matches, which the index then decides on.
func appendCandidates(dst []vigil.SightingRange, l lookup, v string) []vigil.SightingRange {
	kind := lookupNames[l]
	exact := func(key []byte) {
		if len(key) > 0 && len(key) <= MaxSightingKey {
			dst = append(dst, vigil.SightingRange{Kind: kind, Lo: string(key)})
		}
	}
	key, ok := appendSightingKey(nil, l, v)
	if ok {
		exact(key)
	}
	switch l {
	case lookupIP:
		if !ok {
			if lo, hi, ok := cidrKeys(v); ok {
				dst = append(dst, vigil.SightingRange{Kind: kind, Lo: lo, Hi: hi})
			}
		}
	case lookupDomain:
		// Subdomains: keys that start with the reversed domain and a dot.
		if ok {
			dst = append(dst, vigil.SightingRange{Kind: kind, Lo: string(key) + ".", Prefix: true})
		}
	case lookupURL:
		// An event URL matches an indicator without a scheme through its
		// http or https form, and one without a scheme matches an
		// indicator with one (see matcher.Index.MatchURL).
		n := string(key)
		if rest, found := strings.CutPrefix(n, "http://"); found {
			exact([]byte(matcher.NormalizeURL(rest)))
		} else if rest, found := strings.CutPrefix(n, "https://"); found {
			exact([]byte(matcher.NormalizeURL(rest)))
		} else if ok && !strings.Contains(n, "://") {
			for _, sp := range [...][2]string{{"http://", ":443"}, {"https://", ":80"}} {
				exact([]byte(matcher.NormalizeURL(sp[0] + n)))
				if p, ok := withPort(n, sp[1]); ok {
					exact([]byte(matcher.NormalizeURL(sp[0] + p)))
				}
			}
		}
	}
	return dst
}

// withPort returns the URL u (without a scheme) with port after its host,
// when its authority has no port.
func withPort(u, port string) (string, bool) {
	end := strings.IndexAny(u, "/?#")
	if end < 0 {
		end = len(u)
	}
	auth := u[:end]
	host := auth[strings.LastIndexByte(auth, '@')+1:]
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", false
		}
	} else if strings.Contains(host, ":") {
		return "", false
	}
	return auth + port + u[end:], true
}

// cidrKeys returns the first and last sighting keys of the addresses in
// the CIDR range v, as the matcher reads ranges: masked, IPv4-mapped ranges
// of /96 and longer as IPv4.
func cidrKeys(v string) (lo, hi string, ok bool) {
	p, err := netip.ParsePrefix(strings.TrimSpace(v))
	if err != nil {
		return "", "", false
	}
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits = a.Unmap(), bits-96
	}
	first := netip.PrefixFrom(a, bits).Masked().Addr().As16()
	if a.Is4() {
		bits += 96
	}
	last := first
	for i := bits; i < 128; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	return string(first[:]), string(last[:]), true
}

// Retro-hunt alert layout. The event is not kept, so the alert is built
// from the sighting: @timestamp is when the alert was raised; event.id
// (when the event had one) and event.kind "signal"; the event field with
// the value (in normal form); rule.id and rule.name; threat.enrichments
// with the one indicator, as live alerts write them (matched.atomic is the
// value in normal form); kibana.alert as live alerts have it, with
// original_time the referred event's @timestamp; and vigil.retrohunt:
// first_seen, last_seen and count of the events in the window that carried
// the value, and reference, the event referred to (event.id:… or line:…).

// retroReserved are the fields a retro-hunt alert sets; an event field
// among them (a mapping such as rule.id) is not copied.
var retroReserved = []string{"@timestamp", "event.id", "event.kind", "rule.id", "rule.name", "threat.enrichments", "kibana.alert", "vigil.retrohunt"}

func retroAlert(r *activeRule, hit *retroHit, value string, m *indicatorMeta, id string, now time.Time) []byte {
	var doc jsonObject
	doc.set("@timestamp", appendJSONString(nil, now.UTC().Format(timeFormat)))
	if eid, ok := strings.CutPrefix(hit.last.Event, "event.id:"); ok {
		doc.set("event.id", appendJSONString(nil, eid))
	}
	doc.set("event.kind", []byte(`"signal"`))
	atomic := appendJSONString(nil, value)
	field := hit.last.Field
	if !slices.ContainsFunc(retroReserved, func(p string) bool {
		return field == p || strings.HasPrefix(field, p+".") || strings.HasPrefix(p, field+".")
	}) {
		doc.set(field, atomic)
	}
	doc.set("rule.id", appendJSONString(nil, r.ID))
	doc.set("rule.name", appendJSONString(nil, r.Name))
	en := enrichment{meta: m, field: field, atomic: atomic}
	doc.set("threat.enrichments", append(appendEnrichment([]byte{'['}, &en), ']'))
	orig := appendJSONString(nil, hit.last.EventTime.UTC().Format(timeFormat))
	doc.set("kibana.alert", append(appendAlertMembers([]byte{'{'}, r, id, orig), '}'))
	rh := []byte(`{"first_seen":`)
	rh = appendJSONString(rh, hit.first.UTC().Format(timeFormat))
	rh = append(rh, `,"last_seen":`...)
	rh = appendJSONString(rh, hit.last.LastSeen.UTC().Format(timeFormat))
	rh = append(rh, `,"count":`...)
	rh = strconv.AppendInt(rh, hit.count, 10)
	rh = append(rh, `,"reference":`...)
	rh = appendJSONString(rh, hit.last.Event)
	doc.set("vigil.retrohunt", append(rh, '}'))
	return doc.appendTo(nil)
}

// jsonObject is a JSON object built member by member, in order: a value
// is a JSON text ([]byte) or a nested *jsonObject.
type jsonObject struct {
	keys []string
	vals []any
}

// set sets the member at the dotted path to the JSON text raw, creating
// the objects on the way. It sets nothing and reports false when the path
// is taken: it ends at a member already set, or runs through one that is
// not an object.
func (o *jsonObject) set(path string, raw []byte) bool {
	part, rest, nested := strings.Cut(path, ".")
	i := slices.Index(o.keys, part)
	if !nested {
		if i >= 0 {
			return false
		}
		o.keys, o.vals = append(o.keys, part), append(o.vals, raw)
		return true
	}
	if i < 0 {
		child := &jsonObject{}
		child.set(rest, raw)
		o.keys, o.vals = append(o.keys, part), append(o.vals, child)
		return true
	}
	child, ok := o.vals[i].(*jsonObject)
	return ok && child.set(rest, raw)
}

func (o *jsonObject) appendTo(out []byte) []byte {
	out = append(out, '{')
	for i, k := range o.keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		switch v := o.vals[i].(type) {
		case []byte:
			out = append(out, v...)
		case *jsonObject:
			out = v.appendTo(out)
		}
	}
	return append(out, '}')
}
