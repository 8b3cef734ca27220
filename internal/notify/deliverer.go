package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/httpx"
)

// Defaults of Options.
const (
	DefaultBaseBackoff = time.Second
	DefaultMaxBackoff  = time.Minute
	DefaultTimeout     = 30 * time.Second
	DefaultBatch       = 100
	DefaultPoll        = time.Second
)

// Options configure a Deliverer. The zero value gives the defaults.
type Options struct {
	// Clock tells the time: when a delivery is due, and when it is due
	// again after a failure. The wall clock by default.
	Clock vigil.Clock
	// Logger gets one line per delivery and per failed attempt. Nil:
	// discard.
	Logger *slog.Logger
	// BaseBackoff is the delay after a delivery's first failed attempt;
	// it doubles with each further failure up to MaxBackoff.
	BaseBackoff time.Duration
	// MaxBackoff caps the delay between attempts, a receiver's
	// Retry-After included.
	MaxBackoff time.Duration
	// Timeout bounds one attempt.
	Timeout time.Duration
	// Batch is how many due deliveries a pass reads at a time.
	Batch int
	// Poll is how often Run looks for due deliveries when nothing wakes
	// it (Kick wakes it at once).
	Poll time.Duration
	// Jitter turns a backoff delay into the delay used. Nil: a uniform
	// random delay in [d/2, d], so that deliveries that failed together
	// are not all retried at the same instant.
	Jitter func(d time.Duration) time.Duration
}

// Deliverer delivers the outbox through the connectors. It is safe for
// concurrent use, though one Run (or one DeliverOnce at a time) is the
// intended use.
type Deliverer struct {
	outbox     vigil.Outbox
	connectors map[string]Connector
	opts       Options
	log        *slog.Logger
	wake       chan struct{}
}

