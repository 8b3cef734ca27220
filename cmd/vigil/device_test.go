package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

const feedsConfig = `feeds:
  misp:
    groups:
      - name: all
      - name: domains
        types: [domain-name]
    devices:
      - name: SOC MISP
        username: soc
        password: ${MISP_PW}
        groups: [all, domains]
`

func feedGet(t *testing.T, url, user, pass string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestDeviceCommands adds, lists and removes MISP devices with and without
// serve running, and pulls their feeds from serve.
func TestDeviceCommands(t *testing.T) {
	fake, cfg, _ := publisher(t)

	cases := []struct {
		name string
		args []string
		code int
		want string // in stdout or stderr
	}{
		{"no subcommand", []string{"device"}, 2, "vigil device add NAME"},
		{"unknown subcommand", []string{"device", "edit"}, 2, `unknown device command "edit"`},
		{"add without groups", []string{"device", "add", "x"}, 2, "needs a NAME and --groups"},
		{"add, bad name", []string{"device", "add", "x-1", "--groups", "all"}, 1, "a device name is up to 50 letters, spaces, digits and underscores"},
		{"add, unknown group", []string{"device", "add", "x", "--groups", "all,nope"}, 1, `no group "nope" is defined under feeds.misp.groups (defined: all, domains)`},
		{"add, configured name", []string{"device", "add", "SOC MISP", "--groups", "all"}, 1, "configured in feeds.misp.devices"},
		{"remove configured", []string{"device", "remove", "SOC MISP"}, 1, "remove it there"},
		{"remove unknown", []string{"device", "remove", "nope"}, 1, `runtime device "nope": not found`},
		{"get devices, bad output", []string{"get", "devices", "-o", "csv"}, 2, `-o "csv" is not allowed`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runIn(t, nil, append([]string{"--config", cfg}, c.args...)...)
			if code != c.code || !strings.Contains(out+errOut, c.want) {
				t.Fatalf("%d\n%s%s\nwant %d with %q", code, out, errOut, c.code, c.want)
			}
		})
	}

	// Added while nothing runs: the key is shown once.
	add := func(name, groups string) (user, key string) {
		t.Helper()
		code, out, errOut := runIn(t, nil, "--config", cfg, "device", "add", name, "--groups", groups, "--limit", "100")
		m := regexp.MustCompile(`username: (\S+)\nkey:      (\S+)\nMISP feed header: Authorization: Basic \S+\n`).FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("device add: %d %s %s", code, out, errOut)
		}
		return m[1], m[2]
	}
	user1, key1 := add("Branch 1", "domains")
	code, out, _ := runIn(t, nil, "--config", cfg, "device", "list")
	if code != 0 || !regexp.MustCompile(`SOC MISP\s+config\s+soc\s+all,domains\s+50000\n`).MatchString(out) ||
		!regexp.MustCompile(`Branch 1\s+runtime\s+`+user1+`\s+domains\s+100\n`).MatchString(out) || strings.Contains(out, key1) {
		t.Fatalf("device list: %s", out)
	}
	code, out, _ = runIn(t, nil, "--config", cfg, "get", "devices")
	if code != 0 || !regexp.MustCompile(`NAME\s+SOURCE\s+GROUPS\s+STATUS\s+LAST PULL\s+WARNING\nSOC MISP\s+config\s+all,domains\s+red\s+-\s+-\nBranch 1\s+runtime\s+domains\s+red`).MatchString(out) {
		t.Fatalf("get devices: %s", out)
	}

	// serve publishes the feeds, to configured and runtime devices.
	addr, cmd := startServe(t, cfg, map[string]string{"TEST_TC_KEY": fake.APIKey(), "MISP_PW": "soc-password"})
	base := "http://" + addr + "/misp/"
	code, body := feedGet(t, base+"domains/manifest.json", "soc", "soc-password")
	var man map[string]struct{ Info string }
	if code != 200 || json.Unmarshal(body, &man) != nil || len(man) != 1 {
		t.Fatalf("configured device: %d %s", code, body)
	}
	if code, body = feedGet(t, base+"domains//manifest.json", user1, key1); code != 200 || !strings.Contains(string(body), `"info":"domains - `) {
		t.Fatalf("runtime device: %d %s", code, body)
	}
	if code, _ = feedGet(t, base+"all/manifest.json", user1, key1); code != 403 {
		t.Fatalf("runtime device, group not given: %d", code)
	}
	// Added and removed while serve runs: serve sees both at once.
	user2, key2 := add("Branch 2", "all")
	if code, _ = feedGet(t, base+"all/manifest.json", user2, key2); code != 200 {
		t.Fatalf("device added beside serve: %d", code)
	}
	code, out, errOut := runIn(t, nil, "--config", cfg, "get", "devices", "-o", "ndjson")
	var statuses []map[string]any
	for l := range strings.Lines(out) {
		var s map[string]any
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, s)
	}
	if code != 0 || len(statuses) != 3 || statuses[0]["status"] != "green" || statuses[1]["status"] != "green" || statuses[2]["name"] != "Branch 2" || statuses[2]["status"] != "green" {
		t.Fatalf("get devices beside serve: %d %s %s", code, out, errOut)
	}
	if code, out, errOut := runIn(t, nil, "--config", cfg, "device", "remove", "Branch 2"); code != 0 || !strings.Contains(out, `removed device "Branch 2"`) {
		t.Fatalf("remove beside serve: %d %s %s", code, out, errOut)
	}
	if code, _ = feedGet(t, base+"all/manifest.json", user2, key2); code != 401 {
		t.Fatalf("removed device: %d", code)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}
