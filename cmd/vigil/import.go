package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/importer"
	"github.com/vigil-ti/vigil/internal/lockfile"
)

// maxBadShown is how many bad-line messages are printed per file; the
// count is always printed.
const maxBadShown = 20

// cmdImport loads local indicator lists into the vigil.import dataset. It
// exits 0 when every file was read, even with bad lines (they are reported
// and skipped); non-zero when a file is missing or unreadable, or when no
// record of any file could be imported.
func cmdImport(ctx context.Context, e *env, args []string) error {
	const use = "usage: vigil import [--provider NAME] [--type T] [--format text|csv|ndjson] [--column NAME] [--expire DURATION] FILE..."
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	provider := fs.String("provider", "", "provider of records that name none (default: import.provider)")
	typ := fs.String("type", "", "force the indicator type")
	format := fs.String("format", "", "force the format: text, csv or ndjson")
	column := fs.String("column", "", "the CSV value column")
	expire := fs.String("expire", "", "expiration duration (default: import.ioc_expiration_duration)")
	// Flags may come before, between or after the files.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return usageError("%v\n%s", err, use)
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) == 0 {
		return usageError("no FILE given\n%s", use)
	}
	if *typ != "" {
		if _, err := importer.ParseType(*typ, false); err != nil {
			return usageError("--type: %v", err)
		}
	}
	if *format != "" {
		if _, err := importer.ParseFormat(*format); err != nil {
			return usageError("--format: %v", err)
		}
	}
	if *expire != "" {
		if _, fallback, err := ecs.ParseExpiration(*expire); err != nil || fallback {
			return usageError("--expire: %q is not a duration: want <integer>d, <integer>h or <integer>m, e.g. 90d", *expire)
		}
	}
	// Importing needs no source credentials: load as the readers do.
	a, err := load(e, config.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	opts := importer.Options{
		Clock:              a.clock,
		Provider:           a.cfg.Import.Provider,
		ExpirationDuration: a.cfg.Import.IOCExpirationDuration,
		Type:               *typ,
		Format:             importer.Format(*format),
		Column:             *column,
	}
	if *provider != "" {
		opts.Provider = *provider
	}
	if *expire != "" {
		opts.ExpirationDuration = *expire
	}
	beside := false
	if err := a.openWriter(ctx); err != nil {
		if !errors.Is(err, lockfile.ErrInUse) {
			return err
		}
		// serve (or a pull) holds the data directory: write beside it.
		// serve notices the new pages, matches them and retro-hunts them.
		if err := a.openBeside(ctx); err != nil {
			return err
		}
		beside = true
		fmt.Fprintf(e.stderr, "%v: importing beside it (serve matches and retro-hunts the new indicators within seconds; otherwise the next pull or import retro-hunts them)\n", err)
	}
	defer a.close()
	opts.Store = a.store
	shown := 0
	opts.OnBad = func(b importer.BadLine) {
		if shown < maxBadShown {
			fmt.Fprintln(e.stderr, b)
		}
		shown++
	}
	im, err := importer.New(opts)
	if err != nil {
		return usageError("%v", err)
	}
	imported, bad, failed := 0, 0, 0
	for _, f := range files {
		shown = 0
		st, err := im.File(ctx, f)
		if shown > maxBadShown {
			fmt.Fprintf(e.stderr, "%s: %d more bad lines not shown\n", f, shown-maxBadShown)
		}
		printImport(e.stdout, st, err)
		imported += st.Imported
		bad += st.Bad
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			failed++
			if ctx.Err() != nil {
				break
			}
		}
	}
	if err := a.store.Sync(ctx); err != nil {
		return err
	}
	if !beside {
		if err := a.retroHunt(ctx, e.stop); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files could not be read (see above)", failed, len(files))
	}
	if imported == 0 && bad > 0 {
		return fmt.Errorf("nothing imported: every one of the %d records read was bad", bad)
	}
	return nil
}

func printImport(w io.Writer, st importer.FileStats, err error) {
	status := "ok"
	if err != nil {
		status = "FAILED"
	}
	format := string(st.Format)
	if format == "" {
		format = "-"
	}
	fmt.Fprintf(w, "%-40s %-7s format=%s read=%d imported=%d skipped=%d expired=%d\n",
		st.File, status, format, st.Read, st.Imported, st.Bad, st.Expired)
}
