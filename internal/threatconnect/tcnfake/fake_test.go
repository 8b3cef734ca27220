package tcnfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/threatconnect"
	"github.com/vigil-ti/vigil/internal/threatconnect/tcnfake"
)

var now = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newFake(t *testing.T, opts tcnfake.Options) *tcnfake.Server {
	opts.Now = func() time.Time { return now }
	return tcnfake.New(t, opts)
}

type reply struct {
	Status  int               `json:"-"`
	Data    []json.RawMessage `json:"data"`
	Next    string            `json:"next"`
	Message string            `json:"message"`
	Count   int               `json:"count"`
}

// get sends target (path and query, sent as written) signed with secret at
// the given time; sign, when not "", is signed instead of target.
func get(t *testing.T, s *tcnfake.Server, target, secret string, at time.Time, sign string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sign == "" {
		sign = req.URL.RequestURI()
	}
	ts := at.Unix()
	req.Header.Set("Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("Authorization", threatconnect.Authorization(s.AccessID(), []byte(secret), sign, http.MethodGet, ts))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: body %q: %v", target, b, err)
	}
	r.Status = resp.StatusCode
	return r
}

func TestSignatureVerifiedExactly(t *testing.T) {
	s := newFake(t, tcnfake.Options{Indicators: tcnfake.Generate(tcnfake.GenOptions{N: 3, Seed: 1})})
	const target = "/api/v3/indicators?tql=lastModified+GEQ+%222020-01-01T00%3A00%3A00Z%22&resultLimit=2"
	cases := []struct {
		name   string
		secret string
		at     time.Time
		sign   string
		status int
		msg    string
	}{
		{"good", s.SecretKey(), now, "", 200, ""},
		{"4 minutes behind", s.SecretKey(), now.Add(-4 * time.Minute), "", 200, ""},
		{"6 minutes behind", s.SecretKey(), now.Add(-6 * time.Minute), "", 401, tcnfake.MsgStale},
		{"6 minutes ahead", s.SecretKey(), now.Add(6 * time.Minute), "", 401, tcnfake.MsgStale},
		{"wrong secret", "nope", now, "", 401, tcnfake.MsgBadSignature},
		{"signed with %20", s.SecretKey(), now, strings.ReplaceAll(target, "+", "%20"), 401, tcnfake.MsgBadSignature},
		{"signed without the query", s.SecretKey(), now, "/api/v3/indicators", 401, tcnfake.MsgBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := get(t, s, target, c.secret, c.at, c.sign)
			if r.Status != c.status || r.Message != c.msg {
				t.Fatalf("status %d message %q, want %d %q", r.Status, r.Message, c.status, c.msg)
			}
		})
	}
	// No headers at all.
	resp, err := http.Get(s.URL + target)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unsigned: %d", resp.StatusCode)
	}
}

func TestPagingThroughNextLinks(t *testing.T) {
	inds := tcnfake.Generate(tcnfake.GenOptions{N: 25, Seed: 2, From: now.Add(-time.Hour), To: now.Add(-time.Hour)}) // one second: ties
	s := newFake(t, tcnfake.Options{Indicators: inds})
	target := "/api/v3/indicators?fields=tags&resultLimit=10&resultStart=0&sorting=lastModified+asc&tql=" + url.QueryEscape(`lastModified GEQ "2020-01-01T00:00:00Z"`)
	var ids []int64
	for page := 0; ; page++ {
		r := get(t, s, target, s.SecretKey(), now, "")
		if r.Status != 200 {
			t.Fatalf("page %d: %d %s", page, r.Status, r.Message)
		}
		for _, raw := range r.Data {
			var v struct {
				ID   int64 `json:"id"`
				Tags any   `json:"tags"`
			}
			json.Unmarshal(raw, &v)
			ids = append(ids, v.ID)
		}
		if r.Next == "" {
			break
		}
		if !strings.HasPrefix(r.Next, s.URL+"/api/v3/indicators?") || !strings.Contains(r.Next, "%20") || strings.Contains(r.Next, "+") {
			t.Fatalf("next link %s", r.Next)
		}
		target = strings.TrimPrefix(r.Next, s.URL)
	}
	if len(ids) != 25 {
		t.Fatalf("%d records", len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ids not in (lastModified, id) order: %v", ids)
		}
	}
	// A continuation the server did not give is refused (a client that
	// re-encodes next links is caught).
	r := get(t, s, "/api/v3/indicators?resultLimit=10&resultStart=10&tql="+url.QueryEscape(`lastModified GEQ "2020-01-01T00:00:00Z"`), s.SecretKey(), now, "")
	if r.Status != 400 || !strings.Contains(r.Message, "without a next link") {
		t.Fatalf("made-up continuation: %d %s", r.Status, r.Message)
	}
}

