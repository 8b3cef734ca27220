package misp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/vigil-ti/vigil"
)

// Defaults of Settings.
const (
	// DefaultLimit is the attributes per restSearch page. Elastic's
	// default (10) costs a round trip and a transaction per 10 attributes;
	// MISP serves a thousand in one answer without trouble.
	DefaultLimit = 1000
	// DefaultFeedPageDocs is how many feed documents are gathered, whole
	// events at a time, before they are written as one page with the
	// cursor.
	DefaultFeedPageDocs = 10000
)

// Settings configure the collector.
type Settings struct {
	// Interval is how often each dataset is pulled under `vigil serve`.
	Interval time.Duration
	// InitialInterval is the look-back of the instance's first pull.
	InitialInterval time.Duration
	// Limit is the restSearch page size (0: DefaultLimit).
	Limit int
	// ToIDs, Published, Tags and EnforceWarningList filter the instance's
	// attributes (see Query).
	ToIDs, Published   *bool
	Tags               []string
	EnforceWarningList bool
	// ExpirationDuration is ioc_expiration_duration as written.
	ExpirationDuration string
	// FeedPageDocs bounds the documents of a feed page (0:
	// DefaultFeedPageDocs); an event is never split.
	FeedPageDocs int
}

// Collector pulls a MISP instance's attributes (dataset DatasetAttributes,
// when Client is set) and the events of MISP feeds (dataset DatasetFeed,
// when Feeds is not empty) into a store.
type Collector struct {
	Client   *Client
	Feeds    []*Feed
	Store    vigil.Store
	Settings Settings
	Clock    vigil.Clock
	Logger   *slog.Logger
	// Progress, when set, is called after every page.
	Progress func(vigil.Progress)
}

var _ vigil.Collector = (*Collector)(nil)

// Name returns "misp".
func (c *Collector) Name() string { return SourceName }

// Datasets returns DatasetAttributes when an instance is configured, then
// DatasetFeed when feeds are.
func (c *Collector) Datasets() []string {
	var ds []string
	if c.Client != nil {
		ds = append(ds, DatasetAttributes)
	}
	if len(c.Feeds) > 0 {
		ds = append(ds, DatasetFeed)
	}
	return ds
}

// Interval returns the configured interval.
func (c *Collector) Interval(string) time.Duration { return c.Settings.Interval }

// openPull is a pull in progress, saved with every page.
type openPull struct {
	Started time.Time `json:"started"` // caps the cursor
	From    time.Time `json:"from,omitzero"`
	// Page is the next restSearch page to ask (1-based).
	Page int `json:"page,omitempty"`
	// Max is the largest attribute timestamp seen by the pull.
	Max     time.Time `json:"max,omitzero"`
	Pages   int       `json:"pages"`
	Records int       `json:"records"`
}

// apiCursor is the saved state of DatasetAttributes.
//
// A pull lists the attributes whose timestamp is at or after Since, page
// after page, the window's start fixed (as Elastic does), until a short
// page. The next pull starts at the largest timestamp the pull saw, never
// later than the pull's start, so that an attribute dated in the future
// cannot make it skip what changes until then; the attributes of that
// second come again, and the live view keeps one copy. A restart resumes
// the open pull at the page after the last one written.
type apiCursor struct {
	Since     time.Time `json:"since,omitzero"`
	Completed time.Time `json:"completed,omitzero"`
	Open      *openPull `json:"open,omitempty"`
}

// feedCursor is the saved state of DatasetFeed: per feed (by name), the
// timestamp of each event read, as its manifest gave it. An event is
// fetched again only when its manifest timestamp changes, as MISP does.
type feedCursor struct {
	Feeds     map[string]*feedState `json:"feeds,omitempty"`
	Completed time.Time             `json:"completed,omitzero"`
	Open      *openPull             `json:"open,omitempty"`
}

type feedState struct {
	// Location is the feed's URL or directory; when it changes, the feed
	// is read again from scratch.
	Location string `json:"location"`
	// ETag is the manifest's ETag once every event it lists was read.
	ETag   string           `json:"etag,omitempty"`
	Events map[string]int64 `json:"events,omitempty"`
}

func (c *Collector) loadCursor(ctx context.Context, dataset string, cur any) error {
	b, err := c.Store.Cursor(ctx, SourceName, dataset)
	if err != nil || b == nil {
		return err
	}
	if err := json.Unmarshal(b, cur); err != nil {
		return fmt.Errorf("misp: saved cursor of %s is unreadable: %w", dataset, err)
	}
	return nil
}

