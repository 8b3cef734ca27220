package sqlite_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// The store's share of the ingest, without the normalizer: pre-built
// documents shaped like Threat Command IOCs (1.8 KB of ECS JSON, which s2
// compresses about 7 times; the real ones about 6.5), in pages of 1000.
//
//	go test -run '^$' -bench 'WritePage|Materialize' -benchtime 32768x -cpu 1 ./internal/sqlite/
//
// One op is one document. BenchmarkWritePage times WritePage alone (the
// automatic merges off); BenchmarkMaterialize times the merge of b.N
// documents written before the timer starts. Their sum is the store's cost
// per record. -benchtime 32768x merges one default batch, from the copies
// the writer keeps in memory, as in a pull; past 2 x 64 MiB of documents
// the writer drops them, and the merge reads the segments back and
// decompresses them, as after a restart (about 1 µs more per document).
//
// Each runs on a fresh store and on a store that already holds 1,000,000
// keys (built once per process, in about a minute, and shared, so it holds
// a little more after each round; skipped with -short): "new" writes keys
// it does not hold,
// "update" rewrites keys it holds, chosen at random, with newer
// @timestamps.

const benchPage = 1000

var benchNow = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// benchDoc returns a document shaped like a normalized Threat Command IOC:
// key i (an IP, a domain, a URL or a hash), dated ts.
func benchDoc(i int, ts time.Time, r *rand.Rand) vigil.Document {
	var key, typ, field string
	switch i % 4 {
	case 0:
		key, typ, field = fmt.Sprintf("%d.%d.%d.%d", 1+i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff), "ipv4-addr", `"ip":"%s"`
	case 1:
		key, typ, field = fmt.Sprintf("portal-%x-%d.example.org", r.Uint32(), i), "domain-name", `"url":{"domain":"%s"}`
	case 2:
		key, typ, field = fmt.Sprintf("https://cdn-%d.example.net/%x/payload.exe", i, r.Uint64()), "url", `"url":{"full":"%s"}`
	default:
		key, typ, field = fmt.Sprintf("%016x%016x%d", r.Uint64(), r.Uint64(), i), "file", `"file":{"hash":{"md5":"%s"}}`
	}
	at := ts.Format("2006-01-02T15:04:05.000Z")
	seen := ts.Add(-time.Duration(r.IntN(1000)) * time.Hour).Format("2006-01-02T15:04:05.000Z")
	exp := ts.Add(90 * 24 * time.Hour)
	score := r.Float64()
	feed := fmt.Sprintf("%012x%012x", r.Uint64()>>16, r.Uint64()>>16)
	malware := [...]string{"icedid", "asyncrat", "qakbot", "emotet", "lumma", "redline", "cobaltstrike", "njrat"}
	m1, m2 := malware[r.IntN(len(malware))], malware[r.IntN(len(malware))]
	ind := fmt.Sprintf(field, key)
	src := fmt.Appendf(nil, `{"@timestamp":"%s","ecs":{"version":"8.11.0"},"event":{"category":["threat"],"dataset":"ti_rapid7_threat_command.ioc","ingested":"%s","kind":"enrichment","module":"ti_rapid7_threat_command","original":"{\"value\":\"%s\",\"type\":\"%s\",\"status\":\"Active\",\"severity\":\"Medium\",\"score\":%v,\"lastUpdateDate\":\"%s\",\"lastSeen\":\"%s\",\"firstSeen\":\"%s\",\"relatedMalware\":[\"%s\",\"%s\"],\"relatedCampaigns\":[\"ProxyLogon\"],\"relatedThreatActors\":[],\"reportedFeeds\":[{\"id\":\"%s\",\"name\":\"Threat Command Research\",\"confidenceLevel\":%d}],\"whitelisted\":false,\"tags\":[]}","risk_score":%.8f,"type":["indicator"]},"rapid7":{"tc":{"ioc":{"deleted_at":"%s","expiration_duration":"90d","first_seen":"%s","last_seen":"%s","last_update_date":"%s","related":{"campaigns":["ProxyLogon"],"malware":["%s","%s"]},"reported_feeds":[{"confidence":%d,"id":"%s","name":"Threat Command Research"}],"score":%v,"severity":"Medium","status":"Active","type":"%s","value":"%s","whitelisted":"false"}}},"related":{"hash":["%s"]},"tags":["forwarded","rapid7-threat-command-ioc"],"threat":{"indicator":{"confidence":%v,%s,"first_seen":"%s","last_seen":"%s","modified_at":"%s","name":"%s","provider":["Threat Command Research"],"type":"%s"}}}`,
		at, benchNow.Format(time.RFC3339), key, typ, score, at, seen, seen, m1, m2, feed, 1+r.IntN(3), score,
		exp.Format("2006-01-02T15:04:05.000Z"), seen, seen, at, m1, m2, 1+r.IntN(3), feed, score, typ, key, key, score, ind, seen, seen, at, key, typ)
	return vigil.Document{
		Dataset: "ti_rapid7_threat_command.ioc", View: vigil.ViewIndicators,
		Key: key, Type: typ, Timestamp: ts, ExpiresAt: exp, Source: src,
	}
}