func TestRequestChecks(t *testing.T) {
	s := newFake(t, tcnfake.Options{Indicators: tcnfake.Generate(tcnfake.GenOptions{N: 24, Seed: 3})})
	tql := func(s string) string { return "/api/v3/indicators?tql=" + url.QueryEscape(s) }
	cases := []struct {
		target string
		status int
		msg    string
		count  int
	}{
		{tql(`lastModified GEQ "2020-01-01T00:00:00.500Z"`), 400, "Invalid date", 0},
		{tql(`lastModified GT "2020-01-01T00:00:00Z"`), 400, "Invalid TQL", 0},
		{tql(`lastModified GEQ "2020-01-01T00:00:00Z" AND rating > 3`), 400, "unsupported filter", 0},
		{tql(`lastModified GEQ "2020-01-01T00:00:00Z" AND (typeName IN ("Host", "URL"))`), 200, "", 4},
		{tql(`lastModified GEQ "2020-01-01T00:00:00Z" AND typeName EQ "ASN"`), 200, "", 2},
		{tql(`lastModified GEQ "2030-01-01T00:00:00Z"`), 200, "", 0},
		{"/api/v3/indicators?resultLimit=10001", 400, "resultLimit", 0},
		{"/api/v3/indicators?sorting=dateAdded+asc", 400, "sorts by lastModified", 0},
		{"/api/v3/nothing", 404, "Not Found", 0},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			r := get(t, s, c.target, s.SecretKey(), now, "")
			if r.Status != c.status || !strings.Contains(r.Message, c.msg) || len(r.Data) != c.count {
				t.Fatalf("%d %q %d records", r.Status, r.Message, len(r.Data))
			}
		})
	}
}

func TestFieldsDecideTheAssociations(t *testing.T) {
	s := newFake(t, tcnfake.Options{Indicators: tcnfake.Generate(tcnfake.GenOptions{N: 30, Seed: 4, Associations: true})})
	count := func(fields ...string) map[string]int {
		q := url.Values{"fields": fields}
		r := get(t, s, "/api/v3/indicators?resultLimit=100&"+q.Encode(), s.SecretKey(), now, "")
		out := map[string]int{}
		for _, raw := range r.Data {
			var m map[string]any
			json.Unmarshal(raw, &m)
			for _, k := range []string{"associatedGroups", "associatedIndicators", "attributes", "tags", "securityLabels", "threatAssessScore"} {
				if _, ok := m[k]; ok {
					out[k]++
				}
			}
			if g, ok := m["associatedGroups"].(map[string]any); ok {
				data, _ := g["data"].([]any) // {} when there are none
				for _, e := range data {
					if _, ok := e.(map[string]any)["attributes"]; ok {
						out["group attributes"]++
					}
				}
			}
		}
		return out
	}
	if c := count("tags"); c["associatedGroups"]+c["associatedIndicators"]+c["attributes"]+c["securityLabels"] != 0 || c["tags"] != 30 {
		t.Fatalf("tags only: %v", c)
	}
	c := count("associatedGroups", "associatedIndicators", "attributes", "securityLabels", "threatAssess")
	if c["associatedGroups"] != 30 || c["associatedIndicators"] != 30 || c["attributes"] != 30 || c["threatAssessScore"] != 30 || c["group attributes"] != 0 {
		t.Fatalf("associations: %v", c)
	}
	if c := count("associatedGroups.attributes"); c["group attributes"] == 0 {
		t.Fatalf("group attributes: %v", c)
	}
}

