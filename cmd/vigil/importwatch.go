package main

import (
	"context"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/importer"
)

// importCheckEvery is how often serve looks for pages that a `vigil
// import` beside it wrote.
const importCheckEvery = 2 * time.Second

// watchImports runs until stop or ctx ends. It calls after, the hook
// serve runs after a pull (the index rebuilt and swapped in, the
// retro-hunt), once the pages that imports beside serve write have stopped
// coming for one check: an import of millions of indicators writes for a
// minute, and is matched once, whole. The import's pages are merged first.
func (a *app) watchImports(ctx context.Context, stop <-chan struct{}, after func(context.Context, vigil.PullResult, error)) {
	mark, _, err := a.store.SourceSegments(ctx, importer.SourceName, 0)
	if err != nil {
		if ctx.Err() != nil {
			return // serve is stopping
		}
		a.log.Error("watching for imports", "err", err)
	}
	seen := mark
	tick := time.NewTicker(importCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		last, docs, err := a.store.SourceSegments(ctx, importer.SourceName, mark)
		switch {
		case err != nil && ctx.Err() != nil:
			return // serve is stopping
		case err != nil:
			a.log.Error("watching for imports", "err", err)
			continue
		case last == mark:
			continue // nothing new
		case last != seen:
			seen = last // still coming: wait for the next check
			continue
		}
		if err := a.store.Sync(ctx); err != nil {
			a.log.Error("merging imported indicators; the next check tries again", "err", err)
			continue
		}
		a.log.Info("indicators imported beside serve", "documents", docs)
		mark = last
		after(ctx, vigil.PullResult{Source: importer.SourceName, Dataset: importer.Dataset, Records: int(docs), WriteStats: vigil.WriteStats{Live: int(docs)}}, nil)
	}
}