// LastCompleted returns when the dataset's last pull was completed (zero
// if never).
func (c *Collector) LastCompleted(ctx context.Context, dataset string) (time.Time, error) {
	if dataset == DatasetFeed {
		var cur feedCursor
		err := c.loadCursor(ctx, dataset, &cur)
		return cur.Completed, err
	}
	var cur apiCursor
	err := c.loadCursor(ctx, dataset, &cur)
	return cur.Completed, err
}

// Pull runs one collection cycle of a dataset, resuming a pull a previous
// run left open. When stop is closed it finishes the page in flight and
// returns vigil.ErrStopped. Cancelling ctx aborts at once; the saved cursor
// still covers every page written.
func (c *Collector) Pull(ctx context.Context, dataset string, stop <-chan struct{}) (_ vigil.PullResult, err error) {
	// Whatever the outcome, merge the pages written into the live views;
	// a failed merge is the pull's error only if nothing failed before.
	defer func() { err = cmp.Or(err, c.Store.Sync(ctx)) }()
	res := vigil.PullResult{Source: SourceName, Dataset: dataset}
	switch {
	case dataset == DatasetAttributes && c.Client != nil:
		return res, c.pullAttributes(ctx, &res, stop)
	case dataset == DatasetFeed && len(c.Feeds) > 0:
		return res, c.pullFeeds(ctx, &res, stop)
	}
	return res, fmt.Errorf("misp: unknown dataset %q (configured: %s)", dataset, strings.Join(c.Datasets(), ", "))
}

