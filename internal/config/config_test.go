package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func parse(t *testing.T, yaml string, e map[string]string) (config.Config, error) {
	t.Helper()
	return config.Parse(strings.NewReader(yaml), env(e))
}

func TestDefaults(t *testing.T) {
	cfg, err := parse(t, "sources:\n  threatcommand:\n    account_id: a\n    api_key: k\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "./vigil-data" || cfg.Listen != "127.0.0.1:8080" || time.Duration(cfg.Retention) != 5*24*time.Hour {
		t.Fatalf("top-level defaults: %+v", cfg)
	}
	tc := cfg.Sources.ThreatCommand
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"url", tc.URL, "https://api.intsights.com"},
		{"ioc_expiration_duration", tc.IOCExpirationDuration, "90d"},
		{"expiration", tc.ExpirationDuration(), 90 * 24 * time.Hour},
		{"ioc.enabled", tc.IOC.Enabled, true},
		{"ioc.interval", time.Duration(tc.IOC.Interval), time.Hour},
		{"ioc.initial_interval", time.Duration(tc.IOC.InitialInterval), 720 * time.Hour},
		{"alert.interval", time.Duration(tc.Alert.Interval), 4 * time.Hour},
		{"alert.initial_interval", time.Duration(tc.Alert.InitialInterval), 720 * time.Hour},
		{"alert.fetch_closed_alerts", tc.Alert.FetchClosedAlerts, false},
		{"vulnerability.interval", time.Duration(tc.Vulnerability.Interval), 6 * time.Hour},
		{"vulnerability.initial_interval", time.Duration(tc.Vulnerability.InitialInterval), 1440 * time.Hour},
		{"severities", len(tc.IOC.Severities), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	none, err := parse(t, "", nil)
	if err != nil || none.Sources.ThreatCommand != nil {
		t.Fatalf("empty file: %+v %v", none, err)
	}
}