// benchDocs returns the documents of keys [first, first+n), dated in the
// 30 days before at.
func benchDocs(first, n int, at time.Time, seed uint64) []vigil.Document {
	r := rand.New(rand.NewPCG(seed, uint64(first)))
	docs := make([]vigil.Document, n)
	for i := range docs {
		docs[i] = benchDoc(first+i, at.Add(-time.Duration(r.Int64N(int64(30*24*time.Hour)))), r)
	}
	return docs
}

func openBench(tb testing.TB, dir string) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), dir, sqlite.Options{
		Clock:     vigil.ClockFunc(func() time.Time { return benchNow }),
		MergeDocs: -1, // merges only when asked
	})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func writePages(tb testing.TB, db *sqlite.DB, docs []vigil.Document) {
	tb.Helper()
	for start := 0; start < len(docs); start += benchPage {
		end := min(start+benchPage, len(docs))
		cursor := strconv.AppendInt([]byte(`{"offset":`), int64(end), 10)
		cursor = append(cursor, '}')
		if _, err := db.WritePage(tb.Context(), vigil.Page{Source: "bench", Dataset: docs[0].Dataset, Docs: docs[start:end], Cursor: cursor}); err != nil {
			tb.Fatal(err)
		}
	}
}

// bigStore is the store holding benchBigKeys keys, shared by the
// benchmarks that need one.
const benchBigKeys = 1_000_000

var bigStore struct {
	once  sync.Once
	dir   string
	db    *sqlite.DB
	next  int // the next new key
	round int // rounds of updates so far
	err   error
}

// TestMain removes the big store, which outlives the benchmarks that use it.
func TestMain(m *testing.M) {
	code := m.Run()
	if bigStore.db != nil {
		bigStore.db.Close()
	}
	if bigStore.dir != "" {
		os.RemoveAll(bigStore.dir)
	}
	os.Exit(code)
}

func big(b *testing.B) *sqlite.DB {
	if testing.Short() {
		b.Skip("builds a store of 1,000,000 keys; skipped in -short mode")
	}
	bigStore.once.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-bench-")
		if err != nil {
			bigStore.err = err
			return
		}
		bigStore.dir = dir
		db := openBench(b, dir)
		for first := 0; first < benchBigKeys; first += 100_000 {
			writePages(b, db, benchDocs(first, 100_000, benchNow.Add(-30*24*time.Hour), 1))
			if _, err := db.Materialize(b.Context()); err != nil {
				bigStore.err = err
				return
			}
		}
		bigStore.db, bigStore.next = db, benchBigKeys
	})
	if bigStore.err != nil {
		b.Fatal(bigStore.err)
	}
	return bigStore.db
}

// docsFor returns b.N documents for a benchmark case: new keys, or
// existing keys of the big store at random, newer than what it holds.
func docsFor(b *testing.B, mode string, db *sqlite.DB) []vigil.Document {
	switch mode {
	case "fresh":
		return benchDocs(0, b.N, benchNow, 2)
	case "1M/new":
		docs := benchDocs(bigStore.next, b.N, benchNow, 2)
		bigStore.next += b.N
		return docs
	default: // 1M/update
		// Each round its own keys and documents, newer than any before:
		// a document that is byte for byte the live row costs SQLite no
		// page write, and would flatter the figure.
		bigStore.round++
		round := bigStore.round
		r := rand.New(rand.NewPCG(3, uint64(round)))
		docs := make([]vigil.Document, b.N)
		for i := range docs {
			k := r.IntN(benchBigKeys)
			d := benchDocs(k, 1, benchNow.Add(-30*24*time.Hour), 1)[0] // the key's first document
			nd := benchDoc(k, benchNow.Add(time.Duration(round)*time.Hour+time.Duration(i)*time.Millisecond), r)
			nd.Key, nd.Type = d.Key, d.Type
			docs[i] = nd
		}
		return docs
	}
}

var benchModes = []string{"fresh", "1M/new", "1M/update"}

// BenchmarkWritePage measures WritePage alone: the raw segment (s2), its
// entry list and the cursor, per document.
func BenchmarkWritePage(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			var db *sqlite.DB
			if mode == "fresh" {
				db = openBench(b, b.TempDir())
				defer db.Close()
			} else {
				db = big(b)
			}
			docs := docsFor(b, mode, db)
			runtime.GC()
			b.ResetTimer()
			cpu0 := cpuTime()
			writePages(b, db, docs)
			cpu := cpuTime() - cpu0
			b.StopTimer()
			report(b, cpu)
			// Leave the big store merged for the next case.
			if _, err := db.Materialize(b.Context()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkMaterialize measures the merge of b.N documents written before
// the timer starts into the live table, per document.
func BenchmarkMaterialize(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode, func(b *testing.B) {
			var db *sqlite.DB
			if mode == "fresh" {
				db = openBench(b, b.TempDir())
				defer db.Close()
			} else {
				db = big(b)
			}
			writePages(b, db, docsFor(b, mode, db))
			runtime.GC()
			b.ResetTimer()
			cpu0 := cpuTime()
			st, err := db.Materialize(b.Context())
			cpu := cpuTime() - cpu0
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if st.Docs != b.N || st.Live+st.Stale+st.Superseded != b.N {
				b.Fatalf("merged %+v for %d documents", st, b.N)
			}
			report(b, cpu)
			b.ReportMetric(float64(st.Stale)/float64(b.N), "stale/op")
		})
	}
}

func report(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
