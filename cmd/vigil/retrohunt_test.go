package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/notify/notifytest"
	"github.com/vigil-ti/vigil/internal/threatcommand"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// detections returns the stored alerts, read through `vigil get
// detections`, parsed.
func detections(t *testing.T, cfg string) []*fastjson.Value {
	t.Helper()
	code, out, errOut := runIn(t, nil, "--config", cfg, "get", "detections", "-o", "ndjson")
	if code != 0 {
		t.Fatalf("get detections: %d %s", code, errOut)
	}
	var vs []*fastjson.Value
	for line := range strings.Lines(out) {
		v, err := fastjson.Parse(line)
		if err != nil {
			t.Fatalf("detection is not JSON: %v\n%s", err, line)
		}
		vs = append(vs, v)
	}
	return vs
}

// retroAlerts returns the retro-hunt alerts among the stored ones, by the
// event field's value.
func retroAlerts(t *testing.T, cfg string) map[string]*fastjson.Value {
	t.Helper()
	out := map[string]*fastjson.Value{}
	for _, d := range detections(t, cfg) {
		if d.Get("vigil", "retrohunt") == nil {
			continue
		}
		atomic := string(d.GetStringBytes("threat", "enrichments", "0", "matched", "atomic"))
		if _, dup := out[atomic]; dup {
			t.Errorf("two retro-hunt alerts for %s", atomic)
		}
		out[atomic] = d
	}
	return out
}

// retroEvents are sightings at the given ages, and one event that matches
// the store's indicators live.
func retroEvents(now time.Time, lines ...string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		age, ev, _ := strings.Cut(l, " ")
		d, err := time.ParseDuration(age)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, `{"@timestamp":%q,%s}`+"\n", now.Add(-d).Format(time.RFC3339), ev)
	}
	return b.Bytes()
}

