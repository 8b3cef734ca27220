package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// cmdDemo runs the quickstart with no vendor account: a fake Threat Command
// API on loopback serves generated IOCs, alerts and CVEs, and a pull takes
// them through the real client, normalizer and store into data_dir. The
// configuration's sources are replaced by the fake one; data_dir and log
// settings are kept.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 {
		return usageError("usage: vigil demo")
	}
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

	fmt.Fprintf(e.stdout, "demo: fake Threat Command API at %s; pulling into %s\n\n", srv.URL, a.cfg.DataDir)
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
	if err := printView(ctx, a, e, getOptions{view: "indicators", output: "table", limit: 10}); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nnext: vigil get indicators|alerts|vulnerabilities [-o ndjson], vigil status\n")
	return nil
}
