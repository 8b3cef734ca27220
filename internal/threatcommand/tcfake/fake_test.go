package tcfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// raceEnabled is set by race_test.go under -race.
var raceEnabled bool

var (
	winFrom = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	winTo   = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
)

func ts(t time.Time) string { return t.UTC().Format(TimeLayout) }

// call sends one request with the server's credentials (unless noAuth).
func call(t testing.TB, s *Server, method, path string, q url.Values, noAuth bool) (int, []byte) {
	t.Helper()
	u := s.URL + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !noAuth {
		req.SetBasicAuth(s.AccountID(), s.APIKey())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

type page struct {
	Content    []json.RawMessage `json:"content"`
	NextOffset any               `json:"nextOffset"`
}

// pull pages through an IOC or CVE window and returns every record.
func pull(t testing.TB, s *Server, path string, q url.Values) ([]json.RawMessage, int) {
	t.Helper()
	var all []json.RawMessage
	pages := 0
	for {
		st, body := call(t, s, http.MethodGet, path, q, false)
		if st != http.StatusOK {
			t.Fatalf("page %d: HTTP %d: %s", pages, st, body)
		}
		var p page
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		pages++
		all = append(all, p.Content...)
		if p.NextOffset == nil {
			return all, pages
		}
		q.Set("offset", fmt.Sprint(p.NextOffset))
	}
}

type rec struct {
	Value          string   `json:"value"`
	Type           string   `json:"type"`
	Severity       string   `json:"severity"`
	Status         string   `json:"status"`
	Score          *float64 `json:"score"`
	LastUpdateDate string   `json:"lastUpdateDate"`
}

func decode(t testing.TB, raw []byte) rec {
	t.Helper()
	var r rec
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return r
}

func TestGeneratorDeterministic(t *testing.T) {
	a := GenerateIOCs(GenOptions{N: 1000, Seed: 42})
	b := GenerateIOCs(GenOptions{N: 1000, Seed: 42})
	c := GenerateIOCs(GenOptions{N: 1000, Seed: 43})
	same := 0
	for _, i := range []int{0, 1, 2, 500, 999} {
		ja, jb := a.appendIOC(nil, i), b.appendIOC(nil, i)
		if !bytes.Equal(ja, jb) {
			t.Errorf("record %d differs between two sets of the same seed", i)
		}
		if bytes.Equal(ja, c.appendIOC(nil, i)) {
			same++
		}
		// IOC(i) and the served bytes agree.
		r := a.IOC(i)
		if !bytes.Equal(r.AppendJSON(nil), ja) {
			t.Errorf("IOC(%d) does not marshal to the served record", i)
		}
		// Mutating the returned record does not change the set.
		r.Tags = append(r.Tags, "mutated")
		if len(r.ReportedFeeds) > 0 {
			r.ReportedFeeds[0].Name = "mutated"
		}
		if !bytes.Equal(a.appendIOC(nil, i), ja) {
			t.Errorf("mutating IOC(%d) changed the set", i)
		}
	}
	if same == 5 {
		t.Error("seeds 42 and 43 give the same records")
	}
}

func TestGeneratorMix(t *testing.T) {
	const n = 20000
	from, to := winFrom, winTo
	g := GenerateIOCs(GenOptions{N: n, Seed: 7, From: from, To: to})
	values := make(map[string]bool, n)
	types := map[string]int{}
	hashLen := map[int]int{}
	var ipv6, noScheme, retired, nullScore, below1, size, inversions int
	prev := ""
	for i := range n {
		raw := g.appendIOC(nil, i)
		if !json.Valid(raw) {
			t.Fatalf("record %d is not valid JSON: %s", i, raw)
		}
		size += len(raw)
		r := decode(t, raw)
		if values[r.Value] {
			t.Fatalf("value %q repeats", r.Value)
		}
		values[r.Value] = true
		types[r.Type]++
		m := g.iocMeta(i)
		if m.typ != r.Type || m.sev != r.Severity || time.UnixMilli(m.updated).UTC().Format(TimeLayout) != r.LastUpdateDate {
			t.Fatalf("record %d: meta %+v disagrees with %s", i, m, raw)
		}
		d, err := time.Parse(TimeLayout, r.LastUpdateDate)
		if err != nil || d.Before(from) || d.After(to) {
			t.Fatalf("record %d: lastUpdateDate %s outside the window (%v)", i, r.LastUpdateDate, err)
		}
		if r.LastUpdateDate < prev {
			inversions++
		}
		prev = r.LastUpdateDate
		switch r.Type {
		case "IpAddresses":
			if strings.Contains(r.Value, ":") {
				ipv6++
			}
		case "Urls":
			if !strings.Contains(r.Value, "://") {
				noScheme++
			}
		case "Hashes":
			hashLen[len(r.Value)]++
		}
		if r.Status == "Retired" {
			retired++
		}
		if r.Score == nil {
			nullScore++
		} else if *r.Score > 0 && *r.Score < 1 {
			below1++
		}
	}
	if len(types) != 5 {
		t.Errorf("types = %v, want all five", types)
	}
	for _, l := range []int{32, 40, 64, 96, 128} {
		if hashLen[l] == 0 {
			t.Errorf("no hash of length %d: %v", l, hashLen)
		}
	}
	for name, v := range map[string]int{"IPv6": ipv6, "scheme-less URL": noScheme, "Retired": retired, "null score": nullScore, "score below 1": below1} {
		if v == 0 {
			t.Errorf("no %s record", name)
		}
	}
	if inversions < n/4 {
		t.Errorf("dates nearly sorted (%d inversions in %d)", inversions, n)
	}
	if avg := size / n; avg < 400 || avg > 600 {
		t.Errorf("average record size %d bytes, want 400-600", avg)
	}
}

func TestPagingCoversEveryRecordOnce(t *testing.T) {
	for _, numeric := range []bool{false, true} {
		t.Run(fmt.Sprintf("numeric=%v", numeric), func(t *testing.T) {
			const n = 2500
			g := GenerateIOCs(GenOptions{N: n, Seed: 1, From: winFrom, To: winTo})
			s := New(t, Options{IOCs: g, NumericOffsets: numeric})
			q := url.Values{"lastUpdatedFrom": {ts(winFrom)}, "lastUpdatedTo": {ts(winTo)}, "syncId": {"sync-1"}}
			recs, pages := pull(t, s, PathIOCs, q)
			if pages != 3 || s.Pages(EndpointIOCs) != 3 {
				t.Errorf("pages = %d (server %d), want 3", pages, s.Pages(EndpointIOCs))
			}
			if len(recs) != n {
				t.Fatalf("records = %d, want %d", len(recs), n)
			}
			seen := map[string]bool{}
			for _, raw := range recs {
				v := decode(t, raw).Value
				if seen[v] {
					t.Fatalf("%q served twice", v)
				}
				seen[v] = true
			}
			for i := range n {
				if !seen[g.IOC(i).Value] {
					t.Fatalf("record %d never served", i)
				}
			}
			// The log shows a fixed window and syncId.
			for k, r := range s.RequestsTo(EndpointIOCs) {
				if r.Query.Get("lastUpdatedFrom") != ts(winFrom) || r.Query.Get("syncId") != "sync-1" || r.Account != DefaultAccountID {
					t.Errorf("request %d: %+v", k, r)
				}
				if (r.NextOffset == "") != (k == 2) || r.Records != min(1000, n-1000*k) {
					t.Errorf("request %d: records %d, nextOffset %q", k, r.Records, r.NextOffset)
				}
			}
		})
	}
}

func TestWindowAndFilters(t *testing.T) {
	ms := time.Millisecond
	recs := []IOC{
		{Value: "1.1.1.1", Type: "IpAddresses", Severity: "High", LastUpdateDate: winFrom},
		{Value: "2.2.2.2", Type: "IpAddresses", Severity: "Low", LastUpdateDate: winTo},
		{Value: "before.example", Type: "Domains", Severity: "High", LastUpdateDate: winFrom.Add(-ms)},
		{Value: "after.example", Type: "Domains", Severity: "High", LastUpdateDate: winTo.Add(ms)},
		{Value: "inside.example", Type: "Domains", Severity: "Medium", LastUpdateDate: winFrom.Add(time.Hour)},
		{Raw: []byte(`42`), Type: "Urls"}, // no date: in every window
	}
	s := New(t, Options{IOCs: IOCRecords(recs...)})
	values := func(q url.Values) []string {
		got, _ := pull(t, s, PathIOCs, q)
		var out []string
		for _, raw := range got {
			if string(raw) == "42" {
				out = append(out, "42")
				continue
			}
			out = append(out, decode(t, raw).Value)
		}
		return out
	}
	win := func() url.Values {
		return url.Values{"lastUpdatedFrom": {ts(winFrom)}, "lastUpdatedTo": {ts(winTo)}}
	}
	tests := []struct {
		name string
		q    url.Values
		want string
	}{
		{"inclusive window", win(), "[1.1.1.1 2.2.2.2 inside.example 42]"},
		{"no window", url.Values{}, "[1.1.1.1 2.2.2.2 before.example after.example inside.example 42]"},
		{"severity", func() url.Values { q := win(); q.Set("severity[0]", "High"); q.Set("severity[1]", "Medium"); return q }(), "[1.1.1.1 inside.example]"},
		{"type", func() url.Values { q := win(); q.Set("type[0]", "Domains"); return q }(), "[inside.example]"},
		{"type is case-sensitive", func() url.Values { q := win(); q.Set("type[0]", "domains"); return q }(), "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(values(tt.q)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}

	st, body := call(t, s, http.MethodGet, PathIOCs, url.Values{"lastUpdatedFrom": {"yesterday"}}, false)
	if st != http.StatusBadRequest || !strings.Contains(string(body), `"Status":"Invalid"`) {
		t.Errorf("bad date: HTTP %d %s", st, body)
	}
}

func TestOffsetBoundToQuery(t *testing.T) {
	g := GenerateIOCs(GenOptions{N: 30, Seed: 3, From: winFrom, To: winTo})
	for _, lenient := range []bool{false, true} {
		s := New(t, Options{IOCs: g, PageSize: 10, LenientOffsets: lenient})
		q := url.Values{"lastUpdatedFrom": {ts(winFrom)}, "lastUpdatedTo": {ts(winTo)}}
		_, body := call(t, s, http.MethodGet, PathIOCs, q, false)
		var p page
		json.Unmarshal(body, &p)
		q.Set("offset", p.NextOffset.(string))
		q.Set("lastUpdatedTo", ts(winTo.Add(time.Second))) // the window moved
		st, body := call(t, s, http.MethodGet, PathIOCs, q, false)
		if lenient && st != http.StatusOK || !lenient && (st != http.StatusBadRequest || !strings.Contains(string(body), "changed while paging")) {
			t.Errorf("lenient=%v: HTTP %d %s", lenient, st, body)
		}
		q.Set("offset", "garbage!")
		if st, _ := call(t, s, http.MethodGet, PathIOCs, q, false); st != http.StatusBadRequest {
			t.Errorf("garbage offset: HTTP %d", st)
		}
	}
}

func TestAuth(t *testing.T) {
	s := New(t, Options{AccountID: "acct", APIKey: "key-123"})
	tests := []struct {
		name       string
		user, pass string
		noAuth     bool
		want       int
	}{
		{"none", "", "", true, 401},
		{"wrong key", "acct", "nope", false, 401},
		{"wrong account", "other", "key-123", false, 401},
		{"right", "acct", "key-123", false, 200},
	}
	for _, tt := range tests {
		for _, ep := range []struct{ method, path string }{
			{http.MethodHead, PathTestCredentials},
			{http.MethodGet, PathSystemModules},
			{http.MethodGet, PathIOCs},
			{http.MethodGet, PathCVEs},
			{http.MethodGet, PathAlertList},
		} {
			req, _ := http.NewRequest(ep.method, s.URL+ep.path, nil)
			if !tt.noAuth {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("%s %s %s: HTTP %d, want %d", tt.name, ep.method, ep.path, resp.StatusCode, tt.want)
			}
		}
	}
	if st, _ := call(t, s, http.MethodGet, PathTestCredentials, nil, false); st != http.StatusMethodNotAllowed {
		t.Errorf("GET test-credentials: HTTP %d", st)
	}
	if st, _ := call(t, s, http.MethodGet, "/nowhere", nil, false); st != http.StatusNotFound {
		t.Errorf("unknown path: HTTP %d", st)
	}
	_, body := call(t, New(t, Options{}), http.MethodGet, PathSystemModules, nil, false)
	var mods map[string]bool
	if err := json.Unmarshal(body, &mods); err != nil || !mods["IOC"] || mods["IntelliFind"] {
		t.Errorf("system modules: %s (%v)", body, err)
	}
	for _, r := range s.Requests() {
		if strings.Contains(fmt.Sprint(r), "key-123") {
			t.Errorf("the log holds the key: %+v", r)
		}
	}
}

func TestFaults(t *testing.T) {
	g := GenerateIOCs(GenOptions{N: 50, Seed: 9})
	s := New(t, Options{IOCs: g, PageSize: 20})

	s.FailNext(2, 500)
	for k, want := range []int{500, 500, 200} {
		if st, _ := call(t, s, http.MethodGet, PathIOCs, nil, false); st != want {
			t.Errorf("request %d: HTTP %d, want %d", k, st, want)
		}
	}

	s.Inject(Fault{Endpoint: EndpointIOCs, Status: 429, RetryAfter: "7"}, 1)
	if st, _ := call(t, s, http.MethodGet, PathSystemModules, nil, false); st != 200 {
		t.Errorf("a fault for iocs hit system-modules: HTTP %d", st)
	}
	req, _ := http.NewRequest("GET", s.URL+PathIOCs, nil)
	req.SetBasicAuth(s.AccountID(), s.APIKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
		t.Errorf("429 fault: HTTP %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	s.Inject(Fault{Status: 200, Body: "<html>oops</html>"}, 1)
	if st, body := call(t, s, http.MethodGet, PathIOCs, nil, false); st != 200 || string(body) != "<html>oops</html>" {
		t.Errorf("garbage: HTTP %d %q", st, body)
	}

	s.Inject(Fault{Truncate: -1}, 1)
	st, body := call(t, s, http.MethodGet, PathIOCs, nil, false)
	if st != 200 || json.Valid(body) || !bytes.HasPrefix(body, []byte(`{"content":[{`)) {
		t.Errorf("truncated: HTTP %d, %d bytes, valid=%v", st, len(body), json.Valid(body))
	}

	s.Inject(Fault{Abort: true}, 1)
	req, _ = http.NewRequest("GET", s.URL+PathIOCs, nil)
	req.SetBasicAuth(s.AccountID(), s.APIKey())
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("aborted body: err = %v, want unexpected EOF", err)
		}
	}

	// Block: the client gives up while the server waits.
	block := make(chan struct{})
	defer close(block)
	s.Inject(Fault{Block: block}, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, "GET", s.URL+PathIOCs, nil)
	req.SetBasicAuth(s.AccountID(), s.APIKey())
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("blocked: err = %v", err)
	}

	// The hook answers first.
	s.SetHook(func(w http.ResponseWriter, r *http.Request, ep string) bool {
		if ep == EndpointCVEs {
			w.WriteHeader(418)
			return true
		}
		return false
	})
	if st, _ := call(t, s, http.MethodGet, PathCVEs, nil, false); st != 418 {
		t.Errorf("hook: HTTP %d", st)
	}
	s.SetHook(nil)

	if got := s.Count(EndpointIOCs); got < 8 {
		t.Errorf("Count(iocs) = %d", got)
	}
	injected := 0
	for _, r := range s.Requests() {
		if r.Injected {
			injected++
		}
	}
	if injected < 6 {
		t.Errorf("injected requests logged = %d", injected)
	}
}

func TestMutations(t *testing.T) {
	g := GenerateIOCs(GenOptions{N: 100, Seed: 5, From: winFrom, To: winTo})
	s := New(t, Options{IOCs: g, PageSize: 1000})
	later := winTo.Add(time.Hour)
	q := url.Values{"lastUpdatedFrom": {ts(winTo.Add(time.Millisecond))}, "lastUpdatedTo": {ts(later)}}

	// Nothing is newer than the window yet.
	if recs, _ := pull(t, s, PathIOCs, cloneQ(q)); len(recs) != 0 {
		t.Fatalf("got %d records after the window", len(recs))
	}
	// Replace record 10 with a newer copy, retire record 20, add a new one.
	r10 := s.IOC(10)
	r10.LastUpdateDate = later
	r10.Severity = "High"
	if i := s.PutIOC(r10); i != 10 {
		t.Errorf("PutIOC replaced index %d, want 10", i)
	}
	s.RetireIOC(20, later.Add(-time.Minute))
	if i := s.PutIOC(IOC{Value: "new.example", Type: "Domains", Status: "Active", Severity: "Low", LastUpdateDate: later}); i != 100 {
		t.Errorf("new record index %d, want 100", i)
	}
	if s.IOCLen() != 101 || s.IOCIndex("new.example") != 100 || s.IOCIndex(g.IOC(20).Value) != 20 {
		t.Errorf("len %d, indexes wrong", s.IOCLen())
	}
	recs, _ := pull(t, s, PathIOCs, cloneQ(q))
	var got []string
	for _, raw := range recs {
		r := decode(t, raw)
		got = append(got, r.Value+"/"+r.Status)
	}
	want := fmt.Sprint([]string{g.IOC(10).Value + "/" + g.IOC(10).Status, g.IOC(20).Value + "/Retired", "new.example/Active"})
	if fmt.Sprint(got) != want {
		t.Errorf("after mutations: %v, want %v", got, want)
	}

	// Injected records go into the next page only.
	s.InjectIOCRecords(`17`, `{"value":"999.1.1.1","type":"IpAddresses","lastUpdateDate":"not a date"}`)
	recs, _ = pull(t, s, PathIOCs, cloneQ(q))
	if len(recs) != 5 || string(recs[3]) != "17" {
		t.Errorf("with injected records: %d records, 4th %s", len(recs), recs[min(3, len(recs)-1)])
	}
	if recs, _ = pull(t, s, PathIOCs, cloneQ(q)); len(recs) != 3 {
		t.Errorf("injected records served again: %d", len(recs))
	}
}

func cloneQ(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func TestAlerts(t *testing.T) {
	alerts := []Alert{
		{ID: "a1", UpdateDate: winFrom, Severity: "High", Type: "Phishing"},
		{ID: "a2", UpdateDate: winTo, Severity: "Low", Type: "DataLeakage", Closed: true},
		{ID: "a3", UpdateDate: winTo.Add(time.Millisecond), Severity: "High", Type: "Phishing"},
		{ID: "a/4", UpdateDate: winFrom.Add(time.Hour), Severity: "Medium", Type: "vip", Raw: []byte(`{"_id":"a/4","custom":true}`)},
	}
	s := New(t, Options{Alerts: alerts})
	list := func(q url.Values) string {
		st, body := call(t, s, http.MethodGet, PathAlertList, q, false)
		if st != 200 {
			t.Fatalf("HTTP %d %s", st, body)
		}
		return string(body)
	}
	win := func(extra ...string) url.Values {
		q := url.Values{"lastUpdatedFrom": {ts(winFrom)}, "lastUpdatedTo": {ts(winTo)}}
		for k := 0; k < len(extra); k += 2 {
			q.Set(extra[k], extra[k+1])
		}
		return q
	}
	tests := []struct {
		q    url.Values
		want string
	}{
		{win("isClosed", "false"), `["a1","a/4"]`},
		{win("isClosed", "true"), `["a2"]`},
		{win(), `["a1","a2","a/4"]`},
		{win("isClosed", "false", "severity", "High,Medium"), `["a1","a/4"]`},
		{win("isClosed", "false", "alertType", "vip"), `["a/4"]`},
		{win("isClosed", "false", "alertType", "BrandSecurity"), `[]`},
	}
	for _, tt := range tests {
		if got := list(tt.q); got != tt.want {
			t.Errorf("%v: %s, want %s", tt.q, got, tt.want)
		}
	}
	s2 := New(t, Options{Alerts: alerts, EmptyAlertListBody: true})
	if st, body := call(t, s2, http.MethodGet, PathAlertList, win("alertType", "BrandSecurity"), false); st != 200 || len(body) != 0 {
		t.Errorf("empty list with EmptyAlertListBody: HTTP %d %q", st, body)
	}
	st, body := call(t, s, http.MethodGet, PathAlert+"a1", nil, false)
	var full map[string]any
	if st != 200 || json.Unmarshal(body, &full) != nil || full["_id"] != "a1" || full["UpdateDate"] != ts(winFrom) {
		t.Errorf("get-complete-alert a1: HTTP %d %s", st, body)
	}
	if st, body := call(t, s, http.MethodGet, PathAlert+url.PathEscape("a/4"), nil, false); st != 200 || string(body) != `{"_id":"a/4","custom":true}` {
		t.Errorf("get-complete-alert a/4: HTTP %d %s", st, body)
	}
	if st, _ := call(t, s, http.MethodGet, PathAlert+"nope", nil, false); st != 404 {
		t.Errorf("unknown alert: HTTP %d", st)
	}
	s.PutAlert(Alert{ID: "a1", UpdateDate: winFrom, Severity: "High", Type: "Phishing", Closed: true})
	if got := list(win("isClosed", "true")); got != `["a1","a2"]` {
		t.Errorf("after PutAlert: %s", got)
	}

	gen := GenerateAlerts(GenOptions{N: 200, Seed: 1, From: winFrom, To: winTo})
	ids := map[string]bool{}
	closed := 0
	for _, a := range gen {
		if ids[a.ID] || len(a.ID) != 24 || a.UpdateDate.Before(winFrom) || a.UpdateDate.After(winTo) {
			t.Fatalf("generated alert %+v", a)
		}
		ids[a.ID] = true
		if a.Closed {
			closed++
		}
		if !json.Valid(a.AppendJSON(nil)) {
			t.Fatalf("alert JSON invalid: %s", a.AppendJSON(nil))
		}
	}
	if closed == 0 || closed == len(gen) {
		t.Errorf("closed alerts: %d of %d", closed, len(gen))
	}
}

func TestCVEs(t *testing.T) {
	g := GenerateCVEs(GenOptions{N: 250, Seed: 2, From: winFrom, To: winTo})
	s := New(t, Options{CVEs: g, PageSize: 100})
	q := url.Values{"updateDateFrom": {ts(winFrom)}, "updateDateTo": {ts(winTo)}}
	recs, pages := pull(t, s, PathCVEs, q)
	if len(recs) != 250 || pages != 3 {
		t.Errorf("records %d, pages %d", len(recs), pages)
	}
	ids := map[string]bool{}
	for _, raw := range recs {
		var c struct {
			CveID, UpdateDate, Severity string
		}
		if err := json.Unmarshal(raw, &c); err != nil || c.CveID == "" || ids[c.CveID] {
			t.Fatalf("%s: %v", raw, err)
		}
		ids[c.CveID] = true
	}
	q = url.Values{"updateDateFrom": {ts(winFrom)}, "updateDateTo": {ts(winTo)}, "severity[0]": {"Critical"}}
	crit, _ := pull(t, s, PathCVEs, q)
	if len(crit) == 0 || len(crit) >= 250 {
		t.Errorf("Critical CVEs: %d", len(crit))
	}
	c := s.CVE(0)
	c.UpdateDate = winTo.Add(time.Hour)
	if i := s.PutCVE(c); i != 0 {
		t.Errorf("PutCVE index %d", i)
	}
	q = url.Values{"updateDateFrom": {ts(winTo.Add(time.Minute))}}
	if recs, _ := pull(t, s, PathCVEs, q); len(recs) != 1 || !strings.Contains(string(recs[0]), c.ID) {
		t.Errorf("after PutCVE: %d records", len(recs))
	}
}

// TestMillionRecords pulls a million generated IOCs through HTTP and checks
// the server's heap stays far below the records' size. The bodies are read
// and dropped; the next offset comes from the request log.
func TestMillionRecords(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow; skipped with -short and -race")
	}
	const n = 1_000_000
	g := GenerateIOCs(GenOptions{N: n, Seed: 11})
	s := New(t, Options{IOCs: g, PageSize: 10000})
	q := url.Values{}
	bytesRead := 0
	var peak uint64
	for pages := 1; ; pages++ {
		st, body := call(t, s, http.MethodGet, PathIOCs, q, false)
		if st != 200 {
			t.Fatalf("HTTP %d", st)
		}
		bytesRead += len(body)
		if pages%25 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
		reqs := s.Requests()
		next := reqs[len(reqs)-1].NextOffset
		if next == "" {
			break
		}
		q.Set("offset", next)
	}
	if got := s.Served(EndpointIOCs); got != n || s.Pages(EndpointIOCs) != 100 {
		t.Errorf("records %d, pages %d", got, s.Pages(EndpointIOCs))
	}
	if peak > 100<<20 {
		t.Errorf("heap in use reached %d MiB for %d MiB of records", peak>>20, bytesRead>>20)
	}
}

func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2024, 6, 5, 7, 8, 9, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999000000, time.FixedZone("x", 3600)),
		time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(12024, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, want := string(appendTime(nil, tm)), `"`+tm.UTC().Format(TimeLayout)+`"`; got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\`, "tab\tnl\n\x01", "héllo ✓", "bad\xffutf8"} {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("appendString(%q) = %s: %v", s, b, err)
			continue
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want {
			t.Errorf("appendString(%q) round-trips to %q", s, got)
		}
	}
}

// BenchmarkGenerateIOC measures building and serializing one generated
// record, the fake's cost per record served.
func BenchmarkGenerateIOC(b *testing.B) {
	g := GenerateIOCs(GenOptions{N: 1_000_000, Seed: 1})
	buf := make([]byte, 0, 4096)
	i := 0
	for b.Loop() {
		buf = g.appendIOC(buf[:0], i%1_000_000)
		i++
	}
}

func TestMalformedRecordsAreJSON(t *testing.T) {
	for _, r := range []string{MalformedNotObject, MalformedBadIP, MalformedBadDate} {
		if !json.Valid([]byte(r)) {
			t.Errorf("not valid JSON: %s", r)
		}
	}
}
