// Package ingest is the HTTP event inputs of `vigil serve`: POST
// /api/v1/events takes NDJSON, and an Elasticsearch-compatible surface
// (GET /, the bulk API, and the probes shippers make at startup) lets
// Filebeat, Logstash, Fluent Bit, Vector and rsyslog send events through
// their Elasticsearch outputs.
//
// Handlers read each request body whole, charging its bytes to a queue
// bounded by Options.MaxQueueBytes, and hand it to one matching goroutine
// (Run), which runs the detection Engine over its events and stores the
// alerts with their deliveries in batches. A handler answers when its
// events are matched and their alerts stored. When the queue is full, a
// request is answered 429 with Retry-After before anything of it is
// matched, so a client can send it again whole; memory never grows past
// the bound.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect"
)

// AlertStore stores alerts and queues their deliveries in one
// transaction. *sqlite.DB implements it.
type AlertStore interface {
	AddDetections(ctx context.Context, dets []vigil.Detection, deliveries []vigil.Delivery) (int, error)
}

// Options configure a Pipeline.
type Options struct {
	// Engine matches the events; only Run calls it. Its Snapshot is
	// swapped in by whoever follows the store.
	Engine *detect.Engine
	// Store keeps the alerts and their deliveries.
	Store AlertStore
	// Ready, when not nil, is closed once the Engine has a Snapshot; Run
	// matches nothing before (requests wait in the queue, then get 429).
	Ready <-chan struct{}
	// Stored, when not nil, is called after alerts were stored, before the
	// requests that brought them are answered, e.g. to
	// wake the outbox's deliverer.
	Stored func()
	Logger *slog.Logger
	// MaxQueueBytes bounds the bytes of the requests accepted and not yet
	// answered; MaxBodyBytes one request's body, after gzip decoding.
	MaxQueueBytes int64
	MaxBodyBytes  int64
	// Auth, when it names credentials, is required of every request.
	Auth Auth
	// ElasticsearchVersion is the version GET / reports (default
	// DefaultElasticsearchVersion).
	ElasticsearchVersion string
	// Name is the node and cluster name GET / reports (default "vigil").
	Name string
	// FlushAlerts and FlushEvery bound how many alerts wait, and how long,
	// before they are stored, while more events wait to be matched; when
	// none wait, alerts are stored at once. Defaults: 500 and 200 ms.
	FlushAlerts int
	FlushEvery  time.Duration
}

// Defaults of Options.
const (
	DefaultMaxQueueBytes        = 64 << 20
	DefaultMaxBodyBytes         = 32 << 20
	DefaultElasticsearchVersion = "8.17.0"
	DefaultFlushAlerts          = 500
	DefaultFlushEvery           = 200 * time.Millisecond
)

// Costs charged to the queue besides a body's bytes: per request, and per
// bulk item (the item's state until it is answered).
const (
	jobCharge  = 1 << 10
	itemCharge = 128
)

// Stats counts what the inputs did since start.
type Stats struct {
	Requests  int64 // requests whose events were matched
	Events    int64 // events matched
	Malformed int64 // lines or documents that were not a JSON object
	Failed    int64 // events that could not be matched (reading the store failed)
	Alerts    int64 // alerts raised
	Stored    int64 // alerts stored (new to the store)
	Rejected  int64 // requests answered 429: the queue was full
	TooLarge  int64 // requests answered 413
}

// Pipeline is the bounded queue between the HTTP handlers and the matching
// goroutine, and the handlers.
type Pipeline struct {
	opts  Options
	log   *slog.Logger
	q     queue
	info  []byte // the body of GET /
	major int    // the major version GET / reports
	auth  auth
	ids   idGen

	// Owned by Run.
	pending      []vigil.Detection
	waiting      []*job // jobs whose alerts are in pending
	firstPending time.Time

	stats struct {
		requests, events, malformed, failed, alerts, stored, rejected, tooLarge atomic.Int64
	}
	seqNo atomic.Int64
	// calls run on the matching goroutine (see Do).
	calls chan call
}

// call is a function that Do runs on the matching goroutine.
type call struct {
	fn   func(context.Context)
	done chan struct{}
}

