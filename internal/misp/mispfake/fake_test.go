package mispfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, s *Server, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+PathRestSearch, strings.NewReader(body))
	req.Header.Set("Authorization", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, b)
	}
	return resp.StatusCode, out
}

func attrs(t *testing.T, out map[string]any) []map[string]any {
	t.Helper()
	r, _ := out["response"].(map[string]any)
	list, _ := r["Attribute"].([]any)
	var as []map[string]any
	for _, a := range list {
		as = append(as, a.(map[string]any))
	}
	return as
}

func TestRestSearch(t *testing.T) {
	evs := Generate(GenOptions{Events: 4, PerEvent: 14, Seed: 1, Objects: true})
	evs[1].Tags = []string{"tlp:red"}
	evs[2].Published = false
	s := New(t, Options{Events: evs})
	total := Count(evs)
	cases := []struct {
		name string
		body string
		want int
	}{
		{"all", `{"returnFormat":"json"}`, total},
		{"page", `{"returnFormat":"json","page":2,"limit":10,"order":"timestamp"}`, 10},
		{"last page", `{"returnFormat":"json","page":6,"limit":10}`, total - 50},
		{"past the end", `{"returnFormat":"json","page":60,"limit":10}`, 0},
		{"not published", `{"returnFormat":"json","published":false}`, 14},
		{"tags NOT", `{"returnFormat":"json","tags":{"NOT":["tlp:red"]}}`, total - 14},
		{"tags list with !", `{"returnFormat":"json","tags":["!tlp:red"]}`, total - 14},
		{"tags OR", `{"returnFormat":"json","tags":{"OR":["TLP:RED"]}}`, 14},
		{"timestamp after everything", `{"returnFormat":"json","timestamp":"4102444800"}`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := post(t, s, s.APIKey(), c.body)
			if code != 200 || len(attrs(t, out)) != c.want {
				t.Fatalf("%d, %d attributes, want %d", code, len(attrs(t, out)), c.want)
			}
		})
	}
	// Ordered by timestamp, each with its event, and event tags marked
	// inherited when asked.
	_, out := post(t, s, s.APIKey(), `{"returnFormat":"json","order":"timestamp","includeEventTags":true,"to_ids":true,"includeDecayScore":1}`)
	var prev string
	for _, a := range attrs(t, out) {
		if a["to_ids"] != true || a["timestamp"].(string) < prev || a["Event"] == nil || a["decay_score"] == nil {
			t.Fatalf("attribute %v", a)
		}
		prev = a["timestamp"].(string)
		inherited := false
		for _, tag := range a["Tag"].([]any) {
			if tag.(map[string]any)["inherited"] != nil {
				inherited = true
			}
		}
		if !inherited {
			t.Fatalf("no inherited event tag: %v", a["Tag"])
		}
	}
	// A wrong key, an unknown parameter, a GET.
	if code, out := post(t, s, "wrong", `{"returnFormat":"json"}`); code != 403 || out["message"] != MsgAuth {
		t.Fatalf("wrong key: %d %v", code, out)
	}
	if code, out := post(t, s, s.APIKey(), `{"returnFormat":"json","typo":1}`); code != 400 || !strings.Contains(out["message"].(string), `"typo"`) {
		t.Fatalf("unknown parameter: %d %v", code, out)
	}
	resp, err := http.Get(s.URL + PathRestSearch)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("GET without key: %d", resp.StatusCode)
	}
	if n := s.Count(EndpointRestSearch); n != len(cases)+4 {
		t.Fatalf("count %d", n)
	}
}

