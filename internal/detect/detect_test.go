package detect_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// clock is a hand-moved clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const dsIOC = "test.ioc"

// indicator returns a live indicator document of dataset test.ioc whose
// threat.indicator is ti (type and name added).
func indicator(key, typ string, ti map[string]any, expires time.Time) vigil.Document {
	obj := map[string]any{"type": typ, "name": key}
	for k, v := range ti {
		obj[k] = v
	}
	src, err := json.Marshal(map[string]any{
		"@timestamp": t0.Add(-time.Hour).Format(time.RFC3339),
		"event":      map[string]any{"kind": "enrichment", "category": []string{"threat"}, "type": []string{"indicator"}, "dataset": dsIOC},
		"threat":     map[string]any{"indicator": obj, "feed": map[string]any{"name": "Test Feed"}},
	})
	if err != nil {
		panic(err)
	}
	return vigil.Document{Dataset: dsIOC, View: vigil.ViewIndicators, Key: key, Type: typ, Timestamp: t0.Add(-time.Hour), ExpiresAt: expires, Source: src}
}

// cve returns a live vulnerability document as the Rapid7 normalizer
// writes it.
func cve(id string) vigil.Document {
	src := fmt.Appendf(nil, `{"@timestamp":"2026-02-01T00:00:00Z","event":{"kind":"event","dataset":"ti_rapid7_threat_command.vulnerability"},"vulnerability":{"id":%q,"severity":"High"},"rapid7":{"tc":{"vulnerability":{"id":%q,"cvss_score":9.8,"exploit_availability":true}}}}`, id, id)
	return vigil.Document{Dataset: "ti_rapid7_threat_command.vulnerability", View: vigil.ViewVulnerabilities, Key: id, Type: "High", Timestamp: t0.Add(-24 * time.Hour), Source: src}
}

var far = t0.Add(30 * 24 * time.Hour)

