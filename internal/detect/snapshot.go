package detect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/hugemem"
	"github.com/vigil-ti/vigil/internal/matcher"
)

// Snapshot is an immutable matcher index with the table that maps its Refs
// back to the stored documents (view, dataset, key). It is safe for
// concurrent use.
type Snapshot struct {
	index *matcher.Index
	refs  refTable
}

// DocRef names a stored document of a live view.
type DocRef struct {
	View    vigil.View
	Dataset string
	Key     string
}

// Index returns the snapshot's matcher index.
func (s *Snapshot) Index() *matcher.Index { return s.index }

// Doc returns the document of ref.
func (s *Snapshot) Doc(ref uint32) DocRef {
	d, _ := s.refs.get(ref)
	return d
}

// DocAt returns the document of ref and where the store keeps the version
// the snapshot indexed (zero when it did not say).
func (s *Snapshot) DocAt(ref uint32) (DocRef, vigil.Loc) { return s.refs.get(ref) }

// Documents returns how many documents the snapshot refers to.
func (s *Snapshot) Documents() int { return int(s.refs.n) }

// RefBytes returns the heap size of the table of Refs.
func (s *Snapshot) RefBytes() int64 {
	return s.refs.bytes()
}

// Load builds a Snapshot of every live document of the indicator and
// vulnerability views of store (see matcher.Builder.Load).
func Load(ctx context.Context, store vigil.Store) (*Snapshot, matcher.LoadStats, error) {
	var b matcher.Builder
	s := &Snapshot{}
	st, err := b.Load(ctx, store, s.refs.add)
	if err != nil {
		return nil, st, fmt.Errorf("detect: %w", err)
	}
	s.index = b.Build()
	s.refs.trim()
	return s, st, nil
}

// NewSnapshot builds a Snapshot from documents, as Load does from a store.
// Documents without a value the index holds are skipped.
func NewSnapshot(docs []vigil.Document) (*Snapshot, error) {
	var b matcher.Builder
	s := &Snapshot{}
	for _, d := range docs {
		if n, _ := b.AddDocument(s.refs.n, d); n == 0 {
			continue
		}
		if _, err := s.refs.add(d); err != nil {
			return nil, err
		}
	}
	s.index = b.Build()
	s.refs.trim()
	return s, nil
}

// SnapshotBuilder builds a Snapshot from indicators, without documents:
// benchmarks and tests use it. Documents should come grouped by view and
// dataset, as a store reads them (the table of Refs is smaller).
type SnapshotBuilder struct {
	b    matcher.Builder
	refs refTable
}

// Add indexes the indicators of one document under its next Ref; their
// Refs are ignored.
func (sb *SnapshotBuilder) Add(d DocRef, inds ...matcher.Indicator) error {
	ref := sb.refs.n
	for _, ind := range inds {
		ind.Ref = ref
		if err := sb.b.Add(ind); err != nil {
			return err
		}
	}
	_, err := sb.refs.add(vigil.Document{View: d.View, Dataset: d.Dataset, Key: d.Key})
	return err
}

// Build returns the Snapshot and resets the builder.
func (sb *SnapshotBuilder) Build() *Snapshot {
	s := &Snapshot{index: sb.b.Build(), refs: sb.refs}
	s.refs.trim()
	sb.refs = refTable{}
	return s
}

// refTable maps Refs, given in order from 0, to documents. Documents come
// grouped by (view, dataset), as a store's Live reads them, so a group
// holds a run of Refs. Each Ref is an entry: its key, length-prefixed, and
// its document's Loc, written as changes from the Loc before it in its run
// of 16 Refs (the documents come in the order the store keeps them, so
// the segment and block mostly repeat). A Ref costs its key plus about 7
// bytes. Runs are kept end to end in chunks of refChunk bytes, each run
// in one chunk, with the offset of every run: the table grows without
// copying what it holds (at 10M Refs, growing one slice by doubling
// copied and faulted in about 2 GB).
type refTable struct {
	chunks [][]byte // chunk i holds the offsets [i*refChunk, (i+1)*refChunk)
	runs   []uint32 // offset of the runs of Refs 0, 16, 32, …
	run    []byte   // the run being filled, not in a chunk yet
	groups []refGroup
	n      uint32
	prev   vigil.Loc // the Loc of Ref n-1, within its run
}

type refGroup struct {
	first   uint32
	view    vigil.View
	dataset string
}

const (
	refBlock     = 16 // Refs in a run
	refChunkBits = 25
	refChunk     = 1 << refChunkBits // 32 MiB
)

