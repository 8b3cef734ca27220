package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/sqlite"
	"github.com/vigil-ti/vigil/internal/threatcommand"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// TestMain lets the test binary act as the vigil binary, so process-level
// tests (SIGKILL, SIGTERM, two processes on one data dir) run the real
// program without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("VIGIL_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// vigilCmd returns a command that runs vigil with args.
func vigilCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VIGIL_TEST_RUN_MAIN=1")
	return cmd
}

// runIn runs vigil in-process and returns its exit code, stdout and stderr.
func runIn(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), nil, args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

var dataFrom = time.Now().UTC().Add(-30 * 24 * time.Hour)

func genOpts(n int, seed uint64) tcfake.GenOptions {
	return tcfake.GenOptions{N: n, Seed: seed, From: dataFrom, To: dataFrom.Add(25 * 24 * time.Hour)}
}

// writeConfig writes a configuration for the fake into dir and returns its
// path. The API key comes from the environment, as users are told to do.
func writeConfig(t *testing.T, dir string, fake *tcfake.Server, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
listen: 127.0.0.1:0
log:
  level: debug
sources:
  threatcommand:
    url: %s
    account_id: %s
    api_key: ${TEST_TC_KEY}
    ioc_expiration_duration: 90d
%s`, filepath.Join(dir, "data"), fake.URL, fake.AccountID(), extra)
	path := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func keyEnv(fake *tcfake.Server) map[string]string {
	return map[string]string{"TEST_TC_KEY": fake.APIKey()}
}

// views returns every live view as NDJSON lines by key, without
// event.ingested, read through `vigil get`.
func views(t *testing.T, cfg string, env map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var p fastjson.Parser
	for _, v := range vigil.Views {
		code, stdout, stderr := runIn(t, env, "--config", cfg, "get", string(v), "-o", "ndjson")
		if code != 0 {
			t.Fatalf("get %s: %d %s", v, code, stderr)
		}
		for line := range strings.Lines(stdout) {
			d, err := p.Parse(line)
			if err != nil {
				t.Fatalf("get %s: line is not JSON: %v: %s", v, err, line)
			}
			d.Get("event").Del("ingested")
			key := string(v) + "|" + string(d.GetStringBytes("event", "dataset")) + "|" +
				string(d.GetStringBytes("threat", "indicator", "name")) + string(d.GetStringBytes("event", "id")) + string(d.GetStringBytes("vulnerability", "id"))
			if _, dup := out[key]; dup {
				t.Fatalf("duplicate in live view: %s", key)
			}
			out[key] = d.String()
		}
	}
	return out
}

func rawCounts(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	db, err := sqlite.Open(t.Context(), dataDir, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]int{}
	err = db.RawDocs(t.Context(), "", func(doc []byte) error {
		out[string(fastjson.MustParseBytes(doc).GetStringBytes("event", "dataset"))]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newFake(t *testing.T, pageDelay time.Duration) *tcfake.Server {
	fake := tcfake.New(t, tcfake.Options{
		PageSize: 200,
		IOCs:     tcfake.GenerateIOCs(genOpts(8000, 21)),
		CVEs:     tcfake.GenerateCVEs(genOpts(1000, 22)),
		Alerts:   tcfake.GenerateAlerts(genOpts(300, 23)),
	})
	if pageDelay > 0 {
		fake.SetHook(func(w http.ResponseWriter, r *http.Request, ep string) bool {
			time.Sleep(pageDelay)
			return false
		})
	}
	return fake
}

// TestPullKilledRepeatedly kills `vigil pull` with SIGKILL at random points,
// again and again, then lets it finish. The live views must equal those of
// an uninterrupted pull, and each record must be in the raw store once.
func TestPullKilledRepeatedly(t *testing.T) {
	if testing.Short() {
		t.Skip("kills processes; skipped with -short")
	}
	fake := newFake(t, 3*time.Millisecond)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fake, "")
	rng := rand.New(rand.NewPCG(3, 4))
	kills := 0
	for attempt := 0; ; attempt++ {
		if attempt > 60 {
			t.Fatal("no pull completed")
		}
		cmd := vigilCmd(t, "--config", cfg, "pull")
		cmd.Env = append(cmd.Env, "TEST_TC_KEY="+fake.APIKey())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if kills < 8 {
			select {
			case <-time.After(time.Duration(50+rng.IntN(400)) * time.Millisecond):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				kills++
				continue
			case err := <-done:
				if err != nil {
					t.Fatalf("pull failed: %v\n%s", err, stderr.String())
				}
			}
		} else if err := <-done; err != nil {
			t.Fatalf("pull failed: %v\n%s", err, stderr.String())
		}
		break
	}
	if kills < 3 {
		t.Fatalf("only %d kills landed before the pull completed", kills)
	}
	refDir := t.TempDir()
	refCfg := writeConfig(t, refDir, fake, "")
	if code, _, stderr := runIn(t, keyEnv(fake), "--config", refCfg, "pull"); code != 0 {
		t.Fatalf("reference pull: %s", stderr)
	}
	got, want := views(t, cfg, keyEnv(fake)), views(t, refCfg, keyEnv(fake))
	if len(want) < 8000 {
		t.Fatalf("reference has %d live documents", len(want))
	}
	if len(got) != len(want) {
		t.Fatalf("%d live documents after %d kills, want %d", len(got), kills, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after %d kills, %s differs:\n got %s\nwant %s", kills, k, got[k], v)
		}
	}
	gotRaw, wantRaw := rawCounts(t, filepath.Join(dir, "data")), rawCounts(t, filepath.Join(refDir, "data"))
	// Every record is in the raw store. A run killed after a dataset's
	// window completed pulls that dataset again from the largest update
	// date seen, which the API's inclusive bound serves once more: at most
	// one extra record per kill (the generated dates are distinct).
	for ds, n := range wantRaw {
		if gotRaw[ds] < n || gotRaw[ds] > n+kills {
			t.Fatalf("%s: %d raw documents after %d kills, want %d to %d", ds, gotRaw[ds], kills, n, n+kills)
		}
	}
	t.Logf("%d kills; %d live documents equal", kills, len(got))
}

// TestServeWithReaderAndSecondWriter runs `vigil serve` as a process: get
// works beside it, a second writer fails naming serve's PID, /healthz
// answers, and SIGTERM finishes the page in flight and exits 0.
func TestServeWithReaderAndSecondWriter(t *testing.T) {
	fake := newFake(t, 40*time.Millisecond)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fake, "")
	cmd := vigilCmd(t, "--config", cfg, "serve")
	cmd.Env = append(cmd.Env, "TEST_TC_KEY="+fake.APIKey())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	logs := make(chan string, 1000)
	var all bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	waitLog := func(re *regexp.Regexp) []string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-logs:
				if !ok {
					t.Fatalf("serve exited; log:\n%s", all.String())
				}
				all.WriteString(l + "\n")
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-deadline:
				t.Fatalf("no log line matching %s; log:\n%s", re, all.String())
			}
		}
	}
	addr := waitLog(regexp.MustCompile(`msg=serving listen=(\S+)`))[1]
	// Wait until a few IOC pages are in.
	var cur []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		db, err := sqlite.Open(t.Context(), filepath.Join(dir, "data"), sqlite.Options{ReadOnly: true})
		if err != nil {
			continue
		}
		cur, _ = db.Cursor(t.Context(), threatcommand.SourceName, threatcommand.DatasetIOC)
		db.Close()
		if bytes.Contains(cur, []byte(`"pages":3`)) {
			break
		}
	}
	if !bytes.Contains(cur, []byte(`"pages":3`)) {
		t.Fatalf("serve wrote no pages: %s\n%s", cur, all.String())
	}

	code, out, errOut := runIn(t, nil, "--config", cfg, "get", "indicators")
	if code != 0 || !strings.Contains(out, "ti_rapid7_threat_command.ioc") {
		t.Fatalf("get beside serve: %d %s %s", code, out, errOut)
	}
	code, _, errOut = runIn(t, keyEnv(fake), "--config", cfg, "pull")
	if want := fmt.Sprintf("data dir in use by process %d", cmd.Process.Pid); code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("second writer: %d %q, want %q", code, errOut, want)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status   string
		Datasets []struct{ Dataset, State string }
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h.Status != "ok" || len(h.Datasets) != 3 {
		t.Fatalf("healthz: %d %+v", resp.StatusCode, h)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	waitLog(regexp.MustCompile(`shutting down`))
	waitLog(regexp.MustCompile(`msg=stopped`))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exit after SIGTERM: %v\n%s", err, all.String())
	}
	// The window is left open at a page boundary; a pull resumes it.
	code, out, errOut = runIn(t, keyEnv(fake), "--config", cfg, "pull")
	if code != 0 {
		t.Fatalf("pull after serve: %s", errOut)
	}
	if !strings.Contains(out, "(resumed)") {
		t.Fatalf("pull did not resume the window serve left: %s", out)
	}
}

func TestCommandLineErrors(t *testing.T) {
	fake := newFake(t, 0)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fake, "")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("sources:\n  threatcommand:\n    acount_id: x\n"), 0o600)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no command", nil, nil, 2, "Usage:"},
		{"unknown command", nil, []string{"fly"}, 2, `unknown command "fly"`},
		{"bad view", keyEnv(fake), []string{"--config", cfg, "get", "iocs"}, 2, "allowed: indicators, alerts, vulnerabilities"},
		{"bad output", keyEnv(fake), []string{"--config", cfg, "get", "alerts", "-o", "xml"}, 2, "allowed: table, ndjson"},
		{"missing config", nil, []string{"--config", filepath.Join(dir, "nope.yaml"), "pull"}, 1, "no such file"},
		{"bad config", nil, []string{"--config", bad, "pull"}, 1, "acount_id: unknown key"},
		{"unset secret", nil, []string{"--config", cfg, "pull"}, 1, "environment variable TEST_TC_KEY is not set"},
		{"unknown source", keyEnv(fake), []string{"--config", cfg, "pull", "misp"}, 2, `no source "misp"`},
		{"get before pull", keyEnv(fake), []string{"--config", cfg, "get", "indicators"}, 1, "run `vigil pull`"},
		{"wrong key", map[string]string{"TEST_TC_KEY": "wrong-key-123"}, []string{"--config", cfg, "pull"}, 1, "check sources.threatcommand.account_id and sources.threatcommand.api_key"},
		{"wrong key check", map[string]string{"TEST_TC_KEY": "wrong-key-123"}, []string{"--config", cfg, "check"}, 1, "rejected the credentials"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runIn(t, c.env, c.args...)
			if code != c.code || !strings.Contains(out+errOut, c.want) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, c.code, out, errOut, c.want)
			}
			if strings.Contains(out+errOut, "wrong-key-123") || strings.Contains(out+errOut, fake.APIKey()) {
				t.Fatal("a secret was printed")
			}
		})
	}
}

func TestPullGetCheck(t *testing.T) {
	fake := newFake(t, 0)
	fake.InjectIOCRecords(tcfake.MalformedBadIP)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fake, "    alert:\n      fetch_closed_alerts: true\n")
	code, out, errOut := runIn(t, keyEnv(fake), "--config", cfg, "pull")
	if code != 0 {
		t.Fatalf("pull: %s", errOut)
	}
	for _, ds := range []string{threatcommand.DatasetIOC, threatcommand.DatasetAlert, threatcommand.DatasetVulnerability} {
		if !regexp.MustCompile(ds + `\s+ok\s+pages=\d+ records=\d+`).MatchString(out) {
			t.Fatalf("no summary for %s:\n%s", ds, out)
		}
	}
	if !strings.Contains(out, "errors=1") {
		t.Fatalf("the malformed record is not counted: %s", out)
	}
	if strings.Contains(out+errOut, fake.APIKey()) {
		t.Fatal("the API key was printed")
	}
	// fetch_closed_alerts asks for closed alerts.
	for _, r := range fake.RequestsTo(tcfake.EndpointAlertList) {
		if r.Query.Get("isClosed") != "true" {
			t.Fatalf("alerts-list isClosed=%q", r.Query.Get("isClosed"))
		}
	}

	code, out, _ = runIn(t, nil, "--config", cfg, "get", "indicators", "-o", "ndjson", "--limit", "50")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 50 {
		t.Fatalf("get ndjson: %d, %d lines", code, len(lines))
	}
	for _, l := range lines {
		var doc map[string]any
		if err := json.Unmarshal([]byte(l), &doc); err != nil {
			t.Fatal(err)
		}
		threat, _ := doc["threat"].(map[string]any)
		ind, _ := threat["indicator"].(map[string]any)
		if ind["name"] == nil || doc["@timestamp"] == nil {
			t.Fatalf("not a nested ECS document: %s", l)
		}
	}
	code, out, _ = runIn(t, nil, "--config", cfg, "get", "alerts", "--dataset", threatcommand.DatasetAlert)
	if code != 0 || !strings.HasPrefix(out, "DATASET") || strings.Count(out, "\n") < 2 {
		t.Fatalf("get alerts: %d\n%s", code, out)
	}
	code, out, _ = runIn(t, nil, "--config", cfg, "get", "vulnerabilities", "--limit", "3")
	if code != 0 || strings.Count(out, "CVE-") != 3 {
		t.Fatalf("get vulnerabilities: %d\n%s", code, out)
	}
	code, out, _ = runIn(t, nil, "--config", cfg, "status")
	if code != 0 || !strings.Contains(out, threatcommand.DatasetIOC) {
		t.Fatalf("status: %d\n%s", code, out)
	}
	code, out, errOut = runIn(t, keyEnv(fake), "--config", cfg, "check")
	if code != 0 || !strings.Contains(out, "credentials: accepted") || !strings.Contains(out, "modules:") {
		t.Fatalf("check: %d\n%s\n%s", code, out, errOut)
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\n"), 0o600)
	code, out, errOut := runIn(t, nil, "--config", cfg, "demo")
	if code != 0 {
		t.Fatalf("demo: %s", errOut)
	}
	if !strings.Contains(out, "first 10 live indicators") || strings.Count(out, "ti_rapid7_threat_command.ioc") < 10 {
		t.Fatalf("demo output:\n%s", out)
	}
	// The demo's data is there for `get` afterwards.
	code, out, _ = runIn(t, nil, "--config", cfg, "get", "alerts")
	if code != 0 || strings.Count(out, "\n") < 10 {
		t.Fatalf("get after demo: %d\n%s", code, out)
	}
}

// TestProgressLine checks the terminal progress line rewrites itself.
func TestProgressLine(t *testing.T) {
	var buf bytes.Buffer
	p := &progressLine{w: &buf}
	p.report(vigil.Progress{Source: "threatcommand", Dataset: "d", Pages: 2, Records: 2000})
	p.done()
	if got := buf.String(); !strings.Contains(got, "\r\033[Kthreatcommand d: 2 pages, 2000 records") || !strings.HasSuffix(got, "\r\033[K") {
		t.Fatalf("%q", got)
	}
	var nilLine *progressLine
	nilLine.report(vigil.Progress{})
	nilLine.done()
}
