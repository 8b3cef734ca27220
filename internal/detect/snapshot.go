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
func (s *Snapshot) Doc(ref uint32) DocRef { return s.refs.get(ref) }

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
// holds a run of Refs; keys are length-prefixed in one byte arena, with
// the offset of every 16th kept. A Ref costs its key plus about 1.3 bytes.
type refTable struct {
	data   []byte
	blocks []uint32 // offset in data of Refs 0, 16, 32, …
	groups []refGroup
	n      uint32
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
	if len(t.data)+len(d.Key)+binary.MaxVarintLen64 > math.MaxUint32 {
		return 0, errors.New("detect: indicator keys pass 4 GiB")
	}
	ref := t.n
	if g := len(t.groups); g == 0 || t.groups[g-1].view != d.View || t.groups[g-1].dataset != d.Dataset {
		t.groups = append(t.groups, refGroup{first: ref, view: d.View, dataset: d.Dataset})
	}
	if ref%refBlock == 0 {
		t.blocks = append(t.blocks, uint32(len(t.data)))
	}
	t.data = binary.AppendUvarint(t.data, uint64(len(d.Key)))
	t.data = append(t.data, d.Key...)
	t.n++
	return ref, nil
}

func (t *refTable) get(ref uint32) DocRef {
	if ref >= t.n {
		return DocRef{}
	}
	g := sort.Search(len(t.groups), func(i int) bool { return t.groups[i].first > ref }) - 1
	p := int(t.blocks[ref/refBlock])
	for range ref % refBlock {
		n, w := binary.Uvarint(t.data[p:])
		p += w + int(n)
	}
	n, w := binary.Uvarint(t.data[p:])
	p += w
	return DocRef{View: t.groups[g].view, Dataset: t.groups[g].dataset, Key: string(t.data[p : p+int(n)])}
}
