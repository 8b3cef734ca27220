package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect"
	"github.com/vigil-ti/vigil/internal/lockfile"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// matchSetup writes a configuration and a store holding a few indicators
// into a new directory, and returns the configuration's path and the data
// directory.
func matchSetup(t *testing.T, detection string) (cfg, data string) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	cfg = filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "data_dir: %s\nlog:\n  level: warn\n%s", data, detection), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), data, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	doc := func(key, typ, ti string) vigil.Document {
		return vigil.Document{
			Dataset: "test.ioc", View: vigil.ViewIndicators, Key: key, Type: typ,
			Timestamp: now.Add(-time.Hour), ExpiresAt: now.Add(24 * time.Hour),
			Source: fmt.Appendf(nil, `{"@timestamp":%q,"threat":{"indicator":{"type":%q,"name":%q,%s},"feed":{"name":"Unit Feed"}}}`,
				now.Add(-time.Hour).Format(time.RFC3339), typ, key, ti),
		}
	}
	docs := []vigil.Document{
		doc("198.51.100.7", "ipv4-addr", `"ip":"198.51.100.7"`),
		doc("evil.example", "domain-name", `"url":{"domain":"evil.example"}`),
	}
	if _, err := db.WritePage(t.Context(), vigil.Page{Source: "test", Dataset: "test.ioc", Docs: docs}); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	return cfg, data
}

const matchEvents = `{"event":{"id":"a"},"destination":{"ip":"198.51.100.7"}}
{"event":{"id":"b"},"destination":{"ip":"10.0.0.1"}}

{"event":{"id":"c"},"dns":{"question":{"name":"www.evil.example"}}}
{"event":{"id":"d"},"destination":
not json at all
{"event":{"id":"a"},"destination":{"ip":"198.51.100.7"}}
`

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestMatch(t *testing.T) {
	cfg, _ := matchSetup(t, "")
	plain := writeFile(t, t.TempDir(), "events.ndjson", []byte(matchEvents))
	code, out, errOut := runIn(t, nil, "--config", cfg, "match", "--no-actions", plain)
	if code != 0 {
		t.Fatalf("match: %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d alerts, want 2 (the repeat of event a is suppressed):\n%s", len(lines), out)
	}
	var rules []string
	for _, l := range lines {
		var a map[string]any
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("alert is not JSON: %v\n%s", err, l)
		}
		rules = append(rules, a["rule"].(map[string]any)["id"].(string))
	}
	if strings.Join(rules, ",") != "ip,domain" {
		t.Errorf("rules %v", rules)
	}
	for _, want := range []string{
		"index: 2 indicators of 2 documents",
		":5: malformed: not valid JSON: unexpected end of line, expecting a value at byte 35",
		":6: malformed: not valid JSON: invalid character 'o', expecting the literal null at byte 1",
		"events=4 malformed=2 alerts=2 suppressed=1 stored=2",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}

	// The same events again, gzipped: the same alerts, none new in the store.
	gz := writeFile(t, t.TempDir(), "events.ndjson.gz", gzipped(t, matchEvents))
	code, out2, errOut := runIn(t, nil, "--config", cfg, "match", gz)
	stamp := regexp.MustCompile(`"@timestamp":"[^"]*"`) // when each alert was raised
	if code != 0 || stamp.ReplaceAllString(out2, "") != stamp.ReplaceAllString(out, "") {
		t.Fatalf("gzip: %d\n%s\n%s", code, out2, errOut)
	}
	if !strings.Contains(errOut, "alerts=2 suppressed=1 stored=0") {
		t.Errorf("second run: %s", errOut)
	}

	// get detections lists the stored alerts, newest first.
	code, nd, errOut := runIn(t, nil, "--config", cfg, "get", "detections", "-o", "ndjson")
	if code != 0 || len(strings.Split(strings.TrimSpace(nd), "\n")) != 2 {
		t.Fatalf("get detections: %d\n%s\n%s", code, nd, errOut)
	}
	code, table, _ := runIn(t, nil, "--config", cfg, "get", "detections", "--rule", "domain")
	if code != 0 || !strings.Contains(table, "TIME") || !strings.Contains(table, "dns.question.name=www.evil.example") ||
		!strings.Contains(table, "high") || strings.Contains(table, "198.51.100.7") {
		t.Errorf("table:\n%s", table)
	}
	code, _, errOut = runIn(t, nil, "--config", cfg, "get", "detections", "--rule", "ipv4")
	if code != 2 || !strings.Contains(errOut, "rule ids: ip, hash, url, registry, email, cve, domain") {
		t.Errorf("bad rule: %d %s", code, errOut)
	}
}

