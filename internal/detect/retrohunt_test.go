package detect_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

const week = 7 * 24 * time.Hour

// countingStore passes sightings to the real store and counts the writes.
type countingStore struct {
	*sqlite.DB
	writes atomic.Int32
}

func (s *countingStore) AddSightingBatch(ctx context.Context, b *vigil.SightingBatch) error {
	s.writes.Add(1)
	return s.DB.AddSightingBatch(ctx, b)
}

// storedSightings returns every stored sighting of the window as sorted
// "kind value day first..last count field event" lines, values decoded.
func storedSightings(t *testing.T, db *sqlite.DB, since time.Time) []string {
	t.Helper()
	var out []string
	var rs []vigil.SightingRange
	for _, k := range []string{"ip", "hash", "url", "registry", "email", "cve", "domain"} {
		rs = append(rs, vigil.SightingRange{Kind: k, All: true})
	}
	err := db.Sightings(t.Context(), since, rs, func(s vigil.Sighting) error {
		out = append(out, fmt.Sprintf("%s %s %s..%s %d %s %s@%s", s.Kind, detect.SightingValue(s.Kind, s.Key),
			s.FirstSeen.Format("01-02T15:04"), s.LastSeen.Format("01-02T15:04"), s.Count, s.Field, s.Event, s.EventTime.Format("01-02T15:04")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func at(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }

func TestSightingsRecorded(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	e.eng.RecordSightings(detect.SightingsConfig{Store: e.db, Window: week})
	events := []string{
		// destination.ip matches (an alert), source.ip does not (a sighting).
		`{"@timestamp":"` + at(-48*time.Hour) + `","event":{"id":"e1"},"source":{"ip":"10.1.2.3"},"destination":{"ip":"198.51.100.7"}}`,
		`{"@timestamp":"` + at(-47*time.Hour) + `","event":{"id":"e2"},"source":{"ip":"::ffff:10.1.2.3"},"dns":{"question":{"name":"WWW.Other.Example."}}}`,
		// The same value in two fields of one event counts once.
		`{"@timestamp":"` + at(-46*time.Hour) + `","event":{"id":"e3"},"source":{"ip":"10.1.2.3"},"destination":{"ip":"10.1.2.3"}}`,
		// So does a value seen for the first time.
		`{"@timestamp":"` + at(-45*time.Hour) + `","event":{"id":"e4"},"source":{"ip":"10.7.7.7"},"destination":{"ip":"10.7.7.7"}}`,
		// Another day: another row. No event.id: the line's hash.
		`{"@timestamp":"` + at(-20*time.Hour) + `","source":{"ip":"10.1.2.3"},"file":{"hash":{"sha256":"` + strings.Repeat("AB", 32) + `"}}}`,
		// Older than the window: not recorded.
		`{"@timestamp":"` + at(-8*24*time.Hour) + `","event":{"id":"old"},"source":{"ip":"10.9.9.9"}}`,
		// In the future, or without @timestamp: read time.
		`{"@timestamp":"` + at(time.Hour) + `","event":{"id":"future"},"url":{"full":"HTTP://Good.Example:80/a?b=C"}}`,
		`{"event":{"id":"none"},"email":{"from":{"address":"<Bob@Corp.Example>"}},"registry":{"path":"HKEY_CURRENT_USER\\Software\\X"}}`,
		// Values that can never match are not recorded; nor the CVE of a
		// Rapid7 document, which the rule skips.
		`{"@timestamp":"` + at(-time.Hour) + `","event":{"id":"junk"},"source":{"ip":"not-an-ip"},"url":{"domain":"..."}}`,
		`{"@timestamp":"` + at(-time.Hour) + `","event":{"id":"r7"},"vulnerability":{"id":"CVE-2020-1"},"rapid7":{"tc":{"vulnerability":{"id":"CVE-2020-1"}}}}`,
		// Epoch milliseconds.
		`{"@timestamp":` + fmt.Sprint(t0.Add(-time.Hour).UnixMilli()) + `,"event":{"id":"num"},"vulnerability":{"id":"cve-2021-44228"}}`,
	}
	for _, ev := range events {
		if _, err := e.eng.Match(t.Context(), []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := e.eng.SightingsHeld(); n != 0 {
		t.Errorf("%d values held after the flush", n)
	}
	got := storedSightings(t, e.db, t0.Add(-week))
	want := []string{
		"cve CVE-2021-44228 03-01T11:00..03-01T11:00 1 vulnerability.id event.id:num@03-01T11:00",
		"domain www.other.example 02-27T13:00..02-27T13:00 1 dns.question.name event.id:e2@02-27T13:00",
		"email bob@corp.example 03-01T12:00..03-01T12:00 1 email.from.address event.id:none@03-01T12:00",
		"hash " + strings.Repeat("ab", 32) + " 02-28T16:00..02-28T16:00 1 file.hash.sha256 LINE@02-28T16:00",
		"ip 10.1.2.3 02-27T12:00..02-27T14:00 3 source.ip event.id:e1@02-27T12:00",
		"ip 10.1.2.3 02-28T16:00..02-28T16:00 1 source.ip LINE@02-28T16:00",
		"ip 10.7.7.7 02-27T15:00..02-27T15:00 1 source.ip event.id:e4@02-27T15:00",
		`registry hkcu\software\x 03-01T12:00..03-01T12:00 1 registry.path event.id:none@03-01T12:00`,
		"url http://good.example/a?b=C 03-01T12:00..03-01T12:00 1 url.full event.id:future@03-01T12:00",
	}
	for i, g := range got {
		if j := strings.Index(g, " line:"); j >= 0 {
			got[i] = g[:j] + " LINE@" + g[strings.LastIndexByte(g, '@')+1:]
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("sightings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	st := e.eng.Stats()
	if st.Alerts != 1 || st.Events != len(events) {
		t.Errorf("stats %+v: recording changed matching", st)
	}

	// Without a Snapshot nothing is recorded: nothing could be matched.
	eng, err := detect.New(detect.Config{}, e.db, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	eng.RecordSightings(detect.SightingsConfig{Store: e.db, Window: week})
	eng.Match(t.Context(), []byte(`{"source":{"ip":"10.200.0.1"}}`))
	if err := eng.FlushSightings(t.Context()); err != nil || len(storedSightings(t, e.db, t0.Add(-week))) != len(want) {
		t.Errorf("recorded without a snapshot (%v)", err)
	}
}

// TestSightingsBound: at most MaxValues values are held in memory, however
// many distinct values come; every one reaches the store.
func TestSightingsBound(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	cs := &countingStore{DB: e.db}
	const maxValues = 16
	e.eng.RecordSightings(detect.SightingsConfig{Store: cs, Window: week, MaxValues: maxValues, FlushInterval: time.Hour})
	peak := 0
	for i := range 500 {
		// Two distinct values per event, and one that repeats.
		ev := fmt.Sprintf(`{"event":{"id":"%d"},"source":{"ip":"10.0.%d.%d"},"destination":{"ip":"10.255.255.1"},"url":{"domain":"h%d.corp.example"}}`, i, i/256, i%256, i)
		if _, err := e.eng.Match(t.Context(), []byte(ev)); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, e.eng.SightingsHeld())
	}
	if peak > maxValues {
		t.Errorf("%d values held, more than MaxValues %d", peak, maxValues)
	}
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Every value is stored once, summed over the batches that held it.
	got := storedSightings(t, e.db, t0.Add(-week))
	if len(got) != 500*2+1 {
		t.Fatalf("%d sightings stored, want 1001", len(got))
	}
	if w := cs.writes.Load(); w < 1001/(maxValues/2) {
		t.Errorf("%d writes: batches were larger than MaxValues/2", w)
	}
	// The value every event carried was counted 500 times, over batches.
	if !slices.ContainsFunc(got, func(s string) bool {
		return strings.HasPrefix(s, "ip 10.255.255.1 ") && strings.Contains(s, " 500 destination.ip")
	}) {
		t.Errorf("the repeated value was not counted 500 times")
	}
}

// TestSightingsFlushInterval: a batch goes to the store once FlushInterval
// has passed, without waiting to be full.
func TestSightingsFlushInterval(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	cs := &countingStore{DB: e.db}
	e.eng.RecordSightings(detect.SightingsConfig{Store: cs, Window: week, FlushInterval: time.Minute})
	match := func(ip string) {
		if _, err := e.eng.Match(t.Context(), fmt.Appendf(nil, `{"source":{"ip":%q}}`, ip)); err != nil {
			t.Fatal(err)
		}
	}
	match("10.0.0.1")
	match("10.0.0.2")
	e.clock.Advance(2 * time.Minute)
	match("10.0.0.3") // hands 10.0.0.1 and .2 over, then holds .3
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	if w := cs.writes.Load(); w != 2 {
		t.Errorf("%d writes, want 2: one when the interval passed, one at the flush", w)
	}
}

// TestSightingsStartBatch: in a batch (StartBatch), the events share one
// reading of the clock for recording, taken when the first of them needs
// it (an event without @timestamp is seen at it, the flush interval counts
// from it), and one more every 65,536 events; expiry still reads the clock
// for each event, and so does recording after EndBatch.
func TestSightingsStartBatch(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	cs := &countingStore{DB: e.db}
	e.eng.RecordSightings(detect.SightingsConfig{Store: cs, Window: week, FlushInterval: time.Minute, MaxValues: 1 << 20})
	match := func(ev string) int {
		t.Helper()
		dets, err := e.eng.Match(t.Context(), []byte(ev))
		if err != nil {
			t.Fatal(err)
		}
		return len(dets)
	}
	e.eng.StartBatch()
	match(`{"event":{"id":"a"},"source":{"ip":"10.0.0.1"}}`)
	e.clock.Advance(2 * time.Minute)
	match(`{"event":{"id":"b"},"source":{"ip":"10.0.0.3"}}`)
	if w := cs.writes.Load(); w != 0 {
		t.Errorf("%d writes: the flush interval counted from the clock, not the batch's reading", w)
	}
	// 192.0.2.1 expires 30 minutes after t0, the batch's reading: expiry
	// reads the clock.
	e.clock.Advance(33 * time.Minute)
	if n := match(`{"event":{"id":"x"},"destination":{"ip":"192.0.2.1"}}`); n != 0 {
		t.Errorf("an expired indicator matched (%d alerts) after StartBatch", n)
	}
	// Past 65,536 events of a batch, an event reads the clock.
	e.clock.Advance(-35 * time.Minute)
	e.eng.StartBatch()
	for i := range 1<<16 - 1 {
		match(fmt.Sprintf(`{"event":{"id":"n%d"},"source":{"ip":"10.1.%d.%d"}}`, i, i/256, i%256))
	}
	e.clock.Advance(time.Hour)
	match(`{"event":{"id":"n65535"},"source":{"ip":"10.1.255.255"}}`)
	e.clock.Advance(2 * time.Hour)
	match(`{"event":{"id":"late"},"source":{"ip":"10.0.0.2"}}`)
	// A batch that comes long after StartBatch reads the clock when its
	// first event needs it, not at StartBatch; after EndBatch, each event
	// reads it.
	e.eng.StartBatch()
	e.clock.Advance(time.Hour)
	match(`{"event":{"id":"lazy"},"source":{"ip":"10.0.0.4"}}`)
	e.eng.EndBatch()
	e.clock.Advance(time.Hour)
	match(`{"event":{"id":"after"},"source":{"ip":"10.0.0.5"}}`)
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := storedSightings(t, e.db, t0.Add(-week))
	for _, w := range []string{
		"ip 10.0.0.1 03-01T12:00..03-01T12:00 1 source.ip event.id:a@03-01T12:00",
		"ip 10.0.0.3 03-01T12:00..03-01T12:00 1 source.ip event.id:b@03-01T12:00",
		"ip 192.0.2.1 03-01T12:00..03-01T12:00 1 destination.ip event.id:x@03-01T12:00",
		"ip 10.1.255.255 03-01T12:00..03-01T12:00 1 source.ip event.id:n65535@03-01T12:00",
		"ip 10.0.0.2 03-01T15:00..03-01T15:00 1 source.ip event.id:late@03-01T15:00",
		"ip 10.0.0.4 03-01T16:00..03-01T16:00 1 source.ip event.id:lazy@03-01T16:00",
		"ip 10.0.0.5 03-01T17:00..03-01T17:00 1 source.ip event.id:after@03-01T17:00",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("no sighting %q", w)
		}
	}
}

// failingMark fails to move the retro-hunt watermark: a crash between
// storing the alerts and moving it.
type failingMark struct{ *sqlite.DB }

func (failingMark) SetRetroHuntMark(context.Context, int64) error { return errors.New("killed") }

type retroEnv struct {
	*env
	hunter *detect.RetroHunter
}

// newRetroEnv is an env whose engine records sightings and a RetroHunter
// on its store, with a webhook action on every rule.
func newRetroEnv(t *testing.T, scanAbove int) *retroEnv {
	t.Helper()
	cfg := detect.Config{Actions: []string{"hook"}}
	e := newEnv(t, cfg, fixture())
	e.eng.RecordSightings(detect.SightingsConfig{Store: e.db, Window: week})
	h, err := detect.NewRetroHunter(cfg, e.db, week, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	h.ScanAbove = scanAbove
	return &retroEnv{env: e, hunter: h}
}

func (e *retroEnv) run(t *testing.T) detect.RetroStats {
	t.Helper()
	st, err := e.hunter.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (e *retroEnv) write(t *testing.T, docs ...vigil.Document) {
	t.Helper()
	if _, err := e.db.WritePage(t.Context(), vigil.Page{Source: "test", Dataset: dsIOC, Docs: docs}); err != nil {
		t.Fatal(err)
	}
}

// retroScenario records sightings, adds indicators, hunts, and returns
// the alerts stored, by id.
func retroScenario(t *testing.T, scanAbove int) map[string]map[string]any {
	e := newRetroEnv(t, scanAbove)
	// The first hunt checks the fixture's indicators: no sightings yet.
	if st := e.run(t); st.Indicators != len(fixture()) || st.Alerts != 0 {
		t.Fatalf("first hunt: %+v", st)
	}
	// A sighting 9 days ago, recorded while it was in the window.
	e.clock.Advance(-9 * 24 * time.Hour)
	e.eng.Match(t.Context(), []byte(`{"@timestamp":"`+at(-9*24*time.Hour)+`","event":{"id":"old"},"destination":{"ip":"198.18.5.5"}}`))
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(9 * 24 * time.Hour)
	events := []string{
		`{"@timestamp":"` + at(-50*time.Hour) + `","event":{"id":"a"},"source":{"ip":"10.0.0.5"},"destination":{"ip":"192.0.2.200","port":443}}`,
		`{"@timestamp":"` + at(-48*time.Hour) + `","event":{"id":"a2"},"destination":{"ip":"192.0.2.200"}}`,
		`{"@timestamp":"` + at(-30*time.Hour) + `","event":{"id":"a3"},"destination":{"ip":"192.0.2.200"}}`,
		`{"@timestamp":"` + at(-72*time.Hour) + `","event":{"id":"b"},"dns":{"question":{"name":"cdn.newbad.example"}}}`,
		`{"@timestamp":"` + at(-24*time.Hour) + `","event":{"id":"c"},"url":{"full":"https://newbad.example:443/x.php"}}`,
		`{"@timestamp":"` + at(-36*time.Hour) + `","event":{"id":"d"},"destination":{"ip":"198.51.100.99"}}`,
		`{"@timestamp":"` + at(-36*time.Hour) + `","event":{"id":"f"},"process":{"hash":{"md5":"00112233445566778899AABBCCDDEEFF"}}}`,
	}
	for _, ev := range events {
		if _, err := e.eng.Match(t.Context(), []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := e.run(t); st.Indicators != 0 || st.Alerts != 0 {
		t.Fatalf("hunt without new indicators: %+v", st)
	}
	ip := func(v string) map[string]any { return map[string]any{"ip": v} }
	newDocs := []vigil.Document{
		indicator("192.0.2.0/24", "ipv4-addr", ip("192.0.2.0/24"), far),
		indicator("newbad.example", "domain-name", map[string]any{"url": map[string]any{"domain": "newbad.example"}}, far),
		indicator("newbad.example/x.php", "url", map[string]any{"url": map[string]any{"original": "newbad.example/x.php"}}, far),
		indicator("00112233445566778899aabbccddeeff", "file", map[string]any{"file": map[string]any{"hash": map[string]any{"md5": "00112233445566778899aabbccddeeff"}}}, t0.Add(time.Minute)),
		indicator("198.51.100.99", "ipv4-addr", ip("198.51.100.99"), t0.Add(-time.Minute)), // expired already
		indicator("198.18.5.5", "ipv4-addr", ip("198.18.5.5"), far),                        // seen before the window
	}
	e.write(t, newDocs...)
	e.clock.Advance(2 * time.Minute) // the hash indicator expires before the hunt
	// A crash after the alerts are stored, before the watermark moves.
	crashed, err := detect.NewRetroHunter(detect.Config{Actions: []string{"hook"}}, failingMark{e.db}, week, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	crashed.ScanAbove = scanAbove
	if _, err := crashed.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("crashed hunt: %v", err)
	}
	st := e.run(t)
	if st.Indicators != 4 || st.Sightings != 3 || st.Alerts != 3 || st.Stored != 0 {
		t.Errorf("hunt after the crash: %+v; want 4 live new indicators, 3 sightings, their 3 alerts already stored", st)
	}
	if scanAbove == 1 && !slices.Equal(st.Scanned, []string{"ip", "url", "domain"}) {
		t.Errorf("scanned %v", st.Scanned)
	}
	// Again: nothing new. Then the same indicators changed: the same alerts.
	if st := e.run(t); st.Indicators != 0 || st.Alerts != 0 {
		t.Errorf("second hunt: %+v", st)
	}
	e.clock.Advance(time.Hour)
	changed := slices.Clone(newDocs[:3])
	for i := range changed {
		changed[i].Timestamp = changed[i].Timestamp.Add(2 * time.Hour)
	}
	e.write(t, changed...)
	if st := e.run(t); st.Indicators != 3 || st.Alerts != 3 || st.Stored != 0 {
		t.Errorf("hunt of changed indicators: %+v; want the same 3 alerts, none new", st)
	}
	out := map[string]map[string]any{}
	err = e.db.Detections(t.Context(), sqlite.DetectionFilter{}, func(d vigil.Detection) error {
		var m map[string]any
		if err := json.Unmarshal(d.Source, &m); err != nil {
			return fmt.Errorf("%s: %w", d.Source, err)
		}
		if get(m, "kibana.alert.uuid") != d.ID || !slices.Equal(d.Actions, []string{"hook"}) {
			t.Errorf("detection %+v", d)
		}
		out[d.ID] = m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	due, err := e.db.DueDeliveries(t.Context(), e.clock.Now(), 100)
	if err != nil || len(due) != 3 {
		t.Errorf("%d deliveries queued (%v), want one per alert", len(due), err)
	}
	return out
}

func TestRetroHunt(t *testing.T) {
	alerts := retroScenario(t, 0)
	byRule := map[string]map[string]any{}
	for _, a := range alerts {
		byRule[get(a, "rule.id").(string)] = a
	}
	if len(alerts) != 3 || len(byRule) != 3 {
		t.Fatalf("%d alerts: %v", len(alerts), alerts)
	}
	ipAlert := byRule["ip"]
	checks := map[string]any{
		"@timestamp":                 "2026-03-01T12:02:00.000Z",
		"event.id":                   "a3",
		"event.kind":                 "signal",
		"destination.ip":             "192.0.2.200",
		"rule.name":                  "Threat Intel IP Address Indicator Match",
		"kibana.alert.severity":      "critical",
		"kibana.alert.risk_score":    99.0,
		"kibana.alert.original_time": "2026-02-28T06:00:00.000Z",
		"kibana.alert.rule.rule_id":  "0c41e478-5263-4c69-8f9e-7dfd2c22da64",
		"kibana.alert.rule.type":     "threat_match",
		"vigil.retrohunt.first_seen": "2026-02-27T10:00:00.000Z",
		"vigil.retrohunt.last_seen":  "2026-02-28T06:00:00.000Z",
		"vigil.retrohunt.count":      3.0,
		"vigil.retrohunt.reference":  "event.id:a3",
	}
	checkFields(t, "ip alert", ipAlert, checks)
	ens := get(ipAlert, "threat.enrichments").([]any)
	if len(ens) != 1 {
		t.Fatalf("%d enrichments", len(ens))
	}
	en := ens[0].(map[string]any)
	enChecks := map[string]any{
		"matched.atomic": "192.0.2.200",
		"matched.field":  "destination.ip",
		"matched.id":     "192.0.2.0/24",
		"matched.index":  dsIOC,
		"matched.type":   "indicator_match_rule",
		"feed.name":      "Test Feed",
		"indicator.ip":   "192.0.2.0/24",
		"indicator.type": "ipv4-addr",
		"indicator.name": "192.0.2.0/24",
	}
	checkFields(t, "enrichment", en, enChecks)
	if got := get(byRule["domain"], "dns.question.name"); got != "cdn.newbad.example" {
		t.Errorf("domain alert: dns.question.name %v", got)
	}
	if got := get(byRule["domain"], "threat.enrichments"); !strings.Contains(fmt.Sprint(got), "newbad.example") {
		t.Errorf("domain alert enrichments %v", got)
	}
	if got := get(byRule["url"], "url.full"); got != "https://newbad.example/x.php" {
		t.Errorf("url alert: url.full %v", got)
	}

	// Reading the sightings whole gives the same alerts.
	scanned := retroScenario(t, 1)
	if a, b := slices.Sorted(maps.Keys(scanned)), slices.Sorted(maps.Keys(alerts)); !slices.Equal(a, b) {
		t.Errorf("alert ids differ with ScanAbove 1:\n%v\n%v", a, b)
	}
}

// TestRetroHuntCVE: a CVE that arrives after a scanner reported it; the
// enrichment carries Rapid7's vulnerability object, as live CVE alerts do.
func TestRetroHuntCVE(t *testing.T) {
	e := newRetroEnv(t, 0)
	e.run(t)
	e.eng.Match(t.Context(), []byte(`{"@timestamp":"`+at(-20*time.Hour)+`","event":{"id":"scan-1"},"vulnerability":{"id":"cve-2023-9999"}}`))
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.WritePage(t.Context(), vigil.Page{Source: "test", Dataset: "ti_rapid7_threat_command.vulnerability", Docs: []vigil.Document{cve("CVE-2023-9999")}}); err != nil {
		t.Fatal(err)
	}
	if st := e.run(t); st.Indicators != 1 || st.Alerts != 1 || st.Stored != 1 {
		t.Fatalf("hunt: %+v", st)
	}
	var got map[string]any
	err := e.db.Detections(t.Context(), sqlite.DetectionFilter{RuleID: "cve"}, func(d vigil.Detection) error {
		return json.Unmarshal(d.Source, &got)
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFields(t, "cve alert", got, map[string]any{
		"vulnerability.id":      "CVE-2023-9999",
		"event.id":              "scan-1",
		"rule.name":             "Rapid7 Threat Command CVEs Correlation",
		"kibana.alert.severity": "high",
	})
	en := get(got, "threat.enrichments").([]any)[0].(map[string]any)
	checkFields(t, "cve enrichment", en, map[string]any{
		"indicator.cvss_score": 9.8,
		"matched.field":        "vulnerability.id",
		"matched.index":        "ti_rapid7_threat_command.vulnerability",
	})
}

// checkFields checks the values at dotted paths of doc.
func checkFields(t *testing.T, what string, doc map[string]any, want map[string]any) {
	t.Helper()
	for path, w := range want {
		if got := get(doc, path); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s: %s = %v, want %v", what, path, got, w)
		}
	}
}

// TestRetroHuntDisabledRule: a rule that is off records no sightings and
// raises no retro-hunt alert.
func TestRetroHuntDisabledRule(t *testing.T) {
	cfg := detect.Config{Rules: map[string]detect.RuleConfig{"domain": {Enabled: false}}}
	e := newEnv(t, cfg, fixture())
	e.eng.RecordSightings(detect.SightingsConfig{Store: e.db, Window: week})
	e.eng.Match(t.Context(), []byte(`{"dns":{"question":{"name":"x.newbad.example"}},"source":{"ip":"10.3.3.3"}}`))
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := storedSightings(t, e.db, t0.Add(-week)); len(got) != 1 || !strings.HasPrefix(got[0], "ip 10.3.3.3") {
		t.Errorf("sightings %v", got)
	}
	h, err := detect.NewRetroHunter(cfg, e.db, week, e.clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.WritePage(t.Context(), vigil.Page{Source: "test", Dataset: dsIOC, Docs: []vigil.Document{
		indicator("newbad.example", "domain-name", map[string]any{"url": map[string]any{"domain": "newbad.example"}}, far),
	}}); err != nil {
		t.Fatal(err)
	}
	st, err := h.Run(t.Context())
	if err != nil || st.Indicators != 0 || st.Alerts != 0 {
		t.Errorf("hunt with the domain rule off: %+v, %v", st, err)
	}
	if _, err := detect.NewRetroHunter(detect.Config{Rules: map[string]detect.RuleConfig{"dns": {}}}, e.db, week, e.clock); err == nil {
		t.Error("an unknown rule id was accepted")
	}
}

// TestSightingsAcrossSwap checks that a value recorded as a sighting (a
// miss in one Snapshot) still raises its alert once a Snapshot that holds
// it is swapped in: a value's sighting slot stands for "matched nothing"
// only in the Snapshot it was filled under. The sighting counts stay
// whole across the swap.
func TestSightingsAcrossSwap(t *testing.T) {
	e := newEnv(t, detect.Config{}, fixture())
	e.eng.RecordSightings(detect.SightingsConfig{Store: e.db, Window: week})
	ev := func(id string) string {
		return `{"@timestamp":"` + at(-time.Hour) + `","event":{"id":"` + id + `"},"source":{"ip":"10.7.7.7"}}`
	}
	for i := range 3 {
		if got := e.match(t, ev(fmt.Sprint("before", i))); len(got) != 0 {
			t.Fatalf("before the swap: %d alerts", len(got))
		}
	}
	docs := append(fixture(), indicator("10.7.7.7", "ipv4-addr", map[string]any{"ip": "10.7.7.7"}, far))
	snap, err := detect.NewSnapshot(docs)
	if err != nil {
		t.Fatal(err)
	}
	e.eng.Swap(snap)
	if got := e.match(t, ev("after")); len(got) != 1 {
		t.Fatalf("after the swap: %d alerts, want 1", len(got))
	}
	if err := e.eng.FlushSightings(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := storedSightings(t, e.db, t0.Add(-week))
	if len(got) != 1 || !strings.Contains(got[0], "ip 10.7.7.7 ") || !strings.Contains(got[0], " 3 source.ip event.id:before0@") {
		t.Fatalf("sightings %q, want one of 10.7.7.7 counting the 3 events before the swap", got)
	}
}

// dropSightings takes sightings and keeps none.
type dropSightings struct{}

func (dropSightings) AddSightingBatch(context.Context, *vigil.SightingBatch) error { return nil }

// FuzzSightingsKeepAlerts checks that recording sightings never changes
// what an event raises: an engine that records (and skips the miss cache
// for values it holds a slot for) raises the same alerts as one that does
// not, for an event seen again and again, before and after a Snapshot swap.
func FuzzSightingsKeepAlerts(f *testing.F) {
	for _, s := range []string{
		`{"source":{"ip":"198.51.100.7"},"destination":{"ip":"10.0.0.1"},"event":{"id":"x"}}`,
		`{"@timestamp":"` + at(-time.Hour) + `","source":{"ip":"10.1.2.3"},"url":{"domain":"a.evil.example","full":"http://evil.example/login.php"}}`,
		`{"dns":{"question":{"name":"WWW.Other.Example."}},"file":{"hash":{"md5":"44D88612FEA8A8F36DE82E1278ABB02F"}}}`,
		`{"email":{"from":{"address":["<phish@evil.example>","a@b.example"]}},"vulnerability":{"id":"cve-2024-3400"}}`,
	} {
		f.Add([]byte(s))
	}
	never := fixture()
	for i := range never {
		never[i].ExpiresAt = time.Time{}
	}
	snaps := make([]*detect.Snapshot, 2)
	for i, docs := range [][]vigil.Document{never[:len(never)/2], never} {
		s, err := detect.NewSnapshot(docs)
		if err != nil {
			f.Fatal(err)
		}
		snaps[i] = s
	}
	engine := func(record bool) *detect.Engine {
		eng, err := detect.New(detect.Config{SuppressionWindow: -1}, nil, nil)
		if err != nil {
			f.Fatal(err)
		}
		if record {
			eng.RecordSightings(detect.SightingsConfig{Store: dropSightings{}, Window: week})
		}
		return eng
	}
	plain, rec := engine(false), engine(true)
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, s := range snaps {
			plain.Swap(s)
			rec.Swap(s)
			for range 3 {
				want, errW := plain.Match(t.Context(), line)
				got, errG := rec.Match(t.Context(), line)
				if (errW == nil) != (errG == nil) || len(got) != len(want) {
					t.Fatalf("with sightings: %d alerts (%v), without: %d (%v)", len(got), errG, len(want), errW)
				}
				for i := range got {
					if got[i].ID != want[i].ID {
						t.Fatalf("alert %d: %s with sightings, %s without", i, got[i].ID, want[i].ID)
					}
				}
			}
		}
	})
}
