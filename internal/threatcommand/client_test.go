package threatcommand

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

var (
	tFrom = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	tTo   = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
)

// sleepRecorder replaces httpx's sleep: it records delays and returns at once.
type sleepRecorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleepRecorder) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

type testClient struct {
	*Client
	srv    *tcfake.Server
	sleeps *sleepRecorder
	logs   *bytes.Buffer
}

// newTestClient starts a fake with opts and returns a client of it whose
// retries do not wait. key overrides the API key sent ("" = the right one).
func newTestClient(t testing.TB, opts tcfake.Options, key string) *testClient {
	t.Helper()
	srv := tcfake.New(t, opts)
	if key == "" {
		key = srv.APIKey()
	}
	sl := &sleepRecorder{}
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := NewClient(ClientConfig{
		URL:       srv.URL,
		AccountID: srv.AccountID(),
		APIKey:    key,
		HTTP: httpx.New(httpx.Options{
			Sleep:  sl.sleep,
			Jitter: func(d time.Duration) time.Duration { return d },
			Logger: log,
		}),
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testClient{Client: c, srv: srv, sleeps: sl, logs: logs}
}

func TestNewClientValidation(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []struct {
		url, account, key string
		wantErr           string
	}{
		{"https://api.intsights.com", "a", "k", ""},
		{"http://127.0.0.1:8080/prefix/", "a", "k", ""},
		{"", "a", "k", "url is empty"},
		{"api.intsights.com", "a", "k", "must start with https://"},
		{"ftp://api.intsights.com", "a", "k", "must start with https://"},
		{"https://", "a", "k", "has no host"},
		{"https://user:" + secret + "@api.intsights.com", "a", "k", "must not contain credentials"},
		{"https://user:" + secret + "@host:port", "a", "k", "not a valid URL"},
		{"https://api.intsights.com/?x=1", "a", "k", "query or a fragment"},
		{"https://api.intsights.com", "", "k", "account_id is empty"},
		{"https://api.intsights.com", "a", "", "api_key is empty"},
	}
	for _, tt := range tests {
		c, err := NewClient(ClientConfig{URL: tt.url, AccountID: tt.account, APIKey: tt.key})
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("NewClient(%q) = %v", tt.url, err)
			} else if strings.HasSuffix(c.URL(), "/") {
				t.Errorf("URL() = %q keeps a trailing slash", c.URL())
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("NewClient(%q) = %v, want an error containing %q", tt.url, err, tt.wantErr)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("NewClient(%q) error shows the password: %v", tt.url, err)
		}
	}
}

func TestIOCsPaging(t *testing.T) {
	const n = 2500
	gen := tcfake.GenerateIOCs(tcfake.GenOptions{N: n, Seed: 1, From: tFrom, To: tTo})
	for _, numeric := range []bool{false, true} {
		t.Run(fmt.Sprintf("numeric offsets %v", numeric), func(t *testing.T) {
			c := newTestClient(t, tcfake.Options{IOCs: gen, NumericOffsets: numeric}, "")
			q := IOCQuery{From: tFrom, To: tTo, SyncID: "9f1c2d3e-sync"}
			seen := map[string]bool{}
			pages := 0
			for {
				p, err := c.IOCs(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, rec := range p.Records {
					var r struct{ Value string }
					if err := json.Unmarshal(rec, &r); err != nil {
						t.Fatal(err)
					}
					if seen[r.Value] {
						t.Fatalf("%q twice", r.Value)
					}
					seen[r.Value] = true
				}
				if p.NextOffset == "" {
					break
				}
				q.Offset = p.NextOffset
			}
			if len(seen) != n || pages != 3 {
				t.Errorf("records %d, pages %d", len(seen), pages)
			}
			for _, r := range c.srv.RequestsTo(tcfake.EndpointIOCs) {
				if r.Query.Get("lastUpdatedFrom") != "2024-05-01T00:00:00.000Z" ||
					r.Query.Get("lastUpdatedTo") != "2024-06-01T00:00:00.000Z" ||
					r.Query.Get("syncId") != "9f1c2d3e-sync" {
					t.Errorf("query %v", r.Query)
				}
			}
		})
	}
}

func TestQueryParameters(t *testing.T) {
	c := newTestClient(t, tcfake.Options{}, "")
	ctx := t.Context()
	paris := time.FixedZone("CEST", 2*3600)
	from := time.Date(2024, 5, 1, 2, 0, 0, 123456789, paris) // 00:00:00.123Z

	_, err := c.IOCs(ctx, IOCQuery{From: from, To: tTo, SyncID: "s", Severities: []string{"High", "PendingEnrichment"}, Types: []string{"IpAddresses", "Urls", "Hashes"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.IOCs(ctx, IOCQuery{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CVEs(ctx, CVEQuery{From: from, To: tTo, Severities: []string{"Critical"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []AlertQuery{
		{From: from, To: tTo},
		{From: from, To: tTo, Severities: []string{"High", "Low"}, Types: []string{"Phishing", "vip"}, Closed: true},
	} {
		if _, err := c.AlertIDs(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, r := range c.srv.Requests() {
		got = append(got, r.Endpoint+" "+r.Query.Encode())
	}
	want := []string{
		"iocs lastUpdatedFrom=2024-05-01T00%3A00%3A00.123Z&lastUpdatedTo=2024-06-01T00%3A00%3A00.000Z&severity%5B0%5D=High&severity%5B1%5D=PendingEnrichment&syncId=s&type%5B0%5D=IpAddresses&type%5B1%5D=Urls&type%5B2%5D=Hashes",
		"iocs ",
		"cves severity%5B0%5D=Critical&updateDateFrom=2024-05-01T00%3A00%3A00.123Z&updateDateTo=2024-06-01T00%3A00%3A00.000Z",
		"alerts-list isClosed=false&lastUpdatedFrom=2024-05-01T00%3A00%3A00.123Z&lastUpdatedTo=2024-06-01T00%3A00%3A00.000Z",
		"alerts-list alertType=Phishing%2Cvip&isClosed=true&lastUpdatedFrom=2024-05-01T00%3A00%3A00.123Z&lastUpdatedTo=2024-06-01T00%3A00%3A00.000Z&severity=High%2CLow",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("queries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range c.srv.Requests() {
		if r.Account != c.srv.AccountID() {
			t.Errorf("request without the account: %+v", r)
		}
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	c := newTestClient(t, tcfake.Options{IOCs: tcfake.GenerateIOCs(tcfake.GenOptions{N: 10, Seed: 1})}, "")
	c.srv.Inject(tcfake.Fault{Endpoint: tcfake.EndpointIOCs, Status: 429, RetryAfter: "7"}, 1)
	p, err := c.IOCs(t.Context(), IOCQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 10 {
		t.Errorf("records %d", len(p.Records))
	}
	if got := c.sleeps.got(); len(got) != 1 || got[0] != 7*time.Second {
		t.Errorf("sleeps = %v, want [7s]", got)
	}
	if c.srv.Count(tcfake.EndpointIOCs) != 2 {
		t.Errorf("requests = %d", c.srv.Count(tcfake.EndpointIOCs))
	}
}

func TestServerErrorThenSuccess(t *testing.T) {
	c := newTestClient(t, tcfake.Options{Alerts: tcfake.GenerateAlerts(tcfake.GenOptions{N: 3, Seed: 1, From: tFrom, To: tTo})}, "")
	c.srv.FailNext(2, 500)
	ids, err := c.AlertIDs(t.Context(), AlertQuery{From: tFrom, To: tTo})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.sleeps.got(); fmt.Sprint(got) != "[1s 2s]" {
		t.Errorf("sleeps = %v, want [1s 2s]", got)
	}
	if len(ids) == 0 {
		t.Error("no ids")
	}

	// Persistent 5xx: the error names the request and the status.
	c.srv.FailNext(5, 503)
	_, err = c.IOCs(t.Context(), IOCQuery{})
	if httpx.StatusCode(err) != 503 || !strings.Contains(err.Error(), "threatcommand: IOC page: giving up after 5 attempts") {
		t.Errorf("err = %v", err)
	}
}

func TestCredentialsRejected(t *testing.T) {
	const wrongKey = "wrong-key-that-must-not-leak-0000"
	c := newTestClient(t, tcfake.Options{}, wrongKey)
	ctx := t.Context()
	calls := map[string]func() error{
		"IOCs":            func() error { _, err := c.IOCs(ctx, IOCQuery{From: tFrom}); return err },
		"CVEs":            func() error { _, err := c.CVEs(ctx, CVEQuery{}); return err },
		"AlertIDs":        func() error { _, err := c.AlertIDs(ctx, AlertQuery{}); return err },
		"Alert":           func() error { _, err := c.Alert(ctx, "abc"); return err },
		"TestCredentials": func() error { return c.TestCredentials(ctx) },
		"SystemModules":   func() error { _, _, err := c.SystemModules(ctx); return err },
	}
	const want = "Threat Command rejected the credentials (HTTP 401): check sources.threatcommand.account_id and sources.threatcommand.api_key"
	for name, call := range calls {
		err := call()
		if !errors.Is(err, ErrCredentials) {
			t.Errorf("%s: err = %v, want ErrCredentials", name, err)
			continue
		}
		if err.Error() != want {
			t.Errorf("%s: message %q", name, err.Error())
		}
		if httpx.StatusCode(err) != 401 {
			t.Errorf("%s: the StatusError is not reachable", name)
		}
		for _, secret := range []string{wrongKey, c.srv.APIKey(), c.srv.AccountID()} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error contains %q", name, secret)
			}
		}
	}
	if strings.Contains(c.logs.String(), wrongKey) {
		t.Errorf("logs contain the key: %s", c.logs)
	}
	if n := c.srv.Count(tcfake.EndpointIOCs); n != 1 {
		t.Errorf("401 was retried: %d requests", n)
	}

	good := newTestClient(t, tcfake.Options{}, "")
	if err := good.TestCredentials(ctx); err != nil {
		t.Errorf("TestCredentials with the right key: %v", err)
	}
	good.srv.FailNext(1, 403)
	if err := good.TestCredentials(ctx); !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("403: %v", err)
	}
}

func TestAlerts(t *testing.T) {
	alerts := []tcfake.Alert{
		{ID: "123456789abcdefgh8866123", UpdateDate: tFrom.Add(time.Hour), Severity: "Low", Type: "Phishing", Title: "Suspected Phishing Domain - 'example.com'", Assets: []string{"example.com"}},
		{ID: "odd/id with space", UpdateDate: tFrom.Add(2 * time.Hour), Severity: "High", Type: "vip"},
	}
	c := newTestClient(t, tcfake.Options{Alerts: alerts}, "")
	ctx := t.Context()
	ids, err := c.AlertIDs(ctx, AlertQuery{From: tFrom, To: tTo})
	if err != nil || fmt.Sprint(ids) != "[123456789abcdefgh8866123 odd/id with space]" {
		t.Fatalf("ids = %q, %v", ids, err)
	}
	for _, id := range ids {
		raw, err := c.Alert(ctx, id)
		if err != nil {
			t.Fatalf("Alert(%q): %v", id, err)
		}
		var a struct {
			ID string `json:"_id"`
		}
		if err := json.Unmarshal(raw, &a); err != nil || a.ID != id {
			t.Errorf("Alert(%q) = %s", id, raw)
		}
	}
	_, err = c.Alert(ctx, "missing")
	var se *httpx.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 {
		t.Errorf("missing alert: %v", err)
	}
	if _, err := c.Alert(ctx, ""); err == nil {
		t.Error("empty id accepted")
	}

	// No alert in the window: [] or an empty body, or a 204.
	if ids, err := c.AlertIDs(ctx, AlertQuery{From: tTo, To: tTo}); err != nil || len(ids) != 0 {
		t.Errorf("[]: %q, %v", ids, err)
	}
	empty := newTestClient(t, tcfake.Options{Alerts: alerts, EmptyAlertListBody: true}, "")
	if ids, err := empty.AlertIDs(ctx, AlertQuery{From: tTo, To: tTo}); err != nil || ids != nil {
		t.Errorf("empty body: %q, %v", ids, err)
	}
	empty.srv.SetHook(func(w http.ResponseWriter, r *http.Request, ep string) bool {
		w.WriteHeader(http.StatusNoContent)
		return true
	})
	if ids, err := empty.AlertIDs(ctx, AlertQuery{}); err != nil || ids != nil {
		t.Errorf("204: %q, %v", ids, err)
	}

	// A complete alert that is not a JSON object, or an Invalid answer.
	for body, want := range map[string]string{
		"<html>": "the body is not valid JSON",
		"":       "the body is empty",
		"[1]":    "not a JSON object",
		`{"Status":"Invalid","FailedReason":"x"}`: `Status "Invalid": x`,
	} {
		c.srv.Inject(tcfake.Fault{Endpoint: tcfake.EndpointAlert, Status: 200, Body: body}, 1)
		_, err := c.Alert(ctx, ids[0])
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), `threatcommand: alert "123456789abcdefgh8866123": `) {
			t.Errorf("alert body %q: %v, want %q", body, err, want)
		}
	}
}

func TestAlertIDsMalformed(t *testing.T) {
	c := newTestClient(t, tcfake.Options{}, "")
	for body, want := range map[string]string{
		`{"Status":"Invalid","FailedReason":"bad severity"}`: `Status "Invalid": bad severity`,
		`{"ids":[]}`:    "the body is an object, want an array",
		`"abc"`:         "the body is a string",
		`[1,2]`:         "element 0 of the alert id array is a number",
		`["a",""]`:      "element 1 of the alert id array is an empty string",
		`["a"`:          "ends too early",
		`<html></html>`: "not valid JSON",
		`["a"] ["b"]`:   "data after",
		`null`:          "",
		"  \n":          "",
		`["a","b"]`:     "",
	} {
		c.srv.Inject(tcfake.Fault{Status: 200, Body: body}, 1)
		_, err := c.AlertIDs(t.Context(), AlertQuery{})
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", body, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "threatcommand: alert list: ") {
			t.Errorf("%q: err = %v, want %q", body, err, want)
		}
	}
}

func TestPageParsing(t *testing.T) {
	tests := []struct {
		name, body string
		records    []string
		next       string
		wantErr    string
	}{
		{"empty content", `{"content":[]}`, nil, "", ""},
		{"null content", `{"content":null,"nextOffset":null}`, nil, "", ""},
		{"string offset", ` {"content":[{"a":1}] , "nextOffset" : "abc==" } `, []string{`{"a":1}`}, "abc==", ""},
		{"number offset", `{"nextOffset":12345,"content":[]}`, nil, "12345", ""},
		{"empty offset", `{"content":[],"nextOffset":""}`, nil, "", ""},
		{"escaped offset", `{"content":[],"nextOffset":"a\/b\u00e9"}`, nil, "a/bé", ""},
		{"escaped key", `{"cont\u0065nt":[7]}`, []string{"7"}, "", ""},
		{"other keys", `{"total":3,"meta":{"x":[1,{"y":null}]},"content":[true]}`, []string{"true"}, "", ""},
		{"any element", `{"content":[1, "s" ,null,{"value":"999.1.1.1"},[],{"lastUpdateDate":"bad"},-0.5e3]}`,
			[]string{"1", `"s"`, "null", `{"value":"999.1.1.1"}`, "[]", `{"lastUpdateDate":"bad"}`, "-0.5e3"}, "", ""},
		{"status valid", `{"Status":"Valid","content":[]}`, nil, "", ""},

		{"not json", `<html><body>Bad gateway</body></html>`, nil, "", `the body is not valid JSON: invalid character '<' looking for the beginning of a value at byte 0; the body starts with "<html><body>Bad gateway</body></html>"`},
		{"empty", ``, nil, "", "the body is empty"},
		{"blank", " \n ", nil, "", "the body is empty"},
		{"array", `[{"value":"x"}]`, nil, "", `the body is an array, want an object with a "content" array`},
		{"string", `"content"`, nil, "", "the body is a string"},
		{"content object", `{"content":{"value":"x"}}`, nil, "", `"content" is an object, want an array`},
		{"content string", `{"content":"[]"}`, nil, "", `"content" is a string, want an array`},
		{"content number", `{"content":1}`, nil, "", `"content" is a number, want an array`},
		{"offset bool", `{"content":[],"nextOffset":true}`, nil, "", `"nextOffset" is a boolean, want a string or a number`},
		{"offset object", `{"content":[],"nextOffset":{"a":1}}`, nil, "", `"nextOffset" is an object`},
		{"offset array", `{"content":[],"nextOffset":["a"]}`, nil, "", `"nextOffset" is an array`},
		{"offset float", `{"content":[],"nextOffset":1.5}`, nil, "", "want a string or an integer"},
		{"invalid", `{"Status":"Invalid","FailedReason":"lastUpdatedFrom is out of range"}`, nil, "", `Threat Command answered Status "Invalid": lastUpdatedFrom is out of range`},
		{"invalid with content", `{"content":[],"Status":"invalid"}`, nil, "", `Status "Invalid": (no FailedReason given)`},
		{"no content", `{"message":"Internal error","code":7}`, nil, "", `the body has no "content" array (its keys: "message", "code")`},
		{"empty object", `{}`, nil, "", `the body has no "content" array`},
		{"two contents", `{"content":[],"content":[]}`, nil, "", `"content" appears twice`},
		{"truncated", `{"content":[{"value":"1.2.3.4"},{"val`, nil, "", "ends too early at byte 37 (truncated?)"},
		{"truncated number", `{"content":[12`, nil, "", "ends too early"},
		{"trailing data", `{"content":[]} {"content":[]}`, nil, "", "data after the top-level value"},
		{"missing comma", `{"content":[] "nextOffset":"x"}`, nil, "", `want ',' or '}'`},
		{"bad element", `{"content":[{"a":tru}]}`, nil, "", "invalid character '}' in literal true"},
		{"bad separator", `{"content":[1;2]}`, nil, "", `after an element of "content": want ',' or ']', got ';'`},
		{"control char", "{\"content\":[\"a\x01\"]}", nil, "", "in string literal"},
		{"bad key", `{content:[]}`, nil, "", "want an object key"},
		{"nul", "\x00", nil, "", "invalid character byte 0x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.body), iotest.OneByteReader(strings.NewReader(tt.body))} {
				p, err := parsePage(r)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("err = %v, want %q", err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range p.Records {
					got = append(got, string(r))
				}
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.records) || p.NextOffset != tt.next {
					t.Errorf("records %q next %q, want %q %q", got, p.NextOffset, tt.records, tt.next)
				}
			}
		})
	}
}

// TestMalformedPagesOverHTTP checks that garbage, truncated and aborted
// answers give clear errors named after the page.
func TestMalformedPagesOverHTTP(t *testing.T) {
	c := newTestClient(t, tcfake.Options{IOCs: tcfake.GenerateIOCs(tcfake.GenOptions{N: 50, Seed: 2})}, "")
	ctx := t.Context()
	for name, f := range map[string]tcfake.Fault{
		"garbage":   {Status: 200, Body: "Service temporarily unavailable"},
		"truncated": {Truncate: -1},
		"aborted":   {Abort: true},
	} {
		c.srv.Inject(f, 1)
		_, err := c.IOCs(ctx, IOCQuery{})
		if err == nil || !strings.HasPrefix(err.Error(), "threatcommand: IOC page: ") {
			t.Errorf("%s: err = %v", name, err)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	// A page with malformed records is returned whole.
	c.srv.InjectIOCRecords(tcfake.MalformedNotObject, tcfake.MalformedBadIP, tcfake.MalformedBadDate)
	p, err := c.IOCs(ctx, IOCQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 53 || string(p.Records[50]) != "42" || string(p.Records[52]) != tcfake.MalformedBadDate {
		t.Errorf("%d records", len(p.Records))
	}
	// CVE pages say so.
	c.srv.Inject(tcfake.Fault{Status: 200, Body: "[]"}, 1)
	if _, err := c.CVEs(ctx, CVEQuery{}); err == nil || !strings.HasPrefix(err.Error(), "threatcommand: CVE page: the body is an array") {
		t.Errorf("CVE: %v", err)
	}
	// An Invalid answer with an error status keeps both.
	c.srv.Inject(tcfake.Fault{Status: 400, Body: `{"Status":"Invalid","FailedReason":"Invalid date range"}`}, 1)
	_, err = c.IOCs(ctx, IOCQuery{})
	if httpx.StatusCode(err) != 400 || !strings.Contains(err.Error(), `answered Status "Invalid": Invalid date range`) {
		t.Errorf("400 Invalid: %v", err)
	}
	// 204: an empty page.
	c.srv.Inject(tcfake.Fault{Status: 204}, 1)
	if p, err := c.IOCs(ctx, IOCQuery{}); err != nil || len(p.Records) != 0 || p.NextOffset != "" {
		t.Errorf("204: %+v, %v", p, err)
	}
}

func TestRecordsAreFreshSlices(t *testing.T) {
	p, err := parsePage(strings.NewReader(`{"content":[{"a":1},{"b":2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	p.Records[0] = append(p.Records[0], "garbage"...)
	p.Records[0][0] = 'X'
	if string(p.Records[1]) != `{"b":2}` {
		t.Errorf("records share memory: %q", p.Records[1])
	}
}

// chunkReader returns random-sized reads.
type chunkReader struct {
	b   []byte
	rnd *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), 1+c.rnd.IntN(3000))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// TestParsePageLargeAndChunked parses a page with records much larger than
// the scan buffer, read in random chunks.
func TestParsePageLargeAndChunked(t *testing.T) {
	var body bytes.Buffer
	body.WriteString(`{"content":[`)
	var want []string
	for i := range 40 {
		if i > 0 {
			body.WriteString(",\n")
		}
		rec := fmt.Sprintf(`{"value":"v%d","tags":["%s"],"n":%d.25e-1}`, i, strings.Repeat("x\\\"é", i*i*200), i)
		want = append(want, rec)
		body.WriteString(rec)
	}
	body.WriteString(`],"nextOffset":"end"}`)
	for seed := range 5 {
		p, err := parsePage(&chunkReader{b: body.Bytes(), rnd: rand.New(rand.NewPCG(uint64(seed), 1))})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) != len(want) || p.NextOffset != "end" {
			t.Fatalf("%d records, next %q", len(p.Records), p.NextOffset)
		}
		for i := range want {
			if string(p.Records[i]) != want[i] {
				t.Fatalf("record %d differs (%d bytes, want %d)", i, len(p.Records[i]), len(want[i]))
			}
		}
	}
}

// TestScanValueAgreesWithEncodingJSON compares the scanner with json.Valid.
func TestScanValueAgreesWithEncodingJSON(t *testing.T) {
	inputs := []string{
		`0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`, `1E-7`, `.5`, `+1`, `1.5e3.2`,
		`""`, `"\u00e9"`, `"\u00g9"`, `"\x"`, `"a\/b"`, `"unterminated`, "\"tab\there\"",
		`true`, `tru`, `truex`, `nul`, `null`, `false`, `[]`, `[1,]`, `[,1]`, `[1 2]`,
		`{}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{1:2}`, `{"a":[{"b":[]}]}`,
		` [ 1 , { "a" : [ true , null ] } ] `, "0\v", " \t1\r\n", `[1]]`, `{"a":1}}`, "\xff", `"\xff"`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	}
	for _, in := range inputs {
		end, err := scanValue([]byte(in), 0, true)
		ok := err == nil && jsonSpace([]byte(in[end:]))
		if ok != json.Valid([]byte(in)) {
			t.Errorf("%.40q: scanner ok=%v (end %d, err %v), json.Valid=%v", in, ok, end, err, !ok)
		}
	}
}

// jsonSpace reports whether b is only JSON whitespace.
func jsonSpace(b []byte) bool { return len(bytes.Trim(b, " \t\r\n")) == 0 }

func TestCVEs(t *testing.T) {
	gen := tcfake.GenerateCVEs(tcfake.GenOptions{N: 120, Seed: 4, From: tFrom, To: tTo})
	c := newTestClient(t, tcfake.Options{CVEs: gen, PageSize: 50}, "")
	q := CVEQuery{From: tFrom, To: tTo}
	total := 0
	for {
		p, err := c.CVEs(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		total += len(p.Records)
		if p.NextOffset == "" {
			break
		}
		q.Offset = p.NextOffset
	}
	if total != 120 || c.srv.Pages(tcfake.EndpointCVEs) != 3 {
		t.Errorf("records %d, pages %d", total, c.srv.Pages(tcfake.EndpointCVEs))
	}
}

func TestSystemModules(t *testing.T) {
	tests := []struct {
		name    string
		modules any
		want    string
		wantErr string
	}{
		{"default object", nil, "[{Cve true} {Discovery true} {IOC true} {IntelliFind false} {InvestigationPage true} {Remediation true} {ThreatLibrary true} {VirtualAppliance false}]", ""},
		{"list of names", []string{"IOC", "Alerts"}, "[{Alerts true} {IOC true}]", ""},
		{"list of objects", []map[string]any{{"Name": "IOC", "Enabled": false}, {"module": "Cve"}}, "[{Cve true} {IOC false}]", ""},
		{"string flags", map[string]string{"IOC": "Enabled", "Cve": "disabled"}, "[{Cve false} {IOC true}]", ""},
		{"odd value", map[string]any{"IOC": 3}, "", `module "IOC" has the value 3, want a boolean`},
		{"scalar", 7, "", "the body is 7"},
		{"invalid", map[string]string{"Status": "Invalid", "FailedReason": "no access"}, "", `Status "Invalid": no access`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, tcfake.Options{SystemModules: tt.modules}, "")
			mods, raw, err := c.SystemModules(t.Context())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if len(raw) == 0 {
					t.Error("the raw answer is not returned with a shape error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(mods); got != tt.want {
				t.Errorf("modules = %s, want %s", got, tt.want)
			}
			if !json.Valid(raw) {
				t.Errorf("raw = %s", raw)
			}
		})
	}
}

// TestCancelMidPull blocks the server and cancels the caller.
func TestCancelMidPull(t *testing.T) {
	c := newTestClient(t, tcfake.Options{IOCs: tcfake.GenerateIOCs(tcfake.GenOptions{N: 30, Seed: 1}), PageSize: 10}, "")
	block := make(chan struct{})
	defer close(block)
	p, err := c.IOCs(t.Context(), IOCQuery{})
	if err != nil {
		t.Fatal(err)
	}
	c.srv.Inject(tcfake.Fault{Block: block}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.IOCs(ctx, IOCQuery{Offset: p.NextOffset})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("err = %v after %v", err, time.Since(start))
	}
}

// TestPathPrefix checks that a base URL path is kept.
func TestPathPrefix(t *testing.T) {
	var got string
	srv := tcfake.New(t, tcfake.Options{Hook: func(w http.ResponseWriter, r *http.Request, _ string) bool {
		got = r.URL.EscapedPath()
		w.WriteHeader(200)
		io.WriteString(w, `{"_id":"x"}`)
		return true
	}})
	c, err := NewClient(ClientConfig{URL: srv.URL + "/proxy/tc/", AccountID: "a", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Alert(t.Context(), "a b/c"); err != nil {
		t.Fatal(err)
	}
	if want := "/proxy/tc/public/v1/data/alerts/get-complete-alert/a%20b%2Fc"; got != want {
		t.Errorf("path %q, want %q", got, want)
	}
	if _, err := c.Alert(t.Context(), ".."); err != nil {
		t.Fatal(err)
	}
	if want := "/proxy/tc/public/v1/data/alerts/get-complete-alert/%2E%2E"; got != want {
		t.Errorf("path %q, want %q", got, want)
	}
}

// iocPage serves one page of n generated IOCs and returns its body.
func iocPage(tb testing.TB, n int) []byte {
	srv := tcfake.New(tb, tcfake.Options{IOCs: tcfake.GenerateIOCs(tcfake.GenOptions{N: n, Seed: 1}), PageSize: n + 1})
	req, _ := http.NewRequest("GET", srv.URL+tcfake.PathIOCs, nil)
	req.SetBasicAuth(srv.AccountID(), srv.APIKey())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkIOCPageDecode decodes a 1000-record page of generated IOCs.
func BenchmarkIOCPageDecode(b *testing.B) {
	body := iocPage(b, 1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := parsePage(bytes.NewReader(body))
		if err != nil || len(p.Records) != 1000 {
			b.Fatal(len(p.Records), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10, "ns/100records")
}

// BenchmarkIOCPageHTTP fetches and decodes 1000-record pages from the fake
// over loopback HTTP, the fake's generation included.
func BenchmarkIOCPageHTTP(b *testing.B) {
	c := newTestClient(b, tcfake.Options{IOCs: tcfake.GenerateIOCs(tcfake.GenOptions{N: 1_000_000, Seed: 1}), LenientOffsets: true}, "")
	b.ReportAllocs()
	q := IOCQuery{}
	for b.Loop() {
		p, err := c.IOCs(b.Context(), q)
		if err != nil || len(p.Records) != 1000 {
			b.Fatal(err)
		}
		q.Offset = p.NextOffset
		if q.Offset == "" {
			q.Offset = ""
		}
	}
}

func FuzzParsePage(f *testing.F) {
	f.Add([]byte(`{"content":[{"value":"1.2.3.4","type":"IpAddresses"},7,"x",null],"nextOffset":"abc"}`))
	f.Add([]byte(`{"content":[],"nextOffset":123}`))
	f.Add([]byte(`{"Status":"Invalid","FailedReason":"x"}`))
	f.Add([]byte(`{"content":null}`))
	f.Add([]byte(`{"a":{"b":[1,2,{"c":"\u00e9"}]},"content":[[],{}]}`))
	f.Add([]byte(`<html>`))
	f.Add([]byte(``))
	f.Add(iocPage(f, 3))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePage(bytes.NewReader(body))
		p2, err2 := parsePage(iotest.HalfReader(bytes.NewReader(body)))
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("whole and chunked reads disagree: %v / %v", err, err2)
		}
		if err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var ref struct {
			Content []json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("accepted %q, which encoding/json rejects: %v", body, err)
		}
		if len(ref.Content) != len(p.Records) || len(p2.Records) != len(p.Records) {
			t.Fatalf("records: %d, encoding/json %d", len(p.Records), len(ref.Content))
		}
		for i := range p.Records {
			if !bytes.Equal(p.Records[i], ref.Content[i]) || !bytes.Equal(p.Records[i], p2.Records[i]) {
				t.Fatalf("record %d: %q, encoding/json %q", i, p.Records[i], ref.Content[i])
			}
		}
		if p.NextOffset != p2.NextOffset {
			t.Fatalf("offsets %q / %q", p.NextOffset, p2.NextOffset)
		}
	})
}

func FuzzParseAlertIDs(f *testing.F) {
	f.Add([]byte(`["123456789abcdefgh8866123","123456789zxcvbnmas8a8q60"]`))
	f.Add([]byte(``))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"Status":"Invalid","FailedReason":"x"}`))
	f.Add([]byte(`[1,"a"]`))
	f.Add([]byte("[\"\xf3\"]")) // invalid UTF-8 becomes U+FFFD, as in encoding/json
	f.Fuzz(func(t *testing.T, body []byte) {
		ids, err := parseAlertIDs(bytes.NewReader(body))
		if err != nil {
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if ids != nil {
				t.Fatalf("ids from an empty body: %q", ids)
			}
			return
		}
		var ref []string
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("accepted %q, which encoding/json rejects: %v", body, err)
		}
		if fmt.Sprintf("%q", ids) != fmt.Sprintf("%q", ref) && !(len(ids) == 0 && len(ref) == 0) {
			t.Fatalf("ids %q, encoding/json %q", ids, ref)
		}
		for _, id := range ids {
			if id == "" {
				t.Fatal("empty id accepted")
			}
		}
	})
}

// FuzzScanValue checks the page scanner's JSON validator against
// encoding/json in both directions, and that a value split anywhere is
// reported short rather than invalid.
func FuzzScanValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,"x\u00e9",true,null]}`, `[]`, `"\"`, `01`, `1.`, `{"a" 1}`, "[\"\x01\"]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		end, err := scanValue(in, 0, true)
		ok := err == nil && jsonSpace(in[end:])
		if ok != json.Valid(in) {
			t.Fatalf("%q: scanner ok=%v (end %d, err %v), json.Valid=%v", in, ok, end, err, !ok)
		}
		if ok {
			for cut := 0; cut < end; cut++ {
				if _, err := scanValue(in[:cut], 0, false); err != errShort {
					t.Fatalf("%q: prefix %q: %v, want errShort", in, in[:cut], err)
				}
			}
		}
	})
}

// TestNoSecretInErrors runs failing calls of every kind and checks that no
// error and no log line holds the API key.
func TestNoSecretInErrors(t *testing.T) {
	c := newTestClient(t, tcfake.Options{}, "")
	key := c.srv.APIKey()
	ctx := t.Context()
	c.srv.SetHook(func(w http.ResponseWriter, r *http.Request, _ string) bool {
		// A server that echoes the request's Authorization header.
		w.WriteHeader(500)
		io.WriteString(w, "failed for "+r.Header.Get("Authorization"))
		return true
	})
	var errs []error
	_, err := c.IOCs(ctx, IOCQuery{})
	errs = append(errs, err)
	_, err = c.Alert(ctx, "x")
	errs = append(errs, err)
	errs = append(errs, c.TestCredentials(ctx))
	c.srv.SetHook(nil)
	c.srv.Inject(tcfake.Fault{Status: 200, Body: "not json " + url.QueryEscape("x")}, 1)
	_, err = c.IOCs(ctx, IOCQuery{})
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "Basic ") && !strings.Contains(err.Error(), "[REDACTED]") {
			t.Errorf("error holds a credential: %v", err)
		}
	}
	if strings.Contains(c.logs.String(), key) || c.logs.Len() == 0 {
		t.Errorf("logs: %s", c.logs)
	}
}