func TestMatchConfig(t *testing.T) {
	cfg, _ := matchSetup(t, "detection:\n  rules:\n    domain:\n      enabled: false\n    ip:\n      mappings: [client.ip]\n")
	events := writeFile(t, t.TempDir(), "e.ndjson", []byte(`{"client":{"ip":"198.51.100.7"},"url":{"domain":"evil.example"}}`+"\n"))
	code, out, errOut := runIn(t, nil, "--config", cfg, "match", events)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"field":"client.ip"`) {
		t.Fatalf("match: %d\n%s\n%s", code, out, errOut)
	}
	bad, _ := matchSetup(t, "detection:\n  rules:\n    ipv4: {}\n")
	code, _, errOut = runIn(t, nil, "--config", bad, "match", events)
	if code != 1 || !strings.Contains(errOut, "detection.rules.ipv4: unknown key (allowed under detection.rules: ip, hash, url, registry, email, cve, domain)") {
		t.Errorf("unknown rule: %d %s", code, errOut)
	}
	code, _, errOut = runIn(t, nil, "--config", cfg, "match", "--bogus")
	if code != 2 || !strings.Contains(errOut, "usage: vigil match") {
		t.Errorf("bad flag: %d %s", code, errOut)
	}
	code, _, errOut = runIn(t, nil, "--config", cfg, "match", filepath.Join(t.TempDir(), "missing.ndjson"))
	if code != 1 || !strings.Contains(errOut, "open events") {
		t.Errorf("missing file: %d %s", code, errOut)
	}
}

// TestMatchLocked: match stores alerts, so it needs the write lock; while
// another process (serve, pull) holds it, match fails and names it.
func TestMatchLocked(t *testing.T) {
	cfg, data := matchSetup(t, "")
	l, err := lockfile.Acquire(t.Context(), data, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	events := writeFile(t, t.TempDir(), "e.ndjson", []byte(matchEvents))
	code, out, errOut := runIn(t, nil, "--config", cfg, "match", events)
	if code != 1 || out != "" || !strings.Contains(errOut, "data dir in use by process") {
		t.Errorf("locked: %d %q %s", code, out, errOut)
	}
}

// TestMatchStdin runs the binary with gzipped events on stdin.
func TestMatchStdin(t *testing.T) {
	cfg, _ := matchSetup(t, "")
	cmd := vigilCmd(t, "--config", cfg, "match")
	cmd.Stdin = bytes.NewReader(gzipped(t, matchEvents))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("match: %v\n%s", err, errb.String())
	}
	if strings.Count(out.String(), "\n") != 2 || !strings.Contains(errb.String(), "stdin:6: malformed") ||
		!strings.Contains(errb.String(), "events=4 malformed=2 alerts=2") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
}

// TestExampleEvents: the README's quickstart events, against the demo's
// indicators.
func TestExampleEvents(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "data_dir: %s\nlog:\n  level: warn\n", filepath.Join(dir, "data")), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runIn(t, nil, "--config", cfg, "demo"); code != 0 {
		t.Fatalf("demo: %s", errOut)
	}
	code, out, errOut := runIn(t, nil, "--config", cfg, "match", "--no-actions", filepath.Join("..", "..", "examples", "events.ndjson"))
	if code != 0 {
		t.Fatalf("match: %s", errOut)
	}
	var rules []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var a struct {
			Rule struct{ ID string } `json:"rule"`
		}
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		rules = append(rules, a.Rule.ID)
	}
	if got := strings.Join(rules, ","); got != "ip,domain,url,hash,email,ip,cve" {
		t.Errorf("rules %s\n%s", got, errOut)
	}
	if !strings.Contains(errOut, "events.ndjson:7: malformed") || !strings.Contains(errOut, "events=14 malformed=1 alerts=7") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

// TestDemoQuickstart: the README's quickstart command, run from the
// repository's root, pulls the repository's MISP feed beside the fake
// Threat Command API and matches the sample events, whose last three hit
// the feed's indicators.
func TestDemoQuickstart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "data_dir: %s\nlog:\n  level: warn\n", filepath.Join(dir, "data")), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir) // the demo writes alerts.ndjson here
	code, out, errOut := runIn(t, nil, "--config", cfg, "demo",
		"--feed", filepath.Join(root, "examples", "misp-feed"), "--events", filepath.Join(root, "examples", "events.ndjson"))
	if code != 0 {
		t.Fatalf("demo: %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"events=14 malformed=1 alerts=11",
		"ip      critical  destination.ip=203.0.113.7",
		"domain  high      dns.question.name=mail.login-update.example",
		"url     critical  url.full=https://login-update.example/owa/auth.php",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "alerts.ndjson"))
	if err != nil || strings.Count(string(b), "\n") != 11 {
		t.Fatalf("alerts.ndjson: %d lines, %v", strings.Count(string(b), "\n"), err)
	}
}

// TestMatchDelivers: `match` stores each alert with its deliveries and
// makes one delivery attempt before it exits; --no-actions leaves them
// queued, and the next match delivers them (once: the outbox keys them by
// alert id).
func TestMatchDelivers(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	cfg, _ := matchSetup(t, fmt.Sprintf("connectors:\n  - name: hook\n    type: webhook\n    url: %s\ndetection:\n  actions: [hook]\n", hook.URL))
	events := writeFile(t, t.TempDir(), "events.ndjson", []byte(matchEvents))
	if code, _, errOut := runIn(t, nil, "--config", cfg, "match", "--no-actions", events); code != 0 {
		t.Fatalf("match --no-actions: %d\n%s", code, errOut)
	}
	mu.Lock()
	n := len(keys)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("--no-actions delivered %d alerts", n)
	}
	code, _, errOut := runIn(t, nil, "--config", cfg, "match", events)
	if code != 0 {
		t.Fatalf("match: %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "deliveries: delivered=2 failed=0") {
		t.Errorf("match's stderr does not report two deliveries:\n%s", errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 {
		t.Fatalf("the webhook got %v, want the two alerts once each", keys)
	}
	for k, c := range keys {
		if k == "" || c != 1 {
			t.Errorf("alert %q delivered %d times", k, c)
		}
	}
}

// TestMatchStream: events read in pieces of every size, with lines that
// a read cuts, lines longer than the read buffer (which grows) and lines
// longer than the limit (reported and skipped), are matched as whole
// lines, numbered as in the input; a read error names the line it cut.
func TestMatchStream(t *testing.T) {
	ev := func(id string) string { return `{"event":{"id":"` + id + `"},"source":{"ip":"192.0.2.1"}}` }
	long := `{"event":{"id":"` + strings.Repeat("x", 60) + `"}}`  // longer than the buffer, within the limit
	over := `{"event":{"id":"` + strings.Repeat("y", 120) + `"}}` // over the limit
	input := strings.Join([]string{
		ev("a"), "", ev("b"), `{"a":`, long, "  ", over, ev("c"), over, `[1]`, ev("d"),
	}, "\n") // no line end at the end
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"halves":   iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			eng, err := detect.New(detect.Config{}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			m := &matchRun{e: &env{stderr: &stderr}, eng: eng, out: bufio.NewWriter(io.Discard), chunk: 16, maxLine: 100}
			if err := m.stream(t.Context(), "ev", wrap(strings.NewReader(input))); err != nil {
				t.Fatal(err)
			}
			st := eng.Stats()
			if st.Events != 5 || st.Malformed != 4 {
				t.Errorf("events=%d malformed=%d, want 5 and 4 (lines 4, 7, 9, 10)\n%s", st.Events, st.Malformed, stderr.String())
			}
			want := []string{"ev:4: malformed: ", "ev:7: malformed: line longer than 100 bytes", "ev:9: malformed: line longer than 100 bytes", "ev:10: malformed: "}
			got := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if len(got) != len(want) {
				t.Fatalf("stderr:\n%s\nwant %d lines", stderr.String(), len(want))
			}
			for i := range want {
				if !strings.HasPrefix(got[i], want[i]) {
					t.Errorf("stderr line %d = %q, want it to start with %q", i+1, got[i], want[i])
				}
			}
		})
	}
	t.Run("read error", func(t *testing.T) {
		eng, err := detect.New(detect.Config{}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := &matchRun{e: &env{stderr: io.Discard}, eng: eng, out: bufio.NewWriter(io.Discard), chunk: 16, maxLine: 100}
		r := io.MultiReader(strings.NewReader(ev("a")+"\n"+ev("b")+"\n{\"ev"), iotest.ErrReader(errors.New("disk gone")))
		err = m.stream(t.Context(), "ev", r)
		if err == nil || err.Error() != "ev: read line 3: disk gone" {
			t.Fatalf("stream = %v, want ev: read line 3: disk gone", err)
		}
		if st := eng.Stats(); st.Events != 2 || st.Malformed != 0 {
			t.Errorf("events=%d malformed=%d, want the two whole lines matched", st.Events, st.Malformed)
		}
	})
}

// TestMatchFileLastLine: a file whose last line
// has no line end, or ends in a blank line, gives the same counts.
func TestMatchFileLastLine(t *testing.T) {
	cfg, _ := matchSetup(t, "")
	for name, content := range map[string]string{
		"no line end": strings.TrimSuffix(matchEvents, "\n"),
		"blank end":   matchEvents + "\n  \n",
	} {
		plain := writeFile(t, t.TempDir(), "events.ndjson", []byte(content))
		code, _, errOut := runIn(t, nil, "--config", cfg, "match", "--no-actions", plain)
		if code != 0 || !strings.Contains(errOut, "events=4 malformed=2 alerts=2 suppressed=1") ||
			!strings.Contains(errOut, ":6: malformed: not valid JSON: invalid character 'o'") {
			t.Errorf("%s: %d\n%s", name, code, errOut)
		}
	}
}

// TestMatchLineAllocs: matching a well-formed event that raises no alert
// allocates nothing in the match loop (it once allocated the
// *SyntaxError target of errors.As for every line), and a malformed one
// is still reported.
func TestMatchLineAllocs(t *testing.T) {
	eng, err := detect.New(detect.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	m := &matchRun{e: &env{stderr: &stderr}, eng: eng, out: bufio.NewWriter(io.Discard)}
	ctx := context.Background()
	line := []byte(`{"source":{"ip":"192.0.2.1"},"event":{"id":"e1"}}` + "\n")
	if n := testing.AllocsPerRun(100, func() {
		if err := m.line(ctx, "x", 1, line, line); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations an event, want 0", n)
	}
	if err := m.line(ctx, "x", 7, []byte("{\"a\":\n"), nil); err != nil {
		t.Fatal(err)
	}
	if got := stderr.String(); !strings.Contains(got, "x:7: malformed") {
		t.Errorf("stderr %q, want the malformed line reported", got)
	}
}