// TestRetroHuntImport: `vigil match` records sightings; `vigil import` of
// an indicator seen 2 days ago raises one alert through the store, with
// the enrichment live alerts have; a sighting older than the window and an
// expired indicator raise none; importing again doubles nothing; prune
// drops sightings past the window.
func TestRetroHuntImport(t *testing.T) {
	_, data := matchSetup(t, "")
	dir := filepath.Dir(data)
	config := func(window string) string {
		return writeFile(t, dir, "vigil-"+window+".yaml", fmt.Appendf(nil, `data_dir: %s
log:
  level: warn
import:
  provider: corp blocklist
detection:
  retrohunt:
    window: %s
`, data, window))
	}
	// Recorded with a 30-day window, hunted with a 7-day one: the sighting
	// of 10 days ago is kept but out of the hunt's window.
	cfg30, cfg7 := config("30d"), config("7d")
	now := time.Now().UTC()
	events := retroEvents(now,
		`1h "event":{"id":"live"},"destination":{"ip":"198.51.100.7"}`,
		`48h "event":{"id":"two-days"},"destination":{"ip":"203.0.113.9"}`,
		`48h "event":{"id":"two-days-b"},"source":{"ip":"203.0.113.9"}`,
		`240h "event":{"id":"ten-days"},"destination":{"ip":"203.0.113.10"}`,
		`26h "event":{"id":"for-expired"},"destination":{"ip":"203.0.113.11"}`,
		`72h "event":{"id":"dns"},"dns":{"question":{"name":"Login.Phish.Example"}}`,
	)
	// The binary itself, events on stdin.
	cmd := vigilCmd(t, "--config", cfg30, "match", "--no-actions")
	cmd.Stdin = bytes.NewReader(events)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("match: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "events=6 malformed=0 alerts=1") {
		t.Fatalf("match: %s", errb.String())
	}
	code, status, _ := runIn(t, nil, "--config", cfg7, "status")
	if code != 0 || !strings.Contains(status, "sightings: 4 (value, day) entries") || !strings.Contains(status, "last retro-hunt never") {
		t.Errorf("status:\n%s", status)
	}

	list := writeFile(t, dir, "iocs.txt", []byte("203.0.113.9\n203.0.113.10\nphish.example\n"))
	expired := writeFile(t, dir, "old.ndjson", fmt.Appendf(nil, `{"@timestamp":%q,"threat":{"indicator":{"type":"ipv4-addr","ip":"203.0.113.11"}}}`+"\n",
		now.Add(-100*24*time.Hour).Format(time.RFC3339)))
	code, stdout, errOut := runIn(t, nil, "--config", cfg7, "import", list, expired)
	if code != 0 || !strings.Contains(stdout, "imported=1 skipped=0 expired=1") {
		t.Fatalf("import: %d\n%s\n%s", code, stdout, errOut)
	}
	all := detections(t, cfg7)
	retro := retroAlerts(t, cfg7)
	if len(all) != 3 || len(retro) != 2 || retro["203.0.113.9"] == nil || retro["login.phish.example"] == nil {
		t.Fatalf("%d alerts, retro-hunt ones %v; want the live one and two", len(all), retro)
	}
	a := retro["203.0.113.9"]
	want := map[string]string{
		"rule.id":                            "ip",
		"event.id":                           "two-days",
		"event.kind":                         "signal",
		"destination.ip":                     "203.0.113.9",
		"kibana.alert.rule.type":             "threat_match",
		"kibana.alert.severity":              "critical",
		"kibana.alert.original_time":         now.Add(-48 * time.Hour).Truncate(time.Second).Format("2006-01-02T15:04:05.000Z"),
		"vigil.retrohunt.reference":          "event.id:two-days",
		"vigil.retrohunt.first_seen":         now.Add(-48 * time.Hour).Truncate(time.Second).Format("2006-01-02T15:04:05.000Z"),
		"threat.enrichments.0.feed.name":     "corp blocklist",
		"threat.enrichments.0.matched.id":    "ipv4-addr:203.0.113.9",
		"threat.enrichments.0.matched.field": "destination.ip",
		"threat.enrichments.0.matched.index": "vigil.import",
		"threat.enrichments.0.matched.type":  "indicator_match_rule",
		"threat.enrichments.0.indicator.ip":  "203.0.113.9",
	}
	for path, w := range want {
		if got := string(a.GetStringBytes(strings.Split(path, ".")...)); got != w {
			t.Errorf("%s = %q, want %q", path, got, w)
		}
	}
	// Both events of that day count, whichever of them is referred to.
	if n := a.GetInt("vigil", "retrohunt", "count"); n != 2 {
		t.Errorf("count %d, want 2", n)
	}
	if got := string(retro["login.phish.example"].GetStringBytes("dns", "question", "name")); got != "login.phish.example" {
		t.Errorf("the domain alert's dns.question.name %q", got)
	}

	// Importing again changes the indicators: the same alerts, not new ones.
	if code, _, errOut := runIn(t, nil, "--config", cfg7, "import", list); code != 0 {
		t.Fatalf("import again: %s", errOut)
	}
	if n := len(detections(t, cfg7)); n != 3 {
		t.Errorf("%d alerts after the second import, want 3", n)
	}

	// Prune with a window of an hour: the days before the last hour's go
	// (every sighting above is at least 26 hours old).
	cfg1h := config("1h")
	code, stdout, errOut = runIn(t, nil, "--config", cfg1h, "prune")
	if code != 0 || !strings.Contains(stdout, "removed 4 sightings of the days before the retro-hunt window (1h0m0s)") {
		t.Errorf("prune: %d\n%s\n%s", code, stdout, errOut)
	}
	if _, status, _ := runIn(t, nil, "--config", cfg1h, "status"); strings.Contains(status, "sightings:") {
		t.Errorf("status after prune:\n%s", status)
	}
}

// TestRetroHuntOff: with detection.retrohunt.enabled false, match records
// nothing and an import hunts nothing.
func TestRetroHuntOff(t *testing.T) {
	cfg, _ := matchSetup(t, "detection:\n  retrohunt:\n    enabled: false\n")
	now := time.Now().UTC()
	events := writeFile(t, t.TempDir(), "e.ndjson", retroEvents(now, `49h "event":{"id":"x"},"destination":{"ip":"203.0.113.9"}`))
	if code, _, errOut := runIn(t, nil, "--config", cfg, "match", events); code != 0 {
		t.Fatalf("match: %s", errOut)
	}
	list := writeFile(t, t.TempDir(), "iocs.txt", []byte("203.0.113.9\n"))
	if code, _, errOut := runIn(t, nil, "--config", cfg, "import", list); code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	if _, status, _ := runIn(t, nil, "--config", cfg, "status"); strings.Contains(status, "sightings:") {
		t.Errorf("sightings recorded with retro-hunts off:\n%s", status)
	}
	if n := len(detections(t, cfg)); n != 0 {
		t.Errorf("%d alerts", n)
	}
}