// add gives d the next Ref.
func (t *refTable) add(d vigil.Document) (uint32, error) {
	if t.n == math.MaxUint32 {
		return 0, errors.New("detect: more than 4 billion indicator documents")
	}
	if t.size()+len(t.run)+len(d.Key)+5*binary.MaxVarintLen64 > math.MaxUint32-refChunk {
		return 0, errors.New("detect: indicator keys pass 4 GiB")
	}
	ref := t.n
	if g := len(t.groups); g == 0 || t.groups[g-1].view != d.View || t.groups[g-1].dataset != d.Dataset {
		t.groups = append(t.groups, refGroup{first: ref, view: d.View, dataset: d.Dataset})
	}
	if ref%refBlock == 0 {
		t.prev = vigil.Loc{}
	}
	loc := d.Loc
	if loc.Seg <= 0 || loc.Off < loc.Block {
		loc = vigil.Loc{}
	}
	r := t.run
	r = binary.AppendUvarint(r, uint64(len(d.Key)))
	r = append(r, d.Key...)
	r = binary.AppendVarint(r, loc.Seg-t.prev.Seg)
	r = binary.AppendVarint(r, int64(loc.Block)-int64(t.prev.Block))
	r = binary.AppendUvarint(r, uint64(loc.Off-loc.Block))
	r = binary.AppendUvarint(r, uint64(loc.Len))
	t.run = r
	t.prev = loc
	t.n++
	if t.n%refBlock == 0 {
		t.flush()
	}
	return ref, nil
}

// size returns the offset where the next run goes if it fits its chunk.
func (t *refTable) size() int {
	if len(t.chunks) == 0 {
		return 0
	}
	return (len(t.chunks)-1)<<refChunkBits + len(t.chunks[len(t.chunks)-1])
}

// flush moves the run filled into a chunk. The first chunk grows as a
// slice does, so that a small table stays small; the next ones are
// whole, on huge pages (fewer page faults as they fill). A run longer
// than a chunk (keys of megabytes) gets a chunk of its own, followed by
// empty ones for the offsets it takes.
func (t *refTable) flush() {
	run := t.run
	last := len(t.chunks) - 1
	switch {
	case last == 0 && cap(t.chunks[0]) < refChunk && len(t.chunks[0])+len(run) <= refChunk:
		// Still growing.
	case last < 0 || len(t.chunks[last])+len(run) > min(cap(t.chunks[last]), refChunk):
		var c []byte
		switch {
		case last < 0:
			c = make([]byte, 0, 64<<10)
		case len(run) > refChunk:
			c = make([]byte, 0, len(run))
		default:
			c = hugemem.Slice[byte](refChunk)[:0]
		}
		t.chunks = append(t.chunks, c)
		for range (len(run) - 1) / refChunk {
			t.chunks = append(t.chunks, nil)
		}
		last = len(t.chunks) - 1 - (len(run)-1)/refChunk
	}
	t.runs = append(t.runs, uint32(last<<refChunkBits+len(t.chunks[last])))
	t.chunks[last] = append(t.chunks[last], run...)
	t.run = run[:0]
}

// trim gives the last chunk back what it does not use, once the table is
// filled: a chunk is allocated whole.
func (t *refTable) trim() {
	if last := len(t.chunks) - 1; last > 0 && cap(t.chunks[last]) > len(t.chunks[last]) {
		t.chunks[last] = slices.Clone(t.chunks[last])
	}
}

// bytes returns the heap the table holds.
func (t *refTable) bytes() int64 {
	n := int64(cap(t.run)) + int64(cap(t.runs))*4 + int64(cap(t.groups))*48
	for _, c := range t.chunks {
		n += int64(cap(c))
	}
	return n
}

// get returns the document of ref and its Loc.
func (t *refTable) get(ref uint32) (DocRef, vigil.Loc) {
	if ref >= t.n {
		return DocRef{}, vigil.Loc{}
	}
	g := sort.Search(len(t.groups), func(i int) bool { return t.groups[i].first > ref }) - 1
	run := t.run
	if r := int(ref / refBlock); r < len(t.runs) {
		p := t.runs[r]
		run = t.chunks[p>>refChunkBits][p&(refChunk-1):]
	}
	var loc vigil.Loc
	var key []byte
	for range ref%refBlock + 1 {
		key, loc, run = refEntry(run, loc)
	}
	return DocRef{View: t.groups[g].view, Dataset: t.groups[g].dataset, Key: string(key)}, loc
}

// refEntry decodes the entry that d starts with, whose Loc changes prev,
// and returns its key, its Loc and the rest of d.
func refEntry(d []byte, prev vigil.Loc) ([]byte, vigil.Loc, []byte) {
	n, w := binary.Uvarint(d)
	d = d[w:]
	key := d[:n]
	d = d[n:]
	seg, w := binary.Varint(d)
	d = d[w:]
	block, w := binary.Varint(d)
	d = d[w:]
	off, w := binary.Uvarint(d)
	d = d[w:]
	ln, w := binary.Uvarint(d)
	loc := vigil.Loc{Seg: prev.Seg + seg, Block: uint32(int64(prev.Block) + block)}
	loc.Off, loc.Len = loc.Block+uint32(off), uint32(ln)
	return key, loc, d[w:]
}
