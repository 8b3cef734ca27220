package detect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/vigil-ti/vigil"
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
	return int64(cap(s.refs.data)) + int64(cap(s.refs.blocks))*4 + int64(cap(s.refs.groups))*48
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
	sb.refs = refTable{}
	return s
}

// refTable maps Refs, given in order from 0, to documents. Documents come
// grouped by (view, dataset), as a store's Live reads them, so a group
// holds a run of Refs; keys are length-prefixed in one byte arena, each
// followed by its document's Loc, with the offset of every 16th kept. A
// Loc is written as changes from the one before it in its run of 16: the
// documents come in the order the store keeps them, so the segment and
// block mostly repeat. A Ref costs its key plus about 7 bytes.
type refTable struct {
	data   []byte
	blocks []uint32 // offset in data of Refs 0, 16, 32, …
	groups []refGroup
	n      uint32
	prev   vigil.Loc // the Loc of Ref n-1, within its run of 16
}

type refGroup struct {
	first   uint32
	view    vigil.View
	dataset string
}

const refBlock = 16

// add gives d the next Ref.
func (t *refTable) add(d vigil.Document) (uint32, error) {
	if t.n == math.MaxUint32 {
		return 0, errors.New("detect: more than 4 billion indicator documents")
	}
	if len(t.data)+len(d.Key)+5*binary.MaxVarintLen64 > math.MaxUint32 {
		return 0, errors.New("detect: indicator keys pass 4 GiB")
	}
	ref := t.n
	if g := len(t.groups); g == 0 || t.groups[g-1].view != d.View || t.groups[g-1].dataset != d.Dataset {
		t.groups = append(t.groups, refGroup{first: ref, view: d.View, dataset: d.Dataset})
	}
	if ref%refBlock == 0 {
		t.blocks = append(t.blocks, uint32(len(t.data)))
		t.prev = vigil.Loc{}
	}
	loc := d.Loc
	if loc.Seg <= 0 || loc.Off < loc.Block {
		loc = vigil.Loc{}
	}
	t.data = binary.AppendUvarint(t.data, uint64(len(d.Key)))
	t.data = append(t.data, d.Key...)
	t.data = binary.AppendVarint(t.data, loc.Seg-t.prev.Seg)
	t.data = binary.AppendVarint(t.data, int64(loc.Block)-int64(t.prev.Block))
	t.data = binary.AppendUvarint(t.data, uint64(loc.Off-loc.Block))
	t.data = binary.AppendUvarint(t.data, uint64(loc.Len))
	t.prev = loc
	t.n++
	return ref, nil
}

// get returns the document of ref and its Loc.
func (t *refTable) get(ref uint32) (DocRef, vigil.Loc) {
	if ref >= t.n {
		return DocRef{}, vigil.Loc{}
	}
	g := sort.Search(len(t.groups), func(i int) bool { return t.groups[i].first > ref }) - 1
	p := int(t.blocks[ref/refBlock])
	var loc vigil.Loc
	var key []byte
	for range ref%refBlock + 1 {
		key, loc, p = t.entry(p, loc)
	}
	return DocRef{View: t.groups[g].view, Dataset: t.groups[g].dataset, Key: string(key)}, loc
}

// entry decodes the entry at p, whose Loc changes prev, and returns its
// key, its Loc and where the next entry starts.
func (t *refTable) entry(p int, prev vigil.Loc) ([]byte, vigil.Loc, int) {
	d := t.data
	n, w := binary.Uvarint(d[p:])
	p += w
	key := d[p : p+int(n)]
	p += int(n)
	seg, w := binary.Varint(d[p:])
	p += w
	block, w := binary.Varint(d[p:])
	p += w
	off, w := binary.Uvarint(d[p:])
	p += w
	ln, w := binary.Uvarint(d[p:])
	p += w
	loc := vigil.Loc{Seg: prev.Seg + seg, Block: uint32(int64(prev.Block) + block)}
	loc.Off, loc.Len = loc.Block+uint32(off), uint32(ln)
	return key, loc, p
}
