package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// startServe starts `vigil serve` with cfg and env, and returns the address
// it listens on and the process, which is killed when the test ends.
func startServe(t *testing.T, cfg string, env map[string]string) (string, *exec.Cmd) {
	t.Helper()
	cmd := vigilCmd(t, "--config", cfg, "serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var addr string
	for deadline := time.After(30 * time.Second); addr == ""; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("serve exited")
			}
			if m := regexp.MustCompile(`msg=serving listen=(\S+)`).FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
		case <-deadline:
			t.Fatal("serve did not start")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return addr, cmd
}

// liveValues returns threat.indicator.name → threat.indicator.type of the
// live indicators, read through `vigil get indicators -o ndjson`.
func liveValues(t *testing.T, cfg string, env map[string]string) map[string]string {
	t.Helper()
	code, out, errOut := runIn(t, env, "--config", cfg, "get", "indicators", "-o", "ndjson")
	if code != 0 {
		t.Fatalf("get indicators: %d %s", code, errOut)
	}
	vals := map[string]string{}
	for l := range strings.Lines(out) {
		var d struct {
			Threat struct {
				Indicator struct{ Name, Type string } `json:"indicator"`
			} `json:"threat"`
		}
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatal(err)
		}
		name := d.Threat.Indicator.Name
		if ip, err := netip.ParseAddr(name); err == nil {
			name = ip.String() // one spelling per address: 2001:db8:0:0::1 is 2001:db8::1
		}
		vals[name] = d.Threat.Indicator.Type
	}
	return vals
}

// TestMISPRoundTrip: one vigil publishes its indicators as a MISP feed
// (feeds.misp, under serve); another pulls that feed as a MISP source
// (sources.misp feeds, with the device's basic auth), and gets every
// indicator the feed carries, with its type.
func TestMISPRoundTrip(t *testing.T) {
	_, pubCfg, env := publisher(t)
	published := liveValues(t, pubCfg, env)
	addr, _ := startServe(t, pubCfg, env)

	subDir := t.TempDir()
	subCfg := filepath.Join(subDir, "vigil.yaml")
	yaml := fmt.Sprintf(`data_dir: %s
log:
  level: warn
sources:
  misp:
    feeds:
      - name: upstream-vigil
        url: http://%s/misp/all
        username: soc
        password: ${MISP_PW}
`, filepath.Join(subDir, "data"), addr)
	if err := os.WriteFile(subCfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runIn(t, env, "--config", subCfg, "pull"); code != 0 {
		t.Fatalf("pull of the published feed: %d\n%s\n%s", code, out, errOut)
	}
	got := liveValues(t, subCfg, env)
	// The feed carries domains, URLs, IP addresses, e-mail addresses and
	// md5, sha1 and sha256 hashes.
	want := map[string]string{}
	for v, typ := range published {
		switch typ {
		case "domain-name", "url", "ipv4-addr", "ipv6-addr", "email-addr":
			want[v] = typ
		case "file":
			if n := len(v); n == 32 || n == 40 || n == 64 {
				want[strings.ToLower(v)] = typ
			}
		}
	}
	if len(want) < 1000 {
		t.Fatalf("only %d publishable indicators of %d: the fake's mix changed?", len(want), len(published))
	}
	var missing, extra []string
	for v, typ := range want {
		if g, ok := got[v]; !ok || g != typ {
			missing = append(missing, fmt.Sprintf("%s %s (got %q)", typ, v, g))
		}
	}
	for v := range got {
		if _, ok := want[v]; !ok {
			extra = append(extra, v)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("round trip of %d indicators: %d missing (e.g. %v), %d extra (e.g. %v)", len(want), len(missing), first(missing), len(extra), first(extra))
	}
}

// publisher pulls the fake Threat Command API into a new data dir whose
// configuration publishes the feeds of feedsConfig, and returns the fake,
// the configuration and the environment it needs.
func publisher(t *testing.T) (*tcfake.Server, string, map[string]string) {
	t.Helper()
	fake := newFake(t, 0)
	cfg := writeConfig(t, t.TempDir(), fake, feedsConfig)
	env := keyEnv(fake)
	env["MISP_PW"] = "soc-password"
	if code, _, errOut := runIn(t, env, "--config", cfg, "pull"); code != 0 {
		t.Fatalf("pull: %s", errOut)
	}
	return fake, cfg, env
}

func first(s []string) []string { return s[:min(len(s), 5)] }
