package threatcommand

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/sqlite"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// The benchmarks of the two goals. bench/README.md explains how to
// run them and what the figures mean; bench/run.sh runs them.

// benchPageSize is the page size of the API, and of a written page.
const benchPageSize = 1000

// benchNow is the wall time of the benchmarks: the end of the generated
// window, so that generated IOCs are live.
var benchNow = tcfake.DefaultTo

// benchRecords returns the raw JSON of records [0, n) of the generated IOC
// set with the given window, as the API serves them (about 500 bytes each),
// in one arena.
func benchRecords(n int, from, to time.Time) [][]byte {
	set := tcfake.GenerateIOCs(tcfake.GenOptions{N: n, Seed: 1, From: from, To: to})
	arena := make([]byte, 0, n*520)
	offs := make([]int, n+1)
	for i := range n {
		rec := set.IOC(i)
		arena = rec.AppendJSON(arena)
		offs[i+1] = len(arena)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = arena[offs[i]:offs[i+1]:offs[i+1]]
	}
	return out
}

// ingest normalizes and writes recs in pages of benchPageSize, as the
// collector does: one Normalizer per page (stamped with its ingest time),
// writing into one arena that the pages reuse, and one WritePage per page
// with the cursor after it.
func ingest(tb testing.TB, ctx context.Context, db vigil.Store, recs [][]byte, docs []vigil.Document) vigil.WriteStats {
	var sum vigil.WriteStats
	var arena ecs.Arena
	for page := 0; page*benchPageSize < len(recs); page++ {
		start := page * benchPageSize
		end := min(start+benchPageSize, len(recs))
		arena.Reset()
		n := NewNormalizer(NormalizeOptions{
			Dataset:            DatasetIOC,
			Tags:               []string{"forwarded", defaultTags[DatasetIOC]},
			ExpirationDuration: "90d",
			Ingested:           benchNow,
			Arena:              &arena,
		})
		docs = docs[:0]
		for _, raw := range recs[start:end] {
			docs = append(docs, n.IOC(raw))
		}
		cursor := strconv.AppendInt([]byte(`{"sync_id":"bench","open":{"offset":"`), int64(end), 10)
		cursor = append(cursor, `"}}`...)
		st, err := db.WritePage(ctx, vigil.Page{Source: SourceName, Dataset: DatasetIOC, Docs: docs, Cursor: cursor, NDJSON: arena.NDJSON()})
		if err != nil {
			tb.Fatal(err)
		}
		sum.Raw += st.Raw
		sum.Live += st.Live
		sum.Stale += st.Stale
		sum.Unkeyed += st.Unkeyed
		sum.Rejected += st.Rejected
	}
	return sum
}

