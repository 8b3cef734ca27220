// Package vigil is a self-hosted threat-intelligence hub: it collects
// indicators, alerts and vulnerabilities from vendor APIs, normalizes them to
// the Elastic Common Schema (ECS), keeps raw records and de-duplicated live
// views in a store, and serves them.
//
// This root package holds the domain vocabulary shared by every other
// package. It imports only the standard library.
package vigil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Version is the program version, set at build time with -ldflags.
var Version = "dev"

// Clock tells the time. Everything that expires takes a Clock so that tests
// can move time by hand.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// ClockFunc adapts a function to the Clock interface.
type ClockFunc func() time.Time

// Now calls f.
func (f ClockFunc) Now() time.Time { return f() }

// View names a live view: the de-duplicated, expiring set of documents of one
// kind. Each dataset writes into exactly one view.
type View string

// The live views.
const (
	ViewIndicators      View = "indicators"
	ViewAlerts          View = "alerts"
	ViewVulnerabilities View = "vulnerabilities"
)

// Views lists every view, in display order.
var Views = []View{ViewIndicators, ViewAlerts, ViewVulnerabilities}

// ParseView returns the view named s.
func ParseView(s string) (View, bool) {
	for _, v := range Views {
		if string(v) == s {
			return v, true
		}
	}
	return "", false
}

// LatestMaxAge is how long an alert or a vulnerability stays in its live
// view after its last update, as Elastic's latest transforms keep them.
const LatestMaxAge = 180 * 24 * time.Hour

// Document is one normalized record: an ECS document plus the facts the
// store needs to place it in a live view.
type Document struct {
	// Dataset is the ECS event.dataset, e.g. "ti_rapid7_threat_command.ioc".
	Dataset string
	// View is the live view the document belongs to.
	View View
	// Key identifies the document within (View, Dataset): the indicator's
	// threat.indicator.name, the alert's event.id or the CVE's
	// vulnerability.id. A document with an empty Key cannot be keyed and is
	// kept in the raw store only.
	Key string
	// Type is a short type for listing and filtering, e.g. the
	// threat.indicator.type of an indicator.
	Type string
	// Timestamp is the document's @timestamp. For one key, the newest wins.
	Timestamp time.Time
	// ExpiresAt is when the document leaves the live view.
	ExpiresAt time.Time
	// Error is set when normalization failed. Such a document carries
	// error.message and event.kind "pipeline_error", is kept in the raw
	// store, and never enters a live view.
	Error string
	// Source is the ECS document as JSON (Elasticsearch's _source).
	Source []byte
	// Loc is where the store that read the document keeps this version
	// of it, when that store can read it back from there (the embedded
	// store sets it in Live); zero otherwise. Only that store reads it.
	Loc Loc
}

// Loc locates one version of a stored document for the store that set it:
// its raw segment, the start of the block of the segment that holds it,
// and its offset and length in the segment. The zero Loc locates nothing.
type Loc struct {
	Seg             int64
	Block, Off, Len uint32
}

// Valid reports whether l can locate a document: a segment, a length,
// and an offset within or past the start of its block.
func (l Loc) Valid() bool { return l.Seg > 0 && l.Len > 0 && l.Off >= l.Block }

// Live reports whether the document may enter a live view.
func (d *Document) Live() bool { return d.Error == "" && d.Key != "" }

// Page is one unit of collection: the documents of one API page and the
// collector's cursor after it. A store writes a page atomically, so a crash
// never leaves documents without the cursor that covers them, or the reverse.
type Page struct {
	Source  string
	Dataset string
	Docs    []Document
	// Cursor is the collector's opaque state after this page. Nil leaves
	// the saved cursor unchanged.
	Cursor []byte
	// NDJSON, when set, holds the Sources of Docs end to end, each
	// followed by a newline, as an ecs.Arena lays them out: the store may
	// write it instead of copying the documents. A store uses it only
	// where it finds each Source in it, in order.
	NDJSON []byte
}

// WriteStats counts what a page write did.
type WriteStats struct {
	Raw int // documents written to the raw store
	// Live counts the documents offered to the live views: those that
	// may enter one (no pipeline error) and have a key. Whether each one
	// becomes its key's live row (the newest @timestamp wins) is settled
	// when the store merges it, which may be after WritePage returns.
	Live int
	// Stale counts the documents found older than the live row they would
	// replace, when the store knows it at write time. A store that merges
	// live views in batches (internal/sqlite) learns it only at the merge
	// and reports 0 here.
	Stale    int
	Unkeyed  int // live-eligible documents without a key
	Rejected int // pipeline errors
}

// LiveFilter selects documents of a live view.
type LiveFilter struct {
	View    View
	Dataset string // empty: every dataset
	Type    string // empty: every type
	Limit   int    // 0: no limit
	// Transient lets the store reuse a Document's Source once fn has
	// returned, for a reader that copies what it keeps of it (the matcher's
	// index build): a read of millions of documents then does not make a
	// fresh buffer for each segment of them.
	Transient bool
}

// PruneStats counts what a prune removed.
type PruneStats struct {
	RawSegments int64 // raw segments past retention removed
	RawDocs     int64 // documents in those segments
	// Compacted counts the live documents copied out of raw segments
	// past retention, so that the raw records can go while the live
	// views keep every document.
	Compacted int64
	Expired   int64 // expired live-view rows removed
}

