package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/detect"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// Limits of `vigil match`.
const (
	// maxLine is the longest event line read; a longer one is reported
	// as malformed and skipped.
	maxLine = 64 << 20
	// maxMalformedShown is how many malformed lines are reported one by
	// one; the rest are counted.
	maxMalformedShown = 20
	// storeBatch is how many alerts are stored in one transaction (fewer
	// when the input has nothing more buffered).
	storeBatch = 1024
	// readChunk is the input read at a time (the read buffer's size, which
	// grows for a longer line).
	readChunk = 1 << 20
	// storeEvery is how much input is matched at most between two stores
	// of alerts: each store is a transaction, a few hundred microseconds.
	storeEvery = 16 << 20
	// matchCacheKiB is the store's page cache under match: at 10M
	// indicators, the default 64 MiB cost 16,000 more page faults a run
	// than this, and 0.1 to 0.2 CPU seconds per million events.
	matchCacheKiB = 4 << 10
)

// matchOptions are the flags of `vigil match`.
type matchOptions struct {
	// noActions: make no delivery attempt before exiting; the alerts'
	// deliveries stay queued for `vigil serve`.
	noActions bool
	files     []string
}

// cmdMatch matches NDJSON events against the live indicators: alerts go to
// stdout as NDJSON and to the store, counts to stderr.
func cmdMatch(ctx context.Context, e *env, args []string) error {
	const use = "usage: vigil match [--no-actions] [FILE...]   (FILE may be gzip; none or - reads stdin)"
	fs := flag.NewFlagSet("match", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o matchOptions
	fs.BoolVar(&o.noActions, "no-actions", false, "make no delivery attempt; leave the alerts queued for serve")
	if err := fs.Parse(args); err != nil {
		return usageError("%v\n%s", err, use)
	}
	o.files = fs.Args()
	if len(o.files) == 0 {
		o.files = []string{"-"}
	}
	a, err := loadConfigForReading(e) // no source is contacted: credentials need not be set
	if err != nil {
		return err
	}
	// match stores alerts, so it takes the data directory's write lock:
	// while serve or pull holds it, match fails with the holder's PID. Its
	// alerts read their indicators at random: a small page cache (see
	// sqlite.Options.CacheKiB).
	if err := a.openWriterWith(ctx, sqlite.Options{CacheKiB: matchCacheKiB}); err != nil {
		return err
	}
	defer a.close()
	start, cpu0 := time.Now(), cpuTime()
	snap, ls, err := detect.Load(ctx, a.store)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "index: %d indicators of %d documents in %.2fs (cpu %.2fs; %d documents without a value to match, %d values refused)\n",
		ls.Indicators, ls.Indexed, time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds(), ls.Skipped, ls.Invalid)
	if ls.Indicators == 0 {
		fmt.Fprintln(e.stderr, "warning: the store has no live indicators: nothing can match (run `vigil pull` first)")
	}
	eng, err := detect.New(detectConfig(a.cfg.Detection), a.store, a.clock)
	if err != nil {
		return err
	}
	eng.Swap(snap)
	a.recordSightings(eng)
	// VIGIL_MATCH_CPUPROFILE profiles the matching alone, without the
	// index build (bench/detect.sh).
	stopProfile := startProfile(e.getenv("VIGIL_MATCH_CPUPROFILE"))
	defer stopProfile()
	start, cpu0 = time.Now(), cpuTime()
	m := &matchRun{a: a, e: e, eng: eng, out: bufio.NewWriterSize(e.stdout, 256<<10)}
	runErr := m.run(ctx, o)
	if err := m.flush(ctx); err != nil && runErr == nil {
		runErr = err
	}
	if err := eng.FlushSightings(ctx); err != nil && runErr == nil {
		runErr = err
	}
	st := eng.Stats()
	if st.Malformed > maxMalformedShown {
		fmt.Fprintf(e.stderr, "... %d more malformed lines not shown\n", st.Malformed-maxMalformedShown)
	}
	fmt.Fprintf(e.stderr, "events=%d malformed=%d alerts=%d suppressed=%d stored=%d seconds=%.2f cpu_seconds=%.2f\n",
		st.Events, st.Malformed, st.Alerts, st.Suppressed, m.stored, time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds())
	if st.MissingDocs > 0 {
		fmt.Fprintf(e.stderr, "warning: %d matched indicators were gone from the store; their enrichments carry no indicator object\n", st.MissingDocs)
	}
	if runErr != nil || o.noActions {
		return runErr
	}
	return deliverOnce(ctx, a, e)
}

