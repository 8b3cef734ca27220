package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

// cmdStatus prints what the store holds, per dataset.
func cmdStatus(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("usage: vigil status")
	}
	a, err := loadConfigForReading(e)
	if err != nil {
		return err
	}
	if err := a.openReader(ctx); err != nil {
		return err
	}
	defer a.close()
	stats, err := a.store.Stats(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIEW\tDATASET\tLIVE\tEXPIRED\tRAW\tRAW ERRORS\tLAST WRITE")
	for _, s := range stats {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\n", cell(string(s.View), 20), s.Dataset, s.Live, s.Expired, s.RawDocs, s.RawErrors, s.LastWrite.Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := printOutbox(ctx, e, a); err != nil {
		return err
	}
	return printSightings(ctx, e, a)
}

// printOutbox prints the outbox per connector, when it holds anything.
func printOutbox(ctx context.Context, e *env, a *app) error {
	obs, err := a.store.OutboxStats(ctx)
	if err != nil || len(obs) == 0 {
		return err
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tQUEUED\tFAILING\tDELIVERED\tOLDEST QUEUED\tLAST ERROR")
	for _, s := range obs {
		oldest, last := "-", "-"
		if !s.OldestQueued.IsZero() {
			oldest = s.OldestQueued.Format(time.RFC3339)
		}
		if s.LastError != "" {
			last = s.LastErrorAt.Format(time.RFC3339) + " " + cell(s.LastError, 100)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", s.Connector, s.Queued, s.Failing, s.Done, oldest, last)
	}
	return tw.Flush()
}

// cmdPrune removes raw documents past retention and expired live rows.
func cmdPrune(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("usage: vigil prune")
	}
	a, err := loadConfig(e)
	if err != nil {
		return err
	}
	if err := a.openWriter(ctx); err != nil {
		return err
	}
	defer a.close()
	ps, err := a.store.Prune(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %d raw documents (%d segments) and %d expired live rows; kept %d live documents of those segments in the live views\n", ps.RawDocs, ps.RawSegments, ps.Expired, ps.Compacted)
	n, err := a.pruneOutbox(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(e.stdout, "removed %d deliveries done more than %s ago from the outbox\n", n, a.cfg.Retention)
	}
	return pruneSightingsCmd(ctx, e, a)
}
