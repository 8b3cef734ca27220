package threatcommand

import (
	"os"
	"testing"

	"github.com/valyala/fastjson"
)

// BenchmarkNormalizeCPU is BenchmarkNormalizeIOC and friends reporting the
// process CPU time per record as well (cpu-ns/op), which is steadier than
// wall time on a machine other benchmarks share. Run it with -cpu 1.
func BenchmarkNormalizeCPU(b *testing.B) {
	alert, err := os.ReadFile("testdata/normalize/alert/full.input.json")
	if err != nil {
		b.Fatal(err)
	}
	cve, err := os.ReadFile("testdata/normalize/vulnerability/full.input.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, kind string
		raw        []byte
	}{
		{"ioc-ip", "ioc", benchIOC},
		{"ioc-url", "ioc", benchURL},
		{"alert", "alert", alert},
		{"cve", "vulnerability", cve},
	} {
		b.Run(bc.name, func(b *testing.B) {
			k := kinds[bc.kind]
			n := NewNormalizer(k.opts)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				k.normalize(n, bc.raw)
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkParseCPU is BenchmarkParseIOCBaseline with cpu-ns/op, the floor
// to read BenchmarkNormalizeCPU against.
func BenchmarkParseCPU(b *testing.B) {
	var p fastjson.Parser
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := p.ParseBytes(benchIOC); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
