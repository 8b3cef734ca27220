package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vigil-ti/vigil"
)

// cmdPull runs one collection cycle of every enabled dataset (of one source,
// when named) and exits: 0 when every dataset completed its window.
func cmdPull(ctx context.Context, e *env, args []string) error {
	if len(args) > 1 {
		return usageError("usage: vigil pull [SOURCE]")
	}
	only := ""
	if len(args) == 1 {
		only = args[0]
	}
	a, err := loadConfig(e)
	if err != nil {
		return err
	}
	if err := a.checkSources(only); err != nil {
		return err
	}
	if err := a.openWriter(ctx); err != nil {
		return err
	}
	defer a.close()
	var prog *progressLine
	if isTerminal(e.stderr) {
		prog = &progressLine{w: e.stderr}
	}
	cols, err := a.collectors(only, prog.report)
	if err != nil {
		return err
	}
	failures := pullAll(ctx, a, cols, e.stop, prog)
	if err := a.retroHunt(ctx, e.stop); err != nil {
		failures = append(failures, err.Error())
	}
	if ps, err := a.store.Prune(ctx); err != nil {
		failures = append(failures, fmt.Sprintf("prune: %v", err))
	} else if ps.RawDocs > 0 || ps.Expired > 0 {
		a.log.Info("pruned", "raw_docs", ps.RawDocs, "expired_live_rows", ps.Expired, "compacted_live_docs", ps.Compacted)
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	return nil
}

// pullAll pulls every dataset of every collector once, printing a summary
// line per dataset, and returns what failed.
func pullAll(ctx context.Context, a *app, cols []vigil.Collector, stop <-chan struct{}, prog *progressLine) []string {
	var failures []string
	for _, c := range cols {
		for _, ds := range c.Datasets() {
			res, err := c.Pull(ctx, ds, stop)
			prog.done()
			printResult(a.stdout, res, err)
			if err == nil {
				continue
			}
			failures = append(failures, fmt.Sprintf("%s %s: %v", c.Name(), ds, err))
			if errors.Is(err, vigil.ErrStopped) || ctx.Err() != nil {
				return failures
			}
			if errors.Is(err, vigil.ErrCredentials) {
				break // the source's other datasets would be rejected too
			}
		}
	}
	return failures
}

func printResult(w io.Writer, r vigil.PullResult, err error) {
	status := "ok"
	if err != nil {
		status = "FAILED"
		if errors.Is(err, vigil.ErrStopped) {
			status = "stopped"
		}
	}
	resumed := ""
	if r.Resumed {
		resumed = " (resumed)"
	}
	fmt.Fprintf(w, "%-14s %-40s %-7s pages=%d records=%d live=%d stale=%d errors=%d unkeyed=%d window=%s..%s%s\n",
		r.Source, r.Dataset, status, r.Pages, r.Records, r.Live, r.Stale, r.Rejected, r.Unkeyed,
		fmtTime(r.From), fmtTime(r.To), resumed)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// progressLine shows a pull's progress on a terminal, rewriting one line.
// A nil *progressLine does nothing.
type progressLine struct {
	mu    sync.Mutex
	w     io.Writer
	shown bool
}

func (p *progressLine) report(pr vigil.Progress) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K%s %s: %d pages, %d records", pr.Source, pr.Dataset, pr.Pages, pr.Records)
	p.shown = true
}

func (p *progressLine) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
