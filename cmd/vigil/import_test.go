package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"
)

// writeImportConfig writes a configuration with an import block and a
// source whose credentials are not in the environment: import needs none.
func writeImportConfig(t *testing.T, dir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
import:
  provider: corp blocklist
  ioc_expiration_duration: 30d
sources:
  threatcommand:
    account_id: ${UNSET_TC_ACCOUNT}
    api_key: ${UNSET_TC_KEY}
`, filepath.Join(dir, "data"))
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t *testing.T, dir, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// liveImports returns threat.indicator.name (or vulnerability.id) →
// provider of the live vigil.import documents of view, read through
// `vigil get`.
func liveImports(t *testing.T, cfg, view string) map[string]string {
	t.Helper()
	code, out, errOut := runIn(t, nil, "--config", cfg, "get", view, "--dataset", "vigil.import", "-o", "ndjson")
	if code != 0 {
		t.Fatalf("get %s: %d %s", view, code, errOut)
	}
	m := map[string]string{}
	for line := range strings.Lines(out) {
		v := fastjson.MustParse(line)
		name := string(v.GetStringBytes("threat", "indicator", "name")) + string(v.GetStringBytes("vulnerability", "id"))
		m[name] = string(v.GetStringBytes("threat", "feed", "name"))
	}
	return m
}

func TestImport(t *testing.T) {
	dir := t.TempDir()
	cfg := writeImportConfig(t, dir)
	var txt strings.Builder
	txt.WriteString("# my list\n198.51.100.7\nevil.example.com\nCVE-2024-3094\n")
	for i := range 25 {
		fmt.Fprintf(&txt, "bad value %d\n", i)
	}
	a := writeFile(t, dir, "a.txt", []byte(txt.String()))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"threat":{"indicator":{"type":"url","url":{"full":"http://evil.example.net/x"}}}}` + "\n"))
	zw.Close()
	b := writeFile(t, dir, "b.ndjson.gz", gz.Bytes())
	c := writeFile(t, dir, "c.csv", []byte("ioc,provider\nphish@example.com,Mail team\n"))

	// Flags may follow the files.
	code, out, errOut := runIn(t, nil, "--config", cfg, "import", a, b, "--provider", "analyst", c)
	if code != 0 {
		t.Fatalf("import: %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		a + " ", "ok      format=text read=28 imported=3 skipped=25 expired=0",
		b + " ", "format=ndjson read=1 imported=1 skipped=0",
		c + " ", "format=csv read=1 imported=1 skipped=0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// Bad lines: the first 20 with file and line, then the count.
	for _, want := range []string{a + ":5: \"bad value 0\": has white space", a + ":24: \"bad value 19\"", a + ": 5 more bad lines not shown"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "bad value 20") {
		t.Errorf("more than 20 bad lines printed:\n%s", errOut)
	}
	inds := liveImports(t, cfg, "indicators")
	want := map[string]string{"198.51.100.7": "analyst", "evil.example.com": "analyst", "http://evil.example.net/x": "analyst", "phish@example.com": "Mail team"}
	if fmt.Sprint(inds) != fmt.Sprint(want) {
		t.Errorf("live indicators %v, want %v", inds, want)
	}
	if v := liveImports(t, cfg, "vulnerabilities"); v["CVE-2024-3094"] != "analyst" || len(v) != 1 {
		t.Errorf("live vulnerabilities %v", v)
	}
	// The table lists them under the dataset, with the configured expiry.
	code, out, _ = runIn(t, nil, "--config", cfg, "get", "indicators", "--type", "domain-name")
	if code != 0 || !strings.Contains(out, "vigil.import  domain-name  evil.example.com ") {
		t.Errorf("get indicators --type domain-name: %d\n%s", code, out)
	}

	// The configured provider applies without --provider.
	d := writeFile(t, dir, "d.txt", []byte("evil.example.org\n"))
	if code, out, errOut := runIn(t, nil, "--config", cfg, "import", d); code != 0 {
		t.Fatalf("import d: %d %s %s", code, out, errOut)
	}
	if p := liveImports(t, cfg, "indicators")["evil.example.org"]; p != "corp blocklist" {
		t.Errorf("provider %q, want the configured one", p)
	}

	// A record dated long ago is stored already expired (30d after its
	// last_seen) and left out of `get`; --expire keeps it live.
	old := writeFile(t, dir, "old.csv", []byte("value,last_seen\nold.example.com,2020-01-01T00:00:00Z\n"))
	code, out, _ = runIn(t, nil, "--config", cfg, "import", old)
	if code != 0 || !strings.Contains(out, "imported=1 skipped=0 expired=1") {
		t.Errorf("import old: %d %s", code, out)
	}
	if _, ok := liveImports(t, cfg, "indicators")["old.example.com"]; ok {
		t.Error("an expired import is listed by get")
	}
	code, out, _ = runIn(t, nil, "--config", cfg, "import", "--expire", "36500d", old)
	if code != 0 || !strings.Contains(out, "imported=1 skipped=0 expired=0") {
		t.Errorf("import old --expire: %d %s", code, out)
	}
	if _, ok := liveImports(t, cfg, "indicators")["old.example.com"]; !ok {
		t.Error("--expire 36500d did not keep the old record live")
	}
}

func TestImportFailures(t *testing.T) {
	dir := t.TempDir()
	cfg := writeImportConfig(t, dir)
	good := writeFile(t, dir, "good.txt", []byte("198.51.100.7\n"))
	allBad := writeFile(t, dir, "bad.txt", []byte("not a value\nnor this\n"))
	noColumn := writeFile(t, dir, "x.csv", []byte("id,name\n1,x\n"))
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no file", nil, 2, "no FILE given"},
		{"bad type", []string{"--type", "ip", good}, 2, `--type: unknown indicator type "ip" (allowed: autonomous-system`},
		{"bad format", []string{"--format", "xml", good}, 2, `--format: unknown format "xml" (allowed: text, csv, ndjson)`},
		{"bad expire", []string{"--expire", "1.5d", good}, 2, `--expire: "1.5d" is not a duration`},
		{"unknown flag", []string{"--nope", good}, 2, "flag provided but not defined: -nope"},
		{"missing file", []string{good, filepath.Join(dir, "missing.txt")}, 1, "1 of 2 files could not be read"},
		{"nothing imported", []string{allBad}, 1, "nothing imported: every one of the 2 records read was bad"},
		{"csv without value column", []string{noColumn}, 1, "header has no value column"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := runIn(t, nil, append([]string{"--config", cfg, "import"}, c.args...)...)
			if code != c.code || !strings.Contains(errOut, c.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, c.code, c.stderr)
			}
		})
	}
	// The good file of the run with a missing one was imported.
	if _, ok := liveImports(t, cfg, "indicators")["198.51.100.7"]; !ok {
		t.Error("the readable file was not imported")
	}
}

