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
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

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
	// readChunk is the input read at a time (the read buffer's size); the
	// alerts are stored when the buffer has been matched.
	readChunk = 1 << 20
	// mappedChunk is how much of a mapped file is matched between two
	// stores of alerts (and releases of the pages read): each store is a
	// transaction, a few hundred microseconds.
	mappedChunk = 16 << 20
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
}

func (m *matchRun) run(ctx context.Context, o matchOptions) error {
	for _, f := range o.files {
		if err := m.input(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// input matches the events of one file ("-": stdin).
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
		if data := mapFile(f); data != nil {
			defer syscall.Munmap(data)
			return m.mapped(ctx, label, data)
		}
		r = f
	}
	br := bufio.NewReaderSize(r, readChunk)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: gzip: %w", label, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<20)
	}
	var long []byte
	lineNo := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it, up to maxLine.
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				if len(long) <= maxLine {
					long = append(long, line...)
				}
			}
			line = long
		}
		if len(line) > 0 {
			lineNo++
			if err := m.line(ctx, label, lineNo, line, nil); err != nil {
				return err
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%s: read line %d: %w", label, lineNo+1, err)
		}
		if len(m.pending) >= storeBatch || br.Buffered() == 0 {
			if err := m.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// mapFile maps a regular file that is not gzip into memory for reading,
// or returns nil (the file is then read through a buffer).
func mapFile(f *os.File) []byte {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() <= 0 || st.Size() != int64(int(st.Size())) {
		return nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		syscall.Munmap(data)
		return nil
	}
	syscall.Madvise(data, syscall.MADV_SEQUENTIAL)
	return data
}

// mapped matches the events of a file mapped into memory: the lines are
// viewed in place, with no copy of the input, and the pages read are
// released as it goes (they stay in the page cache), so the process does
// not grow by the file's size. The alerts are stored every storeBatch
// alerts or mappedChunk bytes of input, and at the end. A fault reading the mapping (the file was
// truncated meanwhile) ends the file with an error, not the process.
func (m *matchRun) mapped(ctx context.Context, label string, data []byte) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	base := uintptr(unsafe.Pointer(unsafe.SliceData(data)))
	lineNo := 0
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if f, ok := r.(interface{ Addr() uintptr }); ok && f.Addr()-base < uintptr(len(data)) {
			err = fmt.Errorf("%s: read line %d: the file changed while it was read (%v)", label, lineNo+1, r)
			return
		}
		panic(r)
	}()
	chunkEnd, done := mappedChunk, 0
	page := os.Getpagesize()
	// The file is in memory: each chunk is a batch of events.
	m.eng.StartBatch()
	defer m.eng.EndBatch()
	lineAt := func(p int) []byte {
		line := data[p:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		return line
	}
	var line []byte
	if len(data) > 0 {
		line = lineAt(0)
	}
	for p := 0; p < len(data); {
		p += len(line)
		lineNo++
		// The next line is read while the memory that this one's values
		// are looked up in comes (see detect.Engine.MatchAhead): the
		// mapping stays put.
		var next []byte
		if p < len(data) {
			next = lineAt(p)
		}
		if err := m.line(ctx, label, lineNo, line, next); err != nil {
			return err
		}
		line = next
		if len(m.pending) >= storeBatch || p >= chunkEnd || p == len(data) {
			if err := m.flush(ctx); err != nil {
				return err
			}
			chunkEnd = p + mappedChunk
			m.eng.StartBatch()
			if cut := p / page * page; cut > done {
				syscall.Madvise(data[done:cut], syscall.MADV_DONTNEED)
				done = cut
			}
		}
	}
	return nil
}

// line matches one line, given the next one when it stays in memory
// unchanged until it is matched (nil: none); a malformed line is reported
// and the stream goes on.
func (m *matchRun) line(ctx context.Context, label string, n int, line, next []byte) error {
	if !isEvent(line) {
		if len(line) > maxLine {
			m.malformed(label, n, fmt.Sprintf("line longer than %d MiB", maxLine>>20))
		}
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

// isEvent reports whether a line is matched: it is not blank (blank lines
// are not events) and not longer than maxLine.
func isEvent(line []byte) bool {
	return len(line) <= maxLine && len(bytes.TrimSpace(line)) > 0
}

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
