package config_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
)

const tcnBase = "sources:\n  threatconnect:\n    access_id: \"12345678901234567890\"\n    secret_key: ${TCN_SECRET}\n"

var tcnEnv = map[string]string{"TCN_SECRET": "s3cret/+=key"}

func TestThreatConnectDefaults(t *testing.T) {
	cfg, err := parse(t, tcnBase, tcnEnv)
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Sources.ThreatConnect
	if tc == nil || cfg.Sources.ThreatCommand != nil {
		t.Fatalf("sources %+v", cfg.Sources)
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"url", tc.URL, "https://app.threatconnect.com"},
		{"access_id", tc.AccessID, "12345678901234567890"},
		{"secret_key", tc.SecretKey.Value(), "s3cret/+=key"},
		{"interval", time.Duration(tc.Interval), 24 * time.Hour},
		{"initial_interval", time.Duration(tc.InitialInterval), 168 * time.Hour},
		{"batch_size", tc.BatchSize, 2000},
		{"tql", tc.TQL, ""},
		{"include_attributes", tc.IncludeAttributes, false},
		{"include_group_assoc", tc.IncludeGroupAssoc, false},
		{"include_group_assoc_attribs", tc.IncludeGroupAssocAttribs, false},
		{"include_indicator_assoc", tc.IncludeIndicatorAssoc, false},
		{"ioc_expiration_duration", tc.IOCExpirationDuration, "90d"},
		{"expiration", tc.ExpirationDuration(), 90 * 24 * time.Hour},
		{"retry.max_attempts", tc.Retry.MaxAttempts, 5},
		{"retry.max_backoff", time.Duration(tc.Retry.MaxBackoff), time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	if d := config.DefaultThreatConnect(); d.URL != tc.URL || d.BatchSize != 2000 {
		t.Errorf("DefaultThreatConnect %+v", d)
	}
}

func TestThreatConnectEveryKey(t *testing.T) {
	yaml := `sources:
  threatconnect:
    url: https://tc.example.org/
    access_id: ${TCN_ID}
    secret_key: ${TCN_SECRET}
    interval: 1h
    initial_interval: 30d
    batch_size: 10000
    tql: typeName IN ("Host", "Address") AND rating > 2
    include_attributes: true
    include_group_assoc: true
    include_group_assoc_attribs: true
    include_indicator_assoc: true
    ioc_expiration_duration: 12h
    retry:
      max_attempts: 2
      max_backoff: 10s
`
	cfg, err := parse(t, yaml, map[string]string{"TCN_ID": "id", "TCN_SECRET": "k"})
	if err != nil {
		t.Fatal(err)
	}
	tc := cfg.Sources.ThreatConnect
	if tc.URL != "https://tc.example.org/" || tc.AccessID != "id" || time.Duration(tc.Interval) != time.Hour ||
		time.Duration(tc.InitialInterval) != 30*24*time.Hour || tc.BatchSize != 10000 ||
		tc.TQL != `typeName IN ("Host", "Address") AND rating > 2` ||
		!tc.IncludeAttributes || !tc.IncludeGroupAssoc || !tc.IncludeGroupAssocAttribs || !tc.IncludeIndicatorAssoc ||
		tc.ExpirationDuration() != 12*time.Hour || tc.Retry.MaxAttempts != 2 {
		t.Fatalf("%+v", tc)
	}
}

func TestThreatConnectErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{"missing credentials", "sources:\n  threatconnect:\n    url: https://x\n", nil,
			[]string{"sources.threatconnect.access_id: required", "sources.threatconnect.secret_key: required"}},
		{"unset env", "sources:\n  threatconnect:\n    access_id: a\n    secret_key: ${NOPE}\n", nil,
			[]string{"secret_key: environment variable NOPE is not set"}},
		{"batch too large", tcnBase + "    batch_size: 10001\n", tcnEnv,
			[]string{"sources.threatconnect.batch_size: 10001 is out of range (allowed: 1 to 10000"}},
		{"batch zero", tcnBase + "    batch_size: 0\n", tcnEnv, []string{"batch_size: 0 is out of range"}},
		{"batch not a number", tcnBase + "    batch_size: lots\n", tcnEnv, []string{`batch_size: "lots" is not a whole number`}},
		{"short interval", tcnBase + "    interval: 30s\n", tcnEnv, []string{"sources.threatconnect.interval: 30s is too short"}},
		{"bad interval", tcnBase + "    interval: daily\n", tcnEnv, []string{`sources.threatconnect.interval: "daily" is not a duration`}},
		{"zero initial interval", tcnBase + "    initial_interval: 0s\n", tcnEnv, []string{"initial_interval: must be positive"}},
		{"non-numeric expiration", tcnBase + "    ioc_expiration_duration: 1.5d\n", tcnEnv,
			[]string{"sources.threatconnect.ioc_expiration_duration", "1.5d"}},
		{"bad bool", tcnBase + "    include_attributes: yes please\n", tcnEnv,
			[]string{`include_attributes: "yes please" is not a boolean`}},
		{"multi-line tql", tcnBase + "    tql: \"a\\nb\"\n", tcnEnv, []string{"tql: has a control character"}},
		{"bad url", tcnBase + "    url: ftp://x\n", tcnEnv, []string{`url: "ftp://x" is not an https URL`}},
		{"url with credentials", tcnBase + "    url: https://u:pw@x\n", tcnEnv, []string{"must not carry credentials"}},
		{"url with query", tcnBase + "    url: https://x/?owner=y\n", tcnEnv, []string{"must not have a query"}},
		{"unknown key", tcnBase + "    accessid: x\n", tcnEnv,
			[]string{"sources.threatconnect.accessid: unknown key", "url, access_id, secret_key, interval, initial_interval, batch_size, tql, include_attributes, include_group_assoc, include_group_assoc_attribs, include_indicator_assoc, ioc_expiration_duration, retry"}},
		{"Threat Command key", tcnBase + "    api_key: x\n", tcnEnv, []string{"sources.threatconnect.api_key: unknown key"}},
		{"max attempts", tcnBase + "    retry:\n      max_attempts: 21\n", tcnEnv, []string{"retry.max_attempts: 21 is out of range"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.yaml, c.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), tcnEnv["TCN_SECRET"]) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestThreatConnectWarnings(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown unit", tcnBase + "    ioc_expiration_duration: 2w\n", `unit of "2w" is not d, h or m; indicators expire 90d`},
		{"plain http", tcnBase + "    url: http://tc.example.org\n", "is not https"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse(t, c.yaml, tcnEnv)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], c.want) {
				t.Fatalf("warnings %v, want %q", cfg.Warnings, c.want)
			}
		})
	}
	// A fake on loopback is not warned about.
	cfg, err := parse(t, tcnBase+"    url: http://127.0.0.1:8080\n", tcnEnv)
	if err != nil || len(cfg.Warnings) != 0 {
		t.Fatalf("%v %v", cfg.Warnings, err)
	}
}

