package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstart runs the README's quickstart: the example configuration,
// whose one source is the repository's MISP feed, pulled on a machine with
// no account and no network, then listed.
func TestQuickstart(t *testing.T) {
	cfg, err := filepath.Abs("../../examples/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // data_dir ./vigil-data lands here
	code, out, errOut := runIn(t, nil, "--config", cfg, "pull")
	if code != 0 {
		t.Fatalf("pull: %d\n%s\n%s", code, out, errOut)
	}
	if !regexp.MustCompile(`misp\s+ti_misp.feed\s+ok\s+pages=\d+ records=23 live=23 stale=0 errors=0`).MatchString(out) {
		t.Fatalf("pull summary:\n%s", out)
	}
	code, out, errOut = runIn(t, nil, "--config", cfg, "get", "indicators")
	if code != 0 {
		t.Fatalf("get: %d %s", code, errOut)
	}
	for _, w := range []string{"ti_misp.feed", "login-update.example", "203.0.113.7", "2001:db8:ff::/48", "billing@login-update.example",
		"https://login-update.example/owa/auth.php?session=reset", "domain-name", "ipv6-addr", "file", "misp"} {
		if !strings.Contains(out, w) {
			t.Errorf("get indicators lacks %q:\n%s", w, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 24 {
		t.Errorf("%d lines, want a header and 23 indicators:\n%s", lines, out)
	}
	code, out, _ = runIn(t, nil, "--config", cfg, "check", "misp")
	if code != 0 || !strings.Contains(out, "feed quickstart") || !strings.Contains(out, "4 events") {
		t.Fatalf("check: %d\n%s", code, out)
	}
	// A second pull reads the manifest only: nothing changed.
	code, out, _ = runIn(t, nil, "--config", cfg, "pull", "misp")
	if code != 0 || !strings.Contains(out, "records=0") {
		t.Fatalf("second pull: %d\n%s", code, out)
	}
}