// Do runs fn on the matching goroutine, between two requests, and waits
// until it has run: the Engine is not safe for concurrent use, so work on
// it from elsewhere (flushing its sightings before a retro-hunt) goes
// through here. It returns ctx's error, or an error when the pipeline
// stopped before running fn.
func (p *Pipeline) Do(ctx context.Context, fn func(context.Context)) error {
	c := call{fn: fn, done: make(chan struct{})}
	select {
	case p.calls <- c:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.q.closed:
		return errClosed
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runCalls runs the calls waiting, without blocking.
func (p *Pipeline) runCalls(ctx context.Context) {
	for {
		select {
		case c := <-p.calls:
			c.fn(ctx)
			close(c.done)
		default:
			return
		}
	}
}

// New returns a Pipeline; Run must run for requests to be answered.
func New(opts Options) (*Pipeline, error) {
	if opts.Engine == nil || opts.Store == nil {
		return nil, errors.New("ingest: an engine and a store are required")
	}
	if opts.MaxQueueBytes <= 0 {
		opts.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxBodyBytes > opts.MaxQueueBytes-jobCharge {
		return nil, fmt.Errorf("ingest: the body limit (%d bytes) must be smaller than the queue (%d bytes)", opts.MaxBodyBytes, opts.MaxQueueBytes)
	}
	if opts.ElasticsearchVersion == "" {
		opts.ElasticsearchVersion = DefaultElasticsearchVersion
	}
	if opts.Name == "" {
		opts.Name = "vigil"
	}
	if opts.FlushAlerts <= 0 {
		opts.FlushAlerts = DefaultFlushAlerts
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = DefaultFlushEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Pipeline{opts: opts, log: opts.Logger, calls: make(chan call)}
	major, err := esMajor(opts.ElasticsearchVersion)
	if err != nil {
		return nil, err
	}
	p.major = major
	p.info = infoBody(opts.Name, opts.ElasticsearchVersion, major)
	p.auth = newAuth(opts.Auth)
	p.q.init(opts.MaxQueueBytes)
	p.ids.init()
	return p, nil
}

// Stats returns the counts so far.
func (p *Pipeline) Stats() Stats {
	s := &p.stats
	return Stats{
		Requests: s.requests.Load(), Events: s.events.Load(), Malformed: s.malformed.Load(), Failed: s.failed.Load(),
		Alerts: s.alerts.Load(), Stored: s.stored.Load(), Rejected: s.rejected.Load(), TooLarge: s.tooLarge.Load(),
	}
}

// QueuedBytes returns the bytes charged to the queue now.
func (p *Pipeline) QueuedBytes() int64 { return p.q.usedBytes() }

// Close stops taking requests (they are answered 503); Run matches what
// was queued, stores its alerts and returns.
func (p *Pipeline) Close() { p.q.close() }

// errClosed answers the requests that come after Close.
var errClosed = errors.New("vigil is shutting down")

// errFull answers the requests that do not fit in the queue.
var errFull = errors.New("the matcher is behind: the input queue is full")

// job is one request's events, queued for Run.
type job struct {
	body   []byte
	items  []bulkItem // bulk requests; nil: body is NDJSON
	charge int64
	// refs counts the holders of the job's memory (the handler and Run);
	// the last one returns its charge to the queue.
	refs atomic.Int32
	done chan struct{}

	// Set by Run before done is closed.
	res result
	err error
}

// result counts what Run did with a job's events.
type result struct {
	events, malformed, failed, alerts int
	// lines reports malformed and failed NDJSON lines, the first
	// maxLinesShown.
	lines []lineError
}

// lineError is one line that was not matched.
type lineError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// maxLinesShown is how many line errors a response lists.
const maxLinesShown = 20

// release drops one holder of j; the last one returns j's charge.
func (p *Pipeline) release(j *job) {
	if j.refs.Add(-1) == 0 {
		p.q.release(j.charge)
	}
}

// finish hands j back to its handler.
func (p *Pipeline) finish(j *job, err error) {
	j.err = err
	close(j.done)
	p.release(j)
}

// submit queues j, charged with j.charge already reserved, and waits until
// Run is done with it or ctx ends (the client went away). The caller then
// owns j's result and must call p.release(j) once it has answered.
func (p *Pipeline) submit(ctx context.Context, j *job) error {
	j.done = make(chan struct{})
	j.refs.Store(2)
	if err := p.q.push(j); err != nil {
		j.refs.Store(1)
		return err
	}
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run matches the queued requests until Close, then matches what is left,
// stores the last alerts and returns. When ctx ends first, the requests
// still queued are answered 503 and their alerts, if any, are not stored.
func (p *Pipeline) Run(ctx context.Context) {
	if p.opts.Ready != nil {
		select {
		case <-p.opts.Ready:
		case <-ctx.Done():
		case <-p.q.closed:
		}
		select {
		case <-p.opts.Ready:
		default:
			p.stop(errors.New("vigil stopped before the detection index was loaded"))
			return
		}
	}
	for {
		jobs, closed := p.q.take()
		if len(jobs) == 0 {
			p.flush(ctx) // nothing waits to be matched: store now
			if closed || ctx.Err() != nil {
				p.stop(errClosed)
				return
			}
			select {
			case <-p.q.wake:
			case <-p.q.closed:
			case <-ctx.Done():
			case c := <-p.calls:
				c.fn(ctx)
				close(c.done)
			}
			continue
		}
		for i, j := range jobs {
			if ctx.Err() != nil {
				for _, j := range jobs[i:] {
					p.finish(j, errClosed)
				}
				break
			}
			p.process(ctx, j)
			p.runCalls(ctx)
			if len(p.pending) >= p.opts.FlushAlerts || (len(p.pending) > 0 && time.Since(p.firstPending) >= p.opts.FlushEvery) {
				p.flush(ctx)
			}
		}
	}
}

// stop closes the queue and answers every queued job with err.
func (p *Pipeline) stop(err error) {
	p.q.close()
	for {
		jobs, _ := p.q.take()
		if len(jobs) == 0 {
			return
		}
		for _, j := range jobs {
			p.finish(j, err)
		}
	}
}

// process matches the events of one job. Its alerts join the pending
// batch; the job is answered when they are stored.
func (p *Pipeline) process(ctx context.Context, j *job) {
	before := len(p.pending)
	p.opts.Engine.StartBatch() // the request's body is in memory
	defer p.opts.Engine.EndBatch()
	if j.items == nil {
		p.matchNDJSON(ctx, j)
	} else {
		p.matchBulk(ctx, j)
	}
	r := &j.res
	s := &p.stats
	s.requests.Add(1)
	s.events.Add(int64(r.events))
	s.malformed.Add(int64(r.malformed))
	s.failed.Add(int64(r.failed))
	s.alerts.Add(int64(r.alerts))
	if len(p.pending) == before {
		p.finish(j, nil)
		return
	}
	if len(p.waiting) == 0 {
		p.firstPending = time.Now()
	}
	p.waiting = append(p.waiting, j)
}

// outcome is what matching one event gave.
type outcome int

const (
	matched outcome = iota
	malformed
	failed
)

// match matches one event, given the next to be matched (nil: none),
// and keeps its alerts for the next flush.
func (p *Pipeline) match(ctx context.Context, r *result, line, next []byte) (outcome, string) {
	dets, err := p.opts.Engine.MatchAhead(ctx, line, next)
	if err != nil {
		// se is declared here, not for every event: errors.As moves it to
		// the heap, an allocation an event.
		var se *detect.SyntaxError
		if errors.As(err, &se) {
			r.malformed++
			return malformed, se.Error()
		}
		r.failed++
		p.log.Error("matching an event", "err", err)
		return failed, err.Error()
	}
	r.events++
	r.alerts += len(dets)
	p.pending = append(p.pending, dets...)
	return matched, ""
}

// flush stores the pending alerts with their deliveries and answers the
// jobs that waited for them. A failed store is retried with backoff until
// it succeeds or ctx ends; meanwhile nothing is matched, so the queue
// fills and the inputs answer 429.
func (p *Pipeline) flush(ctx context.Context) {
	if len(p.pending) == 0 {
		return
	}
	backoff := time.Second
	var err error
	for {
		var n int
		n, err = p.opts.Store.AddDetections(ctx, p.pending, detect.Deliveries(p.pending))
		if err == nil {
			p.stats.stored.Add(int64(n))
			break
		}
		p.log.Error("storing alerts; retrying", "alerts", len(p.pending), "err", err, "retry_in", backoff)
		if ctx.Err() != nil {
			err = fmt.Errorf("the alerts could not be stored: %w", err)
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		backoff = min(2*backoff, 30*time.Second)
	}
	clear(p.pending)
	p.pending = p.pending[:0]
	// Before the requests are answered: a client that sees its answer
	// finds the deliveries already kicked.
	if err == nil && p.opts.Stored != nil {
		p.opts.Stored()
	}
	for _, j := range p.waiting {
		p.finish(j, err)
	}
	clear(p.waiting)
	p.waiting = p.waiting[:0]
}

// queue is the bounded queue: bytes are reserved while a body is read, and
// the job is pushed once read.
type queue struct {
	max    int64
	mu     sync.Mutex
	used   int64
	jobs   []*job
	done   bool
	wake   chan struct{} // signalled on push
	closed chan struct{} // closed by close
}

func (q *queue) init(max int64) {
	q.max = max
	q.wake = make(chan struct{}, 1)
	q.closed = make(chan struct{})
}

// reserve charges n bytes, or fails with errFull or errClosed.
func (q *queue) reserve(n int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.done:
		return errClosed
	case q.used+n > q.max:
		return errFull
	}
	q.used += n
	return nil
}

func (q *queue) release(n int64) {
	q.mu.Lock()
	q.used -= n
	q.mu.Unlock()
}

func (q *queue) usedBytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used
}

func (q *queue) push(j *job) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.done {
		return errClosed
	}
	q.jobs = append(q.jobs, j)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// take removes and returns every queued job, and whether the queue is
// closed.
func (q *queue) take() ([]*job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	jobs := q.jobs
	q.jobs = nil
	return jobs, q.done
}

func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.done {
		q.done = true
		close(q.closed)
	}
}

// idGen makes the ids of documents indexed without one: 20 characters
// of URL-safe base64, like Elasticsearch's, from a random prefix and a
// counter.
type idGen struct {
	prefix [7]byte
	n      atomic.Uint64
}

func (g *idGen) init() { rand.Read(g.prefix[:]) }

func (g *idGen) next() string {
	var b [15]byte
	copy(b[:], g.prefix[:])
	binary.BigEndian.PutUint64(b[7:], g.n.Add(1))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var out [20]byte
	for i := range 5 {
		v := uint32(b[3*i])<<16 | uint32(b[3*i+1])<<8 | uint32(b[3*i+2])
		out[4*i] = alphabet[v>>18&63]
		out[4*i+1] = alphabet[v>>12&63]
		out[4*i+2] = alphabet[v>>6&63]
		out[4*i+3] = alphabet[v&63]
	}
	return string(out[:])
}
