// Package scheduler runs each collector's datasets on their intervals and
// keeps their status for the health endpoint and the CLI.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-ti/vigil"
)

// Status is one dataset's schedule state.
type Status struct {
	Source        string    `json:"source"`
	Dataset       string    `json:"dataset"`
	State         string    `json:"state"` // waiting, pulling, stopped
	LastCompleted time.Time `json:"last_completed,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	NextRun       time.Time `json:"next_run,omitzero"`
	Records       int64     `json:"records"` // records pulled since start
}

// Scheduler runs pulls.
type Scheduler struct {
	Collectors []vigil.Collector
	Clock      vigil.Clock
	Logger     *slog.Logger
	// After is called after every pull (e.g. to prune or rebuild indexes).
	After func(ctx context.Context, r vigil.PullResult, err error)
	// Sleep waits d or until ctx or stop ends; tests replace it.
	Sleep func(ctx context.Context, stop <-chan struct{}, d time.Duration) bool

	mu     sync.Mutex
	status map[string]*Status
}

func key(source, dataset string) string { return source + "/" + dataset }

// Statuses returns a snapshot of every dataset's status.
func (s *Scheduler) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Status{}
	for _, c := range s.Collectors {
		for _, ds := range c.Datasets() {
			if st, ok := s.status[key(c.Name(), ds)]; ok {
				out = append(out, *st)
			}
		}
	}
	return out
}

func (s *Scheduler) update(source, dataset string, f func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status == nil {
		s.status = map[string]*Status{}
	}
	st, ok := s.status[key(source, dataset)]
	if !ok {
		st = &Status{Source: source, Dataset: dataset}
		s.status[key(source, dataset)] = st
	}
	f(st)
}

func sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}

// Run pulls every dataset when it is due, one goroutine per source (a
// source's datasets share its rate limits, so they run one at a time), until
// stop is closed; a pull in flight finishes its page first. Run returns when
// every pull has stopped.
func (s *Scheduler) Run(ctx context.Context, stop <-chan struct{}) {
	if s.Sleep == nil {
		s.Sleep = sleep
	}
	var wg sync.WaitGroup
	for _, c := range s.Collectors {
		for _, ds := range c.Datasets() {
			s.update(c.Name(), ds, func(st *Status) { st.State = "waiting" })
		}
		wg.Go(func() { s.runSource(ctx, c, stop) })
	}
	wg.Wait()
}

func (s *Scheduler) runSource(ctx context.Context, c vigil.Collector, stop <-chan struct{}) {
	log := s.Logger.With("source", c.Name())
	next := map[string]time.Time{}
	for _, ds := range c.Datasets() {
		last, err := c.LastCompleted(ctx, ds)
		if err != nil {
			log.Error("reading the schedule", "dataset", ds, "err", err)
		}
		if !last.IsZero() {
			next[ds] = last.Add(c.Interval(ds))
		}
		s.update(c.Name(), ds, func(st *Status) { st.LastCompleted = last; st.NextRun = next[ds] })
	}
	for {
		// The dataset due soonest.
		var due string
		var at time.Time
		for _, ds := range c.Datasets() {
			if due == "" || next[ds].Before(at) {
				due, at = ds, next[ds]
			}
		}
		if wait := at.Sub(s.Clock.Now()); wait > 0 {
			if !s.Sleep(ctx, stop, wait) {
				return
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		s.update(c.Name(), due, func(st *Status) { st.State = "pulling" })
		res, err := c.Pull(ctx, due, stop)
		now := s.Clock.Now()
		next[due] = now.Add(c.Interval(due))
		s.update(c.Name(), due, func(st *Status) {
			st.State = "waiting"
			st.NextRun = next[due]
			st.Records += int64(res.Records)
			if err == nil {
				st.LastCompleted = now
				st.LastError = ""
				return
			}
			st.LastError = err.Error()
			st.LastErrorAt = now
		})
		if s.After != nil {
			s.After(ctx, res, err)
		}
		switch {
		case err == nil:
			log.Info("pulled", "dataset", due, "pages", res.Pages, "records", res.Records, "live", res.Live, "errors", res.Rejected)
		case errors.Is(err, vigil.ErrStopped) || ctx.Err() != nil:
			return
		case errors.Is(err, vigil.ErrCredentials):
			log.Error("source stopped: fix its credentials and restart", "err", err)
			for _, ds := range c.Datasets() {
				s.update(c.Name(), ds, func(st *Status) {
					st.State = "stopped"
					st.NextRun = time.Time{}
					st.LastError = err.Error()
				})
			}
			return
		default:
			log.Error("pull failed; retrying at the next interval", "dataset", due, "err", err, "next_run", next[due])
		}
	}
}
