package threatconnect

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/httpx"
)

// The worked examples of the reference document (section 3).
const (
	vectorAccessID = "12345678901234567890"
	vectorSecret   = "TestSecretKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
	vectorTS       = 1513703787
	vectorTargetB  = "/api/v3/indicators?fields=associatedGroups&fields=associatedIndicators&fields=attributes&fields=securityLabels&fields=sightings&fields=tags&fields=threatAssess&resultLimit=2000&resultStart=0&sorting=lastModified+asc&tql=lastModified+GEQ+%222024-01-01T00%3A00%3A00Z%22"
)

func TestAuthorizationVectors(t *testing.T) {
	cases := []struct {
		name, target, want string
	}{
		{"A", "/api/v3/indicators?resultStart=0&resultLimit=2", "TC 12345678901234567890:RIDL4IgKtyw7l7mbcpFmMJTHUvsnI796epeEfS+Z06M="},
		{"C no query", "/api/v3/indicators", "TC 12345678901234567890:H7jctwmwdcSQsFVCJTQolR+vKiKPdPhxjjtQ+ZicdkM="},
		{"B plus for spaces", vectorTargetB, "TC 12345678901234567890:ov0jwvcsI0XWxL2boUke5gws/8A/D2XGX3Kn+QHm8MA="},
		{"D %20 for spaces", strings.ReplaceAll(vectorTargetB, "+", "%20"), "TC 12345678901234567890:twi6iDHwFw9m15mmQUdI5SFIrbTH2fV6TeKVLuFwNa4="},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Authorization(vectorAccessID, []byte(vectorSecret), c.target, http.MethodGet, vectorTS); got != c.want {
				t.Errorf("Authorization = %s, want %s", got, c.want)
			}
		})
	}
}

func fixedClock(t time.Time) vigil.Clock { return vigil.ClockFunc(func() time.Time { return t }) }

