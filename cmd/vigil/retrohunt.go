package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect"
)

// Retro-hunts (detection.retrohunt): `match` records sightings, and every
// pull, import and serve's pulls end with a retro-hunt of the indicators
// they wrote. An engine that matches in the same process as a retro-hunt
// (serve's) must have the Snapshot that includes the new indicators
// swapped in, and its sightings flushed, before the hunt runs: events it
// matched against the old Snapshot are then sightings the hunt sees, and
// later ones are matched live.

// recordSightings makes eng record sightings into the store, when
// retro-hunts are on. Call eng.FlushSightings before the engine is
// dropped.
func (a *app) recordSightings(eng *detect.Engine) {
	rh := a.cfg.Detection.Retrohunt
	if !rh.Enabled {
		return
	}
	eng.RecordSightings(detect.SightingsConfig{Store: a.store, Window: time.Duration(rh.Window)})
}

// retroHunt checks the indicators written since the last retro-hunt
// against the sightings of the window and stores the alerts (their
// deliveries wait in the outbox for serve). It does nothing when
// retro-hunts are off, or when stop is closed: the indicators stay after
// the watermark, for the next hunt.
func (a *app) retroHunt(ctx context.Context, stop <-chan struct{}) error {
	rh := a.cfg.Detection.Retrohunt
	if !rh.Enabled {
		return nil
	}
	select {
	case <-stop:
		a.log.Info("retro-hunt skipped: stopping; the next pull or import runs it")
		return nil
	default:
	}
	h, err := detect.NewRetroHunter(detectConfig(a.cfg.Detection), a.store, time.Duration(rh.Window), a.clock)
	if err != nil {
		return err
	}
	start := time.Now()
	st, err := h.Run(ctx)
	if err != nil {
		return err
	}
	if st.Indicators > 0 {
		a.log.Info("retro-hunt", "indicators", st.Indicators, "lookups", st.Lookups, "scanned_kinds", st.Scanned,
			"sightings", st.Sightings, "alerts", st.Alerts, "stored", st.Stored, "seconds", fmt.Sprintf("%.2f", time.Since(start).Seconds()))
	}
	if st.MissingDocs > 0 {
		a.log.Warn("retro-hunt: matched indicators were gone from the store; their enrichments carry no indicator object", "count", st.MissingDocs)
	}
	return nil
}

// retroHuntAfterPull returns serve's scheduler hook: after calls next (an
// earlier hook, which may swap a new Snapshot in), then, after a pull that
// wrote live documents, a retro-hunt. Hunts from two sources' pulls run
// one at a time.
func (a *app) retroHuntAfterPull(next func(context.Context, vigil.PullResult, error), stop <-chan struct{}) func(context.Context, vigil.PullResult, error) {
	var mu sync.Mutex
	return func(ctx context.Context, r vigil.PullResult, err error) {
		if next != nil {
			next(ctx, r, err)
		}
		if r.Live == 0 {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if err := a.retroHunt(ctx, stop); err != nil {
			a.log.Error("retro-hunt after a pull; the next pull tries again", "source", r.Source, "dataset", r.Dataset, "err", err)
		}
	}
}

// pruneSightings removes the sightings of the days past the retro-hunt
// window.
func (a *app) pruneSightings(ctx context.Context) (int64, error) {
	return a.store.PruneSightings(ctx, a.clock.Now().Add(-time.Duration(a.cfg.Detection.Retrohunt.Window)))
}

// retroHuntAtStart runs the retro-hunt that a crash or a stop may have
// left undone, before serve's first pulls.
func (a *app) retroHuntAtStart(ctx context.Context, stop <-chan struct{}) {
	switch err := a.retroHunt(ctx, stop); {
	case err != nil && ctx.Err() != nil:
		a.log.Info("retro-hunt at start stopped: stopping; the next start or pull runs it")
	case err != nil:
		a.log.Error("retro-hunt at start; the next pull tries again", "err", err)
	}
}

// pruneSightingsLogged is serve's hourly prune of sightings.
func (a *app) pruneSightingsLogged(ctx context.Context) {
	if n, err := a.pruneSightings(ctx); err != nil {
		a.log.Error("prune sightings", "err", err)
	} else if n > 0 {
		a.log.Info("pruned", "sightings", n)
	}
}

// pruneSightingsCmd is `vigil prune`'s prune of sightings.
func pruneSightingsCmd(ctx context.Context, e *env, a *app) error {
	n, err := a.pruneSightings(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(e.stdout, "removed %d sightings of the days before the retro-hunt window (%s)\n", n, a.cfg.Detection.Retrohunt.Window)
	}
	return nil
}

// printSightings prints what `vigil status` shows of retro-hunts, when
// sightings are kept.
func printSightings(ctx context.Context, e *env, a *app) error {
	st, err := a.store.SightingStats(ctx)
	if err != nil || st.Rows == 0 {
		return err
	}
	last := "never"
	if !st.RetroHuntMarkedAt.IsZero() {
		last = st.RetroHuntMarkedAt.Format(time.RFC3339)
	}
	fmt.Fprintf(e.stdout, "\nsightings: %d (value, day) entries, seen %s to %s; last retro-hunt %s\n",
		st.Rows, st.Oldest.Format(time.RFC3339), st.Newest.Format(time.RFC3339), last)
	return nil
}
