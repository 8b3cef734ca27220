package threatcommand

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/httpx"
)

// SourceName is the source's name in the configuration, the CLI and the
// cursor table.
const SourceName = "threatcommand"

// DatasetSettings configure one dataset's collection.
type DatasetSettings struct {
	Enabled         bool
	Interval        time.Duration
	InitialInterval time.Duration
	Severities      []string
	Types           []string // IOC and alert types
	FetchClosed     bool     // alerts: fetch closed alerts instead of open ones
}

// Settings configure the collector.
type Settings struct {
	// ExpirationDuration is ioc_expiration_duration as written.
	ExpirationDuration string
	IOC                DatasetSettings
	Alert              DatasetSettings
	Vulnerability      DatasetSettings
}

type Result = vigil.PullResult

// Collector pulls Threat Command datasets into a store.
type Collector struct {
	Client   *Client
	Store    vigil.Store
	Settings Settings
	Clock    vigil.Clock
	Logger   *slog.Logger
	// Progress, when set, is called after every page.
	Progress func(vigil.Progress)
	// AlertBatch is how many alerts are fetched per written page (default 50).
	AlertBatch int
}

var _ vigil.Collector = (*Collector)(nil)

// Name returns "threatcommand".
func (c *Collector) Name() string { return SourceName }

// Interval returns the dataset's configured interval.
func (c *Collector) Interval(dataset string) time.Duration {
	return c.DatasetSettings(dataset).Interval
}

// Datasets lists the enabled datasets, in pull order.
func (c *Collector) Datasets() []string {
	var out []string
	if c.Settings.IOC.Enabled {
		out = append(out, DatasetIOC)
	}
	if c.Settings.Alert.Enabled {
		out = append(out, DatasetAlert)
	}
	if c.Settings.Vulnerability.Enabled {
		out = append(out, DatasetVulnerability)
	}
	return out
}

// DatasetSettings returns the settings of a dataset.
func (c *Collector) DatasetSettings(dataset string) DatasetSettings {
	switch dataset {
	case DatasetIOC:
		return c.Settings.IOC
	case DatasetAlert:
		return c.Settings.Alert
	default:
		return c.Settings.Vulnerability
	}
}

// cursor is the saved state of one dataset. Within a pull the window
// [From, To] stays fixed; the position in it is saved after every page.
type cursor struct {
	// SyncID is created on the first IOC pull and kept for good.
	SyncID string `json:"sync_id,omitempty"`
	// Next is where the next window starts: the largest update date seen in
	// the last complete window.
	Next time.Time `json:"next,omitzero"`
	// Completed is when the last window was completed.
	Completed time.Time `json:"completed,omitzero"`

	// Open is the window in progress, if any.
	Open *window `json:"open,omitempty"`
}

type window struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Offset  string    `json:"offset,omitempty"`  // nextOffset to request next
	IDs     []string  `json:"ids,omitempty"`     // alerts: the window's alert ids
	Done    int       `json:"done,omitempty"`    // alerts: ids already fetched
	MaxSeen time.Time `json:"max_seen,omitzero"` // largest update date seen in the window
	Pages   int       `json:"pages"`
	Records int       `json:"records"`
}

func (c *Collector) loadCursor(ctx context.Context, dataset string) (cursor, error) {
	var cur cursor
	b, err := c.Store.Cursor(ctx, SourceName, dataset)
	if err != nil || b == nil {
		return cur, err
	}
	if err := json.Unmarshal(b, &cur); err != nil {
		return cur, fmt.Errorf("threatcommand: saved cursor of %s is unreadable: %w", dataset, err)
	}
	return cur, nil
}

// LastCompleted returns when the dataset's last window was completed (zero
// if never).
func (c *Collector) LastCompleted(ctx context.Context, dataset string) (time.Time, error) {
	cur, err := c.loadCursor(ctx, dataset)
	return cur.Completed, err
}

