package mispfeed_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/mispfeed"
	"github.com/vigil-ti/vigil/internal/mispfeed/mispfake"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// clock is a clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t.UTC()
	c.mu.Unlock()
}

func (c *clock) add(d time.Duration) { c.set(c.Now().Add(d)) }

// t0 is the tests' start time: 2025-03-14 09:30 UTC.
var t0 = time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)

// env is a vigil with a real store, a MISP feed service and an HTTP server.
type env struct {
	t     *testing.T
	dir   string
	cfg   *config.MISPFeeds
	clock *clock
	db    *sqlite.DB
	svc   *mispfeed.Service
	srv   *httptest.Server
	check *feedChecker
}

const baseFeeds = `feeds:
  misp:
    org: {name: Example Org}
    admin_token: ${ADMIN_TOKEN}
    groups:
      - name: all
      - name: phish
        types: [domain-name, url]
      - name: high
        min_confidence: High
    devices:
      - name: SOC MISP
        username: soc
        password: ${SOC_PW}
        groups: [all, phish, high]
      - name: small
        username: small
        password: ${SMALL_PW}
        limit: 3
        groups: [all]
`

var feedEnv = map[string]string{"SOC_PW": "soc-secret", "SMALL_PW": "small-secret", "ADMIN_TOKEN": "admin-token-123"}

func parseFeeds(t testing.TB, yaml string) *config.MISPFeeds {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml), func(k string) string { return feedEnv[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Feeds.MISP
}

func newEnv(t *testing.T, yaml string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), cfg: parseFeeds(t, yaml), clock: &clock{t: t0}, check: newFeedChecker(t)}
	e.open()
	t.Cleanup(e.close)
	return e
}

func (e *env) open() {
	e.t.Helper()
	db, err := sqlite.Open(e.t.Context(), e.dir, sqlite.Options{Clock: e.clock, MergeDocs: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	e.db = db
	e.svc = &mispfeed.Service{Store: db.MISP(), Live: db, Config: e.cfg, Clock: e.clock}
	if err := e.svc.Sync(e.t.Context()); err != nil {
		e.t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.svc.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot) // what the rest of the API would answer
	})))
}

func (e *env) close() {
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
	if e.db != nil {
		e.db.Close()
		e.db = nil
	}
}

// restart closes everything and opens it again on the same data directory.
func (e *env) restart() {
	e.close()
	e.open()
}

// write writes indicator (or alert) documents as one page.
func (e *env) write(docs ...vigil.Document) {
	e.t.Helper()
	if _, err := e.db.WritePage(e.t.Context(), vigil.Page{Source: "test", Dataset: docs[0].Dataset, Docs: docs}); err != nil {
		e.t.Fatal(err)
	}
}

// misp returns a MISP instance with a feed of group for a device, every
// manifest and event it receives checked by the feed checker.
func (e *env) misp(user, pass, group string) *mispfake.Instance {
	h := http.Header{}
	if user != "" {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		h.Set("Authorization", req.Header.Get("Authorization"))
	}
	m := mispfake.New(e.srv.URL+"/misp/"+group+"/", h)
	m.Check = e.check.check
	return m
}

func (e *env) device(name string) mispfeed.Device {
	e.t.Helper()
	d, err := e.db.MISP().DeviceByName(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// iocOpts shape a test indicator document.
type iocOpts struct {
	dataset    string
	ts         time.Time
	expires    time.Time
	confidence string
	severity   string
	providers  []string
	tags       []string
	tlp        string
	related    map[string][]string // threat_actors, malware, campaigns
	extra      map[string]any      // merged into threat.indicator
}

// ioc returns an indicator document in the shape of the Threat Command
// normalizer's output.
func ioc(typ, val string, o iocOpts) vigil.Document {
	if o.dataset == "" {
		o.dataset = "ti_rapid7_threat_command.ioc"
	}
	if o.ts.IsZero() {
		o.ts = t0.Add(-time.Hour)
	}
	if o.expires.IsZero() {
		o.expires = o.ts.Add(90 * 24 * time.Hour)
	}
	if o.confidence == "" {
		o.confidence = "High"
	}
	if o.providers == nil {
		o.providers = []string{"Test Feed"}
	}
	ind := map[string]any{
		"type": typ, "name": val, "confidence": o.confidence, "provider": o.providers,
		"first_seen": o.ts.Add(-48 * time.Hour).Format(time.RFC3339Nano), "last_seen": o.ts.Add(-time.Hour).Format(time.RFC3339Nano),
		"modified_at": o.ts.Format(time.RFC3339Nano),
	}
	switch typ {
	case "domain-name":
		ind["url"] = map[string]any{"domain": val}
	case "url":
		ind["url"] = map[string]any{"original": val, "full": val}
	case "ipv4-addr", "ipv6-addr":
		ind["ip"] = val
	case "email-addr":
		ind["email"] = map[string]any{"address": val}
	case "file":
		f := map[int]string{32: "md5", 40: "sha1", 64: "sha256"}[len(val)]
		ind["file"] = map[string]any{"hash": map[string]any{f: val}}
	}
	if o.tlp != "" {
		ind["marking"] = map[string]any{"tlp": o.tlp}
	}
	for k, v := range o.extra {
		ind[k] = v
	}
	tc := map[string]any{"value": val}
	if o.severity != "" {
		tc["severity"] = o.severity
	}
	if o.related != nil {
		tc["related"] = o.related
	}
	src := map[string]any{
		"@timestamp": o.ts.Format(time.RFC3339Nano),
		"event":      map[string]any{"dataset": o.dataset, "kind": "enrichment", "category": []string{"threat"}, "type": []string{"indicator"}},
		"tags":       append([]string{"forwarded", "rapid7-threat-command-ioc"}, o.tags...),
		"threat":     map[string]any{"indicator": ind},
		"rapid7":     map[string]any{"tc": map[string]any{"ioc": tc}},
	}
	b, err := json.Marshal(src)
	if err != nil {
		panic(err)
	}
	return vigil.Document{Dataset: o.dataset, View: vigil.ViewIndicators, Key: val, Type: typ, Timestamp: o.ts, ExpiresAt: o.expires, Source: b}
}

// alert returns an alert document that names related IOCs.
func alert(id string, iocs ...string) vigil.Document {
	b, _ := json.Marshal(map[string]any{
		"@timestamp": t0.Add(-time.Hour).Format(time.RFC3339Nano),
		"event":      map[string]any{"dataset": "ti_rapid7_threat_command.alert", "id": id, "kind": "alert"},
		"rapid7":     map[string]any{"tc": map[string]any{"alert": map[string]any{"id": id, "related_iocs": iocs}}},
	})
	return vigil.Document{Dataset: "ti_rapid7_threat_command.alert", View: vigil.ViewAlerts, Key: id, Type: "Phishing",
		Timestamp: t0.Add(-time.Hour), ExpiresAt: t0.Add(180 * 24 * time.Hour), Source: b}
}

// moduleRoot is the directory of go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test")
		}
		dir = parent
	}
}

// mispReference is ../shared/reference/misp beside the module, or "" when
// ../shared is absent. $VIGIL_SHARED names another shared directory (for
// a git worktree that has none beside it).
func mispReference(t testing.TB) string {
	shared := os.Getenv("VIGIL_SHARED")
	if shared == "" {
		shared = filepath.Join(moduleRoot(t), "..", "shared")
	}
	dir := filepath.Join(shared, "reference", "misp")
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}