// deliverOnce makes one delivery attempt at everything the outbox holds
// due, and reports it; what fails stays queued for `serve`.
func deliverOnce(ctx context.Context, a *app, e *env) error {
	d, err := a.deliverer()
	if err != nil || d == nil {
		return err
	}
	ds, err := d.DeliverOnce(ctx)
	if err != nil {
		return err
	}
	if ds.Delivered+ds.Failed+ds.Postponed > 0 {
		fmt.Fprintf(e.stderr, "deliveries: delivered=%d failed=%d postponed=%d (what failed stays queued for `vigil serve`)\n", ds.Delivered, ds.Failed, ds.Postponed)
	}
	return nil
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// detectConfig turns the configuration's detection block into the
// engine's.
func detectConfig(c config.Detection) detect.Config {
	dc := detect.Config{Actions: c.Actions, SuppressionWindow: time.Duration(c.SuppressionWindow), Rules: map[string]detect.RuleConfig{}}
	for _, id := range config.DetectionRuleIDs {
		r, _ := c.Rules.Rule(id)
		dc.Rules[id] = detect.RuleConfig{Enabled: r.Enabled, Actions: r.Actions, Mappings: r.Mappings}
	}
	return dc
}

// matchRun is one `vigil match`.
type matchRun struct {
	a       *app
	e       *env
	eng     *detect.Engine
	out     *bufio.Writer
	pending []vigil.Detection
	stored  int
	// chunk and maxLine, when not 0, replace readChunk and maxLine
	// (tests).
	chunk, maxLine int
}

func (m *matchRun) run(ctx context.Context, o matchOptions) error {
	for _, f := range o.files {
		if err := m.input(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// input matches the events of one file ("-": stdin), plain or gzip.
func (m *matchRun) input(ctx context.Context, name string) error {
	var r io.Reader
	label := name
	if name == "-" {
		r, label = m.e.stdin, "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("open events: %w", err)
		}
		defer f.Close()
		r = f
	}
	var magic [2]byte
	n, err := io.ReadFull(r, magic[:])
	head := magic[:n]
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
	case err != nil:
		return fmt.Errorf("%s: read line 1: %w", label, err)
	}
	r = io.MultiReader(bytes.NewReader(head), r)
	if n == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("%s: gzip: %w", label, err)
		}
		defer zr.Close()
		r = zr
	}
	return m.stream(ctx, label, r)
}

// stream matches the events read from r. Input is read into one buffer,
// readChunk bytes at a time, and the whole lines of each read are matched
// where they lie, each with the line after it (detect.Engine.MatchAhead:
// the next line is read while the memory that this one's values are looked
// up in comes); the part of a line that a read cut off waits at the start
// of the buffer for the next read. A line longer than the buffer grows it,
// up to maxLine; a longer line is reported and skipped. The alerts are
// stored when storeBatch of them wait, every storeEvery bytes of input,
// and whenever a read did not fill the buffer (the input may then wait).
//
// Every input takes this path, a pipe or gzip as a file. A file was once
// mapped instead, its lines viewed in place; at 10M indicators, finding
// their line ends (the first touch of each page and byte) took 0.19-0.20
// CPU seconds a million events, where read's copy into this buffer and
// finding them there take 0.11-0.12 (profiles of `vigil match`).
func (m *matchRun) stream(ctx context.Context, label string, r io.Reader) error {
	chunk, longest := m.chunk, m.maxLine
	if chunk <= 0 {
		chunk = readChunk
	}
	if longest <= 0 {
		longest = maxLine
	}
	buf := make([]byte, min(chunk, longest+1))
	have, lineNo, unflushed := 0, 0, 0
	skipping := false // the rest of an overlong line comes first
	for {
		free := len(buf) - have
		n, rerr := r.Read(buf[have:])
		if n < 0 || n > free {
			return fmt.Errorf("%s: read line %d: the reader returned %d bytes for %d", label, lineNo+1, n, free)
		}
		have += n
		unflushed += n
		done := rerr != nil
		data := buf[:have]
		p := 0
		if skipping {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				have = 0
				if done {
					return readErr(label, lineNo, rerr)
				}
				continue
			}
			p, skipping = i+1, false
		}
		// The whole lines: up to the last line end, or all of it at the
		// end of the input.
		end := bytes.LastIndexByte(data, '\n') + 1
		if errors.Is(rerr, io.EOF) {
			end = have
		}
		if end > p {
			if err := m.lines(ctx, label, &lineNo, data[p:end]); err != nil {
				return err
			}
		} else {
			end = p
		}
		have = copy(buf, data[end:])
		if have == len(buf) {
			// A line without an end fills the buffer.
			if len(buf) <= longest {
				grown := make([]byte, min(2*len(buf), longest+1))
				copy(grown, buf)
				buf = grown
			} else {
				lineNo++
				m.malformed(label, lineNo, fmt.Sprintf("line longer than %d bytes", longest))
				have, skipping = 0, true
			}
		}
		if len(m.pending) >= storeBatch || unflushed >= storeEvery || n < free || done {
			if err := m.flush(ctx); err != nil {
				return err
			}
			unflushed = 0
		}
		if done {
			return readErr(label, lineNo, rerr)
		}
	}
}

// readErr is the error of a read that ended the input at line lineNo: nil
// for its end.
func readErr(label string, lineNo int, err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("%s: read line %d: %w", label, lineNo+1, err)
}

