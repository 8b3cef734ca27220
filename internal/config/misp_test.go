package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
)

const mispBase = "sources:\n  misp:\n    url: https://misp.example.org\n    api_token: ${MISP_KEY}\n"

var mispEnv = map[string]string{"MISP_KEY": "0123456789abcdefMISPkey0123456789abcdef"}

// feedDir makes a directory with a manifest.json and returns it.
func feedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMISPDefaults(t *testing.T) {
	cfg, err := parse(t, mispBase, mispEnv)
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Sources.MISP
	if m == nil || cfg.Sources.ThreatCommand != nil || cfg.Sources.ThreatConnect != nil {
		t.Fatalf("sources %+v", cfg.Sources)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"url", m.URL, "https://misp.example.org"},
		{"api_token", m.APIToken.Value(), mispEnv["MISP_KEY"]},
		{"limit", m.Limit, 1000},
		{"interval", time.Duration(m.Interval), 10 * time.Minute},
		{"initial_interval", time.Duration(m.InitialInterval), 120 * time.Hour},
		{"ioc_expiration_duration", m.IOCExpirationDuration, "90d"},
		{"expiration", m.ExpirationDuration(), 90 * 24 * time.Hour},
		{"http_client_timeout", time.Duration(m.HTTPClientTimeout), 30 * time.Second},
		{"enforce_warning_list", m.EnforceWarningList, false},
		{"to_ids", m.ToIDs == nil, true},
		{"published", m.Published == nil, true},
		{"tags", len(m.Tags), 0},
		{"feeds", len(m.Feeds), 0},
		{"retry.max_attempts", m.Retry.MaxAttempts, 5},
		{"retry.max_backoff", time.Duration(m.Retry.MaxBackoff), time.Minute},
		{"instance", m.HasInstance(), true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

func TestMISPEveryKey(t *testing.T) {
	dir := feedDir(t)
	yaml := fmt.Sprintf(`sources:
  misp:
    url: https://misp.example.org/
    api_token: ${MISP_KEY}
    limit: 250
    interval: 1h
    initial_interval: 30d
    ioc_expiration_duration: 12h
    http_client_timeout: 2m
    enforce_warning_list: true
    to_ids: true
    published: false
    tags: [tlp:white, "!tlp:red"]
    feeds:
      - name: circl-osint
        url: https://www.circl.lu/doc/misp/feed-osint/
        max_event_age: 365d
      - name: own
        url: https://vigil.example/misp/dev1
        username: dev1
        password: ${FEED_PW}
      - name: local
        path: %s
    retry:
      max_attempts: 2
      max_backoff: 10s
`, dir)
	cfg, err := parse(t, yaml, map[string]string{"MISP_KEY": "k", "FEED_PW": "pw-secret"})
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Sources.MISP
	if m.Limit != 250 || time.Duration(m.Interval) != time.Hour || time.Duration(m.InitialInterval) != 30*24*time.Hour ||
		m.ExpirationDuration() != 12*time.Hour || time.Duration(m.HTTPClientTimeout) != 2*time.Minute ||
		!m.EnforceWarningList || m.ToIDs == nil || !*m.ToIDs || m.Published == nil || *m.Published ||
		strings.Join(m.Tags, ",") != "tlp:white,!tlp:red" || m.Retry.MaxAttempts != 2 {
		t.Fatalf("%+v", m)
	}
	want := []config.MISPFeed{
		{Name: "circl-osint", URL: "https://www.circl.lu/doc/misp/feed-osint/", MaxEventAge: config.Duration(365 * 24 * time.Hour)},
		{Name: "own", URL: "https://vigil.example/misp/dev1", Username: "dev1", Password: config.NewSecret("pw-secret")},
		{Name: "local", Path: dir},
	}
	if len(m.Feeds) != len(want) {
		t.Fatalf("feeds %+v", m.Feeds)
	}
	for i, f := range m.Feeds {
		if f.Name != want[i].Name || f.URL != want[i].URL || f.Path != want[i].Path || f.Username != want[i].Username ||
			f.Password.Value() != want[i].Password.Value() || f.MaxEventAge != want[i].MaxEventAge {
			t.Errorf("feeds[%d] = %+v, want %+v", i, f, want[i])
		}
	}
}

// TestMISPFeedsOnly: the instance is optional when feeds are given.
func TestMISPFeedsOnly(t *testing.T) {
	cfg, err := parse(t, "sources:\n  misp:\n    feeds:\n      - name: f\n        path: "+feedDir(t)+"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Sources.MISP; m.HasInstance() || len(m.Feeds) != 1 {
		t.Fatalf("%+v", m)
	}
}

func TestMISPErrors(t *testing.T) {
	dir := feedDir(t)
	feed := func(lines ...string) string {
		return "sources:\n  misp:\n    feeds:\n      - " + strings.Join(lines, "\n        ") + "\n"
	}
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"nothing to read", "sources:\n  misp:\n    limit: 10\n",
			[]string{"sources.misp: nothing to read: configure a MISP instance (url and api_token), feeds, or both"}},
		{"empty block", "sources:\n  misp:\n", []string{"sources.misp: nothing to read"}},
		{"url without token", "sources:\n  misp:\n    url: https://misp.example.org\n",
			[]string{"sources.misp.api_token: required with sources.misp.url"}},
		{"token without url", "sources:\n  misp:\n    api_token: ${MISP_KEY}\n", []string{"sources.misp.url is empty"}},
		{"bad url", mispBase + "    url: misp.example.org\n", nil},
		{"url with credentials", "sources:\n  misp:\n    url: https://u:pw@misp.example.org\n    api_token: k\n",
			[]string{"sources.misp.url must not contain credentials: set sources.misp.api_token instead"}},
		{"limit zero", mispBase + "    limit: 0\n", []string{"sources.misp.limit: 0 is out of range (allowed: 1 to 100000)"}},
		{"short interval", mispBase + "    interval: 10s\n", []string{"sources.misp.interval: 10s is too short"}},
		{"zero initial interval", mispBase + "    initial_interval: 0s\n", []string{"sources.misp.initial_interval: must be positive"}},
		{"non-numeric expiration", mispBase + "    ioc_expiration_duration: 1.5d\n", []string{"sources.misp.ioc_expiration_duration", "1.5d"}},
		{"bad to_ids", mispBase + "    to_ids: sometimes\n", []string{`sources.misp.to_ids: "sometimes" is not a boolean`}},
		{"empty tag", mispBase + "    tags: [\"!\"]\n", []string{`sources.misp.tags[0]: "!" is not a tag name`}},
		{"Elastic's filters", mispBase + "    filters: {}\n", []string{"sources.misp.filters: unknown key", "url, api_token, limit"}},
		{"feed without name", feed("path: " + dir), []string{"sources.misp.feeds[0].name: required"}},
		{"feed name", feed("name: my feed", "path: "+dir), []string{`sources.misp.feeds[0].name: "my feed" may only hold`}},
		{"feed both", feed("name: f", "path: "+dir, "url: https://x.example/f"), []string{"sources.misp.feeds[0]: has both url and path; set exactly one"}},
		{"feed neither", feed("name: f"), []string{"sources.misp.feeds[0]: set url (a feed served over HTTP) or path"}},
		{"feed no manifest", feed("name: f", "path: "+t.TempDir()), []string{"sources.misp.feeds[0].path:", "has no manifest.json"}},
		{"feed url scheme", feed("name: f", "url: ftp://x.example/f"), []string{"sources.misp.feeds[0].url must start with https:// or http://"}},
		{"feed url credentials", feed("name: f", "url: https://u:pw@x.example/f"), []string{"sources.misp.feeds[0].url must not contain credentials"}},
		{"feed half auth", feed("name: f", "url: https://x.example/f", "username: u"), []string{"sources.misp.feeds[0]: username and password go together"}},
		{"feed auth on path", feed("name: f", "path: "+dir, "username: u", "password: p"), []string{"username and password are for a feed given by url"}},
		{"feed unknown key", feed("name: f", "path: "+dir, "headers: x"), []string{"sources.misp.feeds[0].headers: unknown key (allowed under sources.misp.feeds[0]: name, url, path, username, password, max_event_age)"}},
		{"feed negative age", feed("name: f", "path: "+dir, "max_event_age: -1h"), []string{"sources.misp.feeds[0].max_event_age: must not be negative"}},
		{"duplicate names", "sources:\n  misp:\n    feeds:\n      - name: f\n        path: " + dir + "\n      - name: f\n        path: " + dir + "\n",
			[]string{`sources.misp.feeds[1].name: "f" is also the name of feeds[0]`}},
		{"max attempts", mispBase + "    retry:\n      max_attempts: 0\n", []string{"sources.misp.retry.max_attempts: 0 is out of range"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.yaml, mispEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), mispEnv["MISP_KEY"]) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestMISPWarnings(t *testing.T) {
	cfg, err := parse(t, mispBase+"    ioc_expiration_duration: 2w\n", mispEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], `unit of "2w" is not d, h or m; IOCs expire 90d`) {
		t.Fatalf("warnings %v", cfg.Warnings)
	}
	if cfg.Sources.MISP.ExpirationDuration() != 90*24*time.Hour {
		t.Fatal(cfg.Sources.MISP.ExpirationDuration())
	}
}

// TestMISPRelativeFeedPath: a feed's relative path is taken from the
// configuration file's folder, not from the working directory.
func TestMISPRelativeFeedPath(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "conf", "feeds", "one"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "conf", "feeds", "one", "manifest.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "conf", "vigil.yaml")
	if err := os.WriteFile(file, []byte("sources:\n  misp:\n    feeds:\n      - name: one\n        path: feeds/one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(root) // the working directory has no feeds/one
	cfg, err := config.LoadFile(file, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Sources.MISP.Feeds[0].Path, filepath.Join(root, "conf", "feeds", "one"); got != want {
		t.Fatalf("path %s, want %s", got, want)
	}
	// Parse without a file takes it from the working directory.
	if _, err := config.Parse(strings.NewReader("sources:\n  misp:\n    feeds:\n      - name: one\n        path: conf/feeds/one\n"), env(nil)); err != nil {
		t.Fatal(err)
	}
}

// TestQuickstartLoads keeps the quickstart's configuration valid: its one
// source is the example feed of the repository.
func TestQuickstartLoads(t *testing.T) {
	cfg, err := config.LoadFile("../../examples/quickstart.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Sources.MISP
	if m == nil || m.HasInstance() || len(m.Feeds) != 1 || cfg.Sources.ThreatCommand != nil || cfg.Sources.ThreatConnect != nil {
		t.Fatalf("sources %+v", cfg.Sources)
	}
	abs, _ := filepath.Abs("../../examples/misp-feed")
	if m.Feeds[0].Path != abs {
		t.Fatalf("feed path %s, want %s", m.Feeds[0].Path, abs)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v", cfg.Warnings)
	}
}

func TestMISPSecretsNeverPrinted(t *testing.T) {
	yaml := mispBase + "    feeds:\n      - name: own\n        url: https://vigil.example/misp/dev1\n        username: dev1\n        password: ${FEED_PW}\n"
	cfg, err := parse(t, yaml, map[string]string{"MISP_KEY": mispEnv["MISP_KEY"], "FEED_PW": "feed-password-42"})
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Sources.MISP
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", m.APIToken, *m, *m), fmt.Sprintf("%+v", m.Feeds)} {
		if strings.Contains(s, mispEnv["MISP_KEY"]) || strings.Contains(s, "feed-password-42") || !strings.Contains(s, "[redacted]") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

// TestMISPReadOnly: reading commands need no credentials and no feed folder.
func TestMISPReadOnly(t *testing.T) {
	y := "sources:\n  misp:\n    api_token: ${UNSET}\n    feeds:\n      - name: gone\n        path: /nonexistent/feed\n"
	cfg, err := config.Parse(strings.NewReader(y), env(nil), config.Options{ReadOnly: true})
	if err != nil || cfg.Sources.MISP == nil {
		t.Fatalf("%+v %v", cfg, err)
	}
}