func stopped(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

func (c *Collector) normalizer(dataset string, ingested time.Time) *Normalizer {
	tags := DefaultTags
	if dataset == DatasetFeed {
		tags = DefaultFeedTags
	}
	return NewNormalizer(NormalizeOptions{
		Dataset: dataset, Tags: tags, ExpirationDuration: c.Settings.ExpirationDuration, Ingested: ingested,
	})
}

func (c *Collector) limit() int {
	if c.Settings.Limit > 0 {
		return c.Settings.Limit
	}
	return DefaultLimit
}

// pullAttributes pages through the instance's attributes changed since the
// cursor.
func (c *Collector) pullAttributes(ctx context.Context, res *vigil.PullResult, stop <-chan struct{}) error {
	var cur apiCursor
	if err := c.loadCursor(ctx, DatasetAttributes, &cur); err != nil {
		return err
	}
	now := c.Clock.Now().UTC()
	if cur.Open == nil {
		from := now.Add(-c.Settings.InitialInterval)
		if !cur.Since.IsZero() {
			from = cur.Since
		}
		from = minTime(from, now).Truncate(time.Second)
		cur.Since = from
		cur.Open = &openPull{Started: now, From: from, Page: 1}
	} else {
		res.Resumed = true
		cur.Open.Started = now
		cur.Open.Page = max(cur.Open.Page, 1)
	}
	res.From, res.To = cur.Open.From, now
	log := c.Logger.With("dataset", DatasetAttributes, "from", res.From)
	if res.Resumed {
		log.Info("resuming open pull", "page", cur.Open.Page, "pages_done", cur.Open.Pages, "records_done", cur.Open.Records)
	}
	limit := c.limit()
	var prevFirst, prevLast string
	for {
		q := Query{
			Since: cur.Open.From, Page: cur.Open.Page, Limit: limit,
			ToIDs: c.Settings.ToIDs, Published: c.Settings.Published, Tags: c.Settings.Tags,
			EnforceWarningList: c.Settings.EnforceWarningList,
		}
		page, err := c.Client.Attributes(ctx, q)
		if err != nil {
			return err
		}
		ingested := c.Clock.Now().UTC()
		n := c.normalizer(DatasetAttributes, ingested)
		docs := make([]vigil.Document, len(page.Records))
		for i, raw := range page.Records {
			docs[i] = n.Attribute(raw)
			if ts := n.Timestamp(); ts.After(cur.Open.Max) {
				cur.Open.Max = ts
			}
		}
		if len(docs) > 0 {
			first, last := docs[0].Key, docs[len(docs)-1].Key
			if cur.Open.Page > 1 && len(docs) == limit && first == prevFirst && last == prevLast && first != "" {
				return fmt.Errorf("misp: attributes page %d repeats page %d; the instance ignores \"page\"? stopping to avoid a loop", cur.Open.Page, cur.Open.Page-1)
			}
			prevFirst, prevLast = first, last
		}
		cur.Open.Pages++
		cur.Open.Records += len(docs)
		cur.Open.Page++
		done := len(page.Records) < limit
		if done {
			next := minTime(cur.Open.Max, cur.Open.Started).Truncate(time.Second)
			if next.After(cur.Since) {
				cur.Since = next
			}
			cur.Completed = ingested
			cur.Open = nil
		}
		if err := c.writePage(ctx, res, docs, &cur); err != nil {
			return err
		}
		if done {
			log.Info("pull complete", "pages", res.Pages, "records", res.Records, "live", res.Live, "errors", res.Rejected, "next_since", cur.Since)
			return nil
		}
		if stopped(stop) {
			return vigil.ErrStopped
		}
	}
}

// writePage writes one page of documents with the cursor that follows it.
// A write that fails because ctx was cancelled (the store may then report
// its rolled-back transaction instead) returns the cancellation.
func (c *Collector) writePage(ctx context.Context, res *vigil.PullResult, docs []vigil.Document, cur any) error {
	err := vigil.WritePage(ctx, c.Store, res, docs, cur, c.Progress)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	return err
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// pullFeeds reads each feed's manifest and the events that are new or
// changed since the last pull. A feed that fails is reported and the
// others are still read; the pull then fails, naming it.
func (c *Collector) pullFeeds(ctx context.Context, res *vigil.PullResult, stop <-chan struct{}) error {
	var cur feedCursor
	if err := c.loadCursor(ctx, DatasetFeed, &cur); err != nil {
		return err
	}
	now := c.Clock.Now().UTC()
	if cur.Open == nil {
		cur.Open = &openPull{Started: now, From: cur.Completed}
	} else {
		res.Resumed = true
		cur.Open.Started = now
	}
	res.From, res.To = cur.Open.From, now
	if cur.Feeds == nil {
		cur.Feeds = map[string]*feedState{}
	}
	configured := map[string]bool{}
	for _, f := range c.Feeds {
		configured[f.Name()] = true
	}
	for name := range cur.Feeds {
		if !configured[name] {
			delete(cur.Feeds, name) // its documents expire on their own
		}
	}
	var failed []string
	var firstErr error
	for _, f := range c.Feeds {
		err := c.pullFeed(ctx, f, &cur, res, stop)
		switch {
		case err == nil:
			continue
		case errors.Is(err, vigil.ErrStopped) || ctx.Err() != nil:
			return err
		}
		c.Logger.Warn("feed not read", "feed", f.Name(), "error", err)
		failed = append(failed, err.Error())
		firstErr = cmp.Or(firstErr, err)
	}
	if len(failed) == 0 {
		cur.Completed = c.Clock.Now().UTC()
	}
	cur.Open = nil
	if err := c.writePage(ctx, res, nil, &cur); err != nil {
		return err
	}
	if len(failed) > 0 {
		if len(failed) == 1 {
			return firstErr
		}
		return fmt.Errorf("misp: %d feeds failed: %s", len(failed), strings.Join(failed, "; "))
	}
	c.Logger.Info("pull complete", "dataset", DatasetFeed, "pages", res.Pages, "records", res.Records, "live", res.Live, "errors", res.Rejected)
	return nil
}

// pullFeed reads one feed: its manifest (with the ETag of the last
// complete read), then each event whose manifest timestamp is new or
// changed, writing the documents of whole events in pages of about
// FeedPageDocs, each with the cursor that records those events as read.
func (c *Collector) pullFeed(ctx context.Context, f *Feed, cur *feedCursor, res *vigil.PullResult, stop <-chan struct{}) error {
	log := c.Logger.With("dataset", DatasetFeed, "feed", f.Name())
	st := cur.Feeds[f.Name()]
	if st == nil || st.Location != f.Location() {
		st = &feedState{Location: f.Location()}
		cur.Feeds[f.Name()] = st
	}
	mf, err := f.Manifest(ctx, st.ETag)
	if err != nil {
		return err
	}
	if mf.NotModified {
		log.Debug("manifest not modified")
		return nil
	}
	entries, problems, err := ParseManifest(mf.Body)
	if err != nil {
		return fmt.Errorf("misp: feed %s: %w", f.Name(), err)
	}
	for i, p := range problems {
		if i == 5 {
			log.Warn("more manifest entries left out", "count", len(problems)-i)
			break
		}
		log.Warn("manifest entry left out", "problem", p)
	}
	if f.maxAge > 0 {
		// Older events are left out, as if the manifest did not list them.
		cutoff := c.Clock.Now().Add(-f.maxAge).Unix()
		i := 0
		for i < len(entries) && entries[i].Timestamp < cutoff { // entries are by timestamp
			i++
		}
		if i > 0 {
			log.Debug("events older than max_event_age left out", "count", i)
		}
		entries = entries[i:]
	}
	listed := make(map[string]bool, len(entries))
	var todo []ManifestEntry
	for _, e := range entries {
		listed[e.UUID] = true
		if ts, ok := st.Events[e.UUID]; !ok || ts != e.Timestamp {
			todo = append(todo, e)
		}
	}
	log.Debug("manifest read", "events", len(entries), "new_or_changed", len(todo))
	// Events are fetched and normalized on a second goroutine while the
	// pages before them are written.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan feedBatch, 1)
	go c.readEvents(ctx, f, todo, batches)
	defer func() {
		cancel()
		for range batches { // let the reader finish
		}
	}()
	missing := 0
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		missing += b.missing
		if st.Events == nil {
			st.Events = map[string]int64{}
		}
		for _, e := range b.events {
			st.Events[e.UUID] = e.Timestamp
		}
		if b.last {
			// Forget the events the manifest no longer lists; keep the
			// ETag only when every event it lists was read.
			for id := range st.Events {
				if !listed[id] {
					delete(st.Events, id)
				}
			}
			st.ETag = ""
			if missing == 0 {
				st.ETag = mf.ETag
			}
		}
		cur.Open.Pages++
		cur.Open.Records += len(b.docs)
		if err := c.writePage(ctx, res, b.docs, cur); err != nil {
			return err
		}
		if b.last {
			break
		}
		if stopped(stop) {
			return vigil.ErrStopped
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if missing > 0 {
		return fmt.Errorf("misp: feed %s: %d of the %d new or changed events the manifest lists are missing; they are asked again next pull", f.Name(), missing, len(todo))
	}
	return nil
}

// feedBatch is a page of a feed: the documents of whole events, the
// events, and how many were missing; or the error that ended the reading.
type feedBatch struct {
	docs    []vigil.Document
	events  []ManifestEntry
	missing int
	last    bool
	err     error
}

// readEvents fetches and normalizes the events of todo, sending them in
// batches of about FeedPageDocs documents, the last one marked, and closes
// out. It stops when ctx is done.
func (c *Collector) readEvents(ctx context.Context, f *Feed, todo []ManifestEntry, out chan<- feedBatch) {
	defer close(out)
	log := c.Logger.With("dataset", DatasetFeed, "feed", f.Name())
	pageDocs := cmp.Or(c.Settings.FeedPageDocs, DefaultFeedPageDocs)
	var (
		b feedBatch
		n *Normalizer
	)
	emit := func(d vigil.Document) { b.docs = append(b.docs, d) }
	send := func(last bool) bool {
		b.last = last
		select {
		case out <- b:
			b, n = feedBatch{}, nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	for i, e := range todo {
		raw, err := f.Event(ctx, e.UUID)
		if err != nil {
			if !errors.Is(err, ErrNotFound) || ctx.Err() != nil {
				b = feedBatch{err: err}
				send(false)
				return
			}
			// MISP logs and goes on; the event is asked again next pull.
			log.Warn("event listed in the manifest is missing; skipped", "event", e.UUID, "error", err)
			b.missing++
			continue
		}
		if n == nil {
			n = c.normalizer(DatasetFeed, c.Clock.Now().UTC())
			b.docs = make([]vigil.Document, 0, pageDocs+pageDocs/4)
		}
		id, k := n.Event(raw, f.Name(), emit)
		if id != "" && !strings.EqualFold(id, e.UUID) {
			log.Warn("event file holds another event than its name says", "file", e.UUID+".json", "event", id, "documents", k)
		}
		b.events = append(b.events, e)
		if len(b.docs) >= pageDocs && i < len(todo)-1 && !send(false) {
			return
		}
	}
	send(true)
}

// Check verifies what is configured: the instance's API key, with one
// request for its version, and each feed's manifest.
func (c *Collector) Check(ctx context.Context, w io.Writer) error {
	var errs []error
	if c.Client != nil {
		fmt.Fprintf(w, "  url: %s\n", c.Client.URL())
		v, err := c.Client.Version(ctx)
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(w, "  instance: FAILED: %v\n", err)
		} else {
			fmt.Fprintf(w, "  credentials: accepted (GET %s answered 200)\n", PathVersion)
			fmt.Fprintf(w, "  version: %s\n", cmp.Or(v.Version, "(not given)"))
		}
	}
	for _, f := range c.Feeds {
		mf, err := f.Manifest(ctx, "")
		var entries []ManifestEntry
		var problems []string
		if err == nil {
			entries, problems, err = ParseManifest(mf.Body)
			if err != nil {
				err = fmt.Errorf("misp: feed %s: %w", f.Name(), err)
			}
		}
		if err != nil {
			errs = append(errs, err)
			fmt.Fprintf(w, "  feed %s (%s): FAILED: %v\n", f.Name(), f.Location(), err)
			continue
		}
		newest := "-"
		if len(entries) > 0 {
			newest = time.Unix(entries[len(entries)-1].Timestamp, 0).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  feed %s (%s): %d events, newest changed %s", f.Name(), f.Location(), len(entries), newest)
		if len(problems) > 0 {
			fmt.Fprintf(w, ", %d manifest entries unusable", len(problems))
		}
		fmt.Fprintln(w)
	}
	return errors.Join(errs...)
}