// fixture is the indicator set of the rule tests.
func fixture() []vigil.Document {
	ip := func(v string) map[string]any { return map[string]any{"ip": v} }
	return []vigil.Document{
		indicator("198.51.100.7", "ipv4-addr", ip("198.51.100.7"), far),
		indicator("203.0.113.0/24", "ipv4-addr", ip("203.0.113.0/24"), far),
		indicator("203.0.113.128/25", "ipv4-addr", ip("203.0.113.128/25"), far),
		indicator("2001:db8::/48", "ipv6-addr", ip("2001:db8::/48"), far),
		indicator("2001:db8:ffff::1", "ipv6-addr", ip("2001:db8:ffff::1"), far),
		indicator("192.0.2.1", "ipv4-addr", ip("192.0.2.1"), t0.Add(30*time.Minute)), // expires mid-run
		indicator("44d88612fea8a8f36de82e1278abb02f", "file", map[string]any{"file": map[string]any{"hash": map[string]any{"md5": "44d88612fea8a8f36de82e1278abb02f"}}}, far),
		indicator("3395856ce81f2b7382dee72602f798b642f14140", "file", map[string]any{"file": map[string]any{"hash": map[string]any{"sha1": "3395856ce81f2b7382dee72602f798b642f14140"}}}, far),
		indicator("275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", "file", map[string]any{"file": map[string]any{"hash": map[string]any{"sha256": "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}}}, far),
		indicator("http://evil.example/login.php", "url", map[string]any{"url": map[string]any{"full": "http://evil.example/login.php", "original": "http://evil.example/login.php"}}, far),
		indicator("bad.example/dl?id=7", "url", map[string]any{"url": map[string]any{"original": "bad.example/dl?id=7"}}, far),
		indicator(`HKLM\Software\Microsoft\Windows\CurrentVersion\Run\updater`, "windows-registry-key", map[string]any{"registry": map[string]any{"path": `HKLM\Software\Microsoft\Windows\CurrentVersion\Run\updater`}}, far),
		indicator("phish@evil.example", "email-addr", map[string]any{"email": map[string]any{"address": "phish@evil.example"}}, far),
		indicator("evil.example", "domain-name", map[string]any{"url": map[string]any{"domain": "evil.example"}}, far),
		cve("CVE-2024-3400"),
	}
}

type env struct {
	db    *sqlite.DB
	clock *clock
	eng   *detect.Engine
}

// newEnv stores docs in a fresh store, loads a snapshot from it and returns
// an engine on it.
func newEnv(t *testing.T, cfg detect.Config, docs []vigil.Document) *env {
	t.Helper()
	c := &clock{t: t0}
	db, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	byDataset := map[string][]vigil.Document{}
	for _, d := range docs {
		byDataset[d.Dataset] = append(byDataset[d.Dataset], d)
	}
	for ds, dd := range byDataset {
		if _, err := db.WritePage(t.Context(), vigil.Page{Source: "test", Dataset: ds, Docs: dd}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	snap, st, err := detect.Load(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if st.Documents != len(docs) {
		t.Fatalf("loaded %+v of %d documents", st, len(docs))
	}
	eng, err := detect.New(cfg, db, c)
	if err != nil {
		t.Fatal(err)
	}
	eng.Swap(snap)
	return &env{db: db, clock: c, eng: eng}
}

// match runs one event and returns its alerts as parsed documents.
func (e *env) match(t *testing.T, event string) []map[string]any {
	t.Helper()
	dets, err := e.eng.Match(t.Context(), []byte(event))
	if err != nil {
		t.Fatalf("Match(%s): %v", event, err)
	}
	var out []map[string]any
	for _, d := range dets {
		var m map[string]any
		if err := json.Unmarshal(d.Source, &m); err != nil {
			t.Fatalf("alert is not JSON: %v\n%s", err, d.Source)
		}
		if get(m, "rule.id") != d.RuleID || get(m, "rule.name") != d.RuleName || get(m, "kibana.alert.uuid") != d.ID {
			t.Fatalf("alert %+v does not carry its rule and id: %s", d, d.Source)
		}
		out = append(out, m)
	}
	return out
}

// get returns the value at a dotted path of nested objects.
func get(m map[string]any, path string) any {
	var v any = m
	for p := range strings.SplitSeq(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[p]
	}
	return v
}

// matched lists "rule field=atomic→indicator key" for every enrichment of
// the alerts.
func matched(alerts []map[string]any) []string {
	var out []string
	for _, a := range alerts {
		ens, _ := get(a, "threat.enrichments").([]any)
		for _, en := range ens {
			m := en.(map[string]any)
			out = append(out, fmt.Sprintf("%s %s=%v→%v", get(a, "rule.id"), get(m, "matched.field"), get(m, "matched.atomic"), get(m, "matched.id")))
		}
	}
	slices.Sort(out)
	return out
}

func TestRulesAndMappings(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	cases := []struct {
		name  string
		event string
		want  []string
	}{
		{"source.ip", `{"source":{"ip":"198.51.100.7"}}`, []string{"ip source.ip=198.51.100.7→198.51.100.7"}},
		{"destination.ip", `{"destination":{"ip":"198.51.100.7"}}`, []string{"ip destination.ip=198.51.100.7→198.51.100.7"}},
		{"both ip fields, one indicator", `{"source.ip":"198.51.100.7","destination.ip":"198.51.100.7"}`,
			[]string{"ip destination.ip=198.51.100.7→198.51.100.7", "ip source.ip=198.51.100.7→198.51.100.7"}},
		{"md5 in file", `{"file":{"hash":{"md5":"44d88612fea8a8f36de82e1278abb02f"}}}`, []string{"hash file.hash.md5=44d88612fea8a8f36de82e1278abb02f→44d88612fea8a8f36de82e1278abb02f"}},
		{"sha1 in dll", `{"dll":{"hash":{"sha1":"3395856ce81f2b7382dee72602f798b642f14140"}}}`, []string{"hash dll.hash.sha1=3395856ce81f2b7382dee72602f798b642f14140→3395856ce81f2b7382dee72602f798b642f14140"}},
		{"sha256 in process", `{"process":{"hash":{"sha256":"275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}}}`, []string{"hash process.hash.sha256=275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f→275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"}},
		{"every hash field", `{"file.hash.sha1":"3395856ce81f2b7382dee72602f798b642f14140","file.hash.sha256":"275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f","dll.hash.md5":"44d88612fea8a8f36de82e1278abb02f","dll.hash.sha256":"275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f","process.hash.md5":"44d88612fea8a8f36de82e1278abb02f","process.hash.sha1":"3395856ce81f2b7382dee72602f798b642f14140"}`,
			[]string{
				"hash dll.hash.md5=44d88612fea8a8f36de82e1278abb02f→44d88612fea8a8f36de82e1278abb02f",
				"hash dll.hash.sha256=275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f→275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
				"hash file.hash.sha1=3395856ce81f2b7382dee72602f798b642f14140→3395856ce81f2b7382dee72602f798b642f14140",
				"hash file.hash.sha256=275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f→275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
				"hash process.hash.md5=44d88612fea8a8f36de82e1278abb02f→44d88612fea8a8f36de82e1278abb02f",
				"hash process.hash.sha1=3395856ce81f2b7382dee72602f798b642f14140→3395856ce81f2b7382dee72602f798b642f14140",
			}},
		{"url.full", `{"url":{"full":"http://evil.example/login.php"}}`, []string{"url url.full=http://evil.example/login.php→http://evil.example/login.php"}},
		{"url.original without scheme", `{"url":{"original":"https://bad.example/dl?id=7"}}`, []string{"url url.original=https://bad.example/dl?id=7→bad.example/dl?id=7"}},
		{"registry.path", `{"registry":{"path":"HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\updater"}}`,
			[]string{`registry registry.path=HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\updater→HKLM\Software\Microsoft\Windows\CurrentVersion\Run\updater`}},
		{"email.from", `{"email":{"from":{"address":["phish@evil.example"]}}}`, []string{"email email.from.address=phish@evil.example→phish@evil.example"}},
		{"email.to", `{"email":{"to":{"address":["a@ok.example","phish@evil.example"]}}}`, []string{"email email.to.address=phish@evil.example→phish@evil.example"}},
		{"email.sender", `{"email":{"sender":{"address":"phish@evil.example"}}}`, []string{"email email.sender.address=phish@evil.example→phish@evil.example"}},
		{"email.reply_to", `{"email":{"reply_to":{"address":"phish@evil.example"}}}`, []string{"email email.reply_to.address=phish@evil.example→phish@evil.example"}},
		{"cve", `{"vulnerability":{"id":"CVE-2024-3400"}}`, []string{"cve vulnerability.id=CVE-2024-3400→CVE-2024-3400"}},
		{"cve skipped on rapid7 documents", `{"vulnerability":{"id":"CVE-2024-3400"},"rapid7":{"tc":{"vulnerability":{"id":"CVE-2024-3400"}}}}`, nil},
		{"cve skipped, dotted rapid7 key", `{"vulnerability.id":"CVE-2024-3400","rapid7.tc.vulnerability.id":"x"}`, nil},
		{"url.domain", `{"url":{"domain":"evil.example"}}`, []string{"domain url.domain=evil.example→evil.example"}},
		{"dns.question.name, subdomain", `{"dns":{"question":{"name":"cdn.Evil.Example."}}}`, []string{"domain dns.question.name=cdn.Evil.Example.→evil.example"}},
		{"destination.domain", `{"destination":{"domain":"www.evil.example"}}`, []string{"domain destination.domain=www.evil.example→evil.example"}},
		{"domain is not a suffix match", `{"url":{"domain":"notevil.example"}}`, nil},
		{"two rules, one event", `{"url":{"full":"http://evil.example/login.php","domain":"evil.example"},"destination":{"ip":"198.51.100.7"}}`,
			[]string{"domain url.domain=evil.example→evil.example", "ip destination.ip=198.51.100.7→198.51.100.7", "url url.full=http://evil.example/login.php→http://evil.example/login.php"}},
		{"unmapped field", `{"client":{"ip":"198.51.100.7"},"host":{"ip":"198.51.100.7"}}`, nil},
		{"no match", `{"source":{"ip":"10.0.0.1"},"url":{"full":"http://good.example/"}}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.clock.Advance(2 * time.Hour) // out of the suppression window of earlier cases
			got := matched(e.match(t, c.event))
			if !slices.Equal(got, c.want) {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestIPEdges(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	cases := []struct {
		ip   string
		want []string // matched indicator keys
	}{
		{"203.0.113.0", []string{"203.0.113.0/24"}},
		{"203.0.113.127", []string{"203.0.113.0/24"}},
		{"203.0.113.128", []string{"203.0.113.0/24", "203.0.113.128/25"}},
		{"203.0.113.255", []string{"203.0.113.0/24", "203.0.113.128/25"}},
		{"203.0.112.255", nil},
		{"203.0.114.0", nil},
		{"::ffff:203.0.113.200", []string{"203.0.113.0/24", "203.0.113.128/25"}}, // IPv4-mapped
		{"::ffff:198.51.100.7", []string{"198.51.100.7"}},
		{"2001:db8::", []string{"2001:db8::/48"}},
		{"2001:db8:0:ffff:ffff:ffff:ffff:ffff", []string{"2001:db8::/48"}},
		{"2001:db8:1::", nil},
		{"2001:DB8::A", []string{"2001:db8::/48"}},
		{"2001:db8:ffff::1", []string{"2001:db8:ffff::1"}},
		{"2001:db8:ffff:0:0:0:0:1", []string{"2001:db8:ffff::1"}},
		{"fe80::1%eth0", nil},
		{"2001:db8::5%eth0", []string{"2001:db8::/48"}},
		{" 198.51.100.7 ", []string{"198.51.100.7"}},
		{"198.51.100.07", nil},
		{"198.51.100.7/32", nil}, // an event value is an address, not a range
		{"not-an-ip", nil},
	}
	for _, c := range cases {
		e.clock.Advance(2 * time.Hour)
		alerts := e.match(t, fmt.Sprintf(`{"source":{"ip":%q}}`, c.ip))
		var got []string
		for _, a := range alerts {
			for _, en := range get(a, "threat.enrichments").([]any) {
				got = append(got, get(en.(map[string]any), "matched.id").(string))
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: matched %q, want %q", c.ip, got, c.want)
		}
	}
}

func TestCaseRules(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	cases := []struct {
		event string
		hits  int
	}{
		{`{"file":{"hash":{"md5":"44D88612FEA8A8F36DE82E1278ABB02F"}}}`, 1},                             // hashes: any case
		{`{"url":{"domain":"EVIL.EXAMPLE"}}`, 1},                                                        // domains: any case
		{`{"email":{"from":{"address":"Phish@Evil.Example"}}}`, 1},                                      // e-mail: any case
		{`{"registry":{"path":"hklm\\software\\microsoft\\windows\\currentversion\\run\\UPDATER"}}`, 1}, // registry: any case
		{`{"url":{"full":"HTTP://EVIL.EXAMPLE/login.php"}}`, 1},                                         // URL scheme and host: any case
		{`{"url":{"full":"http://evil.example/LOGIN.php"}}`, 0},                                         // URL path: case-sensitive
		{`{"vulnerability":{"id":"cve-2024-3400"}}`, 1},                                                 // CVE ids: any case
	}
	for _, c := range cases {
		e.clock.Advance(2 * time.Hour)
		if got := len(matched(e.match(t, c.event))); got != c.hits {
			t.Errorf("%s: %d enrichments, want %d", c.event, got, c.hits)
		}
	}
}

func TestAlertDocument(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	event := `{"@timestamp":"2026-03-01T11:59:00.000Z","event":{"id":"evt-1","kind":"event","category":["network"]},` +
		`"message":"conn","rule":{"id":"fw-7","name":"allow out","ruleset":"fw"},"kibana.alert.severity":"low",` +
		`"threat":{"framework":"MITRE ATT&CK","enrichments":[{"matched":{"type":"investigation_time"}}]},` +
		`"source":{"ip":"10.1.1.1"},"destination":{"ip":"203.0.113.200","port":443}}`
	alerts := e.match(t, event)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts", len(alerts))
	}
	a := alerts[0]
	checks := map[string]any{
		"@timestamp":                 "2026-03-01T12:00:00.000Z",
		"event.id":                   "evt-1",
		"event.kind":                 "event",
		"message":                    "conn",
		"destination.port":           443.0,
		"rule.id":                    "ip",
		"rule.name":                  "Threat Intel IP Address Indicator Match",
		"rule.ruleset":               "fw",
		"threat.framework":           "MITRE ATT&CK",
		"kibana.alert.severity":      "critical",
		"kibana.alert.risk_score":    99.0,
		"kibana.alert.original_time": "2026-03-01T11:59:00.000Z",
		"kibana.alert.rule.rule_id":  "0c41e478-5263-4c69-8f9e-7dfd2c22da64",
		"kibana.alert.rule.type":     "threat_match",
		"kibana.alert.rule.name":     "Threat Intel IP Address Indicator Match",
	}
	for path, want := range checks {
		if got := get(a, path); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	if _, ok := a["kibana.alert.severity"]; ok {
		t.Error("the event's dotted kibana.alert.severity was kept beside the alert's")
	}
	ens := get(a, "threat.enrichments").([]any)
	if len(ens) != 3 {
		t.Fatalf("%d enrichments, want the event's own and two: %v", len(ens), ens)
	}
	if get(ens[0].(map[string]any), "matched.type") != "investigation_time" {
		t.Errorf("the event's own enrichment is not first: %v", ens[0])
	}
	want := map[string]any{
		"indicator": map[string]any{"type": "ipv4-addr", "name": "203.0.113.0/24", "ip": "203.0.113.0/24"},
		"feed":      map[string]any{"name": "Test Feed"},
		"matched": map[string]any{
			"atomic": "203.0.113.200", "field": "destination.ip", "id": "203.0.113.0/24",
			"index": dsIOC, "type": "indicator_match_rule",
		},
	}
	// The longest prefix first, as the index reports them.
	if get(ens[1].(map[string]any), "matched.id") != "203.0.113.128/25" {
		t.Errorf("first enrichment %v", ens[1])
	}
	if got, _ := json.Marshal(ens[2]); string(got) != string(mustJSON(want)) {
		t.Errorf("enrichment\n got %s\nwant %s", got, mustJSON(want))
	}

	// The CVE rule copies rapid7.tc.vulnerability, as Elastic's rule does.
	e.clock.Advance(2 * time.Hour)
	alerts = e.match(t, `{"vulnerability":{"id":"CVE-2024-3400"},"host":{"name":"fw1"}}`)
	en := get(alerts[0], "threat.enrichments").([]any)[0].(map[string]any)
	if got := fmt.Sprint(en["indicator"]); got != "map[cvss_score:9.8 exploit_availability:true id:CVE-2024-3400]" {
		t.Errorf("cve indicator %s", got)
	}
	if get(en, "feed.name") != "ti_rapid7_threat_command.vulnerability" || get(en, "matched.index") != "ti_rapid7_threat_command.vulnerability" {
		t.Errorf("cve feed and index: %v", en)
	}
	if get(alerts[0], "kibana.alert.original_time") != nil {
		t.Error("original_time without an event @timestamp")
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func alertIDs(t *testing.T, e *env, event string) []string {
	t.Helper()
	dets, err := e.eng.Match(t.Context(), []byte(event))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range dets {
		ids = append(ids, d.RuleID+":"+d.ID)
	}
	return ids
}

func TestAlertIDs(t *testing.T) {
	cfg := detect.Config{SuppressionWindow: 0}
	e1 := newEnv(t, cfg, fixture())
	// Another store whose extra indicators shift every Ref.
	extra := append(fixture(), indicator("1.1.1.1", "ipv4-addr", map[string]any{"ip": "1.1.1.1"}, far),
		indicator("100.64.0.1", "ipv4-addr", map[string]any{"ip": "100.64.0.1"}, far))
	e2 := newEnv(t, cfg, extra)
	withID := `{"event":{"id":"e-1"},"source":{"ip":"198.51.100.7"},"url":{"domain":"evil.example"}}`
	a1, a2 := alertIDs(t, e1, withID), alertIDs(t, e2, withID)
	if len(a1) != 2 || !slices.Equal(a1, a2) {
		t.Fatalf("ids differ between stores: %v, %v", a1, a2)
	}
	if again := alertIDs(t, e1, withID); !slices.Equal(again, a1) {
		t.Errorf("the same event again: %v, want %v", again, a1)
	}
	// Identity is event.id: another line with the same id gives the same alert id.
	if got := alertIDs(t, e1, `{"event":{"id":"e-1","kind":"x"},"source.ip":"198.51.100.7"}`); got[0] != a1[0] {
		t.Errorf("same event.id, other fields: %v, want %v", got, a1[0])
	}
	if got := alertIDs(t, e1, `{"event":{"id":"e-2"},"source":{"ip":"198.51.100.7"}}`); got[0] == a1[0] {
		t.Error("another event.id gave the same alert id")
	}
	// Without event.id the line identifies the event.
	noID := `{"source":{"ip":"198.51.100.7"},"message":"a"}`
	x1, x2 := alertIDs(t, e1, noID), alertIDs(t, e1, " "+noID+"\r\n")
	if !slices.Equal(x1, x2) || slices.Equal(x1, alertIDs(t, e1, `{"source":{"ip":"198.51.100.7"},"message":"b"}`)) {
		t.Errorf("line identity: %v %v", x1, x2)
	}
	// More indicators, another id.
	if got := alertIDs(t, e1, `{"event":{"id":"e-1"},"source":{"ip":"198.51.100.7"},"destination":{"ip":"203.0.113.1"}}`); got[0] == a1[0] {
		t.Error("an alert with another indicator set kept the id")
	}
}

func TestSuppression(t *testing.T) {
	e := newEnv(t, detect.Config{SuppressionWindow: time.Hour}, fixture())
	ev := func(id, ip string) string {
		return fmt.Sprintf(`{"event":{"id":%q},"destination":{"ip":%q}}`, id, ip)
	}
	count := func(event string) int {
		t.Helper()
		return len(e.match(t, event))
	}
	if count(ev("a", "198.51.100.7")) != 1 {
		t.Fatal("first alert not raised")
	}
	e.clock.Advance(59 * time.Minute)
	if count(ev("a", "198.51.100.7")) != 0 {
		t.Error("the same (rule, event, indicator) raised twice within the window")
	}
	if count(ev("b", "198.51.100.7")) != 1 {
		t.Error("another event was suppressed")
	}
	// Same event, another indicator: an alert with the new indicator only.
	alerts := e.match(t, `{"event":{"id":"a"},"destination":{"ip":"198.51.100.7"},"source":{"ip":"203.0.113.1"}}`)
	if got := matched(alerts); !slices.Equal(got, []string{"ip source.ip=203.0.113.1→203.0.113.0/24"}) {
		t.Errorf("partly suppressed alert: %q", got)
	}
	e.clock.Advance(time.Minute) // an hour after the first
	if count(ev("a", "198.51.100.7")) != 1 {
		t.Error("not raised again after the window")
	}
	st := e.eng.Stats()
	if st.Alerts != 4 || st.Suppressed != 1 || st.Events != 5 {
		t.Errorf("stats %+v", st)
	}

	// A window of 0 turns suppression off.
	off := newEnv(t, detect.Config{}, fixture())
	for range 3 {
		if len(off.match(t, ev("a", "198.51.100.7"))) != 1 {
			t.Fatal("suppressed without a window")
		}
	}
}

func TestSuppressionMemoryBound(t *testing.T) {
	var docs []vigil.Document
	for i := range 50 {
		ip := fmt.Sprintf("198.18.0.%d", i)
		docs = append(docs, indicator(ip, "ipv4-addr", map[string]any{"ip": ip}, far))
	}
	e := newEnv(t, detect.Config{SuppressionWindow: time.Hour, SuppressionMax: 10}, docs)
	for i := range 50 {
		e.match(t, fmt.Sprintf(`{"event":{"id":"x"},"source":{"ip":"198.18.0.%d"}}`, i))
	}
	// Only the last 10 triples are remembered: an old one alerts again,
	// a recent one does not.
	if len(e.match(t, `{"event":{"id":"x"},"source":{"ip":"198.18.0.0"}}`)) != 1 {
		t.Error("a forgotten triple was still suppressed")
	}
	if len(e.match(t, `{"event":{"id":"x"},"source":{"ip":"198.18.0.49"}}`)) != 0 {
		t.Error("a recent triple was not suppressed")
	}
}

func TestExpiryMidRun(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	event := `{"source":{"ip":"192.0.2.1"}}`
	if len(e.match(t, event)) != 1 {
		t.Fatal("live indicator did not match")
	}
	e.clock.Advance(29 * time.Minute)
	if len(e.match(t, event)) != 1 {
		t.Fatal("indicator stopped matching before it expired")
	}
	e.clock.Advance(time.Minute) // now == expiry
	if len(e.match(t, event)) != 0 {
		t.Error("expired indicator still matched, with the same snapshot")
	}
	if len(e.match(t, `{"source":{"ip":"198.51.100.7"}}`)) != 1 {
		t.Error("unexpired indicators stopped matching")
	}
}

func TestRuleConfig(t *testing.T) {
	cfg := detect.Config{
		Actions: []string{"hook", "mail"},
		Rules: map[string]detect.RuleConfig{
			"ip":     {Enabled: true, Mappings: []string{"client.ip", "host.ip", "source.ip"}, Actions: []string{"pager", "hook"}},
			"domain": {Enabled: false},
		},
	}
	e := newEnv(t, cfg, fixture())
	dets, err := e.eng.Match(t.Context(), []byte(`{"client":{"ip":"198.51.100.7"},"host":{"ip":["10.0.0.1","203.0.113.5"]},"url":{"domain":"evil.example"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 || dets[0].RuleID != "ip" {
		t.Fatalf("alerts %+v: want one of rule ip (domain is off)", dets)
	}
	if !slices.Equal(dets[0].Actions, []string{"hook", "mail", "pager"}) {
		t.Errorf("actions %v", dets[0].Actions)
	}
	var a map[string]any
	json.Unmarshal(dets[0].Source, &a)
	if got := matched([]map[string]any{a}); !slices.Equal(got, []string{"ip client.ip=198.51.100.7→198.51.100.7", "ip host.ip=203.0.113.5→203.0.113.0/24"}) {
		t.Errorf("extra mappings: %q", got)
	}
	var ids []string
	for _, r := range e.eng.Rules() {
		ids = append(ids, r.ID)
		if r.ID == "ip" && !slices.Equal(r.Fields, []string{"source.ip", "destination.ip", "client.ip", "host.ip"}) {
			t.Errorf("ip fields %v", r.Fields)
		}
	}
	if !slices.Equal(ids, []string{"ip", "hash", "url", "registry", "email", "cve"}) {
		t.Errorf("enabled rules %v", ids)
	}

	ds := detect.Deliveries(dets)
	if len(ds) != 3 {
		t.Fatalf("deliveries %+v", ds)
	}
	for i, c := range []string{"hook", "mail", "pager"} {
		d := ds[i]
		if d.Connector != c || d.Key != dets[0].ID || string(d.Body) != string(dets[0].Source) ||
			d.Subject != "vigil: Threat Intel IP Address Indicator Match: client.ip 198.51.100.7 and 1 more" {
			t.Errorf("delivery %d: %+v", i, d)
		}
	}
	if got := detect.Deliveries([]vigil.Detection{{ID: "x"}}); len(got) != 0 {
		t.Errorf("deliveries without actions: %v", got)
	}

	_, err = detect.New(detect.Config{Rules: map[string]detect.RuleConfig{"ipv4": {}}}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `unknown rule id "ipv4" (rule ids: ip, hash, url, registry, email, cve, domain)`) {
		t.Errorf("unknown rule id: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	for _, line := range []string{`{"source":{"ip":"198.51.100.7"}`, `not json`, `["198.51.100.7"]`} {
		_, err := e.eng.Match(t.Context(), []byte(line))
		var se *detect.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s: error %v", line, err)
		}
	}
	if len(e.match(t, `{"source":{"ip":"198.51.100.7"}}`)) != 1 {
		t.Error("a good line after bad ones did not match")
	}
	if st := e.eng.Stats(); st.Malformed != 3 || st.Events != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestNoSnapshot: no snapshot matches nothing; a snapshot without a store
// behind it alerts with what the index knew.
func TestNoSnapshot(t *testing.T) {
	eng, err := detect.New(detect.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dets, err := eng.Match(t.Context(), []byte(`{"source":{"ip":"198.51.100.7"}}`))
	if err != nil || len(dets) != 0 {
		t.Fatalf("no snapshot: %v, %v", dets, err)
	}
	never := fixture()
	for i := range never {
		never[i].ExpiresAt = time.Time{} // the engine runs on the wall clock
	}
	snap, err := detect.NewSnapshot(never)
	if err != nil {
		t.Fatal(err)
	}
	eng.Swap(snap)
	dets, err = eng.Match(t.Context(), []byte(`{"source":{"ip":"198.51.100.7"}}`))
	if err != nil || len(dets) != 1 {
		t.Fatalf("after Swap: %v, %v", dets, err)
	}
	if !strings.Contains(string(dets[0].Source), `{"indicator":{},"feed":{"name":"test.ioc"},"matched":{"atomic":"198.51.100.7","field":"source.ip","id":"198.51.100.7","index":"test.ioc","type":"indicator_match_rule"}}`) {
		t.Errorf("enrichment without a store: %s", dets[0].Source)
	}
	if eng.Stats().MissingDocs != 1 {
		t.Errorf("stats %+v", eng.Stats())
	}
}

// FuzzAlert checks that every alert is one valid JSON object that keeps
// the event's members, whatever the event.
func FuzzAlert(f *testing.F) {
	for _, s := range []string{
		`{"source":{"ip":"198.51.100.7"},"event":{"id":"x"}}`,
		`{"@timestamp":"t","rule":{"id":1},"threat":{"enrichments":{"a":1}},"threat.enrichments":[1,2],"kibana":{"alert":{"x":1}},"url.domain":"a.evil.example"}`,
		`{"rule":"x","threat":[],"kibana":null,"destination.ip":["203.0.113.9","2001:db8::1"],"\u0072ule.id":"y"}`,
	} {
		f.Add([]byte(s))
	}
	never := fixture()
	for i := range never {
		never[i].ExpiresAt = time.Time{}
	}
	snap, err := detect.NewSnapshot(never)
	if err != nil {
		f.Fatal(err)
	}
	eng, err := detect.New(detect.Config{}, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	eng.Swap(snap)
	f.Fuzz(func(t *testing.T, line []byte) {
		dets, err := eng.Match(t.Context(), line)
		if err != nil {
			return
		}
		var event map[string]any
		if err := json.Unmarshal(line, &event); err != nil {
			t.Fatalf("an event that encoding/json refuses matched: %v", err)
		}
		for _, d := range dets {
			var a map[string]any
			if err := json.Unmarshal(d.Source, &a); err != nil {
				t.Fatalf("alert is not JSON: %v\n%s", err, d.Source)
			}
			for k := range event {
				switch {
				case k == "rule.id", k == "rule.name", k == "threat.enrichments", k == "kibana.alert", strings.HasPrefix(k, "kibana.alert."):
					continue
				}
				if _, ok := a[k]; !ok {
					t.Fatalf("alert lost the event's %q: %s", k, d.Source)
				}
			}
			if get(a, "rule.id") != d.RuleID || get(a, "kibana.alert.uuid") != d.ID {
				t.Fatalf("alert without its rule or id: %s", d.Source)
			}
		}
	})
}

// TestMatchAhead: MatchAhead, given each next line, raises the same alerts
// with the same stats, and records the same sightings, as Match line by
// line: with malformed lines, escaped values (decoded into the
// extractor's buffer while the next line is read), a next line that is
// not the one matched next, or as long as it (read again), and a copy of
// it (the same bytes elsewhere: read again).
func TestMatchAhead(t *testing.T) {
	lines := []string{
		`{"@timestamp":"` + at(-2*time.Hour) + `","event":{"id":"a1"},"source":{"ip":"198.51.100.7"},"destination":{"ip":"10.0.0.1"}}`,
		`{"event":{"id":"a2"},"url":{"full":"http:\/\/evil.example\/login.php","domain":"ev\u0069l.example"}}`,
		`{"source":{"ip":"198.51.100.7"}`,
		`{"@timestamp":"` + at(-time.Hour) + `","event":{"id":"a3"},"file":{"hash":{"md5":"44D88612FEA8A8F36DE82E1278ABB02F"}},"source":{"ip":"10.0.0.1"}}`,
		`not json`,
		`{"event":{"id":"a4"},"registry":{"path":"HKEY_LOCAL_MACHINE\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\updater"}}`,
		`{"event":{"id":"a5"},"email":{"from":{"address":"Phish@Evil.Example"}},"dns":{"question":{"name":"x.evil.example"}}}`,
		`{"event":{"id":"a6"},"vulnerability":{"id":"CVE-2024-3400"},"source":{"ip":"10.0.0.2"}}`,
		`{"event":{"id":"a7"},"source":{"ip":"10.0.0.1"},"destination":{"ip":"2001:db8::5"}}`,
	}
	type run struct {
		alerts    []string
		stats     detect.Stats
		sightings []string
	}
	do := func(t *testing.T, ahead func(i int) (next []byte, ok bool)) run {
		e := newEnv(t, detect.Config{}, fixture())
		e.eng.RecordSightings(detect.SightingsConfig{Store: e.db, Window: week})
		bs := make([][]byte, len(lines))
		for i, l := range lines {
			bs[i] = []byte(l)
		}
		var r run
		for i, b := range bs {
			var dets []vigil.Detection
			var err error
			if next, ok := ahead(i); ok {
				if next == nil && i+1 < len(bs) {
					next = bs[i+1]
				}
				dets, err = e.eng.MatchAhead(t.Context(), b, next)
			} else {
				dets, err = e.eng.Match(t.Context(), b)
			}
			var se *detect.SyntaxError
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("line %d: %v", i, err)
			}
			for _, d := range dets {
				r.alerts = append(r.alerts, string(d.Source))
			}
		}
		if err := e.eng.FlushSightings(t.Context()); err != nil {
			t.Fatal(err)
		}
		r.stats, r.sightings = e.eng.Stats(), storedSightings(t, e.db, t0.Add(-week))
		return r
	}
	want := do(t, func(int) ([]byte, bool) { return nil, false })
	if want.stats.Alerts < 6 || want.stats.Malformed != 2 || len(want.sightings) < 2 {
		t.Fatalf("the lines do not cover alerts, malformed lines and sightings: %+v, %d sightings", want.stats, len(want.sightings))
	}
	for _, c := range []struct {
		name  string
		ahead func(i int) ([]byte, bool)
	}{
		{"every next line", func(int) ([]byte, bool) { return nil, true }},
		{"every other line", func(i int) ([]byte, bool) { return nil, i%2 == 0 }},
		{"another line", func(i int) ([]byte, bool) { return []byte(lines[(i+3)%len(lines)]), true }},
		{"another line as long", func(i int) ([]byte, bool) {
			if i+1 < len(lines) {
				return []byte(`{"x":"` + strings.Repeat("y", len(lines[i+1])-8) + `"}`), true
			}
			return nil, true
		}},
		{"a copy", func(i int) ([]byte, bool) {
			if i+1 < len(lines) {
				return []byte(lines[i+1]), true
			}
			return nil, true
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := do(t, c.ahead)
			if !slices.Equal(got.alerts, want.alerts) {
				t.Errorf("alerts:\n%s\nwant\n%s", strings.Join(got.alerts, "\n"), strings.Join(want.alerts, "\n"))
			}
			if got.stats != want.stats {
				t.Errorf("stats %+v, want %+v", got.stats, want.stats)
			}
			if !slices.Equal(got.sightings, want.sightings) {
				t.Errorf("sightings:\n%s\nwant\n%s", strings.Join(got.sightings, "\n"), strings.Join(want.sightings, "\n"))
			}
		})
	}
}

// TestMatchAheadAllocs: an event whose values match nothing and were not
// seen before, URLs among them (prepared for their lookups while the next
// line is read), costs no allocation once the Engine's buffers have grown.
func TestMatchAheadAllocs(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	lines := make([][]byte, 600)
	for i := range lines {
		lines[i] = fmt.Appendf(nil, `{"event":{"id":"n%d"},"url":{"full":"https://miss%d.example/a?b=%d","original":"miss%d.example/x"},"source":{"ip":"192.0.2.%d"}}`, i, i, i, i, i)
	}
	ctx := t.Context()
	i := 0
	step := func() {
		if _, err := e.eng.MatchAhead(ctx, lines[i], lines[i+1]); err != nil {
			t.Fatal(err)
		}
		i++
	}
	for range 50 {
		step()
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Errorf("%v allocations an event, want 0", n)
	}
}
