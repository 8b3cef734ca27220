package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
)

// fakeCollector records its pulls; each pull takes no time.
type fakeCollector struct {
	mu        sync.Mutex
	datasets  []string
	intervals map[string]time.Duration
	last      map[string]time.Time
	errs      map[string]error
	pulls     []string
}

func (f *fakeCollector) Name() string                           { return "fake" }
func (f *fakeCollector) Datasets() []string                     { return f.datasets }
func (f *fakeCollector) Interval(ds string) time.Duration       { return f.intervals[ds] }
func (f *fakeCollector) Check(context.Context, io.Writer) error { return nil }
func (f *fakeCollector) LastCompleted(_ context.Context, ds string) (time.Time, error) {
	return f.last[ds], nil
}
func (f *fakeCollector) Pull(_ context.Context, ds string, _ <-chan struct{}) (vigil.PullResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, ds)
	return vigil.PullResult{Source: "fake", Dataset: ds, Records: 10}, f.errs[ds]
}

// virtual time: Sleep advances the clock instead of waiting.
type vclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *vclock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func run(t *testing.T, col *fakeCollector, until time.Duration) *Scheduler {
	t.Helper()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &vclock{t: start}
	s := &Scheduler{
		Collectors: []vigil.Collector{col},
		Clock:      c,
		Logger:     slog.New(slog.DiscardHandler),
		Sleep: func(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.t.Add(d).Sub(start) > until {
				return false
			}
			c.t = c.t.Add(d)
			return true
		},
	}
	s.Run(t.Context(), make(chan struct{}))
	return s
}

func TestPullsWhenDue(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	col := &fakeCollector{
		datasets:  []string{"ioc", "alert"},
		intervals: map[string]time.Duration{"ioc": time.Hour, "alert": 4 * time.Hour},
		// alert completed 3h ago: due in 1h, together with ioc's second run.
		last: map[string]time.Time{"alert": start.Add(-3 * time.Hour)},
	}
	s := run(t, col, 9*time.Hour)
	// ioc at 0h..9h (10 pulls); alert at 1h, 5h, 9h.
	count := map[string]int{}
	for _, p := range col.pulls {
		count[p]++
	}
	if count["ioc"] != 10 || count["alert"] != 3 {
		t.Fatalf("pulls %v", col.pulls)
	}
	if col.pulls[0] != "ioc" {
		t.Fatalf("first pull %s, want the never-pulled ioc", col.pulls[0])
	}
	for _, st := range s.Statuses() {
		if st.LastCompleted.IsZero() || st.LastError != "" || st.NextRun.IsZero() {
			t.Fatalf("status %+v", st)
		}
	}
}

func TestCredentialErrorStopsSource(t *testing.T) {
	col := &fakeCollector{
		datasets:  []string{"ioc", "alert"},
		intervals: map[string]time.Duration{"ioc": time.Hour, "alert": time.Hour},
		errs:      map[string]error{"ioc": fmt.Errorf("pull: %w", vigil.ErrCredentials)},
	}
	s := run(t, col, 100*time.Hour)
	if len(col.pulls) != 1 {
		t.Fatalf("pulls after a credentials error: %v", col.pulls)
	}
	for _, st := range s.Statuses() {
		if st.State != "stopped" || st.LastError == "" {
			t.Fatalf("status %+v", st)
		}
	}
}

func TestOtherErrorsRetryNextInterval(t *testing.T) {
	col := &fakeCollector{
		datasets:  []string{"ioc"},
		intervals: map[string]time.Duration{"ioc": time.Hour},
		errs:      map[string]error{"ioc": errors.New("HTTP 500")},
	}
	s := run(t, col, 3*time.Hour)
	if len(col.pulls) != 4 {
		t.Fatalf("pulls %v", col.pulls)
	}
	if st := s.Statuses()[0]; st.State != "waiting" || st.LastError != "HTTP 500" || !st.LastCompleted.IsZero() {
		t.Fatalf("status %+v", st)
	}
}

func TestStopEndsRun(t *testing.T) {
	col := &fakeCollector{datasets: []string{"ioc"}, intervals: map[string]time.Duration{"ioc": time.Hour}}
	stop := make(chan struct{})
	close(stop)
	s := &Scheduler{Collectors: []vigil.Collector{col}, Clock: vigil.SystemClock{}, Logger: slog.New(slog.DiscardHandler)}
	done := make(chan struct{})
	go func() { s.Run(t.Context(), stop); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after stop")
	}
	if len(col.pulls) != 0 {
		t.Fatalf("pulled after stop: %v", col.pulls)
	}
}