// NewDeliverer returns a deliverer of outbox through connectors, by
// connector name.
func NewDeliverer(outbox vigil.Outbox, connectors map[string]Connector, opts Options) *Deliverer {
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = DefaultBaseBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Jitter == nil {
		opts.Jitter = httpx.EqualJitter
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{outbox: outbox, connectors: connectors, opts: opts, log: log, wake: make(chan struct{}, 1)}
}

// Stats count what a pass did.
type Stats struct {
	Delivered int // accepted by their connector
	Failed    int // attempted and failed; due again after a backoff
	// Postponed counts deliveries not attempted because their connector
	// failed earlier in the pass (or is not configured); they count a
	// failed attempt and are due again after a backoff.
	Postponed int
}

func (s *Stats) add(o Stats) {
	s.Delivered += o.Delivered
	s.Failed += o.Failed
	s.Postponed += o.Postponed
}

// DeliverOnce makes one attempt at every delivery due now, and returns
// what it did. Deliveries to different connectors are sent concurrently,
// one connector's in order. A delivery that fails stays queued, due again
// after its backoff. A pass attempts each delivery at most once.
//
// When a connector fails in a way that means it is down (not a refusal of
// one delivery: see ErrRejected), its other deliveries due in the pass are
// postponed without an attempt, so that a dead receiver costs one timeout
// per pass, not one per delivery.
//
// Cancelling ctx stops the pass; a delivery whose attempt was cut stays
// due as it was (the receiver may have got it: the next attempt carries
// the same key, so it can drop the copy).
func (d *Deliverer) DeliverOnce(ctx context.Context) (Stats, error) {
	var total Stats
	seen := map[int64]bool{}
	for {
		due, err := d.outbox.DueDeliveries(ctx, d.opts.Clock.Now(), d.opts.Batch)
		if err != nil {
			return total, fmt.Errorf("notify: %w", err)
		}
		var fresh []vigil.Delivery
		for _, x := range due {
			if !seen[x.ID] {
				seen[x.ID] = true
				fresh = append(fresh, x)
			}
		}
		if len(fresh) == 0 {
			return total, nil
		}
		byConnector := map[string][]vigil.Delivery{}
		for _, x := range fresh {
			byConnector[x.Connector] = append(byConnector[x.Connector], x)
		}
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			errs []error
		)
		for name, ds := range byConnector {
			wg.Go(func() {
				st, err := d.deliver(ctx, name, ds)
				mu.Lock()
				defer mu.Unlock()
				total.add(st)
				if err != nil {
					errs = append(errs, err)
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("notify: %w", context.Cause(ctx))
		}
		if len(due) < d.opts.Batch {
			return total, nil
		}
	}
}

// deliver sends one connector's due deliveries in order. Its error is an
// outbox write that failed.
func (d *Deliverer) deliver(ctx context.Context, name string, ds []vigil.Delivery) (Stats, error) {
	var st Stats
	log := d.log.With("connector", name)
	c, ok := d.connectors[name]
	var down error // why the connector is taken as down in this pass
	if !ok {
		known := "none is configured"
		if len(d.connectors) > 0 {
			known = "configured: " + strings.Join(slices.Sorted(maps.Keys(d.connectors)), ", ")
		}
		down = fmt.Errorf("no connector %q (%s); its deliveries stay queued until one is", name, known)
	}
	for _, x := range ds {
		if ctx.Err() != nil {
			break
		}
		var err error
		attempted := down == nil
		if attempted {
			err = d.attempt(ctx, c, x)
			if err != nil && ctx.Err() != nil {
				break // cut by the caller: left due as it was
			}
		} else {
			err = fmt.Errorf("not attempted: %w", down)
		}
		now := d.opts.Clock.Now()
		if err == nil {
			if werr := d.outbox.DeliveryDone(ctx, x.ID, now); werr != nil {
				return st, fmt.Errorf("notify: %w", werr)
			}
			st.Delivered++
			log.Info("delivered", "key", x.Key, "attempt", x.Attempts+1)
			continue
		}
		delay := d.backoff(x.Attempts+1, err)
		if werr := d.outbox.DeliveryFailed(ctx, x.ID, now.Add(delay), err.Error()); werr != nil {
			return st, fmt.Errorf("notify: %w", werr)
		}
		if !attempted {
			st.Postponed++
			continue
		}
		st.Failed++
		attrs := []any{"key", x.Key, "attempt", x.Attempts + 1, "retry_in", delay.Round(time.Millisecond), "err", err}
		if errors.Is(err, ErrRejected) {
			// The receiver works but refuses this delivery: it is
			// retried, but only a change of configuration (or of the
			// receiver) will get it through.
			log.Error("delivery refused by the receiver; retrying (check the connector's url, headers and body)", attrs...)
			continue
		}
		log.Warn("delivery failed; retrying", attrs...)
		down = err
	}
	switch {
	case st.Postponed > 0 && !ok:
		log.Error("connector not configured: its deliveries stay queued", "postponed", st.Postponed, "err", down)
	case st.Postponed > 0:
		log.Warn("connector failing: deliveries put off", "postponed", st.Postponed, "err", down)
	}
	return st, nil
}

// attempt sends x through c within the per-attempt timeout.
func (d *Deliverer) attempt(ctx context.Context, c Connector, x vigil.Delivery) error {
	actx, cancel := context.WithTimeoutCause(ctx, d.opts.Timeout, fmt.Errorf("delivery timed out after %s", d.opts.Timeout))
	defer cancel()
	return c.Send(actx, x)
}

// backoff is the delay before the next attempt of a delivery that has
// failed attempts times: BaseBackoff doubled for each failure after the
// first, capped at MaxBackoff, jittered; at least the receiver's
// Retry-After (capped too).
func (d *Deliverer) backoff(attempts int, err error) time.Duration {
	delay := d.opts.BaseBackoff
	for i := 1; i < attempts && delay < d.opts.MaxBackoff; i++ {
		delay *= 2
	}
	delay = d.opts.Jitter(min(delay, d.opts.MaxBackoff))
	var ra retryAfterError
	if errors.As(err, &ra) {
		delay = max(delay, min(ra.RetryAfter(), d.opts.MaxBackoff))
	}
	return delay
}

// Kick makes Run look for due deliveries now, e.g. after new ones were
// queued. It never blocks.
func (d *Deliverer) Kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers the outbox until ctx is done: a pass (DeliverOnce), then a
// wait of Options.Poll or until Kick, and again.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTimer(d.opts.Poll)
	defer t.Stop()
	for {
		if _, err := d.DeliverOnce(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("delivering the outbox", "err", err)
		}
		t.Reset(d.opts.Poll)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}