// Store keeps raw documents, live views and collector cursors.
type Store interface {
	// WritePage writes a page's documents to the raw store and saves its
	// cursor, all in one transaction, and offers the documents to the live
	// views. Live reflects them as soon as WritePage returns; a store may
	// fold them into its materialized live views later, in batches (see
	// Sync).
	WritePage(ctx context.Context, p Page) (WriteStats, error)
	// Sync folds every document written so far into the store's
	// materialized live views, so that they no longer depend on work still
	// to do. A store that merges live views in batches does so on its own
	// once enough documents wait, and when a writer opens it; collectors
	// call Sync at the end of every pull, so that a pull leaves nothing
	// unmerged behind it.
	Sync(ctx context.Context) error
	// Cursor returns the saved cursor of (source, dataset), or nil.
	Cursor(ctx context.Context, source, dataset string) ([]byte, error)
	// Live calls fn for each unexpired document of the view that matches f,
	// each key once, in an order of the store's choosing (the embedded
	// store: the order written).
	Live(ctx context.Context, f LiveFilter, fn func(Document) error) error
	// Prune removes raw documents older than the retention and live rows
	// that have expired.
	Prune(ctx context.Context) (PruneStats, error)
	// Close releases the store.
	Close() error
}

// Collector pulls the datasets of one configured source into the store.
type Collector interface {
	// Name is the source's name, as in the configuration (sources.NAME).
	Name() string
	// Datasets lists the enabled datasets, in pull order.
	Datasets() []string
	// Interval is how often a dataset is pulled under `vigil serve`.
	Interval(dataset string) time.Duration
	// LastCompleted is when the dataset's last window was completed (zero if
	// never).
	LastCompleted(ctx context.Context, dataset string) (time.Time, error)
	// Pull runs one collection cycle of one dataset. It resumes the window a
	// previous run left open. When stop is closed it finishes the page in
	// flight and returns ErrStopped; cancelling ctx aborts at once.
	Pull(ctx context.Context, dataset string, stop <-chan struct{}) (PullResult, error)
	// Check verifies the credentials and prints what the account can use.
	Check(ctx context.Context, w io.Writer) error
}

// PullResult sums up one dataset's pull.
type PullResult struct {
	Source   string
	Dataset  string
	From, To time.Time // the window pulled
	Resumed  bool      // the pull resumed a window a previous run left open
	Pages    int       // pages written by this pull
	Records  int       // records written by this pull
	WriteStats
}

// Progress is reported after every page a pull writes.
type Progress struct {
	Source  string
	Dataset string
	Pages   int
	Records int
}

// ErrStopped is returned by a pull that stopped early because it was asked
// to. Every page written is covered by the saved cursor, so the next pull
// resumes where it stopped.
var ErrStopped = errors.New("stopped before the window was complete; the next pull resumes it")

// ErrCredentials is wrapped by errors that mean the upstream rejected the
// configured credentials. A source that returns it is stopped until its
// configuration is fixed.
var ErrCredentials = errors.New("credentials rejected")

// WritePage writes docs with the collector's cursor (encoded as JSON) as one
// page of res's source and dataset, adds what was written to res, and
// reports progress when progress is not nil. Every collector writes its
// pages through it.
func WritePage(ctx context.Context, s Store, res *PullResult, docs []Document, cursor any, progress func(Progress)) error {
	return WriteArenaPage(ctx, s, res, docs, nil, cursor, progress)
}

// WriteArenaPage is WritePage for documents a normalizer wrote into an
// arena, whose bytes (the page's NDJSON) the store may write as they are.
func WriteArenaPage(ctx context.Context, s Store, res *PullResult, docs []Document, ndjson []byte, cursor any, progress func(Progress)) error {
	state, err := json.Marshal(cursor)
	if err != nil {
		return fmt.Errorf("%s: encode cursor: %w", res.Source, err)
	}
	st, err := s.WritePage(ctx, Page{Source: res.Source, Dataset: res.Dataset, Docs: docs, Cursor: state, NDJSON: ndjson})
	if err != nil {
		return err
	}
	res.Raw += st.Raw
	res.Live += st.Live
	res.Stale += st.Stale
	res.Unkeyed += st.Unkeyed
	res.Rejected += st.Rejected
	res.Pages++
	res.Records += len(docs)
	if progress != nil {
		progress(Progress{Source: res.Source, Dataset: res.Dataset, Pages: res.Pages, Records: res.Records})
	}
	return nil
}

// Detection is an alert that a detection rule raised on an event.
type Detection struct {
	// ID is the alert's stable id: the same (rule, event, indicators)
	// always gives the same ID, so a receiver can drop a duplicate.
	ID       string
	RuleID   string
	RuleName string
	// Timestamp is when the alert was raised.
	Timestamp time.Time
	// Actions names the connectors the alert is queued for.
	Actions []string
	// Source is the alert document as JSON.
	Source []byte
}

// Delivery is one queued delivery of a document (an alert or a warning) to
// one connector.
type Delivery struct {
	ID int64 // the outbox's id, set by the outbox
	// Key is the stable id of what is delivered, sent as the
	// Idempotency-Key header. (Key, Connector) is unique in the outbox.
	Key       string
	Connector string
	Attempts  int    // failed attempts so far
	Subject   string // one-line summary, e.g. an e-mail's subject
	Body      []byte // the document as JSON
}

// Outbox is the persisted queue of deliveries. A delivery stays queued until
// it is done, across restarts.
type Outbox interface {
	// Enqueue queues deliveries; one whose (Key, Connector) is already
	// queued or done is skipped.
	Enqueue(ctx context.Context, ds []Delivery) error
	// DueDeliveries returns up to limit deliveries due at now, oldest first.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error)
	// DeliveryDone marks a delivery done.
	DeliveryDone(ctx context.Context, id int64, at time.Time) error
	// DeliveryFailed counts a failed attempt and makes the delivery due
	// again at next.
	DeliveryFailed(ctx context.Context, id int64, next time.Time, reason string) error
}