func newTestClient(t *testing.T, url string, opts httpx.Options, clock vigil.Clock) *Client {
	t.Helper()
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = 1
	}
	if opts.Sleep == nil {
		opts.Sleep = func(context.Context, time.Duration) error { return nil }
	}
	c, err := NewClient(ClientConfig{URL: url, AccessID: vectorAccessID, SecretKey: vectorSecret, HTTP: opts, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIndicatorsRequestIsVectorB builds the first request of a listing with
// every association asked for and checks that it is, byte for byte, the
// request of vector B, and is signed as B.
func TestIndicatorsRequestIsVectorB(t *testing.T) {
	var mu sync.Mutex
	var target, auth, ts string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		target, auth, ts = r.RequestURI, r.Header.Get("Authorization"), r.Header.Get("Timestamp")
		mu.Unlock()
		w.Write([]byte(`{"data":[],"status":"Success"}`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL+"/", httpx.Options{}, fixedClock(time.Unix(vectorTS, 0)))
	set := Settings{IncludeGroupAssoc: true, IncludeIndicatorAssoc: true, IncludeAttributes: true}
	q := IndicatorQuery{Since: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Fields: set.Fields(), Limit: 2000}
	if got := RequestTarget(c.IndicatorsURL(q)); got != vectorTargetB {
		t.Fatalf("request target\n got %s\nwant %s", got, vectorTargetB)
	}
	if _, err := c.Indicators(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if target != vectorTargetB {
		t.Errorf("sent %s, want %s", target, vectorTargetB)
	}
	if want := "TC 12345678901234567890:ov0jwvcsI0XWxL2boUke5gws/8A/D2XGX3Kn+QHm8MA="; auth != want || ts != strconv.Itoa(vectorTS) {
		t.Errorf("Authorization %q Timestamp %q, want %q %d", auth, ts, want, vectorTS)
	}
}

func TestIndicatorsURL(t *testing.T) {
	since := time.Date(2024, 5, 6, 7, 8, 9, 987_000_000, time.UTC)
	cases := []struct {
		name string
		set  Settings
		tql  string
		want string
	}{
		{"defaults", Settings{}, "", "/api/v3/indicators?fields=securityLabels&fields=sightings&fields=tags&fields=threatAssess&resultLimit=2000&resultStart=0&sorting=lastModified+asc&tql=lastModified+GEQ+%222024-05-06T07%3A08%3A09Z%22"},
		{"group attributes", Settings{IncludeGroupAssoc: true, IncludeGroupAssocAttribs: true, BatchSize: 10}, "", "/api/v3/indicators?fields=associatedGroups&fields=associatedGroups.attributes&fields=securityLabels&fields=sightings&fields=tags&fields=threatAssess&resultLimit=10&resultStart=0&sorting=lastModified+asc&tql=lastModified+GEQ+%222024-05-06T07%3A08%3A09Z%22"},
		{"user tql in parentheses", Settings{BatchSize: 20000}, `  typeName IN ("Host") OR rating > 3 `, "/api/v3/indicators?fields=securityLabels&fields=sightings&fields=tags&fields=threatAssess&resultLimit=10000&resultStart=0&sorting=lastModified+asc&tql=lastModified+GEQ+%222024-05-06T07%3A08%3A09Z%22+AND+%28typeName+IN+%28%22Host%22%29+OR+rating+%3E+3%29"},
	}
	c := newTestClient(t, "https://app.threatconnect.com", httpx.Options{}, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := c.IndicatorsURL(IndicatorQuery{Since: since, TQL: tc.tql, Fields: tc.set.Fields(), Limit: tc.set.batch()})
			if u.Host != "app.threatconnect.com" || u.Scheme != "https" {
				t.Errorf("url %s", u)
			}
			if got := RequestTarget(u); got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestBaseURL(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{in: "https://app.threatconnect.com", want: "https://app.threatconnect.com/api"},
		{in: "https://app.threatconnect.com/", want: "https://app.threatconnect.com/api"},
		{in: "https://tc.example.org/api/", want: "https://tc.example.org/api"},
		{in: "https://tc.example.org/threat%20connect", want: "https://tc.example.org/threat%20connect/api"},
		{in: "", err: "is empty"},
		{in: "ftp://x", err: "must start with https://"},
		{in: "https://", err: "has no host"},
		{in: "https://id:secret@x", err: "must not contain credentials"},
		{in: "https://x/?a=b", err: "must not have a query"},
		{in: "https://x/%zz", err: "not a valid URL"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			cl, err := NewClient(ClientConfig{URL: c.in, AccessID: "a", SecretKey: "s"})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "secret@") {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || cl.URL() != c.want {
				t.Fatalf("URL() = %v, %v; want %s", cl, err, c.want)
			}
		})
	}
	if _, err := NewClient(ClientConfig{URL: "https://x", SecretKey: "s"}); err == nil || !strings.Contains(err.Error(), "access_id") {
		t.Errorf("missing access id: %v", err)
	}
	if _, err := NewClient(ClientConfig{URL: "https://x", AccessID: "a"}); err == nil || !strings.Contains(err.Error(), "secret_key") {
		t.Errorf("missing secret key: %v", err)
	}
}

// TestNextLinkSentAndSignedAsGiven follows next links written the way
// ThreatConnect may write them (another host, %20, its own parameter
// order) and checks that their path and query go on the wire, and into the
// signature, unchanged, to the configured host.
func TestNextLinkSentAndSignedAsGiven(t *testing.T) {
	links := []string{
		"http://internal-tc:8080/api/v3/indicators?tql=lastModified%20GEQ%20%222024-01-01T00%3A00%3A00Z%22&sorting=lastModified%20asc&resultLimit=2&resultStart=2",
		"/api/v3/indicators?resultStart=4&resultLimit=2&fields=tags&x=a+b%2Bc",
		"https://app.threatconnect.com/api/v3/indicators/?resultStart=6",
	}
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		ts, _ := strconv.ParseInt(r.Header.Get("Timestamp"), 10, 64)
		if want := Authorization(vectorAccessID, []byte(vectorSecret), r.RequestURI, r.Method, ts); r.Header.Get("Authorization") != want {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got = append(got, r.RequestURI)
		w.Write([]byte(`{"data":[{"id":1}],"status":"Success"}`))
	}))
	defer srv.Close()
	c := newTestClient(t, srv.URL, httpx.Options{}, nil)
	for _, l := range links {
		p, err := c.Next(t.Context(), "indicator page", l)
		if err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if len(p.Records) != 1 {
			t.Fatalf("%s: %d records", l, len(p.Records))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, l := range links {
		want := l[strings.Index(l, "/api"):]
		if got[i] != want {
			t.Errorf("link %d sent as\n %s\nwant %s", i, got[i], want)
		}
	}
	for _, bad := range []string{"abcd", "mailto:x@y", "?resultStart=2", "%zz"} {
		if _, err := c.Next(t.Context(), "indicator page", bad); err == nil || !strings.Contains(err.Error(), "next link") {
			t.Errorf("next link %q: err = %v", bad, err)
		}
	}
}

// TestRetryIsSignedAgain checks that each attempt carries its own
// Timestamp and signature, so a retry after a long backoff is not stale.
func TestRetryIsSignedAgain(t *testing.T) {
	var mu sync.Mutex
	var stamps []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stamps = append(stamps, r.Header.Get("Timestamp"))
		n := len(stamps)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"data":[],"status":"Success"}`))
	}))
	defer srv.Close()
	now := time.Unix(1_700_000_000, 0)
	var cmu sync.Mutex
	clock := vigil.ClockFunc(func() time.Time { cmu.Lock(); defer cmu.Unlock(); return now })
	sleep := func(_ context.Context, d time.Duration) error {
		cmu.Lock()
		now = now.Add(4 * time.Minute)
		cmu.Unlock()
		return nil
	}
	c := newTestClient(t, srv.URL, httpx.Options{MaxAttempts: 3, Sleep: sleep}, clock)
	if _, _, err := c.Owners(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"1700000000", "1700000240", "1700000480"}
	if strings.Join(stamps, ",") != strings.Join(want, ",") {
		t.Errorf("Timestamps %v, want %v", stamps, want)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		body        string
		credentials bool
		want        []string
	}{
		{"bad signature", 401, `{"status":"Error","message":"Signature Data Did Not Match Expected Result"}`, true,
			[]string{"rejected the signature", "HTTP 401", "Signature Data Did Not Match", "sources.threatconnect.access_id", "sources.threatconnect.secret_key", "clock", "5 minutes"}},
		{"stale timestamp", 401, `{"status":"Error","message":"Timestamp Out of Acceptable Time Range"}`, true,
			[]string{"Timestamp Out of Acceptable Time Range", "within 5 minutes"}},
		{"forbidden owner", 403, `{"status":"Error","message":"Unknown or forbidden owner","errCode":"0x1001"}`, true,
			[]string{"HTTP 403", "Unknown or forbidden owner (errCode 0x1001)", "may not read this owner"}},
		{"not licensed", 503, `{"status":"Error","message":"API access is not enabled"}`, false,
			[]string{"503", "not licensed", "API access is not enabled", "still failing after retries"}},
		{"bad tql", 400, `{"status":"Error","message":"Invalid TQL: unexpected token"}`, false,
			[]string{"HTTP 400 Bad Request", `"Invalid TQL: unexpected token"`}},
		{"plain body", 404, "no such thing", false, []string{"HTTP 404", "no such thing"}},
		{"rate limited", 429, "", false, []string{"429 Too Many Requests", "still failing after retries"}},
		{"error status in 200", 200, `{"status":"Error","message":"Owner does not exist"}`, false,
			[]string{`ThreatConnect answered status "Error": Owner does not exist`}},
		{"not json", 200, `<html>oops</html>`, false, []string{"not valid JSON", `"<html>oops</html>"`}},
		{"truncated", 200, `{"data":[{"id":1},`, false, []string{"not valid JSON"}},
		{"data not array", 200, `{"data":{"id":1}}`, false, []string{`"data" is an object, want an array`}},
		{"no data", 200, `{"result":[]}`, false, []string{`no "data" array (its keys: "result")`}},
		{"empty", 200, ``, false, []string{"the body is empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(c.status)
				w.Write([]byte(c.body))
			}))
			defer srv.Close()
			cl := newTestClient(t, srv.URL, httpx.Options{MaxAttempts: 2}, nil)
			_, err := cl.Indicators(t.Context(), IndicatorQuery{Since: time.Unix(0, 0), Limit: 10})
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, vigil.ErrCredentials) != c.credentials || errors.Is(err, ErrCredentials) != c.credentials {
				t.Errorf("errors.Is(ErrCredentials) = %v, want %v: %v", !c.credentials, c.credentials, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), vectorSecret) {
				t.Errorf("error shows the secret: %v", err)
			}
			if c.status >= 400 && httpx.StatusCode(err) != c.status {
				t.Errorf("StatusCode = %d", httpx.StatusCode(err))
			}
		})
	}
}

func TestParsePage(t *testing.T) {
	cases := []struct {
		body    string
		records []string
		next    string
		err     string
	}{
		{body: `{"data":[],"status":"Success"}`},
		{body: ` {"status":"Success"} `},
		{body: `{"data":null}`},
		{body: `{"data":[{"id":9007199254740993},1,"x",null,[],{"a":"]}\"["}],"next":"http://h/p?a=%20"}`,
			records: []string{`{"id":9007199254740993}`, `1`, `"x"`, `null`, `[]`, `{"a":"]}\"["}`}, next: "http://h/p?a=%20"},
		{body: "{\"next\":null,\"count\":2,\"data\":[ {\"a\" : [ 1 , 2 ] } ,\n{} ]}", records: []string{`{"a" : [ 1 , 2 ] }`, `{}`}},
		{body: `{"data":[],"next":"\u0068ttp://x/"}`, next: "http://x/"},
		{body: `{"data":[],"next":5}`, err: `"next" is a number`},
		{body: `[]`, err: "the body is an array"},
		{body: `"x"`, err: "the body is a string"},
		{body: `{"status":"Error"}`, err: `status "Error": (no message given)`},
		{body: `{"data":[1,]}`, err: "not valid JSON"},
		{body: `{"data":[]} x`, err: "not valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.body, func(t *testing.T) {
			p, err := parsePage([]byte(c.body))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Records) != len(c.records) || p.Next != c.next {
				t.Fatalf("records %q next %q", p.Records, p.Next)
			}
			for i := range p.Records {
				if string(p.Records[i]) != c.records[i] {
					t.Errorf("record %d = %s, want %s", i, p.Records[i], c.records[i])
				}
			}
		})
	}
}

func TestOwnersKeepBigIDs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3/security/owners" {
			w.WriteHeader(404)
			return
		}
		w.Write([]byte(`{"data":[{"id":9007199254740993,"name":"Big","type":"Organization","permIndicator":"FULL"},{"id":2,"name":"Two","type":"Source"}],"next":"x","status":"Success"}`))
	}))
	defer srv.Close()
	owners, more, err := newTestClient(t, srv.URL, httpx.Options{}, nil).Owners(t.Context())
	if err != nil || !more || len(owners) != 2 {
		t.Fatalf("%+v %v %v", owners, more, err)
	}
	if owners[0].ID != 9007199254740993 || owners[0].Name != "Big" || owners[0].PermIndicator != "FULL" || owners[1].ID != 2 {
		t.Errorf("owners %+v", owners)
	}
}

func TestPageRepeats(t *testing.T) {
	cases := []struct {
		next, target string
		want         bool
	}{
		{"", "/api/v3/indicators?resultStart=0", false},
		{"http://other:1/api/v3/indicators?resultStart=0", "/api/v3/indicators?resultStart=0", true},
		{"/api/v3/indicators?resultStart=2", "/api/v3/indicators?resultStart=0", false},
		{"http://h/api/v3/indicators?resultStart=0&x=%20", "/api/v3/indicators?resultStart=0&x=+", false},
	}
	for _, c := range cases {
		p := Page{Next: c.next, Target: c.target}
		if got := p.Repeats(); got != c.want {
			t.Errorf("Repeats(%q, %q) = %v", c.next, c.target, got)
		}
	}
}
