package importer

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
)

// benchList returns a plain-text list of n distinct indicators of the usual
// mix: IPv4 addresses, domains, URLs, sha256 and md5 hashes.
func benchList(n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 48)
	for i := range n {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "%d.%d.%d.%d\n", 1+i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff)
		case 1:
			fmt.Fprintf(&b, "host-%d.example-%d.com\n", i, i%977)
		case 2:
			fmt.Fprintf(&b, "http://evil-%d.example.net/path/%d/payload.exe?id=%d\n", i%1543, i, i)
		case 3:
			fmt.Fprintf(&b, "%064x\n", uint64(i)*0x9e3779b97f4a7c15)
		case 4:
			fmt.Fprintf(&b, "%032x\n", uint64(i)*0xc2b2ae3d27d4eb4f)
		}
	}
	return b.Bytes()
}

// BenchmarkImport imports a plain-text list into a real store in a
// temporary directory, Sync included, and reports indicators/s. The list
// has 1,000,000 indicators (VIGIL_BENCH_IMPORT_N overrides it, e.g. to
// 10000000), 20,000 under -short:
//
//	go test -run '^$' -bench Import -benchtime 1x ./internal/importer/
func BenchmarkImport(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 20_000
	}
	if s := os.Getenv("VIGIL_BENCH_IMPORT_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("VIGIL_BENCH_IMPORT_N=%q is not a positive number", s)
		}
		n = v
	}
	list := benchList(n)
	clock := vigil.ClockFunc(func() time.Time { return testNow })
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		db := openStore(b, clock)
		im, _ := testImporter(b, db, clock, nil)
		b.StartTimer()
		start := time.Now()
		st, err := im.Read(b.Context(), "bench.txt", bytes.NewReader(list))
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Sync(b.Context()); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if st.Imported != n || st.Bad != 0 {
			b.Fatalf("%+v, want %d imported", st, n)
		}
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "indicators/s")
	b.ReportMetric(float64(len(list))/float64(n), "bytes/line")
}

// BenchmarkBuild measures the importer without the store: reading, type
// detection and document building, per indicator.
func BenchmarkBuild(b *testing.B) {
	list := benchList(100_000)
	lines := bytes.Split(bytes.TrimSpace(list), []byte{'\n'})
	bd := builder{provider: "vigil import", expStr: "90d", expDur: 90 * 24 * time.Hour}
	bd.start("bench.txt", testNow)
	var p page
	var rec record
	i := 0
	for b.Loop() {
		rec = record{value: b2s(lines[i%len(lines)])}
		if err := bd.build(&rec, &p); err != nil {
			b.Fatal(err)
		}
		if len(p.docs) == DefaultPageSize {
			p.reset()
		}
		i++
	}
}
