package threatconnect

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
)

// SourceName is the source's name in the configuration, the CLI and the
// cursor table.
const SourceName = "threatconnect"

// DefaultBatchSize is Elastic's batch_size: the resultLimit of each page.
const DefaultBatchSize = 2000

// Settings configure the collector.
type Settings struct {
	Interval        time.Duration
	InitialInterval time.Duration
	// BatchSize is resultLimit, 1 to MaxResultLimit (0: DefaultBatchSize).
	BatchSize int
	// TQL is ANDed onto the time filter.
	TQL                      string
	IncludeAttributes        bool
	IncludeGroupAssoc        bool
	IncludeGroupAssocAttribs bool
	IncludeIndicatorAssoc    bool
	// ExpirationDuration is ioc_expiration_duration as written.
	ExpirationDuration string
	// Tags are the document tags (nil: defaultTags).
	Tags []string
}

// Fields returns the additional fields the settings ask for, in the order
// Elastic sends them.
func (s Settings) Fields() []string {
	var f []string
	if s.IncludeGroupAssoc {
		f = append(f, FieldAssociatedGroups)
	}
	if s.IncludeGroupAssocAttribs {
		f = append(f, FieldAssociatedGroupAttributes)
	}
	if s.IncludeIndicatorAssoc {
		f = append(f, FieldAssociatedIndicators)
	}
	if s.IncludeAttributes {
		f = append(f, FieldAttributes)
	}
	return f
}

func (s Settings) batch() int {
	switch {
	case s.BatchSize <= 0:
		return DefaultBatchSize
	case s.BatchSize > MaxResultLimit:
		return MaxResultLimit
	}
	return s.BatchSize
}

// Collector pulls ThreatConnect indicators into a store. It has one
// dataset, DatasetIndicator.
type Collector struct {
	Client   *Client
	Store    vigil.Store
	Settings Settings
	Clock    vigil.Clock
	Logger   *slog.Logger
	// Progress, when set, is called after every page.
	Progress func(vigil.Progress)
}

var _ vigil.Collector = (*Collector)(nil)

// Name returns "threatconnect".
func (c *Collector) Name() string { return SourceName }

// Datasets returns the one dataset.
func (c *Collector) Datasets() []string { return []string{DatasetIndicator} }

// Interval returns the configured interval.
func (c *Collector) Interval(string) time.Duration { return c.Settings.Interval }

// The phases of a pull.
const (
	phaseIndicators = "indicators"
	phaseDeleted    = "deleted"
)

// cursor is the saved state of the dataset, written with every page.
//
// A listing is resumed from its time, never from a saved next link: results
// are sorted by lastModified, so asking again for lastModified GEQ the
// largest one seen misses nothing, while an offset saved in a link can
// skip or repeat records once the data has changed (ThreatConnect warns
// that offsets are not stable over time). The cost is that the records of
// the last second seen come again; the live view keeps one copy.
type cursor struct {
	// Since is where the next indicator listing starts (GEQ): the largest
	// lastModified seen, never later than the start of the pull that saw
	// it, so that a record dated in the future cannot make the cursor skip
	// what is modified until then.
	Since time.Time `json:"since,omitzero"`
	// DeletedSince is where the next deleted-indicators listing starts:
	// the largest deletion time seen, capped the same way.
	DeletedSince time.Time `json:"deleted_since,omitzero"`
	// Completed is when the last pull was completed.
	Completed time.Time `json:"completed,omitzero"`
	// Open is the pull in progress, if any.
	Open *openPull `json:"open,omitempty"`
}

type openPull struct {
	Started time.Time `json:"started"` // caps the cursors
	From    time.Time `json:"from"`    // where the indicator listing began
	Phase   string    `json:"phase"`
	Pages   int       `json:"pages"`
	Records int       `json:"records"`
}

func (c *Collector) loadCursor(ctx context.Context) (cursor, error) {
	var cur cursor
	b, err := c.Store.Cursor(ctx, SourceName, DatasetIndicator)
	if err != nil || b == nil {
		return cur, err
	}
	if err := json.Unmarshal(b, &cur); err != nil {
		return cur, fmt.Errorf("threatconnect: saved cursor is unreadable: %w", err)
	}
	return cur, nil
}

