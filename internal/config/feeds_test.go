package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-ti/vigil/internal/config"
)

const feedsBase = `feeds:
  misp:
    groups:
      - name: Phishing-Infra
        types: [domain-name, url]
      - name: all
    devices:
      - name: SOC MISP_1
        username: soc
        password: ${MISP_PW}
        groups: [Phishing-Infra, all]
`

var feedsEnv = map[string]string{"MISP_PW": "pa:ss/word"}

func TestMISPFeedsDefaults(t *testing.T) {
	cfg, err := parse(t, feedsBase, feedsEnv)
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Feeds.MISP
	if m == nil || len(m.Groups) != 2 || len(m.Devices) != 1 {
		t.Fatalf("%+v", m)
	}
	d := m.Devices[0]
	if d.Limit != config.DefaultMISPLimit || d.Username != "soc" || d.Password.Value() != "pa:ss/word" || strings.Join(d.Groups, ",") != "Phishing-Infra,all" {
		t.Fatalf("device %+v", d)
	}
	if m.Org.Name != "vigil" || m.Org.UUID != "" || m.AdminToken.Value() != "" {
		t.Fatalf("org %+v", m.Org)
	}
	g, ok := m.Group("Phishing-Infra")
	if !ok || strings.Join(g.Types, ",") != "domain-name,url" || g.MinConfidence != "" {
		t.Fatalf("group %+v %v", g, ok)
	}
	if _, ok := m.Group("nope"); ok {
		t.Fatal("unknown group found")
	}
	if strings.Join(m.GroupNames(), ",") != "Phishing-Infra,all" {
		t.Fatal(m.GroupNames())
	}
	if len(cfg.Warnings) != 0 {
		t.Fatal(cfg.Warnings)
	}
	// No feeds block: not configured.
	cfg, err = parse(t, "", nil)
	if err != nil || cfg.Feeds.MISP != nil {
		t.Fatalf("%+v %v", cfg.Feeds, err)
	}
	// An empty misp block is configured, with no group and no device.
	cfg, err = parse(t, "feeds:\n  misp:\n", nil)
	if err != nil || cfg.Feeds.MISP == nil || cfg.Feeds.MISP.Org.Name != "vigil" {
		t.Fatalf("%+v %v", cfg.Feeds, err)
	}
}

func TestMISPFeedsEveryKey(t *testing.T) {
	y := `feeds:
  misp:
    org:
      name: Example Org
      uuid: 0d6f2a8e-51c4-4b7a-9e3d-2f1a6c5b8e90
    admin_token: ${ADMIN}
    groups:
      - name: g.1
        types: [file, ipv4-addr]
        providers: [Phishing Feed]
        datasets: [ti_rapid7_threat_command.ioc]
        min_confidence: Medium
        tags: [phishing, apt]
    devices:
      - name: d
        username: u
        password: p
        limit: 10
        groups: g.1
`
	cfg, err := parse(t, y, map[string]string{"ADMIN": "tok"})
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.Feeds.MISP
	g := m.Groups[0]
	if m.Org.Name != "Example Org" || m.Org.UUID != "0d6f2a8e-51c4-4b7a-9e3d-2f1a6c5b8e90" || m.AdminToken.Value() != "tok" ||
		g.Name != "g.1" || strings.Join(g.Types, ",") != "file,ipv4-addr" || g.Providers[0] != "Phishing Feed" ||
		g.Datasets[0] != "ti_rapid7_threat_command.ioc" || g.MinConfidence != "Medium" || strings.Join(g.Tags, ",") != "phishing,apt" ||
		m.Devices[0].Limit != 10 || m.Devices[0].Groups[0] != "g.1" {
		t.Fatalf("%+v", m)
	}
}