func openBenchStore(tb testing.TB) *sqlite.DB {
	db, err := sqlite.Open(tb.Context(), tb.TempDir(), sqlite.Options{Clock: vigil.ClockFunc(func() time.Time { return benchNow })})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// BenchmarkIngestIOC measures the first goal: normalize and store
// at least 100,000 IOC records per second on one core (run it with -cpu 1).
// One op is one record: pages of 1000 generated records (generated before
// the timer starts) are normalized and written with WritePage, with a
// cursor, into a fresh store in b.TempDir(), and the timed work ends with
// Sync, as a pull does: the live view is up to date when the timer stops.
//
//   - insert: every key is new.
//   - update: the store already holds every key (written and synced before
//     the timer starts); the same records come again with newer
//     @timestamps, so every live row is replaced.
func BenchmarkIngestIOC(b *testing.B) {
	to := benchNow
	from := to.Add(-30 * 24 * time.Hour)
	for _, mode := range []string{"insert", "update"} {
		b.Run(mode, func(b *testing.B) {
			ctx := b.Context()
			db := openBenchStore(b)
			docs := make([]vigil.Document, 0, benchPageSize)
			recs := benchRecords(b.N, from, to)
			var rawBytes int64
			for _, r := range recs {
				rawBytes += int64(len(r))
			}
			if mode == "update" {
				// The same records, dated in the 30 days before the window.
				old := benchRecords(b.N, from.Add(-30*24*time.Hour), from.Add(-time.Millisecond))
				if st := ingest(b, ctx, db, old, docs); st.Live != st.Raw-st.Rejected-st.Unkeyed {
					b.Fatalf("preload: %+v", st)
				}
				if err := db.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(rawBytes / int64(max(b.N, 1)))
			b.ResetTimer()
			cpu0 := cpuTime()
			st := ingest(b, ctx, db, recs, docs)
			if err := db.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			cpu := cpuTime() - cpu0
			b.StopTimer()
			if st.Raw != b.N || st.Live != b.N || st.Stale != 0 {
				b.Fatalf("wrote %+v for %d records", st, b.N)
			}
			checkLive(b, db, b.N, from)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
		})
	}
}

// checkLive fails b unless the live table (merged, nothing pending) holds a
// row for each of the n records (live, or expired: some generated IOCs are
// retired), and every unexpired document is dated from `from` on: after an
// update, every row was replaced.
func checkLive(b *testing.B, db *sqlite.DB, n int, from time.Time) {
	b.Helper()
	stats, err := db.Stats(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	var rows, pending int64
	for _, s := range stats {
		rows += s.Live + s.Expired
		pending += s.Pending
	}
	if rows != int64(n) || pending != 0 {
		b.Fatalf("live table holds %d rows (%d documents pending), want %d", rows, pending, n)
	}
	older := 0
	err = db.Live(b.Context(), vigil.LiveFilter{View: vigil.ViewIndicators}, func(d vigil.Document) error {
		if d.Timestamp.Before(from) {
			older++
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if older > 0 {
		b.Fatalf("%d live documents older than the records written", older)
	}
}

// BenchmarkPull1MIOCs measures the second goal: pull 1,000,000 IOCs
// from the fake server (pages of 1000) with a peak RSS under 300 MB. It runs
// one full Collector.Pull of the IOC dataset into a fresh store per op and
// reports the process's peak RSS (VmHWM, which includes the fake server in
// the same process) as peak-RSS-MB. VmHWM is per process: run it alone,
//
//	go test -run '^$' -bench 'Pull1M' -benchtime 1x ./internal/threatcommand/
func BenchmarkPull1MIOCs(b *testing.B) {
	if testing.Short() {
		b.Skip("pulls 1,000,000 records; skipped in -short mode")
	}
	const total = 1_000_000
	to := benchNow
	srv := tcfake.New(b, tcfake.Options{
		PageSize: benchPageSize,
		IOCs:     tcfake.GenerateIOCs(tcfake.GenOptions{N: total, Seed: 1, From: to.Add(-30 * 24 * time.Hour), To: to}),
	})
	client, err := NewClient(ClientConfig{
		URL: srv.URL, AccountID: srv.AccountID(), APIKey: srv.APIKey(),
		HTTP: httpx.New(httpx.Options{MaxAttempts: 1}),
	})
	if err != nil {
		b.Fatal(err)
	}
	var records int
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		db := openBenchStore(b)
		c := &Collector{
			Client: client,
			Store:  db,
			Clock:  vigil.ClockFunc(func() time.Time { return benchNow }),
			Logger: slog.New(slog.DiscardHandler),
			Settings: Settings{
				ExpirationDuration: "90d",
				IOC:                DatasetSettings{Enabled: true, InitialInterval: 60 * 24 * time.Hour},
			},
		}
		b.StartTimer()
		cpu0 := cpuTime()
		res, err := c.Pull(b.Context(), DatasetIOC, nil)
		cpu += cpuTime() - cpu0
		if err != nil {
			b.Fatal(err)
		}
		if res.Records != total || res.Live != total {
			b.Fatalf("pulled %+v, want %d records, all live", res, total)
		}
		records += res.Records
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(records)/cpu.Seconds(), "records/cpu-s")
	hwm, err := peakRSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(hwm)/(1<<20), "peak-RSS-MB")
}

// cpuTime returns the CPU time (user and system) the process has used. On a
// machine shared with other work, records per CPU second is steadier than
// records per second; with GOMAXPROCS=1 the process uses at most about one
// core (SQLite runs on the calling thread).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}
