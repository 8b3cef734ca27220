package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/api"
	"github.com/vigil-ti/vigil/internal/detect"
	"github.com/vigil-ti/vigil/internal/ingest"
	"github.com/vigil-ti/vigil/internal/notify"
	"github.com/vigil-ti/vigil/internal/scheduler"
)

// serveDetection is detection under serve: an Engine whose Snapshot of the
// live indicators is rebuilt in the background after every pull that
// wrote records, and swapped in atomically, so matching never pauses; and
// the HTTP inputs that feed it events.
type serveDetection struct {
	eng     *detect.Engine
	pipe    *ingest.Pipeline
	log     *slog.Logger
	cancel  context.CancelFunc
	ran     chan struct{} // closed when the pipeline's Run returned
	follow  sync.WaitGroup
	store   vigil.Store
	loading sync.Mutex // one index build at a time
	index   atomic.Pointer[indexState]
}

// indexState is what /healthz says of the index in place.
type indexState struct {
	indicators int
	loadedAt   time.Time
}

// health reports the index and the inputs' counts, for /healthz.
func (sd *serveDetection) health() api.DetectionHealth {
	st := sd.pipe.Stats()
	h := api.DetectionHealth{Requests: st.Requests, Events: st.Events, Malformed: st.Malformed, Failed: st.Failed,
		Alerts: st.Alerts, Stored: st.Stored, Rejected: st.Rejected, TooLarge: st.TooLarge, QueuedBytes: sd.pipe.QueuedBytes()}
	if ix := sd.index.Load(); ix != nil {
		h.Indicators, h.IndexLoadedAt = ix.indicators, ix.loadedAt
	}
	return h
}

// sourcesForServe reports whether a source is configured. serve runs
// without one when the inputs are on: it then matches events against the
// indicators already in the store (imported, or pulled by earlier runs).
func (a *app) sourcesForServe() (bool, error) {
	err := a.checkSources("")
	if err != nil && a.cfg.Detection.Inputs.Enabled {
		a.log.Info("no source is configured: serve pulls nothing and matches events against the indicators already in the store")
		return false, nil
	}
	return err == nil, err
}

// startDetection starts detection under serve, or returns nil when
// detection.inputs.enabled is false. It follows sched's pulls and kicks d
// (when not nil) after alerts were stored. The index is loaded in the
// background: until it is, requests wait in the input queue.
func (a *app) startDetection(ctx context.Context, sched *scheduler.Scheduler, d *notify.Deliverer) (*serveDetection, error) {
	in := a.cfg.Detection.Inputs
	if !in.Enabled {
		return nil, nil
	}
	eng, err := detect.New(detectConfig(a.cfg.Detection), a.store, a.clock)
	if err != nil {
		return nil, err
	}
	a.recordSightings(eng)
	ready := make(chan struct{})
	opts := ingest.Options{
		Engine:               eng,
		Store:                a.store,
		Ready:                ready,
		Logger:               a.log.With("component", "inputs"),
		MaxQueueBytes:        int64(in.MaxQueueBytes),
		MaxBodyBytes:         int64(in.MaxBodyBytes),
		Auth:                 ingest.Auth{Token: in.Token.Value(), Username: in.Username, Password: in.Password.Value()},
		ElasticsearchVersion: in.ElasticsearchVersion,
	}
	if d != nil {
		opts.Stored = d.Kick
	}
	pipe, err := ingest.New(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	sd := &serveDetection{eng: eng, pipe: pipe, log: a.log.With("component", "detection"), cancel: cancel, ran: make(chan struct{}), store: a.store}
	// After a pull that wrote records: the new index is swapped in, then
	// the sightings the engine holds are written, before any later hook
	// (the retro-hunt) runs. Events matched against the old index are then
	// sightings the hunt sees; later ones match live.
	prev := sched.After
	sched.After = func(ctx context.Context, r vigil.PullResult, err error) {
		if prev != nil {
			prev(ctx, r, err)
		}
		if r.Records == 0 {
			return
		}
		if err := sd.rebuildNow(ctx); err != nil {
			if ctx.Err() == nil {
				sd.log.Error("rebuilding the detection index after a pull; matching goes on with the previous one", "err", err)
			}
			return
		}
		var ferr error
		if err := sd.pipe.Do(ctx, func(ctx context.Context) { ferr = eng.FlushSightings(ctx) }); err == nil && ferr != nil {
			sd.log.Error("writing sightings", "err", ferr)
		}
	}
	sd.follow.Go(func() { sd.loadIndex(ctx, ready) })
	go func() {
		defer close(sd.ran)
		pipe.Run(ctx)
	}()
	return sd, nil
}

// handler serves the inputs in front of next.
func (sd *serveDetection) handler(next http.Handler) http.Handler {
	if sd == nil {
		return next
	}
	return sd.pipe.Handler(next)
}

// rebuildNow builds a Snapshot and swaps it in, waiting for a build in
// progress first.
func (sd *serveDetection) rebuildNow(ctx context.Context) error {
	sd.loading.Lock()
	defer sd.loading.Unlock()
	n, err := rebuildIndex(ctx, sd.store, sd.eng, sd.log)
	if err == nil {
		sd.index.Store(&indexState{indicators: n, loadedAt: time.Now().UTC()})
	}
	return err
}

// loadIndex loads the first Snapshot, retrying every 10 s, and closes
// ready once it is in; the pulls' hook (startDetection) rebuilds it after.
func (sd *serveDetection) loadIndex(ctx context.Context, ready chan<- struct{}) {
	for ctx.Err() == nil {
		err := sd.rebuildNow(ctx)
		if err == nil {
			close(ready)
			return
		}
		if ctx.Err() == nil {
			sd.log.Error("loading the detection index; retrying in 10s", "err", err)
			sleepCtx(ctx, 10*time.Second)
		}
	}
}

// rebuildIndex builds a Snapshot of the store's live indicators and
// vulnerabilities and swaps it into eng; events are matched against the
// previous one meanwhile. It returns the indicators indexed.
func rebuildIndex(ctx context.Context, store vigil.Store, eng *detect.Engine, log *slog.Logger) (int, error) {
	start := time.Now()
	snap, ls, err := detect.Load(ctx, store)
	if err != nil {
		return 0, err
	}
	first := eng.Swap(snap) == nil
	log.Info("detection index loaded", "indicators", ls.Indicators, "documents", ls.Indexed,
		"without_value", ls.Skipped, "refused", ls.Invalid, "seconds", time.Since(start).Seconds())
	if first && ls.Indicators == 0 {
		log.Warn("the store has no live indicators yet: events match nothing until a pull or an import brings some")
	}
	return ls.Indicators, nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// close stops the inputs after the HTTP server has stopped: what was
// queued is matched and its alerts stored (unless the index never
// loaded), then the index stops following the store.
func (sd *serveDetection) close() {
	if sd == nil {
		return
	}
	sd.pipe.Close()
	<-sd.ran // what was queued is matched and its alerts stored
	if err := sd.eng.FlushSightings(context.Background()); err != nil {
		sd.log.Error("writing sightings", "err", err)
	}
	sd.cancel()
	sd.follow.Wait()
	st := sd.pipe.Stats()
	sd.log.Info("inputs stopped", "requests", st.Requests, "events", st.Events, "malformed", st.Malformed,
		"alerts", st.Alerts, "stored", st.Stored, "rejected_429", st.Rejected, "too_large_413", st.TooLarge)
}
