package threatconnect

import (
	"github.com/vigil-ti/vigil"
	"syscall"
	"testing"
	"time"
)

func BenchmarkZZIngest(b *testing.B) {
	recs := benchRecords(b.N, false)
	db := openBenchStore(b)
	b.ResetTimer()
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	ingest(b, b.Context(), db, recs)
	if err := db.Sync(b.Context()); err != nil {
		b.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	u := time.Duration(r1.Utime.Nano() - r0.Utime.Nano())
	s := time.Duration(r1.Stime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(u.Nanoseconds())/float64(b.N), "user-ns/rec")
	b.ReportMetric(float64(s.Nanoseconds())/float64(b.N), "sys-ns/rec")
}

func BenchmarkZZNorm(b *testing.B) {
	recs := benchRecords(b.N, false)
	b.ResetTimer()
	var r0, r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	docs := make([]vigil.Document, 0, DefaultBatchSize)
	for start := 0; start < len(recs); start += DefaultBatchSize {
		end := min(start+DefaultBatchSize, len(recs))
		docs = normalizePage(recs[start:end], docs)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	u := time.Duration(r1.Utime.Nano() - r0.Utime.Nano())
	s := time.Duration(r1.Stime.Nano() - r0.Stime.Nano())
	b.ReportMetric(float64(u.Nanoseconds())/float64(b.N), "user-ns/rec")
	b.ReportMetric(float64(s.Nanoseconds())/float64(b.N), "sys-ns/rec")
}
