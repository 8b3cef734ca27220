package threatconnect

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/sqlite"
	"github.com/vigil-ti/vigil/internal/threatconnect/tcnfake"
)

// The goal: normalize and store at least 100,000 indicators per
// second on one core. Run with -cpu 1:
//
//	go test -run '^$' -bench 'Indicator|WritePage' -benchtime 200000x -cpu 1 ./internal/threatconnect/
//
// records/s is wall time; records/cpu-s divides by the CPU time the process
// used (user and system), which is steadier on a shared machine.

// benchNow is the wall time of the benchmarks: the end of the generated
// window, so that the indicators are live.
var benchNow = tcnfake.DefaultTo

// benchRecords returns the raw JSON of n generated indicators of all twelve
// types, as the API serves them with the default fields (securityLabels,
// sightings, tags, threatAssess) or, with assoc, with every association
// and attributes, in one arena.
func benchRecords(n int, assoc bool) [][]byte {
	f := tcnfake.Fields{SecurityLabels: true, Tags: true, ThreatAssess: true}
	if assoc {
		f.Groups, f.GroupAttributes, f.Associated, f.Attributes = true, true, true, true
	}
	const chunk = 10000
	var arena []byte
	offs := make([]int, 0, n+1)
	offs = append(offs, 0)
	for off := 0; off < n; off += chunk {
		inds := tcnfake.Generate(tcnfake.GenOptions{N: min(chunk, n-off), Seed: 1, Offset: off, Associations: assoc, To: benchNow})
		for i := range inds {
			arena = inds[i].AppendJSON(arena, f)
			offs = append(offs, len(arena))
		}
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = arena[offs[i]:offs[i+1]:offs[i+1]]
	}
	return out
}

func openBenchStore(tb testing.TB) *sqlite.DB {
	db, err := sqlite.Open(tb.Context(), tb.TempDir(), sqlite.Options{Clock: vigil.ClockFunc(func() time.Time { return benchNow })})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// normalizePage normalizes one page as the collector does: a Normalizer
// per page, stamped with its ingest time, writing into arena (reset) when
// it is not nil.
func normalizePage(recs [][]byte, docs []vigil.Document, arena *ecs.Arena) []vigil.Document {
	if arena != nil {
		arena.Reset()
	}
	n := NewNormalizer(NormalizeOptions{Dataset: DatasetIndicator, Tags: defaultTags, ExpirationDuration: "90d", Ingested: benchNow, Arena: arena})
	docs = docs[:0]
	for _, raw := range recs {
		docs = append(docs, n.Indicator(raw))
	}
	return docs
}

// ingest normalizes and writes recs in pages of DefaultBatchSize, each
// with the cursor after it, as the collector does: the pages' documents in
// one arena, which each page reuses, written as the page's NDJSON.
func ingest(tb testing.TB, ctx context.Context, db vigil.Store, recs [][]byte) vigil.WriteStats {
	var sum vigil.WriteStats
	var arena ecs.Arena
	docs := make([]vigil.Document, 0, DefaultBatchSize)
	for start := 0; start < len(recs); start += DefaultBatchSize {
		end := min(start+DefaultBatchSize, len(recs))
		docs = normalizePage(recs[start:end], docs, &arena)
		cursor := strconv.AppendInt([]byte(`{"since":"2024-06-14T00:00:00Z","open":{"pages":`), int64(end), 10)
		cursor = append(cursor, `}}`...)
		st, err := db.WritePage(ctx, vigil.Page{Source: SourceName, Dataset: DatasetIndicator, Docs: docs, Cursor: cursor, NDJSON: arena.NDJSON()})
		if err != nil {
			tb.Fatal(err)
		}
		sum.Raw += st.Raw
		sum.Live += st.Live
		sum.Rejected += st.Rejected
		sum.Stale += st.Stale
		sum.Unkeyed += st.Unkeyed
	}
	return sum
}

func rawBytes(recs [][]byte) int64 {
	var n int64
	for _, r := range recs {
		n += int64(len(r))
	}
	return n
}

// BenchmarkIngestIndicators measures the goal. One op is one indicator:
// generated before the timer starts, normalized, and written with
// WritePage in pages of 2000 (batch_size), with a cursor, into a fresh
// store in b.TempDir(); the timed work ends with Sync, as a pull does: the
// live view is up to date when the timer stops.
//   - default-fields: what Elastic's defaults ask for (no associations).
//   - associations: every include_* setting on (records about 3 times as large).
func BenchmarkIngestIndicators(b *testing.B) {
	for _, c := range []struct {
		name  string
		assoc bool
	}{{"default-fields", false}, {"associations", true}} {
		b.Run(c.name, func(b *testing.B) {
			recs := benchRecords(b.N, c.assoc)
			db := openBenchStore(b)
			b.SetBytes(rawBytes(recs) / int64(max(b.N, 1)))
			b.ResetTimer()
			cpu0 := cpuTime()
			st := ingest(b, b.Context(), db, recs)
			if err := db.Sync(b.Context()); err != nil {
				b.Fatal(err)
			}
			cpu := cpuTime() - cpu0
			b.StopTimer()
			if st.Raw != b.N || st.Rejected != 0 || st.Live != b.N {
				b.Fatalf("wrote %+v for %d records", st, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
		})
	}
}

// BenchmarkNormalizeIndicator is the normalizer's share of the ingest.
func BenchmarkNormalizeIndicator(b *testing.B) {
	for _, c := range []struct {
		name  string
		assoc bool
	}{{"default-fields", false}, {"associations", true}} {
		b.Run(c.name, func(b *testing.B) {
			const pool = 20000
			recs := benchRecords(pool, c.assoc)
			b.SetBytes(rawBytes(recs) / pool)
			docs := make([]vigil.Document, 0, DefaultBatchSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; {
				start := i % pool
				end := min(start+DefaultBatchSize, pool, start+b.N-i)
				docs = normalizePage(recs[start:end], docs, nil)
				i += end - start
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkWritePage is the store's share of the ingest: WritePage of
// indicators normalized before the timer starts.
func BenchmarkWritePage(b *testing.B) {
	recs := benchRecords(b.N, false)
	docs := make([]vigil.Document, 0, b.N)
	for start := 0; start < len(recs); start += DefaultBatchSize {
		page := normalizePage(recs[start:min(start+DefaultBatchSize, len(recs))], nil, nil)
		docs = append(docs, page...)
	}
	db := openBenchStore(b)
	b.ResetTimer()
	cpu0 := cpuTime()
	for start := 0; start < len(docs); start += DefaultBatchSize {
		end := min(start+DefaultBatchSize, len(docs))
		if _, err := db.WritePage(b.Context(), vigil.Page{Source: SourceName, Dataset: DatasetIndicator, Docs: docs[start:end], Cursor: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
