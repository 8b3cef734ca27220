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
	fmt.Fprintf(e.stdout, "removed %d raw documents (%d segments) and %d expired live rows; kept %d segments past retention for their live documents\n", ps.RawDocs, ps.RawSegments, ps.Expired, ps.KeptSegments)
	return nil
}