func TestDeletedAndOwners(t *testing.T) {
	inds := tcnfake.Generate(tcnfake.GenOptions{N: 5, Seed: 5})
	s := newFake(t, tcnfake.Options{Indicators: inds})
	for i, ind := range inds {
		if !s.Delete(ind.ID, now.Add(-time.Duration(i)*time.Hour)) {
			t.Fatal("not deleted")
		}
	}
	if s.Delete(inds[0].ID, now) || len(s.Indicators()) != 0 {
		t.Fatal("deleted twice")
	}
	r := get(t, s, "/api/v3/indicators/deleted?deletedSince="+url.QueryEscape(now.Add(-150*time.Minute).Format(tcnfake.TimeLayout))+"&resultLimit=2", s.SecretKey(), now, "")
	if r.Status != 200 || r.Count != 3 || len(r.Data) != 2 || r.Next == "" {
		t.Fatalf("deleted: %+v", r)
	}
	var d struct{ Summary, DateAdded, Type, OwnerName string }
	json.Unmarshal(r.Data[0], &d)
	if d.Summary != inds[2].Summary || d.DateAdded != now.Add(-2*time.Hour).Format(tcnfake.TimeLayout) || d.Type != inds[2].Type || d.OwnerName == "" {
		t.Fatalf("oldest deletion first: %+v", d)
	}
	r = get(t, s, strings.TrimPrefix(r.Next, s.URL), s.SecretKey(), now, "")
	if r.Status != 200 || len(r.Data) != 1 || r.Next != "" {
		t.Fatalf("deleted page 2: %+v", r)
	}
	r = get(t, s, "/api/v3/security/owners", s.SecretKey(), now, "")
	if r.Status != 200 || len(r.Data) != len(tcnfake.DefaultOwners) {
		t.Fatalf("owners: %+v", r)
	}
}

func TestFaults(t *testing.T) {
	s := newFake(t, tcnfake.Options{Indicators: tcnfake.Generate(tcnfake.GenOptions{N: 5, Seed: 6})})
	s.Inject(tcnfake.Fault{Endpoint: tcnfake.EndpointIndicators, Status: 503, RetryAfter: "2", Body: `{"status":"Error","message":"busy"}`}, 1)
	if r := get(t, s, "/api/v3/indicators", s.SecretKey(), now, ""); r.Status != 503 || r.Message != "busy" {
		t.Fatalf("fault: %+v", r)
	}
	if r := get(t, s, "/api/v3/indicators", s.SecretKey(), now, ""); r.Status != 200 || len(r.Data) != 5 {
		t.Fatalf("after the fault: %+v", r)
	}
	reqs := s.RequestsTo(tcnfake.EndpointIndicators)
	if len(reqs) != 2 || !reqs[0].Injected || reqs[1].Records != 5 || reqs[1].Timestamp == "" || s.Count(tcnfake.EndpointIndicators) != 2 {
		t.Fatalf("log %+v", reqs)
	}
}

// TestGenerateUniqueSummaries checks that generated summaries (the live
// view's keys) do not repeat, across chunks too.
func TestGenerateUniqueSummaries(t *testing.T) {
	seen := map[string]bool{}
	types := map[string]int{}
	for off := 0; off < 70000; off += 10000 {
		for _, ind := range tcnfake.Generate(tcnfake.GenOptions{N: 10000, Seed: 1, Offset: off}) {
			if seen[ind.Summary] {
				t.Fatalf("%s %q generated twice", ind.Type, ind.Summary)
			}
			seen[ind.Summary] = true
			types[ind.Type]++
		}
	}
	if len(types) != len(tcnfake.Types) {
		t.Fatalf("types %v", types)
	}
}