// TestImportBesideServe: `vigil import` while serve holds the data
// directory writes beside it; serve merges the new indicators, swaps in an
// index that holds them and retro-hunts them: an event seen before the
// import alerts once the import is done, and later events match live.
func TestImportBesideServe(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\nlisten: 127.0.0.1:0\ndetection:\n  inputs:\n    token: ${TEST_INPUTS_TOKEN}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TEST_INPUTS_TOKEN": "inputs-token-0123456789"}
	stop := make(chan struct{})
	var logs syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(t.Context(), stop, []string{"--config", cfg, "serve"}, func(k string) string { return env[k] }, &bytes.Buffer{}, &logs)
	}()
	defer func() { close(stop); <-exit }()
	waitLog := func(re string) []string { t.Helper(); return logs.waitFor(t, re) }
	addr := waitLog(`msg=serving listen=(\S+)`)[1]
	waitLog(`msg="detection index loaded" component=detection indicators=0 `)
	post := func(events string) map[string]any {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", "http://"+addr+"/api/v1/events", strings.NewReader(events))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+env["TEST_INPUTS_TOKEN"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("post: %d %v", resp.StatusCode, err)
		}
		return m
	}
	ts := time.Now().UTC().Format(time.RFC3339)
	if m := post(`{"@timestamp":"` + ts + `","event":{"id":"ev-before"},"destination":{"ip":"198.51.100.77"}}` + "\n"); m["alerts"] != 0.0 {
		t.Fatalf("before the import: %v", m)
	}

	list := writeFile(t, dir, "list.txt", []byte("198.51.100.77\nevil.example.org\n"))
	code, out, errOut := runIn(t, env, "--config", cfg, "import", list)
	if code != 0 || !strings.Contains(errOut, "data dir in use by process") || !strings.Contains(errOut, "importing beside it") || !strings.Contains(out, "imported=2") {
		t.Fatalf("import beside serve: %d\n%s\n%s", code, out, errOut)
	}
	waitLog(`msg="indicators imported beside serve" documents=2`)
	waitLog(`msg="detection index loaded" component=detection indicators=2 `)
	waitLog(`msg=retro-hunt indicators=2 .* alerts=1 `)
	if m := post(`{"@timestamp":"` + ts + `","event":{"id":"ev-after"},"url":{"domain":"evil.example.org"}}` + "\n" + `{"event":` + "\n"); m["alerts"] != 1.0 {
		t.Fatalf("after the import: %v", m)
	}
	// /healthz shows the index in place and the inputs' counts.
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Status    string
		Detection map[string]any
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	d := h.Detection
	if h.Status != "ok" || d["indicators"] != 2.0 || d["index_loaded_at"] == nil || d["requests"] != 2.0 || d["events"] != 2.0 ||
		d["malformed"] != 1.0 || d["alerts"] != 1.0 || d["rejected"] != 0.0 {
		t.Errorf("healthz: %s %v", h.Status, d)
	}
}
