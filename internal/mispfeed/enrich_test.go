package mispfeed_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/threatcommand"
	"github.com/vigil-ti/vigil/internal/threatconnect"
)

var update = flag.Bool("update", false, "update golden files")

func mustInstance(t testing.TB, b []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// normalized returns the documents the real normalizers make of their own
// test inputs.
func normalized(t *testing.T) []vigil.Document {
	t.Helper()
	ingested := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	read := func(path string) []byte {
		b, err := os.ReadFile(filepath.Join(moduleRoot(t), path))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var docs []vigil.Document
	tc := threatcommand.NewNormalizer(ecs.NormalizeOptions{Dataset: threatcommand.DatasetIOC, Tags: []string{"forwarded", "rapid7-threat-command-ioc"}, ExpirationDuration: "90d", Ingested: ingested})
	for _, name := range []string{"url", "tags", "ipv4", "ipv6", "email", "domain", "hash-md5", "hash-sha256", "hash-sha512"} {
		docs = append(docs, tc.IOC(read("internal/threatcommand/testdata/normalize/ioc/"+name+".input.json")))
	}
	al := threatcommand.NewNormalizer(ecs.NormalizeOptions{Dataset: threatcommand.DatasetAlert, Tags: []string{"forwarded"}, Ingested: ingested})
	docs = append(docs, al.Alert(read("internal/threatcommand/testdata/normalize/alert/full.input.json")))
	tcn := threatconnect.NewNormalizer(ecs.NormalizeOptions{Dataset: threatconnect.DatasetIndicator, Tags: []string{"forwarded", "threatconnect-indicator"}, ExpirationDuration: "90d", Ingested: ingested})
	for _, name := range []string{"address-associations", "file", "host", "url-associations", "emailaddress"} {
		docs = append(docs, tcn.Indicator(read("internal/threatconnect/testdata/normalize/indicator/"+name+".input.json")))
	}
	return docs
}

// TestEnrichmentGolden publishes what the real normalizers make of their
// test inputs and compares the event with testdata/enrichment.golden.json
// (go test -run EnrichmentGolden -update rewrites it).
func TestEnrichmentGolden(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.clock.set(time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC))
	for _, d := range normalized(t) {
		if !d.Live() {
			t.Fatalf("%s %s: %s", d.Dataset, d.Key, d.Error)
		}
		e.write(d)
	}
	m := e.misp("soc", "soc-secret", "all")
	if _, err := m.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	u := "3e4ca5e1-01ac-5f97-b8c2-a4b6d6ad1b8e"
	for k := range m.Events() {
		u = k
	}
	_, body := get(t, e.srv.URL+"/misp/all/"+u+".json", "soc", "soc-secret")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "enrichment.golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("event differs from %s (run with -update after checking):\n%s", golden, pretty.String())
	}
}

// TestPublishedEventsAgainstReference publishes every kind of IOC with its
// enrichment and checks each event against the MISP core format schema
// and describeTypes.json.
func TestPublishedEventsAgainstReference(t *testing.T) {
	if mispReference(t) == "" {
		t.Skip("../shared/reference/misp is absent: events are checked against the project's own rules only")
	}
	e := newEnv(t, baseFeeds)
	e.clock.set(time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC))
	for _, d := range normalized(t) {
		e.write(d)
	}
	for _, g := range []string{"all", "phish", "high"} {
		if _, err := e.misp("soc", "soc-secret", g).Fetch(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if e.check.schema == nil || e.check.types == nil || e.check.events != 3 {
		t.Fatalf("checked %d events (schema %v)", e.check.events, e.check.schema != nil)
	}
}

// TestEnrichmentOneReadOrTwo publishes the same IOCs to a device with room
// for all of them, whose pull reads the group once and enriches as it
// goes, and to one whose limit leaves the two least severe out, whose pull
// ranks them in a first read and enriches the chosen ones in a second: an
// IOC's attribute is the same either way, but for its UUID. The IOCs
// include values that several documents name (their enrichment merged)
// and documents that give several values (a file's hashes).
func TestEnrichmentOneReadOrTwo(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.clock.set(time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC))
	for _, d := range normalized(t) {
		e.write(d)
	}
	at := t0.Add(-30 * 24 * time.Hour)
	e.write(ioc("domain-name", "merged.example", iocOpts{ts: at, severity: "Low", tags: []string{"one"}, providers: []string{"Feed A"}, tlp: "green"}))
	e.write(ioc("domain-name", "merged.example", iocOpts{dataset: "ti_other.ioc", ts: at.Add(time.Hour), severity: "High", tags: []string{"two"}, providers: []string{"Feed B"}, tlp: "amber"}))
	attributes := func(name string, limit int) map[string]map[string]any {
		t.Helper()
		d, err := e.svc.AddDevice(t.Context(), name, []string{"all"}, limit)
		if err != nil {
			t.Fatal(err)
		}
		m := e.misp(d.Username, d.Key, "all")
		if _, err := m.Fetch(t.Context()); err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]any{}
		for u := range m.Events() {
			_, body := get(t, e.srv.URL+"/misp/all/"+u+".json", d.Username, d.Key)
			var ev struct {
				Event struct{ Attribute []map[string]any }
			}
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Fatal(err)
			}
			for _, a := range ev.Event.Attribute {
				delete(a, "uuid")
				out[a["type"].(string)+"|"+a["value"].(string)] = a
			}
		}
		return out
	}
	all := attributes("wide", 1000)
	some := attributes("narrow", len(all)-2)
	if len(all) < 10 || len(some) != len(all)-2 {
		t.Fatalf("%d attributes with room for all, %d with room for all but 2", len(all), len(some))
	}
	for k, a := range some {
		if !reflect.DeepEqual(a, all[k]) {
			t.Errorf("%s:\nread twice: %v\nread once:  %v", k, a, all[k])
		}
	}
	if merged := some["domain|merged.example"]; merged == nil || !strings.Contains(fmt.Sprint(merged["Tag"]), "tlp:amber") || !strings.Contains(fmt.Sprint(merged["comment"]), "Feed A, Feed B") {
		t.Errorf("merged.example: %v", merged)
	}
}

// TestAlertIDs tags each IOC with the live alerts that name its value, in
// any case: two URLs that differ only in case both get the alerts that
// name either.
func TestAlertIDs(t *testing.T) {
	e := newEnv(t, baseFeeds)
	e.write(ioc("url", "http://a.example/X", iocOpts{}), ioc("url", "http://a.example/x", iocOpts{}), ioc("domain-name", "a.example", iocOpts{}), ioc("domain-name", "b.example", iocOpts{}))
	e.write(alert("A1", "HTTP://A.EXAMPLE/x", "c.example"), alert("A2", "a.example", "http://a.example/x"))
	m := e.misp("soc", "soc-secret", "all")
	if _, err := m.Fetch(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"url|http://a.example/X": "A1 A2", "url|http://a.example/x": "A1 A2",
		"domain|a.example": "A2", "domain|b.example": "",
	}
	got := map[string]string{}
	for _, ev := range m.Events() {
		for _, a := range ev.Attributes {
			var ids []string
			for _, tag := range a.Tags {
				if id, ok := strings.CutPrefix(tag, `vigil:alert-id="`); ok {
					ids = append(ids, strings.TrimSuffix(id, `"`))
				}
			}
			got[a.Type+"|"+a.Value] = strings.Join(ids, " ")
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("alert ids by attribute: %v, want %v", got, want)
	}
}
