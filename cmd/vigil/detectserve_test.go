package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/notify/notifytest"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// TestServeMatchesHTTPEvents runs serve over a store holding one imported
// indicator, with a Threat Command source that holds another and answers
// its first IOC page only when the test lets it. Events posted to
// /api/v1/events match the imported indicator at once and the source's
// only after its pull, without a restart; the alerts are stored, shown by
// `vigil get detections`, and delivered to the webhook connector.
func TestServeMatchesHTTPEvents(t *testing.T) {
	now := time.Now().UTC()
	fake := tcfake.New(t, tcfake.Options{
		PageSize: 200,
		IOCs:     tcfake.IOCRecords(tcfake.IOC{Value: "203.0.113.9", Type: "IpAddresses", Status: "Active", Severity: "High", LastUpdateDate: now.Add(-time.Hour)}),
	})
	gate := make(chan struct{})
	fake.SetHook(func(w http.ResponseWriter, r *http.Request, ep string) bool {
		if ep == tcfake.EndpointIOCs {
			<-gate
		}
		return false
	})
	hook := notifytest.NewReceiver(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fake, fmt.Sprintf(`    alert:
      enabled: false
    vulnerability:
      enabled: false
connectors:
  - name: hook
    type: webhook
    url: %s
detection:
  actions: [hook]
  inputs:
    token: ${TEST_INPUTS_TOKEN}
`, hook.URL))
	env := keyEnv(fake)
	env["TEST_INPUTS_TOKEN"] = "inputs-token-0123456789"
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("198.51.100.7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runIn(t, env, "--config", cfg, "import", list); code != 0 {
		t.Fatalf("import: %d %s %s", code, out, errOut)
	}

	stop := make(chan struct{})
	var logs syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(t.Context(), stop, []string{"--config", cfg, "serve"}, func(k string) string { return env[k] }, &bytes.Buffer{}, &logs)
	}()
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			<-exit
		}
	}()
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	waitLog := func(re string) []string { t.Helper(); return logs.waitFor(t, re) }
	addr := waitLog(`msg=serving listen=(\S+)`)[1]
	waitLog(`msg="detection index loaded" component=detection indicators=1 `)

	post := func(events string, token string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", "http://"+addr+"/api/v1/events", strings.NewReader(events))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if resp.StatusCode != 401 {
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("answer %d is not JSON: %s", resp.StatusCode, b)
			}
		}
		return resp.StatusCode, m
	}
	const (
		evImported = `{"event":{"id":"ev-imported"},"destination":{"ip":"198.51.100.7"}}` + "\n"
		evPulled   = `{"event":{"id":"ev-pulled"},"destination":{"ip":"203.0.113.9"}}` + "\n"
		evBad      = `{"event":` + "\n"
	)
	if code, _ := post(evImported, "wrong-token"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	code, m := post(evImported+evBad+evPulled, env["TEST_INPUTS_TOKEN"])
	if code != 200 || m["events"] != 2.0 || m["alerts"] != 1.0 || m["malformed"] != 1.0 {
		t.Fatalf("before the pull: %d %v", code, m)
	}
	// The source's IOC arrives with its pull; the index is rebuilt and
	// swapped in.
	close(gate)
	waitLog(`msg=pulled source=threatcommand dataset=ti_rapid7_threat_command.ioc`)
	waitLog(`msg="detection index loaded" component=detection indicators=2 `)
	code, m = post(evPulled, env["TEST_INPUTS_TOKEN"])
	if code != 200 || m["events"] != 1.0 || m["alerts"] != 1.0 {
		t.Fatalf("after the pull: %d %v", code, m)
	}
	// An Elasticsearch client finds Elasticsearch there.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/", nil)
	req.Header.Set("Authorization", "Bearer "+env["TEST_INPUTS_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("GET /: %d %v", resp.StatusCode, resp.Header)
	}
	// healthz is still serve's, without credentials.
	resp, err = http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(30 * time.Second); len(hook.Accepted()) < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(hook.Accepted()); n != 2 {
		t.Errorf("webhook received %d alerts, want 2", n)
	}
	close(stop)
	stopped = true
	if code := <-exit; code != 0 {
		t.Fatalf("serve exited %d; log:\n%s", code, logs.String())
	}
	// ev-pulled, sent before the pull, matched nothing then and became a
	// sighting, which the retro-hunt after the pull (run once the new index
	// is in and the sightings written) turned into its alert; the same
	// event sent again after the pull raised the same alert (same id),
	// stored once.
	if !strings.Contains(logs.String(), `msg=retro-hunt indicators=1 lookups=1 scanned_kinds=[] sightings=1 alerts=1 stored=1`) {
		t.Errorf("no retro-hunt of the event seen before the pull; log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `msg="inputs stopped" component=detection requests=2 events=3 malformed=1 alerts=2 stored=1`) {
		t.Errorf("no summary of the inputs at exit; log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), env["TEST_INPUTS_TOKEN"]) {
		t.Error("the inputs' token was logged")
	}

	code, out, errOut := runIn(t, env, "--config", cfg, "get", "detections", "-o", "ndjson")
	if code != 0 {
		t.Fatalf("get detections: %d %s", code, errOut)
	}
	var got []string
	for line := range strings.Lines(out) {
		var d struct {
			Event struct{ ID string }
			Rule  struct{ ID string }
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("get detections: %v: %s", err, line)
		}
		got = append(got, d.Event.ID+"/"+d.Rule.ID)
	}
	slices.Sort(got)
	if want := []string{"ev-imported/ip", "ev-pulled/ip"}; !slices.Equal(got, want) {
		t.Errorf("get detections: %v, want %v", got, want)
	}
}

// TestServeInputsDisabled: with detection.inputs.enabled false, serve's
// routes are its API's alone.
func TestServeInputsDisabled(t *testing.T) {
	a := &app{}
	a.cfg.Detection.Inputs.Enabled = false
	sd, err := a.startDetection(t.Context(), nil, nil)
	if err != nil || sd != nil {
		t.Fatalf("startDetection: %v %v", sd, err)
	}
	for _, path := range []string{"/", "/_bulk", "/api/v1/events"} {
		w := httptest.NewRecorder()
		sd.handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader("{}\n")))
		if w.Code != 404 || w.Header().Get("X-Elastic-Product") != "" {
			t.Errorf("POST %s: %d %v; want the API's 404", path, w.Code, w.Header())
		}
	}
	sd.close() // no-op
}

// TestServeWithoutSources: with no source configured, serve runs for its
// inputs over imported indicators; with the inputs off it refuses to start.
func TestServeWithoutSources(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(cfg, fmt.Appendf(nil, "data_dir: %s\nlisten: 127.0.0.1:0\n%s", filepath.Join(dir, "data"), extra), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("detection:\n  inputs:\n    enabled: false\n")
	if code, _, errOut := runIn(t, nil, "--config", cfg, "serve"); code != 1 || !strings.Contains(errOut, "no source is configured") {
		t.Fatalf("serve without sources nor inputs: %d %s", code, errOut)
	}
	write("")
	list := filepath.Join(dir, "list.txt")
	if err := os.WriteFile(list, []byte("evil.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runIn(t, nil, "--config", cfg, "import", list); code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	stop := make(chan struct{})
	var logs syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(t.Context(), stop, []string{"--config", cfg, "serve"}, func(string) string { return "" }, &bytes.Buffer{}, &logs)
	}()
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == "" || !strings.Contains(logs.String(), "detection index loaded"); time.Sleep(20 * time.Millisecond) {
		if m := regexp.MustCompile(`msg=serving listen=(\S+)`).FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			close(stop)
			t.Fatalf("serve did not start; log:\n%s", logs.String())
		}
	}
	resp, err := http.Post("http://"+addr+"/api/v1/events", "application/x-ndjson", strings.NewReader(`{"event":{"id":"w1"},"dns":{"question":{"name":"a.evil.example"}}}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(stop)
	if code := <-exit; code != 0 {
		t.Fatalf("serve exited %d; log:\n%s", code, logs.String())
	}
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"alerts":1`) {
		t.Fatalf("events: %d %s", resp.StatusCode, b)
	}
	if !strings.Contains(logs.String(), "no source is configured: serve pulls nothing") {
		t.Errorf("log does not say why no source is pulled:\n%s", logs.String())
	}
}