// retroFake is a Threat Command API that serves one IP address IOC.
func retroFake(t *testing.T, ip string) *tcfake.Server {
	return tcfake.New(t, tcfake.Options{IOCs: tcfake.IOCRecords(tcfake.IOC{
		Value: ip, Type: "IpAddresses", Status: "Active", Severity: "High",
		LastUpdateDate: time.Now().UTC().Add(-time.Hour),
	})})
}

// TestRetroHuntPull: a pull that brings an indicator seen 2 days ago
// raises its alert.
func TestRetroHuntPull(t *testing.T) {
	fake := retroFake(t, "203.0.113.66")
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fake, "")
	events := writeFile(t, dir, "e.ndjson", retroEvents(time.Now().UTC(), `48h "event":{"id":"seen"},"destination":{"ip":"203.0.113.66"}`))
	if code, _, errOut := runIn(t, nil, "--config", cfg, "match", events); code != 0 {
		t.Fatalf("match: %s", errOut)
	}
	code, _, errOut := runIn(t, keyEnv(fake), "--config", cfg, "pull")
	if code != 0 || !strings.Contains(errOut, `msg=retro-hunt indicators=1`) || !strings.Contains(errOut, "alerts=1 stored=1") {
		t.Fatalf("pull: %d\n%s", code, errOut)
	}
	retro := retroAlerts(t, cfg)
	a := retro["203.0.113.66"]
	if len(retro) != 1 || a == nil || string(a.GetStringBytes("event", "id")) != "seen" ||
		string(a.GetStringBytes("threat", "enrichments", "0", "matched", "index")) != threatcommand.DatasetIOC {
		t.Fatalf("retro-hunt alerts %v", retro)
	}
	// The second pull gets the IOC again (the API's bound is inclusive):
	// the hunt raises the same alert, which the store has.
	code, _, errOut = runIn(t, keyEnv(fake), "--config", cfg, "pull")
	if code != 0 || !strings.Contains(errOut, "alerts=1 stored=0") || len(detections(t, cfg)) != 1 {
		t.Fatalf("second pull: %d\n%s", code, errOut)
	}
}

// TestRetroHuntServe: serve hunts after its pulls and delivers the alert
// to the rule's connector, like a live one.
func TestRetroHuntServe(t *testing.T) {
	fake := retroFake(t, "203.0.113.77")
	r := notifytest.NewReceiver(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fake, fmt.Sprintf("connectors:\n  - name: hook\n    type: webhook\n    url: %s\ndetection:\n  actions: [hook]\n", r.URL))
	events := writeFile(t, dir, "e.ndjson", retroEvents(time.Now().UTC(), `30h "event":{"id":"seen-serve"},"source":{"ip":"203.0.113.77"}`))
	if code, _, errOut := runIn(t, nil, "--config", cfg, "match", "--no-actions", events); code != 0 {
		t.Fatalf("match: %s", errOut)
	}
	env := keyEnv(fake)
	stop := make(chan struct{})
	var logs syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(t.Context(), stop, []string{"--config", cfg, "serve"}, func(k string) string { return env[k] }, &bytes.Buffer{}, &logs)
	}()
	for deadline := time.Now().Add(30 * time.Second); len(r.Accepted()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(stop)
			<-exit
			t.Fatalf("no delivery after 30s; log:\n%s", logs.String())
		}
	}
	close(stop)
	if code := <-exit; code != 0 {
		t.Fatalf("serve exited %d; log:\n%s", code, logs.String())
	}
	reqs := r.Log.All()
	if len(reqs) != 1 {
		t.Fatalf("%d deliveries", len(reqs))
	}
	body, err := fastjson.ParseBytes(reqs[0].Body)
	if err != nil || string(body.GetStringBytes("vigil", "retrohunt", "reference")) != "event.id:seen-serve" ||
		string(body.GetStringBytes("source", "ip")) != "203.0.113.77" {
		t.Errorf("delivered %s (%v)", reqs[0].Body, err)
	}
}
