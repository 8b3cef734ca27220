// Command vigil is a self-hosted threat-intelligence hub in one binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/vigil-ti/vigil"
)

const usage = `vigil: a self-hosted threat-intelligence hub.

Usage:
  vigil [--config FILE] <command> [arguments]

Commands:
  pull [SOURCE]          run one collection cycle of the enabled datasets, then exit
  check [SOURCE]         verify the credentials and print what the account can use
  import [flags] FILE... load local indicator lists (text, CSV, NDJSON; .gz too) into
                         the vigil.import dataset (--provider NAME, --type T,
                         --format F, --column NAME, --expire DURATION)
  get VIEW [flags]       print a live view: indicators, alerts or vulnerabilities
                         (--dataset D, -o table|ndjson, --limit N), or the stored
                         detections (--rule ID, -o table|ndjson, --limit N)
  match [--no-actions] [FILE...]
                         match NDJSON events (stdin when no FILE; gzip accepted)
                         against the live indicators: alerts to stdout, counts to stderr
  get devices [-o F]     print the MISP devices: status, last pull, warning
  device add|list|remove manage the MISP devices that pull IOC groups
                         (device add NAME --groups G1,G2 [--limit N])
  serve                  pull each dataset on its interval and serve the HTTP API
                         until SIGINT or SIGTERM
  status                 print what the store holds, per dataset
  prune                  remove raw documents past retention and expired live rows
  demo [--feed DIR] [--events FILE]
                         pull the repository's MISP feed and a built-in fake
                         Threat Command API (no account needed) into data_dir,
                         print what landed, then match the sample events
  version                print the version

Global flags:
  --config FILE          the configuration file (default: $VIGIL_CONFIG, else vigil.yaml)

See README.md for the configuration reference.
`

// shutdownGrace is how long a shutdown waits for the page in flight before
// it cancels outright.
const shutdownGrace = 30 * time.Second

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		close(stop) // finish the page in flight, then stop
		select {
		case <-sigs:
		case <-time.After(shutdownGrace):
		}
		cancel()
	}()
	stopProfile := startProfile(os.Getenv("VIGIL_CPUPROFILE"))
	code := run(ctx, stop, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stopProfile()
	cancel()
	os.Exit(code)
}

// startProfile writes a CPU profile of the run to path, when set (for the
// benchmarks under bench/: VIGIL_CPUPROFILE=cpu.out vigil match ...).
func startProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "VIGIL_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "VIGIL_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// env is what a command runs with; tests build their own.
type env struct {
	stop   <-chan struct{}
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	config string
	// configSet is true when the configuration file was named (flag or
	// $VIGIL_CONFIG); a missing default vigil.yaml then means defaults.
	configSet bool
}

// exitError carries an exit code other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, stop <-chan struct{}, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vigil", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e := &env{stop: stop, getenv: getenv, stdin: os.Stdin, stdout: stdout, stderr: stderr}
	fs.StringVar(&e.config, "config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "vigil: %v\n\n%s", err, usage)
		return 2
	}
	if e.config == "" {
		e.config = getenv("VIGIL_CONFIG")
	}
	e.configSet = e.config != ""
	if e.config == "" {
		e.config = "vigil.yaml"
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func(context.Context, *env, []string) error{
		"pull":   cmdPull,
		"check":  cmdCheck,
		"get":    cmdGet,
		"match":  cmdMatch,
		"serve":  cmdServe,
		"status": cmdStatus,
		"prune":  cmdPrune,
		"import": cmdImport,
		"demo":   cmdDemo,
		"device": cmdDevice,
		"version": func(context.Context, *env, []string) error {
			fmt.Fprintf(stdout, "vigil %s\n", vigil.Version)
			return nil
		},
		"help": func(context.Context, *env, []string) error { fmt.Fprint(stdout, usage); return nil },
	}
	cmd, ok := cmds[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", rest[0], usage)
		return 2
	}
	if err := cmd(ctx, e, rest[1:]); err != nil {
		fmt.Fprintf(stderr, "vigil %s: %v\n", rest[0], err)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// usageError is a bad command line: exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}
