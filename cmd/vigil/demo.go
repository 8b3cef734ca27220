package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// cmdDemo runs the quickstart with no vendor account and no network. It
// pulls two sources through the real clients, normalizers and store into
// data_dir: the small MISP feed kept in the repository (--feed, default
// examples/misp-feed, read as sources.misp reads a feed), and a fake Threat
// Command API on loopback that serves generated IOCs, alerts and CVEs.
// Then it matches the sample events (--events, default
// examples/events.ndjson) as `vigil match` does, storing the alerts. The
// configuration's sources are replaced by these; data_dir and log settings
// are kept.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	const use = "usage: vigil demo [--feed DIR] [--events FILE]"
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	feed := fs.String("feed", filepath.Join("examples", "misp-feed"), "a MISP feed folder to pull; skipped when absent")
	events := fs.String("events", filepath.Join("examples", "events.ndjson"), "NDJSON events to match; skipped when absent")
	if err := fs.Parse(args); err != nil {
		return usageError("%v\n%s", err, use)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q\n%s", fs.Arg(0), use)
	}
	if err := demoPull(ctx, e, *feed); err != nil {
		return err
	}
	if _, err := os.Stat(*events); err != nil {
		fmt.Fprintf(e.stdout, "\nno %s here: run the demo from the repository's root to match its sample events\n", *events)
		return nil
	}
	fmt.Fprintf(e.stdout, "\nmatching %s (alerts in alerts.ndjson):\n", *events)
	out, err := os.Create("alerts.ndjson")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer out.Close()
	me := *e
	me.stdout, me.stderr = out, e.stdout
	if err := cmdMatch(ctx, &me, []string{"--no-actions", *events}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nalerts:\n")
	if err := cmdGetDetections(ctx, e, []string{"--limit", "20"}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nnext: vigil get indicators|alerts|vulnerabilities|detections [-o ndjson], vigil status\n")
	return nil
}

// demoPull pulls the demo's sources into data_dir and lists the first live
// indicators.
func demoPull(ctx context.Context, e *env, feed string) error {
	now := time.Now().UTC()
	gen := func(n int) tcfake.GenOptions {
		return tcfake.GenOptions{N: n, Seed: 1, From: now.Add(-20 * 24 * time.Hour), To: now.Add(-time.Minute)}
	}
	srv := tcfake.New(nil, tcfake.Options{
		PageSize: 500,
		IOCs:     tcfake.GenerateIOCs(gen(5000)),
		CVEs:     tcfake.GenerateCVEs(gen(300)),
		Alerts:   tcfake.GenerateAlerts(gen(60)),
	})
	defer srv.Close()

	a, err := loadConfig(e)
	if err != nil {
		return err
	}
	tc := config.DefaultThreatCommand()
	tc.URL, tc.AccountID, tc.APIKey = srv.URL, tcfake.DefaultAccountID, config.NewSecret(tcfake.DefaultAPIKey)
	a.cfg.Sources = config.Sources{ThreatCommand: &tc}
	if st, err := os.Stat(feed); err == nil && st.IsDir() {
		abs, err := filepath.Abs(feed)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		// Through the configuration's own parser: the block gets its
		// defaults and checks, as sources.misp in a file would.
		yaml := fmt.Sprintf("sources:\n  misp:\n    feeds:\n      - name: quickstart\n        path: %q\n", abs)
		fc, err := config.Parse(strings.NewReader(yaml), func(string) string { return "" })
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		a.cfg.Sources.MISP = fc.Sources.MISP
		fmt.Fprintf(e.stdout, "demo: MISP feed %s and a fake Threat Command API at %s; pulling into %s\n\n", feed, srv.URL, a.cfg.DataDir)
	} else {
		fmt.Fprintf(e.stdout, "demo: fake Threat Command API at %s; pulling into %s (no %s here: run the demo from the repository's root to read its MISP feed)\n\n", srv.URL, a.cfg.DataDir, feed)
	}
	if err := a.openWriter(ctx); err != nil {
		return err
	}
	defer a.close()
	var prog *progressLine
	if isTerminal(e.stderr) {
		prog = &progressLine{w: e.stderr}
	}
	cols, err := a.collectors("", prog.report)
	if err != nil {
		return err
	}
	if failures := pullAll(ctx, a, cols, e.stop, prog); len(failures) > 0 {
		return errors.New(strings.Join(failures, "; "))
	}
	fmt.Fprintf(e.stdout, "\nfirst 10 live indicators:\n")
	return printView(ctx, a, e, getOptions{view: "indicators", output: "table", limit: 10})
}