// lines matches the whole lines of chunk (the last may lack its line end),
// each given the next; *lineNo counts them.
func (m *matchRun) lines(ctx context.Context, label string, lineNo *int, chunk []byte) error {
	lineAt := func(p int) []byte {
		line := chunk[p:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		return line
	}
	// The chunk is in memory: it is a batch of events.
	m.eng.StartBatch()
	defer m.eng.EndBatch()
	line := lineAt(0)
	for p := 0; p < len(chunk); {
		p += len(line)
		*lineNo++
		var next []byte
		if p < len(chunk) {
			next = lineAt(p)
		}
		if err := m.line(ctx, label, *lineNo, line, next); err != nil {
			return err
		}
		line = next
	}
	return nil
}

// line matches one line, given the next one when it stays in memory
// unchanged until it is matched (nil: none); a malformed line is reported
// and the stream goes on.
func (m *matchRun) line(ctx context.Context, label string, n int, line, next []byte) error {
	if !isEvent(line) {
		return nil
	}
	if !isEvent(next) {
		next = nil // it will not be matched
	}
	dets, err := m.eng.MatchAhead(ctx, line, next)
	if err != nil {
		// se is declared here, not for every line: errors.As moves it to
		// the heap, an allocation an event.
		var se *detect.SyntaxError
		if !errors.As(err, &se) {
			return fmt.Errorf("%s:%d: %w", label, n, err)
		}
		if m.eng.Stats().Malformed <= maxMalformedShown {
			fmt.Fprintf(m.e.stderr, "%s:%d: malformed: %v\n", label, n, se)
		}
		return nil
	}
	for _, d := range dets {
		m.out.Write(d.Source)
		m.out.WriteByte('\n')
	}
	m.pending = append(m.pending, dets...)
	return nil
}

// isEvent reports whether a line is matched: blank lines are not events.
func isEvent(line []byte) bool { return len(bytes.TrimSpace(line)) > 0 }

func (m *matchRun) malformed(label string, n int, msg string) {
	m.eng.CountMalformed()
	if m.eng.Stats().Malformed <= maxMalformedShown {
		fmt.Fprintf(m.e.stderr, "%s:%d: malformed: %s\n", label, n, msg)
	}
}

// flush writes the alerts out and stores those pending with their
// deliveries.
func (m *matchRun) flush(ctx context.Context) error {
	if err := m.out.Flush(); err != nil {
		return fmt.Errorf("write alerts: %w", err)
	}
	if len(m.pending) == 0 {
		return nil
	}
	added, err := m.a.store.AddDetections(ctx, m.pending, detect.Deliveries(m.pending))
	if err != nil {
		return err
	}
	m.stored += added
	clear(m.pending)
	m.pending = m.pending[:0]
	return nil
}

// cmdGetDetections prints the stored alerts.
func cmdGetDetections(ctx context.Context, e *env, args []string) error {
	const use = "usage: vigil get detections [--rule ID] [-o table|ndjson] [--limit N]"
	fs := flag.NewFlagSet("get detections", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rule := fs.String("rule", "", "only this rule's alerts")
	output := fs.String("o", "table", "output format: table or ndjson")
	limit := fs.Int("limit", 0, "at most this many alerts, newest first")
	if err := fs.Parse(args); err != nil {
		return usageError("%v\n%s", err, use)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q\n%s", fs.Arg(0), use)
	}
	if *output != "table" && *output != "ndjson" {
		return usageError("-o %q is not allowed (allowed: table, ndjson)", *output)
	}
	if *rule != "" && !strings.Contains(","+strings.Join(detect.RuleIDs(), ",")+",", ","+*rule+",") {
		return usageError("--rule %q is not a rule id (rule ids: %s)", *rule, strings.Join(detect.RuleIDs(), ", "))
	}
	a, err := loadConfigForReading(e)
	if err != nil {
		return err
	}
	if err := a.openReader(ctx); err != nil {
		return err
	}
	defer a.close()
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	f := sqlite.DetectionFilter{RuleID: *rule, Limit: *limit}
	if *output == "ndjson" {
		return a.store.Detections(ctx, f, func(d vigil.Detection) error {
			out.Write(d.Source)
			return out.WriteByte('\n')
		})
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tRULE\tSEVERITY\tMATCHED\tEVENT\tID")
	var p fastjson.Parser
	n := 0
	err = a.store.Detections(ctx, f, func(d vigil.Detection) error {
		v, err := p.ParseBytes(d.Source)
		if err != nil {
			return fmt.Errorf("stored alert %s is not JSON: %w", d.ID, err)
		}
		matched := "-"
		if ens := v.GetArray("threat", "enrichments"); len(ens) > 0 {
			last := ens[len(ens)-1]
			matched = cell(string(last.GetStringBytes("matched", "field"))+"="+string(last.GetStringBytes("matched", "atomic")), 60)
		}
		n++
		_, err = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Timestamp.Format(time.RFC3339), d.RuleID,
			str(v.Get("kibana", "alert", "severity"), 10), matched, str(v.Get("event", "id"), 40), d.ID)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(e.stderr, "no detections")
	}
	return nil
}