// LastCompleted returns when the last pull was completed (zero if never).
func (c *Collector) LastCompleted(ctx context.Context, _ string) (time.Time, error) {
	cur, err := c.loadCursor(ctx)
	return cur.Completed, err
}

// Pull runs one collection cycle: the indicators modified since the cursor,
// page by page through the next links, then the indicators deleted since
// the deletion cursor, which become tombstones. It resumes a pull a
// previous run left open. When stop is closed it finishes the page in
// flight and returns vigil.ErrStopped. Cancelling ctx aborts at once; the
// saved cursor still covers every page written.
func (c *Collector) Pull(ctx context.Context, dataset string, stop <-chan struct{}) (_ vigil.PullResult, err error) {
	// Whatever the outcome, merge the pages written into the live views;
	// a failed merge is the pull's error only if nothing failed before.
	defer func() { err = cmp.Or(err, c.Store.Sync(ctx)) }()
	res := vigil.PullResult{Source: SourceName, Dataset: dataset}
	if dataset != DatasetIndicator {
		return res, fmt.Errorf("threatconnect: unknown dataset %q (the only one is %s)", dataset, DatasetIndicator)
	}
	cur, err := c.loadCursor(ctx)
	if err != nil {
		return res, err
	}
	now := c.Clock.Now().UTC()
	if cur.Open == nil {
		from := now.Add(-c.Settings.InitialInterval)
		if !cur.Since.IsZero() {
			from = cur.Since
		}
		from = minTime(from, now)
		cur.Since = from
		if cur.DeletedSince.IsZero() {
			cur.DeletedSince = from
		}
		cur.Open = &openPull{Started: now, From: from, Phase: phaseIndicators}
	} else {
		res.Resumed = true
		cur.Open.Started = now
	}
	res.From, res.To = cur.Open.From, now
	log := c.Logger.With("dataset", dataset, "from", res.From)
	if res.Resumed {
		log.Info("resuming open pull", "phase", cur.Open.Phase, "since", cur.Since,
			"pages_done", cur.Open.Pages, "records_done", cur.Open.Records)
	}
	if cur.Open.Phase == phaseIndicators {
		if err := c.pullIndicators(ctx, &cur, &res, stop, log); err != nil {
			return res, err
		}
		if stopped(stop) {
			return res, vigil.ErrStopped
		}
	}
	if err := c.pullDeleted(ctx, &cur, &res, stop, log); err != nil {
		return res, err
	}
	log.Info("pull complete", "pages", res.Pages, "records", res.Records, "live", res.Live, "errors", res.Rejected, "next_since", cur.Since)
	return res, nil
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// normalizer returns the normalizer of a page: its documents go into
// arena, which it resets (a pull reuses one arena for its pages).
func (c *Collector) normalizer(ingested time.Time, arena *ecs.Arena) *Normalizer {
	tags := c.Settings.Tags
	if tags == nil {
		tags = defaultTags
	}
	arena.Reset()
	return NewNormalizer(NormalizeOptions{
		Dataset:            DatasetIndicator,
		Tags:               tags,
		ExpirationDuration: c.Settings.ExpirationDuration,
		Ingested:           ingested,
		Arena:              arena,
	})
}

// pullIndicators pages through the indicators modified since cur.Since.
func (c *Collector) pullIndicators(ctx context.Context, cur *cursor, res *vigil.PullResult, stop <-chan struct{}, log *slog.Logger) error {
	const what = "indicator page"
	page, err := c.Client.Indicators(ctx, IndicatorQuery{
		Since: cur.Since, TQL: c.Settings.TQL, Fields: c.Settings.Fields(), Limit: c.Settings.batch(),
	})
	var prevMax time.Time
	warned := false
	var arena ecs.Arena
	for {
		if err != nil {
			return err
		}
		ingested := c.Clock.Now().UTC()
		n := c.normalizer(ingested, &arena)
		docs := make([]vigil.Document, len(page.Records))
		var pageMax time.Time
		for i, raw := range page.Records {
			docs[i] = n.Indicator(raw)
			m := n.Modified()
			if m.IsZero() {
				continue
			}
			if m.Before(prevMax) && !warned {
				warned = true
				log.Warn("ThreatConnect returned indicators out of lastModified order; a pull resumed after a crash may miss some until they change again",
					"lastModified", m, "after", prevMax)
			}
			if m.After(pageMax) {
				pageMax = m
			}
		}
		if pageMax.After(prevMax) {
			prevMax = pageMax
		}
		if pageMax.After(cur.Since) {
			cur.Since = minTime(pageMax, cur.Open.Started)
		}
		cur.Open.Pages++
		cur.Open.Records += len(docs)
		last := page.Next == ""
		if last {
			cur.Open.Phase = phaseDeleted
		} else if page.Repeats() {
			return fmt.Errorf("threatconnect: %s: the next link repeats the page's own link %q; stopping to avoid a loop", what, page.Next)
		}
		if err := c.writePage(ctx, docs, arena.NDJSON(), cur, res); err != nil {
			return err
		}
		if last {
			return nil
		}
		if stopped(stop) {
			return vigil.ErrStopped
		}
		page, err = c.Client.Next(ctx, what, page.Next)
	}
}

// pullDeleted pages through the indicators deleted since cur.DeletedSince
// and writes a tombstone for each. A listing ThreatConnect refuses (400,
// 403, 404, 405: an older or restricted instance) is skipped with a
// warning; the pull still completes.
func (c *Collector) pullDeleted(ctx context.Context, cur *cursor, res *vigil.PullResult, stop <-chan struct{}, log *slog.Logger) error {
	const what = "deleted indicators page"
	page, err := c.Client.Deleted(ctx, DeletedQuery{Since: cur.DeletedSince, Limit: c.Settings.batch()})
	var arena ecs.Arena
	for {
		if err != nil {
			var se *StatusError
			if errors.As(err, &se) {
				switch se.Status.StatusCode {
				case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
					log.Warn("deleted indicators not fetched; they stay in the live view until they expire", "error", err)
					cur.Completed = c.Clock.Now().UTC()
					cur.Open = nil
					return c.writePage(ctx, nil, nil, cur, res)
				}
			}
			return err
		}
		ingested := c.Clock.Now().UTC()
		n := c.normalizer(ingested, &arena)
		docs := make([]vigil.Document, len(page.Records))
		for i, raw := range page.Records {
			docs[i] = n.Deleted(raw)
			if m := n.Modified(); m.After(cur.DeletedSince) {
				cur.DeletedSince = minTime(m, cur.Open.Started)
			}
		}
		cur.Open.Pages++
		cur.Open.Records += len(docs)
		last := page.Next == ""
		if last {
			cur.Completed = ingested
			cur.Open = nil
		} else if page.Repeats() {
			return fmt.Errorf("threatconnect: %s: the next link repeats the page's own link %q; stopping to avoid a loop", what, page.Next)
		}
		if err := c.writePage(ctx, docs, arena.NDJSON(), cur, res); err != nil {
			return err
		}
		if last {
			return nil
		}
		if stopped(stop) {
			return vigil.ErrStopped
		}
		page, err = c.Client.Next(ctx, what, page.Next)
	}
}

// writePage writes one page of documents with the cursor that follows it;
// ndjson is the arena they are in, or nil.
func (c *Collector) writePage(ctx context.Context, docs []vigil.Document, ndjson []byte, cur *cursor, res *vigil.PullResult) error {
	return vigil.WriteArenaPage(ctx, c.Store, res, docs, ndjson, cur, c.Progress)
}

// Check verifies the credentials with one signed request, the owners list,
// and prints the owners the API user can see.
func (c *Collector) Check(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "  url: %s\n", c.Client.URL())
	owners, more, err := c.Client.Owners(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "  credentials: accepted (GET /api"+PathOwners+" answered 200)")
	if len(owners) == 0 {
		fmt.Fprintln(w, "  owners: none visible to this API user")
		return nil
	}
	fmt.Fprintln(w, "  owners:")
	for _, o := range owners {
		perm := o.PermIndicator
		if perm == "" {
			perm = "-"
		}
		fmt.Fprintf(w, "    %-10d %-40s %-14s indicators: %s\n", o.ID, o.Name, o.Type, perm)
	}
	if more {
		fmt.Fprintln(w, "    (ThreatConnect has more owners than the 500 shown)")
	}
	return nil
}
