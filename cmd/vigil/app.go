package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/lockfile"
	"github.com/vigil-ti/vigil/internal/misp"
	"github.com/vigil-ti/vigil/internal/sqlite"
	"github.com/vigil-ti/vigil/internal/threatcommand"
	"github.com/vigil-ti/vigil/internal/threatconnect"
)

// app is a loaded configuration with what it opened.
type app struct {
	cfg    config.Config
	log    *slog.Logger
	clock  vigil.Clock
	store  *sqlite.DB
	lock   *lockfile.Lock
	stdout io.Writer
	stderr io.Writer
}

// loadConfig reads the configuration file and builds the logger.
// When no file was named and vigil.yaml does not exist, the defaults apply.
func loadConfig(e *env) (*app, error) {
	return load(e, config.Options{})
}

// loadConfigForReading loads the configuration for a command that only
// reads the store: source credentials need not be set.
func loadConfigForReading(e *env) (*app, error) {
	return load(e, config.Options{ReadOnly: true})
}

func load(e *env, opts config.Options) (*app, error) {
	cfg, err := config.LoadFile(e.config, e.getenv, opts)
	if errors.Is(err, fs.ErrNotExist) && !e.configSet {
		cfg, err = config.Default(), nil
	}
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, clock: vigil.SystemClock{}, stdout: e.stdout, stderr: e.stderr}
	a.log = newLogger(e.stderr, cfg.Log)
	for _, w := range cfg.Warnings {
		a.log.Warn("configuration: " + w)
	}
	return a, nil
}

// newLogger is the only place slog handlers are built.
func newLogger(w io.Writer, l config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.LogLevel()}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openWriter takes the data directory's write lock and opens the store for
// writing. A second writer fails with "data dir in use by process N".
func (a *app) openWriter(ctx context.Context) error {
	return a.openWriterWith(ctx, sqlite.Options{})
}

// openWriterWith is openWriter with store options (the configured
// retention and the app's clock are set on them).
func (a *app) openWriterWith(ctx context.Context, opts sqlite.Options) error {
	l, err := lockfile.Acquire(ctx, a.cfg.DataDir, 0)
	if err != nil {
		return err
	}
	opts.Retention, opts.Clock = time.Duration(a.cfg.Retention), a.clock
	db, err := sqlite.Open(ctx, a.cfg.DataDir, opts)
	if err != nil {
		l.Release()
		return err
	}
	a.lock, a.store = l, db
	return nil
}

// openBeside opens the store for writing beside the writer that holds the
// data directory, without its lock (see sqlite.Options.Beside).
func (a *app) openBeside(ctx context.Context) error {
	return a.openUnlocked(ctx, sqlite.Options{Beside: true})
}

// openReader opens the store read-only; it works while a writer runs.
func (a *app) openReader(ctx context.Context) error {
	return a.openUnlocked(ctx, sqlite.Options{ReadOnly: true})
}

// openUnlocked opens the store with opts (and the configured retention
// and clock) without the data directory's lock.
func (a *app) openUnlocked(ctx context.Context, opts sqlite.Options) error {
	opts.Retention, opts.Clock = time.Duration(a.cfg.Retention), a.clock
	db, err := sqlite.Open(ctx, a.cfg.DataDir, opts)
	if err != nil {
		return err
	}
	a.store = db
	return nil
}

func (a *app) close() {
	if a.store != nil {
		a.store.Close()
	}
	a.lock.Release()
}

// checkSources checks that only (when not empty) names a configured source
// and that some source is configured, before anything is opened.
func (a *app) checkSources(only string) error {
	var names []string
	if a.cfg.Sources.ThreatCommand != nil {
		names = append(names, threatcommand.SourceName)
	}
	if a.cfg.Sources.ThreatConnect != nil {
		names = append(names, threatconnect.SourceName)
	}
	if a.cfg.Sources.MISP != nil {
		names = append(names, misp.SourceName)
	}
	if only != "" && !slices.Contains(names, only) {
		known := "none is configured"
		if len(names) > 0 {
			known = "configured: " + strings.Join(names, ", ")
		}
		return usageError("no source %q (%s; known sources: %s)", only, known, threatcommand.SourceName+", "+threatconnect.SourceName+", "+misp.SourceName)
	}
	if len(names) == 0 {
		return fmt.Errorf("no source is configured: add a sources.%s, sources.%s or sources.%s block to the configuration", threatcommand.SourceName, threatconnect.SourceName, misp.SourceName)
	}
	return nil
}

// collectors builds the configured sources' collectors on the open store.
// only, when not empty, selects one source by name.
func (a *app) collectors(only string, progress func(vigil.Progress)) ([]vigil.Collector, error) {
	if err := a.checkSources(only); err != nil {
		return nil, err
	}
	var out []vigil.Collector
	if tc := a.cfg.Sources.ThreatCommand; tc != nil && (only == "" || only == threatcommand.SourceName) {
		c, err := newThreatCommand(tc, a, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if tcn := a.cfg.Sources.ThreatConnect; tcn != nil && (only == "" || only == threatconnect.SourceName) {
		c, err := newThreatConnect(tcn, a, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if m := a.cfg.Sources.MISP; m != nil && (only == "" || only == misp.SourceName) {
		c, err := newMISP(m, a, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func newThreatCommand(tc *config.ThreatCommand, a *app, progress func(vigil.Progress)) (*threatcommand.Collector, error) {
	client, err := threatcommand.NewClient(threatcommand.ClientConfig{
		URL:       tc.URL,
		AccountID: tc.AccountID,
		APIKey:    tc.APIKey.Value(),
		Logger:    a.log.With("source", threatcommand.SourceName),
		HTTP: httpx.New(httpx.Options{
			MaxAttempts: tc.Retry.MaxAttempts,
			MaxDelay:    time.Duration(tc.Retry.MaxBackoff),
			Logger:      a.log.With("source", threatcommand.SourceName),
		}),
	})
	if err != nil {
		return nil, err
	}
	ds := func(d config.Dataset, types []string, closed bool) threatcommand.DatasetSettings {
		return threatcommand.DatasetSettings{
			Enabled: d.Enabled, Interval: time.Duration(d.Interval), InitialInterval: time.Duration(d.InitialInterval),
			Severities: d.Severities, Types: types, FetchClosed: closed,
		}
	}
	return &threatcommand.Collector{
		Client: client,
		Store:  a.store,
		Clock:  a.clock,
		Logger: a.log.With("source", threatcommand.SourceName),
		Settings: threatcommand.Settings{
			ExpirationDuration: tc.IOCExpirationDuration,
			IOC:                ds(tc.IOC.Dataset, tc.IOC.Types, false),
			Alert:              ds(tc.Alert.Dataset, tc.Alert.Types, tc.Alert.FetchClosedAlerts),
			Vulnerability:      ds(tc.Vulnerability.Dataset, nil, false),
		},
		Progress: progress,
	}, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