// Pull runs one collection cycle of one dataset: it resumes the window a
// previous run left open, or opens a new one, and pages through it to the
// end. When stop is closed it finishes the page in flight and returns
// ErrStopped. Cancelling ctx aborts at once; the saved cursor still covers
// every page written.
func (c *Collector) Pull(ctx context.Context, dataset string, stop <-chan struct{}) (_ Result, err error) {
	// Whatever the outcome, merge the pages written into the live views;
	// a failed merge is the pull's error only if nothing failed before.
	defer func() { err = cmp.Or(err, c.Store.Sync(ctx)) }()
	res := Result{Source: SourceName, Dataset: dataset}
	cur, err := c.loadCursor(ctx, dataset)
	if err != nil {
		return res, err
	}
	now := c.Clock.Now().UTC()
	set := c.DatasetSettings(dataset)
	if cur.Open == nil {
		from := now.Add(-set.InitialInterval)
		if !cur.Next.IsZero() {
			from = cur.Next
		}
		if from.After(now) {
			from = now
		}
		cur.Open = &window{From: from, To: now}
	} else {
		res.Resumed = true
	}
	if dataset == DatasetIOC && cur.SyncID == "" {
		cur.SyncID = uuid.NewString()
	}
	res.From, res.To = cur.Open.From, cur.Open.To
	log := c.Logger.With("dataset", dataset, "from", res.From, "to", res.To)
	if res.Resumed {
		log.Info("resuming open window", "pages_done", cur.Open.Pages, "records_done", cur.Open.Records)
	}
	switch dataset {
	case DatasetIOC, DatasetVulnerability:
		err = c.pullPaged(ctx, dataset, set, &cur, &res, stop)
	case DatasetAlert:
		err = c.pullAlerts(ctx, set, &cur, &res, stop)
	default:
		err = fmt.Errorf("threatcommand: unknown dataset %q", dataset)
	}
	if err != nil {
		return res, err
	}
	log.Info("window complete", "pages", res.Pages, "records", res.Records, "live", res.Live, "errors", res.Rejected)
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

// observe folds the update dates of a page's documents into the window's
// largest date seen. A document whose date fell back to the ingest time
// carries no update date and is ignored.
func observe(w *window, docs []vigil.Document, ingested time.Time) {
	for i := range docs {
		ts := docs[i].Timestamp
		if ts.IsZero() || ts.Equal(ingested) {
			continue
		}
		if ts.After(w.MaxSeen) {
			w.MaxSeen = ts
		}
	}
}

// closeWindow marks the open window complete: the next one starts at the
// largest update date seen in it, never later than its end (a record dated
// past the window's end is not trusted to move the cursor), and never before
// its start.
func closeWindow(cur *cursor, now time.Time) {
	w := cur.Open
	next := w.From
	if w.MaxSeen.After(next) {
		next = w.MaxSeen
	}
	if next.After(w.To) {
		next = w.To
	}
	cur.Next = next
	cur.Completed = now
	cur.Open = nil
}

// writePage writes one page of documents with the cursor that follows it.
// The documents of a page are in arena, which the next page's normalizer
// resets.
func (c *Collector) writePage(ctx context.Context, docs []vigil.Document, arena *ecs.Arena, cur *cursor, res *Result) error {
	return vigil.WriteArenaPage(ctx, c.Store, res, docs, arena.NDJSON(), cur, c.Progress)
}

// normalizer returns the normalizer of a page of dataset: its documents go
// into arena, which it resets (a pull reuses one arena for its pages).
func (c *Collector) normalizer(dataset string, ingested time.Time, arena *ecs.Arena) (*Normalizer, func([]byte) vigil.Document) {
	arena.Reset()
	n := NewNormalizer(NormalizeOptions{
		Dataset:            dataset,
		Tags:               []string{"forwarded", defaultTags[dataset]},
		ExpirationDuration: c.Settings.ExpirationDuration,
		Ingested:           ingested,
		Arena:              arena,
	})
	switch dataset {
	case DatasetIOC:
		return n, n.IOC
	case DatasetAlert:
		return n, n.Alert
	default:
		return n, n.Vulnerability
	}
}

// defaultTags are the tags Elastic's streams add by default, after
// "forwarded".
var defaultTags = map[string]string{
	DatasetIOC:           "rapid7-threat-command-ioc",
	DatasetAlert:         "rapid7-threat-command-alert",
	DatasetVulnerability: "rapid7-threat-command-vulnerability",
}

// pullPaged pages through an IOC or CVE window with nextOffset.
func (c *Collector) pullPaged(ctx context.Context, dataset string, set DatasetSettings, cur *cursor, res *Result, stop <-chan struct{}) error {
	w := cur.Open
	var arena ecs.Arena
	for {
		var page Page
		var err error
		if dataset == DatasetIOC {
			page, err = c.Client.IOCs(ctx, IOCQuery{From: w.From, To: w.To, SyncID: cur.SyncID, Severities: set.Severities, Types: set.Types, Offset: w.Offset})
		} else {
			page, err = c.Client.CVEs(ctx, CVEQuery{From: w.From, To: w.To, Severities: set.Severities, Offset: w.Offset})
		}
		if err != nil {
			return err
		}
		ingested := c.Clock.Now().UTC()
		_, norm := c.normalizer(dataset, ingested, &arena)
		docs := make([]vigil.Document, len(page.Records))
		for i, rec := range page.Records {
			docs[i] = norm(rec)
		}
		observe(w, docs, ingested)
		w.Pages++
		w.Records += len(docs)
		if page.NextOffset == "" {
			closeWindow(cur, ingested)
		} else {
			if page.NextOffset == w.Offset {
				return fmt.Errorf("threatcommand: %s: the API returned the same nextOffset %q twice; stopping to avoid a loop", dataset, page.NextOffset)
			}
			w.Offset = page.NextOffset
		}
		if err := c.writePage(ctx, docs, &arena, cur, res); err != nil {
			return err
		}
		if cur.Open == nil {
			return nil
		}
		if stopped(stop) {
			return vigil.ErrStopped
		}
	}
}

// pullAlerts lists the window's alert ids once (saving them in the cursor),
// then fetches each alert, writing a page every AlertBatch alerts.
func (c *Collector) pullAlerts(ctx context.Context, set DatasetSettings, cur *cursor, res *Result, stop <-chan struct{}) error {
	w := cur.Open
	if w.Pages == 0 && w.IDs == nil {
		ids, err := c.Client.AlertIDs(ctx, AlertQuery{From: w.From, To: w.To, Severities: set.Severities, Types: set.Types, Closed: set.FetchClosed})
		if err != nil {
			return err
		}
		if ids == nil {
			ids = []string{}
		}
		w.IDs = ids
		// Save the list before fetching, so that a restart resumes this
		// list rather than asking for a new one.
		state, err := json.Marshal(cur)
		if err != nil {
			return fmt.Errorf("threatcommand: encode cursor: %w", err)
		}
		if _, err := c.Store.WritePage(ctx, vigil.Page{Source: SourceName, Dataset: DatasetAlert, Cursor: state}); err != nil {
			return err
		}
	}
	batch := c.AlertBatch
	if batch <= 0 {
		batch = 50
	}
	var arena ecs.Arena
	for {
		end := min(w.Done+batch, len(w.IDs))
		var raws [][]byte
		for _, id := range w.IDs[w.Done:end] {
			raw, err := c.Client.Alert(ctx, id)
			var se *httpx.StatusError
			if errors.As(err, &se) && se.StatusCode == 404 {
				c.Logger.Warn("alert listed but not found; skipped", "id", id)
				continue
			}
			if err != nil {
				return err
			}
			raws = append(raws, raw)
		}
		ingested := c.Clock.Now().UTC()
		_, norm := c.normalizer(DatasetAlert, ingested, &arena)
		docs := make([]vigil.Document, len(raws))
		for i, raw := range raws {
			docs[i] = norm(raw)
		}
		observe(w, docs, ingested)
		w.Done = end
		w.Pages++
		w.Records += len(docs)
		if w.Done >= len(w.IDs) {
			closeWindow(cur, ingested)
		}
		if err := c.writePage(ctx, docs, &arena, cur, res); err != nil {
			return err
		}
		if cur.Open == nil {
			return nil
		}
		if stopped(stop) {
			return vigil.ErrStopped
		}
	}
}

// Check calls test-credentials, then system-modules, and prints the
// account's modules.
func (c *Collector) Check(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "  url: %s\n", c.Client.URL())
	if err := c.Client.TestCredentials(ctx); err != nil {
		return err
	}
	fmt.Fprintln(w, "  credentials: accepted (test-credentials answered 200)")
	mods, _, err := c.Client.SystemModules(ctx)
	if err != nil {
		return err
	}
	if len(mods) == 0 {
		fmt.Fprintln(w, "  modules: none listed")
		return nil
	}
	fmt.Fprintln(w, "  modules:")
	for _, m := range mods {
		state := "not included"
		if m.Enabled {
			state = "included"
		}
		fmt.Fprintf(w, "    %-40s %s\n", m.Name, state)
	}
	return nil
}