func TestMISPFeedsErrors(t *testing.T) {
	dev := func(fields string) string {
		return "feeds:\n  misp:\n    groups:\n      - name: g\n    devices:\n      - " + fields + "\n"
	}
	const ok = "username: u\n        password: p\n        groups: [g]"
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"name with a dash", dev("name: soc-misp\n        " + ok),
			[]string{`feeds.misp.devices[0].name: device name "soc-misp" is not allowed: a device name is up to 50 letters, spaces, digits and underscores`}},
		{"name too long", dev("name: " + strings.Repeat("a", 51) + "\n        " + ok), []string{"is up to 50 letters, spaces, digits and underscores"}},
		{"name empty", dev("name: ' '\n        " + ok), []string{"devices[0].name: device name"}},
		{"name not ASCII", dev("name: café\n        " + ok), []string{`device name "café" is not allowed`}},
		{"unknown group", dev("name: d\n        username: u\n        password: p\n        groups: [g, h]"),
			[]string{`feeds.misp.devices[0].groups[1]: no group "h" is defined under feeds.misp.groups (defined: g)`}},
		{"no groups", dev("name: d\n        username: u\n        password: p"), []string{"devices[0].groups: required"}},
		{"group twice", dev("name: d\n        username: u\n        password: p\n        groups: [g, g]"), []string{`groups[1]: "g" is listed twice`}},
		{"limit zero", dev("name: d\n        " + ok + "\n        limit: 0"), []string{"devices[0].limit: 0 is not allowed: the most IOCs a manifest lists must be positive"}},
		{"limit negative", dev("name: d\n        " + ok + "\n        limit: -5"), []string{"limit: -5 is not allowed"}},
		{"no credentials", dev("name: d\n        groups: [g]"), []string{"devices[0].username: username \"\" is not allowed", "devices[0].password: required"}},
		{"colon in username", dev("name: d\n        username: a:b\n        password: p\n        groups: [g]"), []string{`username "a:b" is not allowed`}},
		{"unknown device key", dev("name: d\n        " + ok + "\n        key: x"), []string{"feeds.misp.devices[0].key: unknown key (allowed under feeds.misp.devices[0]: name, username, password, limit, groups)"}},
		{"duplicate devices", "feeds:\n  misp:\n    groups: [{name: g}]\n    devices:\n      - {name: d, username: u, password: p, groups: [g]}\n      - {name: d, username: v, password: p, groups: [g]}\n",
			[]string{`feeds.misp.devices[1].name: device "d" is already defined at feeds.misp.devices[0]`}},
		{"duplicate usernames", "feeds:\n  misp:\n    groups: [{name: g}]\n    devices:\n      - {name: d, username: u, password: p, groups: [g]}\n      - {name: e, username: u, password: p, groups: [g]}\n",
			[]string{`devices[1].username: "u" is already the username of feeds.misp.devices[0]`}},
		{"duplicate groups", "feeds:\n  misp:\n    groups: [{name: g}, {name: g}]\n", []string{`feeds.misp.groups[1].name: group "g" is already defined at feeds.misp.groups[0]`}},
		{"group name with a slash", "feeds:\n  misp:\n    groups: [{name: a/b}]\n", []string{`groups[0].name: group name "a/b" is not allowed`}},
		{"bad type", "feeds:\n  misp:\n    groups: [{name: g, types: [domain]}]\n",
			[]string{`feeds.misp.groups[0].types[0]: "domain" is not allowed (allowed, case-sensitive: autonomous-system, artifact, directory, domain-name`}},
		{"bad confidence", "feeds:\n  misp:\n    groups: [{name: g, min_confidence: high}]\n", []string{`groups[0].min_confidence: "high" is not allowed (allowed, case-sensitive: None, Low, Medium, High)`}},
		{"bad org uuid", "feeds:\n  misp:\n    org: {uuid: nope}\n", []string{`feeds.misp.org.uuid: "nope" is not a UUID`}},
		{"unknown misp key", "feeds:\n  misp:\n    device: []\n", []string{"feeds.misp.device: unknown key (allowed under feeds.misp: org, admin_token, actions, groups, devices)"}},
		{"unset password env", dev("name: d\n        username: u\n        password: ${NOPE}\n        groups: [g]"), []string{"password: environment variable NOPE is not set"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.yaml, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestMISPFeedsWarnsOfUnpublishedTypes(t *testing.T) {
	cfg, err := parse(t, "feeds:\n  misp:\n    groups: [{name: g, types: [url, mutex]}]\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], `feeds.misp.groups[0].types: "mutex" has no MISP type vigil publishes`) {
		t.Fatal(cfg.Warnings)
	}
}

// TestMISPFeedsReadOnly checks that reading commands (get devices, device
// list) need no device password in the environment.
func TestMISPFeedsReadOnly(t *testing.T) {
	cfg, err := config.Parse(strings.NewReader(feedsBase), env(nil), config.Options{ReadOnly: true})
	if err != nil || cfg.Feeds.MISP.Devices[0].Password.Value() != "" {
		t.Fatalf("%+v %v", cfg.Feeds.MISP, err)
	}
	if _, err := config.Parse(strings.NewReader(feedsBase+"        limit: 0\n"), env(nil), config.Options{ReadOnly: true}); err == nil {
		t.Fatal("a bad limit accepted when reading")
	}
}

func TestMISPPasswordNeverPrinted(t *testing.T) {
	cfg, err := parse(t, feedsBase, feedsEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("%v %+v %#v", cfg.Feeds.MISP, *cfg.Feeds.MISP, cfg.Feeds.MISP.Devices)
	if strings.Contains(s, feedsEnv["MISP_PW"]) {
		t.Fatalf("password printed: %s", s)
	}
}

func TestCheckMISPNames(t *testing.T) {
	for _, c := range []struct {
		name   string
		device bool
		ok     bool
	}{
		{"SOC MISP 2", true, true},
		{"soc_misp", true, true},
		{strings.Repeat("x", 50), true, true},
		{strings.Repeat("x", 51), true, false},
		{"", true, false},
		{"a-b", true, false},
		{"a.b", true, false},
		{"Phishing-Infra", false, true},
		{"g.1_x", false, true},
		{"-g", false, false},
		{"a b", false, false},
		{"%2F", false, false},
		{strings.Repeat("g", 65), false, false},
	} {
		err := config.CheckMISPGroupName(c.name)
		if c.device {
			err = config.CheckMISPDeviceName(c.name)
		}
		if (err == nil) != c.ok {
			t.Errorf("%q (device %v): %v", c.name, c.device, err)
		}
	}
}
