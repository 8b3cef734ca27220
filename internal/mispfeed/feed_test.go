package mispfeed_test

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/mispfeed"
	"github.com/vigil-ti/vigil/internal/mispfeed/mispfake"
)

func get(t *testing.T, url, user, pass string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("Accept-Encoding", "identity") // the transport would ask for gzip and decode it
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed, no gzip decoded
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func manifestOf(t *testing.T, b []byte) map[string]mispfeed.ManifestEntry {
	t.Helper()
	var m map[string]mispfeed.ManifestEntry
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest: %v: %s", err, b)
	}
	return m
}

// TestRoutes covers every route and authentication case of the feed.
func TestRoutes(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.write(ioc("domain-name", "login-update.example", iocOpts{}), ioc("ipv4-addr", "203.0.113.7", iocOpts{}))
	base := e.srv.URL + "/misp/"
	// The first pull makes the event the other routes serve.
	resp, body := get(t, base+"all/manifest.json", "soc", "soc-secret")
	if resp.StatusCode != 200 {
		t.Fatalf("manifest: %d %s", resp.StatusCode, body)
	}
	var uuid string
	for u := range manifestOf(t, body) {
		uuid = u
	}
	if uuid != mispfeed.EventUUID("SOC MISP", "all", "2025-03-14") {
		t.Fatalf("event %s", uuid)
	}
	cases := []struct {
		name, path, user, pass string
		method                 string
		code                   int
		want                   string // in the body
	}{
		{"no auth", "all/manifest.json", "", "", "GET", 401, "basic auth required"},
		{"wrong password", "all/manifest.json", "soc", "nope", "GET", 401, "wrong password"},
		{"unknown user", "all/manifest.json", "who", "soc-secret", "GET", 401, "unknown username"},
		{"another device's password", "all/manifest.json", "soc", "small-secret", "GET", 401, ""},
		{"group not allowed", "phish/manifest.json", "small", "small-secret", "GET", 403, "may not pull group phish"},
		{"unknown group", "nope/manifest.json", "soc", "soc-secret", "GET", 403, "may not pull group nope"},
		{"group not allowed, event", "phish/" + uuid + ".json", "small", "small-secret", "GET", 403, ""},
		{"manifest", "all/manifest.json", "soc", "soc-secret", "GET", 200, uuid},
		{"manifest, trailing slash of the feed URL", "all//manifest.json", "soc", "soc-secret", "GET", 200, uuid},
		{"repeated slashes everywhere", "/all///manifest.json", "soc", "soc-secret", "GET", 200, uuid},
		{"event", "all/" + uuid + ".json", "soc", "soc-secret", "GET", 200, `"info":"all - 2025-03-14"`},
		{"event, upper case UUID", "all//" + strings.ToUpper(uuid) + ".json", "soc", "soc-secret", "GET", 200, `"uuid":"` + uuid + `"`},
		{"event of another group", "phish/" + uuid + ".json", "soc", "soc-secret", "GET", 404, "no event"},
		{"event of another device", "all/" + uuid + ".json", "small", "small-secret", "GET", 404, "no event"},
		{"unknown event", "all/6cd1aa97-b555-54a3-b92f-1d13c14deb06.json", "soc", "soc-secret", "GET", 404, "no event"},
		{"not a UUID", "all/manifest2.json", "soc", "soc-secret", "GET", 404, "no file manifest2.json"},
		{"hashes", "all/hashes.csv", "soc", "soc-secret", "GET", 200, "," + uuid + "\n"},
		{"too deep", "all/x/manifest.json", "soc", "soc-secret", "GET", 404, "not a feed file"},
		{"group only", "all/", "soc", "soc-secret", "GET", 404, "not a feed file"},
		{"POST", "all/manifest.json", "soc", "soc-secret", "POST", 405, "read with GET"},
		{"HEAD", "all/manifest.json", "soc", "soc-secret", "HEAD", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), c.method, base+c.path, nil)
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			resp, body := do(t, req)
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.want) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, c.code, c.want)
			}
			if c.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
				t.Errorf("401 without WWW-Authenticate: %v", resp.Header)
			}
			if c.code == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
			if strings.Contains(string(body), "secret") {
				t.Errorf("a password in the answer: %s", body)
			}
		})
	}
	// Other paths go to the rest of the server, untouched.
	for _, p := range []string{"/healthz", "/mispx/all/manifest.json", "/api/v1/devicesx"} {
		if resp, _ := get(t, e.srv.URL+p, "soc", "soc-secret"); resp.StatusCode != http.StatusTeapot {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

// TestManifestETag checks If-None-Match: a 304 while the manifest is the
// same, a new ETag when it changes, one ETag per content encoding.
func TestManifestETag(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.write(ioc("domain-name", "a.example", iocOpts{}))
	url := e.srv.URL + "/misp/all/manifest.json"
	resp, body := get(t, url, "soc", "soc-secret")
	tag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || !strings.HasPrefix(tag, `"`) || len(manifestOf(t, body)) != 1 {
		t.Fatalf("%d %q %s", resp.StatusCode, tag, body)
	}
	for _, inm := range []string{tag, `"x", ` + tag, "W/" + tag, "*"} {
		resp, b := get(t, url, "soc", "soc-secret", "If-None-Match", inm)
		if resp.StatusCode != 304 || len(b) != 0 || resp.Header.Get("ETag") != tag {
			t.Fatalf("If-None-Match %s: %d %q %s", inm, resp.StatusCode, resp.Header.Get("ETag"), b)
		}
	}
	resp, _ = get(t, url, "soc", "soc-secret", "If-None-Match", `"other"`)
	if resp.StatusCode != 200 {
		t.Fatalf("other tag: %d", resp.StatusCode)
	}
	// gzip: its own ETag, a gzip body holding the same manifest.
	resp, zbody := get(t, url, "soc", "soc-secret", "Accept-Encoding", "gzip")
	gzTag := resp.Header.Get("ETag")
	if resp.Header.Get("Content-Encoding") != "gzip" || gzTag == tag || gzTag == "" {
		t.Fatalf("gzip: %v (plain %s)", resp.Header, tag)
	}
	zr, err := gzip.NewReader(bytes.NewReader(zbody))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, body) {
		t.Fatalf("gzip body %s, plain %s", plain, body)
	}
	if resp, _ = get(t, url, "soc", "soc-secret", "Accept-Encoding", "gzip", "If-None-Match", gzTag); resp.StatusCode != 304 {
		t.Fatalf("gzip 304: %d", resp.StatusCode)
	}
	// A new IOC changes the manifest (the event's timestamp grows).
	e.clock.add(time.Minute)
	e.write(ioc("domain-name", "b.example", iocOpts{ts: t0}))
	resp, _ = get(t, url, "soc", "soc-secret", "If-None-Match", tag)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == tag {
		t.Fatalf("changed manifest: %d %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
}

// TestPullSemantics pulls as MISP does, day after day, and checks what
// MISP ends up holding.
func TestPullSemantics(t *testing.T) {
	e := newEnv(t, baseFeeds)
	ctx := t.Context()
	var docs = []struct{ typ, val string }{
		{"domain-name", "login-update.example"}, {"url", "https://login-update.example/owa/"},
		{"ipv4-addr", "203.0.113.7"}, {"email-addr", "billing@login-update.example"},
		{"file", strings.Repeat("ab", 16)}, {"file", strings.Repeat("cd", 20)}, {"file", strings.Repeat("ef", 32)},
	}
	for _, d := range docs {
		e.write(ioc(d.typ, d.val, iocOpts{}))
	}
	m := e.misp("soc", "soc-secret", "all")

	// Day 1, first pull: the whole live set, in one event.
	st, err := m.Fetch(ctx)
	if err != nil || st.Added != 1 || st.NewAttrs != len(docs) {
		t.Fatalf("first pull: %+v %v", st, err)
	}
	day1 := mispfeed.EventUUID("SOC MISP", "all", "2025-03-14")
	if ev := m.Events()[day1]; ev == nil || ev.Info != "all - 2025-03-14" || len(ev.Attributes) != len(docs) {
		t.Fatalf("day 1 event: %+v", m.Events())
	}
	if !e.device("SOC MISP").LastPull.Equal(t0) {
		t.Fatalf("last pull %v", e.device("SOC MISP").LastPull)
	}

	// Same day, nothing new: the manifest is the same; nothing is downloaded.
	e.clock.add(time.Hour)
	st, err = m.Fetch(ctx)
	if err != nil || !st.NotModified || st.Added+st.Edited != 0 {
		t.Fatalf("second pull: %+v %v", st, err)
	}

	// Same day, a new IOC: appended to the day's event, which MISP merges.
	e.write(ioc("domain-name", "second.example", iocOpts{ts: e.clock.Now()}))
	e.clock.add(time.Minute)
	st, err = m.Fetch(ctx)
	if err != nil || st.Edited != 1 || st.NewAttrs != 1 || len(m.Events()) != 1 {
		t.Fatalf("same-day pull: %+v %v", st, err)
	}

	// Day 2: a new IOC goes into a new event named for the day.
	e.clock.set(t0.Add(24 * time.Hour))
	e.write(ioc("domain-name", "third.example", iocOpts{ts: e.clock.Now().Add(-time.Minute)}))
	st, err = m.Fetch(ctx)
	day2 := mispfeed.EventUUID("SOC MISP", "all", "2025-03-15")
	if err != nil || st.Added != 1 || st.Skipped != 1 || st.NewAttrs != 1 || len(m.Events()[day2].Attributes) != 1 {
		t.Fatalf("day 2 pull: %+v %v", st, err)
	}

	// An IOC deleted in MISP stays deleted while it stays in the group...
	if m.DeleteAttribute("domain", "login-update.example") != 1 {
		t.Fatal("delete")
	}
	e.clock.add(time.Hour)
	if st, err = m.Fetch(ctx); err != nil || m.Values()["domain|login-update.example"] != 0 {
		t.Fatalf("pull after delete: %+v %v %v", st, err, m.Values())
	}
	// ...and comes again when it is part of a new event: it left the
	// group (expired) and came back.
	e.write(ioc("domain-name", "login-update.example", iocOpts{ts: e.clock.Now().Add(-time.Minute), expires: e.clock.Now().Add(-time.Second)}))
	e.clock.add(time.Hour)
	if _, err = m.Fetch(ctx); err != nil || m.Values()["domain|login-update.example"] != 0 {
		t.Fatalf("pull while expired: %v %v", err, m.Values())
	}
	e.clock.set(t0.Add(48 * time.Hour))
	e.write(ioc("domain-name", "login-update.example", iocOpts{ts: e.clock.Now().Add(-time.Minute)}))
	st, err = m.Fetch(ctx)
	day3 := mispfeed.EventUUID("SOC MISP", "all", "2025-03-16")
	if err != nil || st.Added != 1 || m.Values()["domain|login-update.example"] != 1 || len(m.Events()[day3].Attributes) != 1 {
		t.Fatalf("comeback pull: %+v %v %v", st, err, m.Values())
	}

	// A deleted (blocklisted) event is not fetched again; its IOCs come
	// again only in a new event.
	m.DeleteEvent(day3)
	e.clock.add(time.Hour)
	if st, err = m.Fetch(ctx); err != nil || st.Blocked != 1 {
		t.Fatalf("blocked: %+v %v", st, err)
	}

	// Every IOC of the group, once (login-update.example is held twice,
	// once deleted, once in a blocked event: none live).
	want := map[string]int{}
	for _, d := range docs {
		want[map[string]string{"domain-name": "domain", "url": "url", "ipv4-addr": "ip-dst", "email-addr": "email-src"}[d.typ]+"|"+d.val]++
	}
	delete(want, "domain|login-update.example")
	for k := range want {
		if strings.HasPrefix(k, "|") {
			delete(want, k)
			want[map[int]string{32: "md5", 40: "sha1", 64: "sha256"}[len(k)-1]+k]++
		}
	}
	want["domain|second.example"], want["domain|third.example"] = 1, 1
	if got := m.Values(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("MISP holds %v\nwant %v", got, want)
	}
	if e.check.events == 0 || e.check.manifest == 0 {
		t.Fatal("nothing checked")
	}
}

// TestLimit checks that a manifest never holds more IOCs than the device's
// limit, that the first pull is capped to it (most severe first), and that
// later pulls push the oldest events out.
func TestLimit(t *testing.T) {
	e := newEnv(t, baseFeeds) // "small" has limit 3
	ctx := t.Context()
	sev := []string{"Low", "High", "Medium", "Low", "High"}
	for i, s := range sev {
		e.write(ioc("domain-name", fmt.Sprintf("d%d.example", i), iocOpts{severity: s, ts: t0.Add(-time.Duration(i) * time.Minute)}))
	}
	m := e.misp("small", "small-secret", "all")
	limitCheck := func() map[string]mispfake.ManifestEntry {
		t.Helper()
		man, err := m.FetchManifest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for u := range man {
			total += len(m.Events()[u].Attributes)
		}
		if total > 3 {
			t.Fatalf("manifest holds %d IOCs, limit 3", total)
		}
		return man
	}
	if _, err := m.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(func(yield func(string) bool) {
		for v := range m.Values() {
			yield(v)
		}
	})
	// High, High, then the newest Medium.
	if strings.Join(got, " ") != "domain|d1.example domain|d2.example domain|d4.example" {
		t.Fatalf("first pull, limit 3: %v", got)
	}
	if ev := m.Events()[mispfeed.EventUUID("small", "all", "2025-03-14")]; ev == nil {
		t.Fatal("no event")
	}
	limitCheck()
	// Those past the limit are not delivered later either: the device
	// was given the group once, up to its limit.
	e.clock.add(time.Hour)
	if st, err := m.Fetch(ctx); err != nil || st.NewAttrs != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	// Day 2: two new IOCs; the manifest is day 2 alone (2), as day 1 (3)
	// would pass the limit. MISP keeps day 1.
	e.clock.set(t0.Add(24 * time.Hour))
	e.write(ioc("domain-name", "n1.example", iocOpts{ts: e.clock.Now()}), ioc("domain-name", "n2.example", iocOpts{ts: e.clock.Now()}))
	if _, err := m.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	man := limitCheck()
	if len(man) != 1 || man[mispfeed.EventUUID("small", "all", "2025-03-15")].Info != "all - 2025-03-15" {
		t.Fatalf("day 2 manifest: %+v", man)
	}
	if len(m.Values()) != 5 {
		t.Fatalf("MISP holds %v", m.Values())
	}
	// Later the same day, two more: one fits the day's event (3), the other
	// is left out.
	e.clock.add(time.Hour)
	e.write(ioc("domain-name", "n3.example", iocOpts{ts: e.clock.Now(), severity: "High"}), ioc("domain-name", "n4.example", iocOpts{ts: e.clock.Now()}))
	if st, err := m.Fetch(ctx); err != nil || st.NewAttrs != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	limitCheck()
	if m.Values()["domain|n3.example"] != 1 {
		t.Fatalf("the High one first: %v", m.Values())
	}
	// The store keeps no event that the manifest left.
	evs, err := e.db.MISP().Events(ctx, e.device("small").ID, "all")
	if err != nil || len(evs) != 1 || evs[0].Attributes != 3 {
		t.Fatalf("stored events %+v %v", evs, err)
	}
}

// TestDeviceDiesAfterManifest: a pull that gets the manifest and dies
// before the events loses nothing; the next one downloads them.
func TestDeviceDiesAfterManifest(t *testing.T) {
	e := newEnv(t, baseFeeds)
	ctx := t.Context()
	e.write(ioc("domain-name", "a.example", iocOpts{}), ioc("url", "http://a.example/x", iocOpts{}))
	m := e.misp("soc", "soc-secret", "all")
	if _, err := m.FetchManifest(ctx); err != nil {
		t.Fatal(err)
	}
	// More IOCs arrive, the same day and the next.
	e.clock.add(time.Hour)
	e.write(ioc("domain-name", "b.example", iocOpts{ts: e.clock.Now()}))
	if _, err := m.FetchManifest(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.add(24 * time.Hour)
	e.write(ioc("domain-name", "c.example", iocOpts{ts: e.clock.Now()}))
	st, err := m.Fetch(ctx)
	if err != nil || st.Added != 2 || len(m.Values()) != 4 {
		t.Fatalf("%+v %v %v", st, err, m.Values())
	}
}

// TestNeverAnEmptyEvent: a device whose groups have no IOC gets an empty
// manifest, and no event is ever stored without attributes.
func TestNeverAnEmptyEvent(t *testing.T) {
	e := newEnv(t, baseFeeds)
	ctx := t.Context()
	e.write(ioc("ipv4-addr", "198.51.100.1", iocOpts{confidence: "Low"}))
	for _, g := range []string{"phish", "high"} { // no domain or URL; nothing High
		resp, body := get(t, e.srv.URL+"/misp/"+g+"/manifest.json", "soc", "soc-secret")
		if resp.StatusCode != 200 || string(body) != "{}" {
			t.Fatalf("%s: %d %s", g, resp.StatusCode, body)
		}
		e.clock.add(24 * time.Hour)
		if resp, body = get(t, e.srv.URL+"/misp/"+g+"/manifest.json", "soc", "soc-secret"); string(body) != "{}" {
			t.Fatalf("%s, second pull: %d %s", g, resp.StatusCode, body)
		}
		evs, err := e.db.MISP().Events(ctx, e.device("SOC MISP").ID, g)
		if err != nil || len(evs) != 0 {
			t.Fatalf("%v %v", evs, err)
		}
	}
	// A pull that finds only IOCs the day's event holds already adds no
	// event of a day with nothing new.
	resp, body := get(t, e.srv.URL+"/misp/all/manifest.json", "soc", "soc-secret")
	if resp.StatusCode != 200 || len(manifestOf(t, body)) != 1 {
		t.Fatalf("%s", body)
	}
	e.clock.add(24 * time.Hour)
	_, body = get(t, e.srv.URL+"/misp/all/manifest.json", "soc", "soc-secret")
	if len(manifestOf(t, body)) != 1 {
		t.Fatalf("an event for a day with nothing new: %s", body)
	}
}

// TestGroupFilters checks that each group carries what its filters select.
func TestGroupFilters(t *testing.T) {
	yaml := `feeds:
  misp:
    groups:
      - {name: types, types: [url, ipv6-addr]}
      - {name: providers, providers: [feed b]}
      - {name: datasets, datasets: [ti_threatconnect.indicator]}
      - {name: confidence, min_confidence: Medium}
      - {name: tags, tags: [APT]}
      - {name: both, types: [domain-name], tags: [apt]}
    devices:
      - {name: d, username: d, password: p, groups: [types, providers, datasets, confidence, tags, both]}
`
	e := newEnv(t, yaml)
	e.write(
		ioc("domain-name", "a.example", iocOpts{confidence: "Low", providers: []string{"Feed A"}, tags: []string{"apt"}}),
		ioc("url", "http://b.example/", iocOpts{confidence: "Medium", providers: []string{"Feed A", "Feed B"}}),
		ioc("ipv6-addr", "2001:db8:0:0::1", iocOpts{confidence: "High"}),
		ioc("mutex", "Global\\x", iocOpts{tags: []string{"apt"}}),
	)
	e.write(ioc("domain-name", "c.example", iocOpts{dataset: "ti_threatconnect.indicator", confidence: "None", tags: []string{"other"}}))
	want := map[string]string{
		"types":      "ip-dst|2001:db8::1 url|http://b.example/",
		"providers":  "url|http://b.example/",
		"datasets":   "domain|c.example",
		"confidence": "ip-dst|2001:db8::1 url|http://b.example/",
		"tags":       "domain|a.example",
		"both":       "domain|a.example",
	}
	for g, w := range want {
		m := e.misp("d", "p", g)
		if _, err := m.Fetch(t.Context()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for v := range m.Values() {
			got = append(got, v)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != w {
			t.Errorf("group %s: %v, want %s", g, got, w)
		}
	}
}

// TestRestart checks that device state and event UUIDs survive a restart:
// the same events, no IOC given twice, and the manifest unchanged.
func TestRestart(t *testing.T) {
	e := newEnv(t, baseFeeds)
	ctx := t.Context()
	e.write(ioc("domain-name", "a.example", iocOpts{}), ioc("domain-name", "b.example", iocOpts{}))
	m := e.misp("soc", "soc-secret", "all")
	if _, err := m.Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	_, before := get(t, e.srv.URL+"/misp/all/manifest.json", "soc", "soc-secret")
	dev := e.device("SOC MISP")
	e.restart()
	m.URL = e.srv.URL + "/misp/all/"
	_, after := get(t, e.srv.URL+"/misp/all/manifest.json", "soc", "soc-secret")
	if !bytes.Equal(before, after) {
		t.Fatalf("manifest changed across a restart:\n%s\n%s", before, after)
	}
	if d := e.device("SOC MISP"); d.ID != dev.ID || !d.CreatedAt.Equal(dev.CreatedAt) || !d.LastPull.Equal(t0) {
		t.Fatalf("device %+v, before %+v", d, dev)
	}
	e.clock.add(time.Hour)
	e.write(ioc("domain-name", "c.example", iocOpts{ts: e.clock.Now()}))
	e.restart()
	m.URL = e.srv.URL + "/misp/all/"
	st, err := m.Fetch(ctx)
	if err != nil || st.Edited != 1 || st.NewAttrs != 1 || len(m.Values()) != 3 {
		t.Fatalf("%+v %v %v", st, err, m.Values())
	}
}

// TestHashesCSV checks hashes.csv against the events the manifest lists.
func TestHashesCSV(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.write(ioc("domain-name", "login-update.example", iocOpts{}), ioc("file", strings.Repeat("0a", 32), iocOpts{}))
	m := e.misp("soc", "soc-secret", "all")
	if _, err := m.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	var want []string
	for u, ev := range m.Events() {
		for _, a := range ev.Attributes {
			sum := md5.Sum([]byte(a.Value))
			want = append(want, hex.EncodeToString(sum[:])+","+u)
		}
	}
	sort.Strings(want)
	resp, body := get(t, e.srv.URL+"/misp/all/hashes.csv", "soc", "soc-secret")
	got := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	sort.Strings(got)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%d %s\nwant %v", resp.StatusCode, body, want)
	}
	// misp.md's example line: md5 of login-update.example.
	if !strings.Contains(string(body), "b248035c595ccfd7d1398878baf46b3a,") {
		t.Fatalf("%s", body)
	}
}

// TestHEADDoesNotPull: HEAD shows the manifest without moving the state.
func TestHEADDoesNotPull(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.write(ioc("domain-name", "a.example", iocOpts{}))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, e.srv.URL+"/misp/all/manifest.json", nil)
	req.SetBasicAuth("soc", "soc-secret")
	if resp, _ := do(t, req); resp.StatusCode != 200 || resp.Header.Get("ETag") == "" {
		t.Fatalf("%d", resp.StatusCode)
	}
	if d := e.device("SOC MISP"); d.Synced() {
		t.Fatalf("HEAD counted as a pull: %+v", d)
	}
}

// TestMISPErrorsSurface checks that the fake MISP reports vigil's refusals
// as MISP would ("Could not fetch event manifest").
func TestMISPErrorsSurface(t *testing.T) {
	e := newEnv(t, baseFeeds)
	_, err := e.misp("soc", "bad", "all").Fetch(t.Context())
	var he *mispfake.HTTPError
	if !errors.As(err, &he) || he.Status != 401 {
		t.Fatalf("%v", err)
	}
	_, err = e.misp("small", "small-secret", "phish").Fetch(t.Context())
	if !errors.As(err, &he) || he.Status != 403 {
		t.Fatalf("%v", err)
	}
}