func TestFullFile(t *testing.T) {
	cfg, err := config.LoadFile("testdata/full.yaml", env(map[string]string{"TC_ACCOUNT": "acct", "TC_KEY": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Sources.ThreatCommand
	if tc.AccountID != "acct" || tc.APIKey.Value() != "s3cret" || tc.ExpirationDuration() != 50*24*time.Hour {
		t.Fatalf("threatcommand: %+v", tc)
	}
	if tc.Alert.Enabled || !tc.Alert.FetchClosedAlerts || strings.Join(tc.Alert.Types, ",") != "Phishing,vip" {
		t.Fatalf("alert: %+v", tc.Alert)
	}
	if !tc.Vulnerability.Enabled || time.Duration(tc.Vulnerability.Interval) != 12*time.Hour {
		t.Fatalf("vulnerability: %+v", tc.Vulnerability)
	}
	if cfg.Log.LogLevel() != slog.LevelDebug || tc.Retry.MaxAttempts != 3 {
		t.Fatalf("log/retry: %+v %+v", cfg.Log, tc.Retry)
	}
}

func TestErrors(t *testing.T) {
	const base = "sources:\n  threatcommand:\n    account_id: a\n    api_key: k\n"
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown top key", "datadir: x\n", nil, []string{"line 1: datadir: unknown key", "allowed at the top level: data_dir, listen, retention, log, sources"}},
		{"unknown nested key", base + "    ioc:\n      intervall: 1h\n", nil, []string{"sources.threatcommand.ioc.intervall: unknown key", "enabled, interval, initial_interval, severities, types"}},
		{"unknown source", "sources:\n  threatconect: {}\n", nil, []string{"sources.threatconect: unknown key (allowed under sources: threatcommand, threatconnect"}},
		{"bad severity", base + "    ioc:\n      severities: [high]\n", nil, []string{`sources.threatcommand.ioc.severities[0]: "high" is not allowed`, "High, Medium, Low, PendingEnrichment"}},
		{"bad ioc type", base + "    ioc:\n      types: [Ips]\n", nil, []string{"IpAddresses, Urls, Domains, Hashes, Emails"}},
		{"bad alert type", base + "    alert:\n      types: [Spam]\n", nil, []string{"AttackIndication, DataLeakage, Phishing, BrandSecurity, ExploitableData, vip"}},
		{"bad cve severity", base + "    vulnerability:\n      severities: [Urgent]\n", nil, []string{"Critical, High, Medium, Low"}},
		{"bad bool", base + "    alert:\n      fetch_closed_alerts: maybe\n", nil, []string{`fetch_closed_alerts: "maybe" is not a boolean (allowed: true, false)`}},
		{"bad duration", "retention: 5 days\n", nil, []string{`retention: "5 days" is not a duration`}},
		{"bad interval", base + "    ioc:\n      interval: soon\n", nil, []string{"sources.threatcommand.ioc.interval"}},
		{"short alert interval", base + "    alert:\n      interval: 1h\n", nil, []string{"longer than 1h"}},
		{"non-numeric expiration", base + "    ioc_expiration_duration: 1.5d\n", nil, []string{"sources.threatcommand.ioc_expiration_duration", "1.5d"}},
		{"missing credentials", "sources:\n  threatcommand:\n    url: https://x\n", nil, []string{"account_id: required", "api_key: required"}},
		{"unset env", "sources:\n  threatcommand:\n    account_id: a\n    api_key: ${NOPE}\n", nil, []string{"api_key: environment variable NOPE is not set"}},
		{"bad url", base + "    url: ftp://x\n", nil, []string{`url: "ftp://x" is not an http or https URL`}},
		{"url with creds", base + "    url: https://u:p@x\n", nil, []string{"must not carry credentials"}},
		{"listen", "listen: 8080\n", nil, []string{`listen: "8080" is not a host:port`}},
		{"log level", "log:\n  level: loud\n", nil, []string{"debug, info, warn, error"}},
		{"mapping for scalar", "data_dir: {a: 1}\n", nil, []string{"data_dir: expected a single value, got a mapping"}},
		{"list for struct", "sources: [1]\n", nil, []string{"sources: expected a mapping of keys, got a list"}},
		{"duplicate key", "listen: a:1\nlisten: b:2\n", nil, []string{"listen: key given twice"}},
		{"not yaml", "a: [\n", nil, []string{"not valid YAML"}},
		{"max attempts", base + "    retry:\n      max_attempts: 0\n", nil, []string{"max_attempts: 0 is out of range (allowed: 1 to 20)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.yaml, c.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	cfg, err := parse(t, "sources:\n  threatcommand:\n    account_id: a\n    api_key: k\n    ioc_expiration_duration: 2w\n    ioc:\n      initial_interval: 5000h\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Sources.ThreatCommand
	if tc.ExpirationDuration() != 90*24*time.Hour {
		t.Errorf("fallback expiration = %v", tc.ExpirationDuration())
	}
	if time.Duration(tc.IOC.InitialInterval) != config.TCIOCMaxInitialInterval {
		t.Errorf("initial interval not capped: %v", tc.IOC.InitialInterval)
	}
	all := strings.Join(cfg.Warnings, "\n")
	for _, w := range []string{"2w", "90d", "capped to 4380h"} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings %q lack %q", all, w)
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	cfg, err := parse(t, "data_dir: ${BASE}/data\nlisten: ${HOST:-127.0.0.1}:${PORT:-8080}\nsources:\n  threatcommand:\n    account_id: a$$b\n    api_key: ${KEY}\n",
		map[string]string{"BASE": "/srv", "PORT": "9", "KEY": "p@ss: #word"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/data" || cfg.Listen != "127.0.0.1:9" {
		t.Fatalf("%s %s", cfg.DataDir, cfg.Listen)
	}
	if cfg.Sources.ThreatCommand.AccountID != "a$b" || cfg.Sources.ThreatCommand.APIKey.Value() != "p@ss: #word" {
		t.Fatalf("%+v", cfg.Sources.ThreatCommand)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	cfg, err := parse(t, "sources:\n  threatcommand:\n    account_id: a\n    api_key: hunter2\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Sources.ThreatCommand
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "key", tc.APIKey, "tc", tc)
	js, _ := json.Marshal(cfg)
	for _, s := range []string{fmt.Sprint(tc.APIKey), fmt.Sprintf("%v %+v %#v", tc, tc, tc), string(js), logs.String()} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("sources:\n  threatcommand:\n    account_id: a\n    api_key: k\n")
	f.Add("data_dir: ${X:-y}\nretention: 3d\n")
	f.Add("log: {level: debug}\n")
	f.Add(connectorsYAML + "    headers: {A: b}\noutbox: {max_backoff: 2m}\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := config.Parse(strings.NewReader(s), func(string) string { return "" })
		if err == nil && cfg.DataDir == "" {
			t.Fatal("accepted an empty data_dir")
		}
	})
}

func TestReadOnlyNeedsNoCredentials(t *testing.T) {
	const y = "sources:\n  threatcommand:\n    account_id: ${ACCT}\n    api_key: ${KEY}\n"
	if _, err := config.Parse(strings.NewReader(y), env(nil)); err == nil {
		t.Fatal("unset credentials accepted for a writer")
	}
	cfg, err := config.Parse(strings.NewReader(y), env(nil), config.Options{ReadOnly: true})
	if err != nil || cfg.Sources.ThreatCommand == nil {
		t.Fatalf("read-only load: %v", err)
	}
	// Strictness still holds.
	_, err = config.Parse(strings.NewReader(y+"    bogus: 1\n"), env(nil), config.Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "sources.threatcommand.bogus: unknown key") {
		t.Fatalf("read-only load of an unknown key: %v", err)
	}
}

// TestExamplesLoad keeps the shipped example configurations valid.
func TestExamplesLoad(t *testing.T) {
	for _, f := range []string{"../../examples/vigil.yaml"} {
		cfg, err := config.LoadFile(f, func(string) string { return "set-in-env" })
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(cfg.Warnings) != 0 {
			t.Errorf("%s: warnings %v", f, cfg.Warnings)
		}
	}
}