func TestFeedEndpoints(t *testing.T) {
	evs := Generate(GenOptions{Events: 2, PerEvent: 3, Seed: 2})
	s := New(t, Options{Events: evs})
	get := func(path, etag string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get("/feed//manifest.json", "")
	etag := resp.Header.Get("ETag")
	var m map[string]map[string]any
	if resp.StatusCode != 200 || etag == "" || json.Unmarshal(body, &m) != nil || len(m) != 2 {
		t.Fatalf("manifest %d %q %s", resp.StatusCode, etag, body)
	}
	if resp, _ := get("/feed/manifest.json", etag); resp.StatusCode != 304 {
		t.Fatalf("with the ETag: %d", resp.StatusCode)
	}
	resp, body = get("/feed/"+evs[0].UUID+".json", "")
	var e struct {
		Event struct {
			UUID, Timestamp string
			Attribute       []map[string]any
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &e) != nil || e.Event.UUID != evs[0].UUID || len(e.Event.Attribute) != 3 {
		t.Fatalf("event %d %s", resp.StatusCode, body)
	}
	if ts := m[evs[0].UUID]["timestamp"].(float64); int64(ts) != evs[0].Timestamp.Unix() || e.Event.Timestamp != strconv.FormatInt(evs[0].Timestamp.Unix(), 10) {
		t.Fatalf("manifest timestamp %v, event %s", ts, e.Event.Timestamp)
	}
	// A change makes a new ETag; a removed event is gone.
	evs[0].Timestamp = evs[0].Timestamp.Add(time.Minute)
	s.Put(evs[0])
	if resp, _ := get("/feed/manifest.json", etag); resp.StatusCode != 200 {
		t.Fatalf("after a change: %d", resp.StatusCode)
	}
	s.Remove(evs[1].UUID)
	if resp, _ := get("/feed/"+evs[1].UUID+".json", ""); resp.StatusCode != 404 {
		t.Fatalf("removed event: %d", resp.StatusCode)
	}
	if resp, body := get("/feed/hashes.csv", ""); resp.StatusCode != 200 || bytes.Count(body, []byte("\n")) != 3 {
		t.Fatalf("hashes %d %s", resp.StatusCode, body)
	}
	// Faults and basic auth.
	s.Inject(Fault{Endpoint: EndpointManifest, Status: 503}, 1)
	if resp, _ := get("/feed/manifest.json", ""); resp.StatusCode != 503 {
		t.Fatalf("fault: %d", resp.StatusCode)
	}
	locked := New(t, Options{Events: evs, FeedUser: "u", FeedPassword: "p"})
	resp2, err := http.Get(locked.FeedURL + "/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 401 {
		t.Fatalf("without credentials: %d", resp2.StatusCode)
	}
}

func TestWriteFeedAndGenerate(t *testing.T) {
	evs := Generate(GenOptions{Events: 3, PerEvent: 40, Seed: 3, Objects: true})
	seen := map[string]bool{}
	for _, e := range evs {
		if e.Timestamp.IsZero() || len(e.Objects) == 0 {
			t.Fatalf("event %+v", e)
		}
		for _, a := range e.AllAttributes() {
			if seen[a.UUID] || seen[a.Type+"|"+a.Value] {
				t.Fatalf("repeated %s %s", a.UUID, a.Value)
			}
			seen[a.UUID], seen[a.Type+"|"+a.Value] = true, true
			if a.Timestamp.After(e.Timestamp) || a.Timestamp.Before(DefaultFrom) {
				t.Fatalf("timestamp %v of event %v", a.Timestamp, e.Timestamp)
			}
		}
	}
	dir := t.TempDir()
	if err := WriteFeed(dir, evs); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"manifest.json", "hashes.csv", evs[2].UUID + ".json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.HasSuffix(name, ".json") && !json.Valid(b) {
			t.Fatalf("%s is not JSON", name)
		}
	}
	// The same seed gives the same data.
	again := Generate(GenOptions{Events: 3, PerEvent: 40, Seed: 3, Objects: true})
	if !bytes.Equal(Manifest(evs), Manifest(again)) || !bytes.Equal(evs[1].AppendFeedJSON(nil), again[1].AppendFeedJSON(nil)) {
		t.Fatal("Generate is not reproducible")
	}
}
