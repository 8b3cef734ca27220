package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
)

// cmdGet prints a live view as a table or as NDJSON ECS documents.
func cmdGet(ctx context.Context, e *env, args []string) error {
	const use = "usage: vigil get indicators|alerts|vulnerabilities [--dataset D] [-o table|ndjson] [--limit N]\n       vigil get detections [--rule ID] [-o table|ndjson] [--limit N]\n       vigil get devices [-o table|ndjson]"
	if len(args) == 0 {
		return usageError(use)
	}
	switch args[0] {
	case "detections":
		return cmdGetDetections(ctx, e, args[1:])
	case "devices":
		return cmdGetDevices(ctx, e, args[1:])
	}
	view, ok := vigil.ParseView(args[0])
	if !ok {
		return usageError("unknown view %q (allowed: indicators, alerts, vulnerabilities, detections, devices)\n%s", args[0], use)
	}
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataset := fs.String("dataset", "", "only this dataset")
	typ := fs.String("type", "", "only this type")
	output := fs.String("o", "table", "output format: table or ndjson")
	limit := fs.Int("limit", 0, "at most this many documents")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError("%v\n%s", err, use)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q\n%s", fs.Arg(0), use)
	}
	if *output != "table" && *output != "ndjson" {
		return usageError("-o %q is not allowed (allowed: table, ndjson)", *output)
	}
	a, err := loadConfigForReading(e)
	if err != nil {
		return err
	}
	if err := a.openReader(ctx); err != nil {
		return err
	}
	defer a.close()
	return printView(ctx, a, e, getOptions{view: view, dataset: *dataset, typ: *typ, output: *output, limit: *limit})
}

type getOptions struct {
	view         vigil.View
	dataset, typ string
	output       string
	limit        int
}

// printView prints a live view from an open store.
func printView(ctx context.Context, a *app, e *env, o getOptions) error {
	view := o.view
	f := vigil.LiveFilter{View: view, Dataset: o.dataset, Type: o.typ, Limit: o.limit}
	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	if o.output == "ndjson" {
		return a.store.Live(ctx, f, func(d vigil.Document) error {
			out.Write(d.Source)
			return out.WriteByte('\n')
		})
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	cols := tableColumns[view]
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	fmt.Fprintln(tw, strings.Join(names, "\t"))
	var p fastjson.Parser
	n := 0
	err := a.store.Live(ctx, f, func(d vigil.Document) error {
		v, err := p.ParseBytes(d.Source)
		if err != nil {
			return fmt.Errorf("stored document %s/%s is not JSON: %w", d.Dataset, d.Key, err)
		}
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = c.get(&d, v)
		}
		n++
		_, err = fmt.Fprintln(tw, strings.Join(cells, "\t"))
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintf(e.stderr, "no live %s\n", view)
	}
	return nil
}

type column struct {
	name string
	get  func(d *vigil.Document, v *fastjson.Value) string
}

// field returns a column that prints a document field (lists joined by ",").
func field(name string, path ...string) column {
	return column{name, func(_ *vigil.Document, v *fastjson.Value) string { return str(v.Get(path...), 60) }}
}

func str(v *fastjson.Value, max int) string {
	if v == nil {
		return "-"
	}
	var s string
	switch v.Type() {
	case fastjson.TypeString:
		s = string(v.GetStringBytes())
	case fastjson.TypeArray:
		parts := []string{}
		for _, e := range v.GetArray() {
			parts = append(parts, str(e, max))
		}
		s = strings.Join(parts, ",")
	case fastjson.TypeNumber:
		s = strconv.FormatFloat(v.GetFloat64(), 'f', -1, 64)
	default:
		s = v.String()
	}
	return cell(s, max)
}

// cell makes s fit a table cell: one line, at most max runes, "-" if empty.
func cell(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}

var (
	colDataset = column{"DATASET", func(d *vigil.Document, _ *fastjson.Value) string { return d.Dataset }}
	colUpdated = column{"UPDATED", func(d *vigil.Document, _ *fastjson.Value) string { return d.Timestamp.Format(time.RFC3339) }}
	colExpires = column{"EXPIRES", func(d *vigil.Document, _ *fastjson.Value) string {
		if d.ExpiresAt.IsZero() {
			return "never"
		}
		return d.ExpiresAt.Format(time.RFC3339)
	}}
	colKey = column{"KEY", func(d *vigil.Document, _ *fastjson.Value) string { return cell(d.Key, 80) }}
)

// indicatorName shows threat.indicator.name, or the key when the document
// has none: a MISP attribute is keyed by its uuid.
func indicatorName(d *vigil.Document, v *fastjson.Value) string {
	if name := v.GetStringBytes("threat", "indicator", "name"); len(name) > 0 {
		return cell(string(name), 80)
	}
	return colKey.get(d, v)
}

var tableColumns = map[vigil.View][]column{
	vigil.ViewIndicators: {
		colDataset,
		field("TYPE", "threat", "indicator", "type"),
		{"NAME", indicatorName},
		field("CONFIDENCE", "threat", "indicator", "confidence"),
		field("PROVIDER", "threat", "indicator", "provider"),
		colUpdated,
		colExpires,
	},
	vigil.ViewAlerts: {
		colDataset,
		{"ID", colKey.get},
		field("SEVERITY", "rapid7", "tc", "alert", "details", "severity"),
		field("TYPE", "rapid7", "tc", "alert", "details", "type"),
		field("TITLE", "rapid7", "tc", "alert", "details", "title"),
		colUpdated,
	},
	vigil.ViewVulnerabilities: {
		colDataset,
		{"CVE", colKey.get},
		field("SEVERITY", "vulnerability", "severity"),
		field("CVSS", "vulnerability", "score", "base"),
		colUpdated,
	},
}
