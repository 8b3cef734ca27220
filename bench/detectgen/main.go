// Command detectgen writes the data of bench/detect.sh: a store of N
// generated indicators (the matchertest mix, dataset vigil.import, CVEs in
// vigil.import.vulnerability), a file of generated ECS events of about 600
// bytes (1 % carrying an indicator's value) and the indicator values as
// plain lines for grep-like tools (CIDR ranges left out: they cannot be
// matched as text).
//
//	go run ./bench/detectgen -indicators 1000000 -events 1000000 -dir /tmp/bench
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect/detecttest"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/matcher/matchertest"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

func main() {
	n := flag.Uint64("indicators", 1_000_000, "indicators to store")
	events := flag.Uint64("events", 1_000_000, "events to write")
	hitRate := flag.Float64("hit-rate", 0.01, "share of events that carry an indicator's value")
	dir := flag.String("dir", "", "output directory (data/, events.ndjson, values.txt)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "detectgen: -dir is required")
		os.Exit(2)
	}
	if err := run(context.Background(), *dir, *n, *events, *hitRate); err != nil {
		fmt.Fprintln(os.Stderr, "detectgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, n, events uint64, hitRate float64) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	cfg := matchertest.DefaultConfig()
	cfg.Now = time.Now().UTC() // 10 % expire within the hour: during the run
	g := matchertest.New(cfg)
	if err := writeEvents(filepath.Join(dir, "events.ndjson"), g, n, events, hitRate, cfg.Now); err != nil {
		return err
	}
	if err := writeValues(filepath.Join(dir, "values.txt"), g, n); err != nil {
		return err
	}
	return writeStore(ctx, filepath.Join(dir, "data"), g, n, cfg.Now)
}

func writeEvents(path string, g *matchertest.Generator, n, events uint64, hitRate float64, now time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	ev := detecttest.New(detecttest.Config{Indicators: g, N: n, HitRate: hitRate, Seed: 7, Now: now})
	var line []byte
	for i := range events {
		line = append(ev.Append(line[:0], i), '\n')
		w.Write(line)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func writeValues(path string, g *matchertest.Generator, n uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range n {
		if g.Kind(i) == matcher.KindCIDR {
			continue
		}
		w.WriteString(g.Item(i).Value)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// writeStore writes the indicators as `vigil import` documents would be:
// compact ECS indicator documents.
func writeStore(ctx context.Context, dir string, g *matchertest.Generator, n uint64, now time.Time) error {
	db, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	const page = 10000
	var iocs, vulns []vigil.Document
	flush := func(dataset string, docs *[]vigil.Document) error {
		if len(*docs) == 0 {
			return nil
		}
		_, err := db.WritePage(ctx, vigil.Page{Source: "vigil", Dataset: dataset, Docs: *docs})
		*docs = (*docs)[:0]
		return err
	}
	ts := now.Add(-time.Hour)
	for i := range n {
		ind := g.Item(i)
		d, err := document(ind, ts)
		if err != nil {
			return err
		}
		if d.View == vigil.ViewVulnerabilities {
			vulns = append(vulns, d)
		} else {
			iocs = append(iocs, d)
		}
		if len(iocs) == page {
			if err := flush("vigil.import", &iocs); err != nil {
				return err
			}
		}
		if len(vulns) == page {
			if err := flush("vigil.import.vulnerability", &vulns); err != nil {
				return err
			}
		}
	}
	if err := flush("vigil.import", &iocs); err != nil {
		return err
	}
	if err := flush("vigil.import.vulnerability", &vulns); err != nil {
		return err
	}
	return db.Sync(ctx)
}

func document(ind matcher.Indicator, ts time.Time) (vigil.Document, error) {
	d := vigil.Document{Dataset: "vigil.import", View: vigil.ViewIndicators, Key: ind.Value, Type: ind.Type, Timestamp: ts, ExpiresAt: ind.ExpiresAt}
	ti := map[string]any{"type": ind.Type, "name": ind.Value, "provider": []string{"bench"}, "confidence": "Medium"}
	switch ind.Type {
	case matcher.TypeIPv4, matcher.TypeIPv6:
		ti["ip"] = ind.Value
	case matcher.TypeDomain:
		ti["url"] = map[string]any{"domain": ind.Value}
	case matcher.TypeURL:
		ti["url"] = map[string]any{"full": ind.Value}
	case matcher.TypeFile:
		algo := map[int]string{32: "md5", 40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}[len(ind.Value)]
		ti["file"] = map[string]any{"hash": map[string]any{algo: strings.ToLower(ind.Value)}}
	case matcher.TypeEmail:
		ti["email"] = map[string]any{"address": ind.Value}
	case matcher.TypeRegistry:
		ti["registry"] = map[string]any{"path": ind.Value}
	case matcher.TypeVulnerability:
		d.Dataset, d.View, d.Type = "vigil.import.vulnerability", vigil.ViewVulnerabilities, "High"
		src, err := json.Marshal(map[string]any{
			"@timestamp":    ts.Format(time.RFC3339),
			"event":         map[string]any{"kind": "event", "category": []string{"threat", "vulnerability"}, "type": []string{"indicator"}, "dataset": d.Dataset},
			"vulnerability": map[string]any{"id": ind.Value, "enumeration": "CVE", "severity": "High"},
		})
		d.Source = src
		return d, err
	}
	src, err := json.Marshal(map[string]any{
		"@timestamp": ts.Format(time.RFC3339),
		"event":      map[string]any{"kind": "enrichment", "category": []string{"threat"}, "type": []string{"indicator"}, "dataset": d.Dataset},
		"threat":     map[string]any{"indicator": ti, "feed": map[string]any{"name": "bench"}},
	})
	d.Source = src
	return d, err
}
