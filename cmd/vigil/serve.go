package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/api"
	"github.com/vigil-ti/vigil/internal/scheduler"
)

// pruneEvery is how often serve prunes the store.
const pruneEvery = time.Hour

// cmdServe pulls each dataset on its interval and serves HTTP until SIGINT or
// SIGTERM, then finishes the pages in flight and exits.
func cmdServe(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("usage: vigil serve")
	}
	a, err := loadConfig(e)
	if err != nil {
		return err
	}
	withSources, err := a.sourcesForServe()
	if err != nil {
		return err
	}
	if err := a.openWriter(ctx); err != nil {
		return err
	}
	defer a.close()
	var cols []vigil.Collector
	if withSources {
		if cols, err = a.collectors("", nil); err != nil {
			return err
		}
	}
	sched := &scheduler.Scheduler{Collectors: cols, Clock: a.clock, Logger: a.log}
	deliverer, err := a.deliverer()
	if err != nil {
		return err
	}
	feeds, err := a.serveMISP(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (the listen setting): %w", a.cfg.Listen, err)
	}
	det, err := a.startDetection(ctx, sched, deliverer)
	if err != nil {
		ln.Close()
		return err
	}
	// After detection's hook (the new index in, its sightings written).
	sched.After = a.retroHuntAfterPull(sched.After, e.stop)
	srvAPI := &api.Server{Scheduler: sched}
	if det != nil {
		srvAPI.Detection = det.health
	}
	handler := det.handler(srvAPI.Handler())
	if feeds != nil {
		if deliverer != nil {
			feeds.Outbox, feeds.Connectors = a.store, a.cfg.WarningActions()
		}
		handler = feeds.Wrap(handler)
		checks, stopChecks := context.WithCancel(ctx)
		checksDone := make(chan struct{})
		go func() { feeds.RunChecks(checks, mispCheckEvery); close(checksDone) }()
		defer func() { stopChecks(); <-checksDone }()
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
	}
	a.log.Info("serving", "listen", ln.Addr().String(), "data_dir", a.cfg.DataDir, "version", vigil.Version)
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(ln) }()

	// The retro-hunt and the prunes stop at once when serve is asked to
	// stop (their transactions roll back; the next start or pull runs
	// them again), where a pull finishes its page: at start, over millions
	// of indicators, they can take longer than the shutdown's grace.
	work, stopWork := context.WithCancel(ctx)
	defer stopWork()
	go func() {
		select {
		case <-e.stop:
			stopWork()
		case <-work.Done():
		}
	}()
	a.retroHuntAtStart(work, e.stop)
	pullsDone := make(chan struct{})
	go func() {
		sched.Run(ctx, e.stop)
		close(pullsDone)
	}()
	deliveriesDone := make(chan struct{})
	go runDeliverer(ctx, deliverer, e.stop, deliveriesDone)
	importsDone := make(chan struct{})
	go func() {
		a.watchImports(ctx, e.stop, sched.After)
		close(importsDone)
	}()
	prune := time.NewTicker(pruneEvery)
	defer prune.Stop()
	a.prune(work)
	var serveErr error
loop:
	for {
		select {
		case <-e.stop:
			break loop
		case <-ctx.Done():
			break loop
		case err := <-httpErr:
			serveErr = fmt.Errorf("http server: %w", err)
			break loop
		case <-prune.C:
			a.prune(work)
		}
	}
	a.log.Info("shutting down: finishing the pages in flight")
	<-pullsDone
	<-deliveriesDone
	<-importsDone
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Warn("http shutdown", "err", err)
	}
	det.close()
	a.log.Info("stopped")
	return serveErr
}

func (a *app) prune(ctx context.Context) {
	if ctx.Err() != nil {
		return // stopping
	}
	ps, err := a.store.Prune(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Error("prune", "err", err)
		}
		return
	}
	if ps.RawDocs > 0 || ps.Expired > 0 {
		a.log.Info("pruned", "raw_docs", ps.RawDocs, "expired_live_rows", ps.Expired, "compacted_live_docs", ps.Compacted)
	}
	n, err := a.pruneOutbox(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		a.log.Error("prune the outbox", "err", err)
	} else if n > 0 {
		a.log.Info("pruned", "delivered_outbox_rows", n)
	}
	a.pruneSightingsLogged(ctx)
}
