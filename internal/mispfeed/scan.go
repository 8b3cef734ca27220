package mispfeed

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/config"
)

// iocHash identifies an IOC in a device's seen set: the 64-bit FNV-1a of
// "type|value" (the stored sets depend on it never changing).
func iocHash(typ, value string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(typ); i++ {
		h = (h ^ uint64(typ[i])) * prime
	}
	h = (h ^ '|') * prime
	for i := 0; i < len(value); i++ {
		h = (h ^ uint64(value[i])) * prime
	}
	return h
}

// rank is what the limit chooses new IOCs by: the most severe, then the
// most recently updated, first.
type rank struct {
	h     uint64
	level int
	ts    time.Time
	c     *candidate // the IOC, enriched, while the new ones fit in room
}

func (a *rank) compare(b *rank) int {
	if c := cmp.Compare(a.level, b.level); c != 0 {
		return c
	}
	if c := b.ts.Compare(a.ts); c != 0 {
		return c
	}
	return cmp.Compare(a.h, b.h)
}

// scan reads the group's live indicators. seen is the hash set of all of
// them; fresh are those not in prev (all of them before the first pull),
// the best room of them, with their enrichment, one per MISP value, best
// first. While no more than room IOCs are new, the read enriches them as
// it goes, and one read is enough. When more are new, it reads the group
// a second time: the first read ranks them, holding 70 bytes or so per
// new IOC, and the second enriches the chosen ones only, so that the
// first pull of a group of millions holds no more than the limit's worth
// of enrichment.
func (s *Service) scan(ctx context.Context, g *config.MISPGroup, prev []uint64, pulled bool, room int, st *PullStats) (seen []uint64, fresh []*candidate, err error) {
	var ranks []rank
	at := map[uint64]int{} // index in ranks
	seen = make([]uint64, 0, len(prev))
	// keep: the new IOCs are enriched as they come (ranks[i].c); the
	// workers read it, and it only ever turns false.
	var keep atomic.Bool
	keep.Store(room > 0)
	var firstErr error
	err = s.read(ctx, g, func(v *fastjson.Value, r *docRead) {
		isNew := false
		for i := range r.vals {
			hv := &r.vals[i]
			if pulled {
				_, found := slices.BinarySearch(prev, hv.h)
				hv.new = !found
			} else {
				hv.new = true
			}
			isNew = isNew || hv.new
		}
		if !isNew {
			return
		}
		if keep.Load() {
			e := enrich(v)
			r.enr, r.level = &e, e.ThreatLevel
			return
		}
		r.level = threatLevel(severity(v))
	}, func(r *docRead) {
		if r.err != nil {
			st.Invalid++
			firstErr = cmp.Or(firstErr, fmt.Errorf("%s %q: %w", r.dataset, r.key, r.err))
		}
		shared := false
		for _, hv := range r.vals {
			seen = append(seen, hv.h)
			if !hv.new {
				continue
			}
			i, known := at[hv.h]
			if known {
				ranks[i].level = min(ranks[i].level, r.level)
				if r.ts.After(ranks[i].ts) {
					ranks[i].ts = r.ts
				}
			} else {
				i = len(ranks)
				at[hv.h] = i
				ranks = append(ranks, rank{h: hv.h, level: r.level, ts: r.ts})
			}
			if !keep.Load() {
				continue
			}
			if len(ranks) > room {
				// Too many: the second read enriches the chosen ones.
				keep.Store(false)
				for i := range ranks {
					ranks[i].c = nil
				}
				continue
			}
			addTo(&ranks[i].c, hv.value, r.enr, &shared)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	if firstErr != nil {
		s.log().Warn("misp: indicators left out of the feed", "group", g.Name, "count", st.Invalid, "first", firstErr.Error())
	}
	clear(at)
	slices.Sort(seen)
	seen = slices.Compact(seen)
	st.Live, st.New = len(seen), len(ranks)
	if len(ranks) == 0 || room == 0 {
		st.Dropped = len(ranks)
		return seen, nil, nil
	}
	slices.SortFunc(ranks, func(a, b rank) int { return a.compare(&b) })
	if keep.Load() {
		fresh = make([]*candidate, len(ranks))
		for i := range ranks {
			fresh[i] = ranks[i].c
		}
		return seen, fresh, nil
	}
	st.Dropped = len(ranks) - room
	order := make(map[uint64]int, room)
	for i, r := range ranks[:room] {
		order[r.h] = i
	}
	ranks = nil
	fresh = make([]*candidate, room)
	err = s.read(ctx, g, func(v *fastjson.Value, r *docRead) {
		for _, hv := range r.vals {
			if _, ok := order[hv.h]; ok {
				e := enrich(v)
				r.enr = &e
				return
			}
		}
	}, func(r *docRead) {
		if r.enr == nil {
			return
		}
		shared := false
		for _, hv := range r.vals {
			if i, ok := order[hv.h]; ok {
				addTo(&fresh[i], hv.value, r.enr, &shared)
			}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	// An IOC that left the live view between the two reads is not given.
	return seen, slices.DeleteFunc(fresh, func(c *candidate) bool { return c == nil }), nil
}

// addTo folds a document's enrichment e into the candidate *c of one of
// its values, making it if nil. shared says whether a candidate already
// holds e's lists: the first one made takes them, the others copy them.
func addTo(c **candidate, val value, e *enrichment, shared *bool) {
	if *c != nil {
		(*c).merge(e)
		return
	}
	*c = &candidate{value: val, enrichment: *e}
	if *shared {
		(*c).cloneLists()
	}
	*shared = true
}

// cloneLists gives e lists of its own, so that merging into it leaves the
// document's enrichment it was copied from alone.
func (e *enrichment) cloneLists() {
	for _, l := range []*[]string{&e.Sources, &e.Alerts, &e.UserTags, &e.SystemTags, &e.ThreatActors, &e.Malware, &e.Campaigns} {
		*l = slices.Clone(*l)
	}
}

// docRead is what a read makes of one live indicator document.
type docRead struct {
	dataset, key string
	ts           time.Time
	skip         bool // the group does not select it
	vals         []hashedValue
	err          error // not JSON, or a value MISP would reject
	level        int   // set by the read's work
	enr          *enrichment
}

type hashedValue struct {
	value
	h   uint64 // iocHash
	new bool   // set by the read's work
}

// docBatch is a run of documents on their way through a read.
type docBatch struct {
	docs  []vigil.Document // their Source in buf
	buf   []byte
	reads []docRead
	done  chan struct{} // closed when reads are made
	// panicked is what a worker recovered while making reads (they are
	// then not applied).
	panicked any
}

// batchDocs is how many documents a worker takes at a time.
const batchDocs = 256

// read reads the live indicator documents the group selects on
// GOMAXPROCS goroutines: each parses documents, finds their MISP values
// and calls work with the document and its docRead; then apply is called
// with each docRead, one at a time, in the order of the live view, so
// what it builds is what one goroutine would. A few batches of documents
// are in flight at a time.
func (s *Service) read(ctx context.Context, g *config.MISPGroup, work func(v *fastjson.Value, r *docRead), apply func(r *docRead)) error {
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *docBatch)
	inOrder := make(chan *docBatch, 2*workers) // its capacity bounds the batches in flight
	free := make(chan *docBatch, 2*workers+1)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var p fastjson.Parser
			for b := range jobs {
				func() {
					defer close(b.done)
					defer func() { b.panicked = recover() }()
					for i := range b.docs {
						readDoc(&p, g, &b.docs[i], &b.reads[i], work)
					}
				}()
			}
		})
	}
	var readErr error
	var readPanic any // the store's, in Live
	go func() {
		defer close(inOrder)
		defer close(jobs)
		defer func() { readPanic = recover() }()
		var b *docBatch
		send := func() {
			if n := len(b.docs) - len(b.reads); n > 0 {
				b.reads = append(b.reads, make([]docRead, n)...)
			}
			inOrder <- b
			jobs <- b
			b = nil
		}
		readErr = s.liveIndicators(ctx, g, func(d *vigil.Document) {
			if b == nil {
				select {
				case b = <-free:
				default:
					b = &docBatch{buf: make([]byte, 0, 256<<10)}
				}
				b.done, b.panicked = make(chan struct{}), nil
			}
			start := len(b.buf)
			b.buf = append(b.buf, d.Source...)
			d.Source = b.buf[start:len(b.buf):len(b.buf)]
			b.docs = append(b.docs, *d)
			if len(b.docs) == batchDocs {
				send()
			}
		})
		if b != nil {
			send()
		}
	}()
	var panicked any
	for b := range inOrder {
		<-b.done
		if panicked == nil {
			panicked = b.panicked
		}
		for i := range b.docs {
			if panicked == nil && !b.reads[i].skip {
				apply(&b.reads[i])
			}
		}
		clear(b.docs)
		b.docs, b.buf = b.docs[:0], b.buf[:0]
		select {
		case free <- b:
		default:
		}
	}
	wg.Wait()
	if panicked == nil {
		panicked = readPanic
	}
	if panicked != nil {
		// Raised again here, where it was raised before the read ran on
		// goroutines of its own: net/http recovers it.
		panic(panicked)
	}
	return readErr
}

// readDoc makes the docRead of a document.
func readDoc(p *fastjson.Parser, g *config.MISPGroup, d *vigil.Document, r *docRead, work func(*fastjson.Value, *docRead)) {
	*r = docRead{dataset: d.Dataset, key: d.Key, ts: d.Timestamp, vals: r.vals[:0]}
	v, err := p.ParseBytes(d.Source)
	if err != nil {
		r.err = fmt.Errorf("not JSON: %w", err)
		return
	}
	if !selects(g, d.Dataset, v) {
		r.skip = true
		return
	}
	vals, err := values(v, d.Key)
	r.err = err
	for _, val := range vals {
		r.vals = append(r.vals, hashedValue{value: val, h: iocHash(val.Type, val.Value)})
	}
	work(v, r)
}

// liveIndicators calls fn with each live indicator document of the
// group's datasets and published types. The document is fn's until it
// returns.
func (s *Service) liveIndicators(ctx context.Context, g *config.MISPGroup, fn func(d *vigil.Document)) error {
	// One scan per dataset: the store filters on one type only, and a
	// scan per type would read the dataset once for each.
	types := publishedTypes(g.Types)
	filter := ""
	if len(types) == 1 {
		filter = types[0]
	}
	datasets := g.Datasets
	if len(datasets) == 0 {
		datasets = []string{""}
	}
	for _, ds := range datasets {
		err := s.Live.Live(ctx, vigil.LiveFilter{View: vigil.ViewIndicators, Dataset: ds, Type: filter}, func(d vigil.Document) error {
			if slices.Contains(types, d.Type) {
				fn(&d)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("misp: read the live indicators of group %q: %w", g.Name, err)
		}
	}
	return nil
}
