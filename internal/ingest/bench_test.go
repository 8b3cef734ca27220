package ingest

// BenchmarkInputs measures events per second through the HTTP inputs,
// end to end on loopback: requests of 1,000 events of about 640 bytes
// (detecttest's mix, 1 % carrying an indicator's value) sent by two
// clients at once, read and charged to the queue, split, matched by the
// engine against 1M indicators (100,000 under -short), and the alerts
// stored with their deliveries in a real store. One op is one event.
//
//	go test -run '^$' -bench Inputs -benchtime 200000x ./internal/ingest/

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect"
	"github.com/vigil-ti/vigil/internal/detect/detecttest"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/matcher/matchertest"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchData is the index and the request bodies, built once.
type benchData struct {
	snap   *detect.Snapshot
	now    time.Time
	ndjson [][]byte // bodies of perRequest events
	bulk   [][]byte
}

const perRequest = 1000

func newBenchData(b *testing.B, n int) *benchData {
	cfg := matchertest.DefaultConfig()
	g := matchertest.New(cfg)
	var sb detect.SnapshotBuilder
	for _, view := range []vigil.View{vigil.ViewIndicators, vigil.ViewVulnerabilities} {
		for i := range uint64(n) {
			ind := g.Item(i)
			if (ind.Type == matcher.TypeVulnerability) != (view == vigil.ViewVulnerabilities) {
				continue
			}
			if err := sb.Add(detect.DocRef{View: view, Dataset: "vigil.import", Key: ind.Value}, ind); err != nil {
				b.Fatal(err)
			}
		}
	}
	d := &benchData{snap: sb.Build(), now: cfg.Now}
	ev := detecttest.New(detecttest.Config{Indicators: g, N: uint64(n), HitRate: 0.01, Seed: 1, Now: cfg.Now})
	bodies := 64 // 64,000 distinct events, 85 MB of bodies
	if testing.Short() {
		bodies = 4
	}
	for r := range bodies {
		var nd, bulk []byte
		for i := range perRequest {
			line := ev.Append(nil, uint64(r*perRequest+i))
			nd = append(append(nd, line...), '\n')
			bulk = append(bulk, `{"create":{"_index":"logs-bench-default"}}`+"\n"...)
			bulk = append(append(bulk, line...), '\n')
		}
		d.ndjson = append(d.ndjson, nd)
		d.bulk = append(d.bulk, bulk)
	}
	return d
}

// run sends b.N events (rounded up to whole requests) to path with two
// clients and reports the rates.
func (d *benchData) run(b *testing.B, path string, bodies [][]byte) {
	db, err := sqlite.Open(b.Context(), b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	eng, err := detect.New(detect.Config{Actions: []string{"hook"}, SuppressionWindow: time.Hour}, db, vigil.ClockFunc(func() time.Time { return d.now }))
	if err != nil {
		b.Fatal(err)
	}
	eng.Swap(d.snap)
	p, err := New(Options{Engine: eng, Store: db})
	if err != nil {
		b.Fatal(err)
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		p.Run(b.Context())
	}()
	srv := httptest.NewServer(p.Handler(nil))
	defer func() {
		srv.Close()
		p.Close()
		<-ran
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	requests := (b.N + perRequest - 1) / perRequest
	var next, rejected atomic.Int64
	b.SetBytes(int64(len(bodies[0]) / perRequest))
	b.ResetTimer()
	cpu0 := cpuTime(b)
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(requests) {
					return
				}
				for {
					resp, err := client.Post(srv.URL+path, "application/x-ndjson", bytes.NewReader(bodies[i%int64(len(bodies))]))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusTooManyRequests {
						rejected.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	events := float64(requests * perRequest)
	st := p.Stats()
	if st.Events != int64(events) {
		b.Fatalf("%d events matched, %v sent", st.Events, events)
	}
	if st.Alerts == 0 && requests >= 10 {
		b.Fatal("no alerts")
	}
	b.ReportMetric(events/elapsed.Seconds(), "events/s")
	b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(st.Alerts)/events, "alerts/event")
	b.ReportMetric(float64(rejected.Load()), "429s")
}

// BenchmarkInputs: /api/v1/events and /_bulk, 1M indicators (100,000
// under -short).
func BenchmarkInputs(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	d := newBenchData(b, n)
	for _, c := range []struct {
		name, path string
		bodies     [][]byte
	}{
		{"events", "/api/v1/events", d.ndjson},
		{"bulk", "/_bulk", d.bulk},
	} {
		b.Run(fmt.Sprintf("%s/indicators=%d", c.name, n), func(b *testing.B) { d.run(b, c.path, c.bodies) })
	}
}
