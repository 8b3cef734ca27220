package mispfeed_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/mispfeed"
	"github.com/vigil-ti/vigil/internal/mispfeed/mispfake"
	"github.com/vigil-ti/vigil/internal/sqlite"
	"github.com/vigil-ti/vigil/internal/threatcommand"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// BenchmarkFeed serves a group of 50,000 Threat Command IOCs (2,000 with
// -short), made by the real normalizer from generated records, to MISP
// instances that pull it as MISP does:
//
//   - first-manifest: a new device's first manifest request, which selects
//     the group's IOCs and writes them into the device's event;
//   - first-pull: a new device's first pull as MISP makes it, end to end:
//     the manifest, then the download (and decoding, by the fake) of the
//     event; besides the wall time (ns/op), serve-s/pull is the time the
//     server spent in its handlers, and cpu-s/pull the CPU time of the
//     whole process (server and fake MISP: on a shared machine it is
//     steadier than the wall time);
//   - next-pull: a pull that finds nothing new (the manifest only);
//   - event: one download of the full event.
func BenchmarkFeed(b *testing.B) {
	n := 50000
	if testing.Short() {
		n = 2000
	}
	ctx := b.Context()
	now := tcfake.DefaultTo
	clk := &clock{t: now}
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.Options{Clock: clk})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	// Active IOCs of every type, updated in the last 30 days.
	recs := tcfake.GenerateIOCs(tcfake.GenOptions{N: n * 11 / 10, Seed: 7, From: now.Add(-30 * 24 * time.Hour), To: now})
	norm := threatcommand.NewNormalizer(ecs.NormalizeOptions{Dataset: threatcommand.DatasetIOC, Tags: []string{"forwarded", "rapid7-threat-command-ioc"}, ExpirationDuration: "90d", Ingested: now})
	var page []vigil.Document
	var raw []byte
	for i := range recs.Len() {
		rec := recs.IOC(i)
		raw = rec.AppendJSON(raw[:0])
		page = append(page, norm.IOC(raw))
		if len(page) == 1000 || i == recs.Len()-1 {
			if _, err := db.WritePage(ctx, vigil.Page{Source: "bench", Dataset: threatcommand.DatasetIOC, Docs: page}); err != nil {
				b.Fatal(err)
			}
			page = page[:0]
		}
	}
	if err := db.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	cfg := parseFeeds(b, fmt.Sprintf("feeds:\n  misp:\n    groups: [{name: all}]\n    devices: [{name: first, username: u, password: p, limit: %d, groups: [all]}]\n", n))
	svc := &mispfeed.Service{Store: db.MISP(), Live: db, Config: cfg, Clock: clk}
	if err := svc.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	var served atomic.Int64 // nanoseconds in the server's handlers
	feed := svc.Wrap(http.NotFoundHandler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.Now()
		feed.ServeHTTP(w, r)
		served.Add(int64(time.Since(t)))
	}))
	defer srv.Close()
	instance := func(user, pass string) *mispfake.Instance {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return mispfake.New(srv.URL+"/misp/all", http.Header{"Authorization": req.Header["Authorization"]})
	}
	var attrs int
	devices := 0
	newDevice := func(b *testing.B) *mispfake.Instance {
		devices++
		d, err := svc.AddDevice(ctx, fmt.Sprintf("bench %d", devices), []string{"all"}, n)
		if err != nil {
			b.Fatal(err)
		}
		return instance(d.Username, d.Key)
	}
	b.Run("first-manifest", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			m := newDevice(b)
			b.StartTimer()
			man, err := m.FetchManifest(ctx)
			if err != nil || len(man) != 1 {
				b.Fatalf("%v %v", man, err)
			}
		}
	})
	b.Run("first-pull", func(b *testing.B) {
		var cpu, serve time.Duration
		for b.Loop() {
			b.StopTimer()
			m := newDevice(b)
			serve0 := served.Load()
			cpu0 := cpuTime()
			b.StartTimer()
			st, err := m.Fetch(ctx)
			b.StopTimer()
			cpu += cpuTime() - cpu0
			serve += time.Duration(served.Load() - serve0)
			b.StartTimer()
			if err != nil || st.Added != 1 {
				b.Fatalf("%+v %v", st, err)
			}
			attrs = st.NewAttrs
		}
		b.ReportMetric(float64(attrs), "iocs/pull")
		b.ReportMetric(float64(attrs)*float64(b.N)/b.Elapsed().Seconds(), "iocs/s")
		b.ReportMetric(serve.Seconds()/float64(b.N), "serve-s/pull")
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/pull")
	})
	m := instance("u", "p")
	if _, err := m.Fetch(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("next-pull", func(b *testing.B) {
		for b.Loop() {
			st, err := m.Fetch(ctx)
			if err != nil || st.Added+st.Edited != 0 {
				b.Fatalf("%+v %v", st, err)
			}
		}
	})
	dev, err := db.MISP().DeviceByName(ctx, "first")
	if err != nil {
		b.Fatal(err)
	}
	event := srv.URL + "/misp/all/" + mispfeed.EventUUID(dev.Name, "all", now.Format(time.DateOnly)) + ".json"
	b.Run("event", func(b *testing.B) {
		var size int64
		for b.Loop() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, event, nil)
			req.SetBasicAuth("u", "p")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("%v %v", resp, err)
			}
			size = 0
			buf := make([]byte, 64<<10)
			for {
				k, err := resp.Body.Read(buf)
				size += int64(k)
				if err != nil {
					break
				}
			}
			resp.Body.Close()
		}
		b.SetBytes(size)
	})
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