// TestThreatConnectReadOnly checks that reading commands need no
// credentials, while the block is still parsed strictly.
func TestThreatConnectReadOnly(t *testing.T) {
	y := "sources:\n  threatconnect:\n    secret_key: ${UNSET}\n"
	cfg, err := config.Parse(strings.NewReader(y), env(nil), config.Options{ReadOnly: true})
	if err != nil || cfg.Sources.ThreatConnect == nil {
		t.Fatalf("%+v %v", cfg, err)
	}
	if _, err := config.Parse(strings.NewReader(y+"    bogus: 1\n"), env(nil), config.Options{ReadOnly: true}); err == nil {
		t.Fatal("unknown key accepted when reading")
	}
}

func TestThreatConnectSecretNeverPrinted(t *testing.T) {
	cfg, err := parse(t, tcnBase, tcnEnv)
	if err != nil {
		t.Fatal(err)
	}
	sk := cfg.Sources.ThreatConnect.SecretKey
	for _, s := range []string{sk.String(), sk.GoString(), fmt.Sprintf("%v %+v", sk, *cfg.Sources.ThreatConnect)} {
		if strings.Contains(s, tcnEnv["TCN_SECRET"]) || !strings.Contains(s, "[redacted]") {
			t.Errorf("secret printed as %q", s)
		}
	}
}
