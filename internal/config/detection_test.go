package config_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
)

func TestDetectionDefaults(t *testing.T) {
	cfg, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Detection
	if time.Duration(d.SuppressionWindow) != time.Hour || len(d.Actions) != 0 {
		t.Fatalf("detection defaults: %+v", d)
	}
	for _, id := range config.DetectionRuleIDs {
		r, ok := d.Rules.Rule(id)
		if !ok || !r.Enabled || len(r.Actions) != 0 || len(r.Mappings) != 0 {
			t.Errorf("rule %s: %+v, %v", id, r, ok)
		}
	}
	if _, ok := d.Rules.Rule("nope"); ok {
		t.Error(`Rule("nope") found`)
	}
	// Every field of DetectionRules is a rule id, in order.
	var keys []string
	rt := reflect.TypeOf(config.DetectionRules{})
	for i := range rt.NumField() {
		keys = append(keys, rt.Field(i).Tag.Get("yaml"))
	}
	if !slices.Equal(keys, config.DetectionRuleIDs) {
		t.Errorf("DetectionRules keys %v, DetectionRuleIDs %v", keys, config.DetectionRuleIDs)
	}
}

func TestDetectionEveryKey(t *testing.T) {
	yaml := `connectors:
  - {name: soc-webhook, type: webhook, url: "https://hooks.example.org/a"}
  - {name: mail, type: webhook, url: "https://hooks.example.org/b"}
  - {name: pager, type: webhook, url: "https://hooks.example.org/c"}
detection:
  actions: [soc-webhook, mail]
  suppression_window: 30m
  rules:
    ip:
      mappings: [client.ip, server.ip]
      actions: [pager]
    domain:
      enabled: false
    cve:
      enabled: true
      mappings: vulnerability.reference
`
	cfg, err := parse(t, yaml, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Detection
	if !slices.Equal(d.Actions, []string{"soc-webhook", "mail"}) || time.Duration(d.SuppressionWindow) != 30*time.Minute {
		t.Errorf("detection: %+v", d)
	}
	if r := d.Rules.IP; !r.Enabled || !slices.Equal(r.Mappings, []string{"client.ip", "server.ip"}) || !slices.Equal(r.Actions, []string{"pager"}) {
		t.Errorf("ip: %+v", r)
	}
	if d.Rules.Domain.Enabled || !d.Rules.Hash.Enabled {
		t.Errorf("enabled: domain %v hash %v", d.Rules.Domain.Enabled, d.Rules.Hash.Enabled)
	}
	if !slices.Equal(d.Rules.CVE.Mappings, []string{"vulnerability.reference"}) {
		t.Errorf("cve mappings: %v", d.Rules.CVE.Mappings)
	}
}

func TestDetectionErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown rule", "detection:\n  rules:\n    ipv4:\n      enabled: false\n",
			[]string{"line 3: detection.rules.ipv4: unknown key", "ip, hash, url, registry, email, cve, domain"}},
		{"unknown key", "detection:\n  suppression: 1h\n", []string{"detection.suppression: unknown key", "suppression_window"}},
		{"unknown rule key", "detection:\n  rules:\n    ip:\n      fields: [a]\n", []string{"detection.rules.ip.fields: unknown key", "enabled, actions, mappings"}},
		{"negative window", "detection:\n  suppression_window: -1m\n", []string{"detection.suppression_window: must not be negative"}},
		{"bad window", "detection:\n  suppression_window: soon\n", []string{"detection.suppression_window", `"soon" is not a duration`}},
		{"empty mapping", "detection:\n  rules:\n    url:\n      mappings: ['']\n", []string{"detection.rules.url.mappings[0]: must not be empty"}},
		{"mapping with space", "detection:\n  rules:\n    url:\n      mappings: [url.full, 'a b']\n", []string{`detection.rules.url.mappings[1]: "a b" is not a field name`}},
		{"mapping wildcard", "detection:\n  rules:\n    hash:\n      mappings: ['file.hash.*']\n", []string{"detection.rules.hash.mappings[0]", "wildcards"}},
		{"mapping empty part", "detection:\n  rules:\n    email:\n      mappings: [email..address]\n", []string{"detection.rules.email.mappings[0]", "empty part between dots"}},
		{"duplicate action", "detection:\n  actions: [a, a]\n", []string{`detection.actions[1]: "a" is listed twice`}},
		{"empty action", "detection:\n  rules:\n    cve:\n      actions: ['']\n", []string{"detection.rules.cve.actions[0]: must not be empty"}},
		{"bad enabled", "detection:\n  rules:\n    cve:\n      enabled: maybe\n", []string{"detection.rules.cve.enabled", "not a boolean"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.yaml, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
