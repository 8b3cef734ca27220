package misp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/misp"
	"github.com/vigil-ti/vigil/internal/misp/mispfake"
)

func noSleep(context.Context, time.Duration) error { return nil }

func newClient(t *testing.T, fake *mispfake.Server, key string) *misp.Client {
	t.Helper()
	c, err := misp.NewClient(misp.ClientConfig{URL: fake.URL, APIKey: key, HTTP: httpx.Options{MaxAttempts: 3, Sleep: noSleep}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQueryBody(t *testing.T) {
	yes, no := true, false
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		q    misp.Query
		want string
	}{
		{"Elastic's", misp.Query{Since: since, Page: 1, Limit: 10},
			`{"returnFormat":"json","page":1,"limit":10,"timestamp":"1740830400","order":"timestamp","includeDecayScore":true,"includeEventTags":true}`},
		{"filters", misp.Query{Since: since, Page: 3, Limit: 1000, ToIDs: &yes, Published: &no, Tags: []string{"tlp:white", "!tlp:red", "tlp:green"}, EnforceWarningList: true},
			`{"returnFormat":"json","page":3,"limit":1000,"timestamp":"1740830400","order":"timestamp","includeDecayScore":true,"includeEventTags":true,"to_ids":true,"published":false,"tags":{"NOT":["tlp:red"],"OR":["tlp:white","tlp:green"]},"enforceWarninglist":1}`},
		{"only NOT", misp.Query{Since: since, Page: 1, Limit: 5, Tags: []string{"!tlp:red"}},
			`{"returnFormat":"json","page":1,"limit":5,"timestamp":"1740830400","order":"timestamp","includeDecayScore":true,"includeEventTags":true,"tags":{"NOT":["tlp:red"]}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(c.q.Body())
			if got != c.want {
				t.Fatalf("body\n got %s\nwant %s", got, c.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatal("not JSON")
			}
		})
	}
}

func TestAttributesPageAndHeaders(t *testing.T) {
	evs := mispfake.Generate(mispfake.GenOptions{Events: 3, PerEvent: 10, Seed: 1})
	var auth, ctype, accept string
	fake := mispfake.New(t, mispfake.Options{Events: evs, Hook: func(w http.ResponseWriter, r *http.Request, ep string) bool {
		auth, ctype, accept = r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.Header.Get("Accept")
		return false
	}})
	c := newClient(t, fake, fake.APIKey())
	p, err := c.Attributes(t.Context(), misp.Query{Since: mispfake.DefaultFrom, Page: 2, Limit: 12})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 12 {
		t.Fatalf("%d records", len(p.Records))
	}
	for _, r := range p.Records {
		if !json.Valid(r) {
			t.Fatalf("record is not JSON: %s", r)
		}
	}
	if auth != fake.APIKey() || ctype != "application/json" || accept != "application/json" {
		t.Fatalf("headers %q %q %q", auth, ctype, accept)
	}
	s := fake.RequestsTo(mispfake.EndpointRestSearch)[0].Search
	if s.Page != 2 || s.Limit != 12 || s.Order != "timestamp" || !s.IncludeEventTags || !s.IncludeDecayScore || s.Timestamp != mispfake.DefaultFrom.Unix() {
		t.Fatalf("search %+v", s)
	}
	if c.URL() != fake.URL {
		t.Fatalf("URL %s", c.URL())
	}
}

func TestAttributesAnswers(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		records int
		err     string
	}{
		{"empty list", 200, `{"response":{"Attribute":[]}}`, 0, ""},
		{"empty response list", 200, `{"response":[]}`, 0, ""},
		{"empty response object", 200, `{"response":{}}`, 0, ""},
		{"two", 200, `{"response":{"Attribute":[{"uuid":"a"},[1]]}}`, 2, ""},
		{"not JSON", 200, `<html>maintenance</html>`, 0, `the body is not valid JSON`},
		{"empty body", 200, ``, 0, "the body is empty"},
		{"error object", 200, `{"name":"Invalid parameter","message":"Invalid filter"}`, 0, `MISP answered an error: Invalid filter`},
		{"no response", 200, `{"Attribute":[]}`, 0, `the body has no "response"`},
		{"response string", 200, `{"response":"x"}`, 0, `"response" is a string`},
		{"attribute string", 200, `{"response":{"Attribute":"x"}}`, 0, `"response.Attribute" is a string`},
		{"bad request", 400, `{"name":"Invalid limit","message":"Limit must be numeric","url":"/attributes/restSearch"}`, 0,
			`misp: attributes page: HTTP 400 Bad Request: "Limit must be numeric"`},
		{"not found", 404, `Not Found`, 0, "HTTP 404 Not Found: \"Not Found\": check sources.misp.url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := mispfake.New(t, mispfake.Options{})
			fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointRestSearch, Status: c.status, Body: c.body}, 1)
			p, err := newClient(t, fake, fake.APIKey()).Attributes(t.Context(), misp.Query{Page: 1, Limit: 10})
			if c.err == "" {
				if err != nil || len(p.Records) != c.records {
					t.Fatalf("%d records, %v", len(p.Records), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err %v, want %q", err, c.err)
			}
			if errors.Is(err, vigil.ErrCredentials) {
				t.Fatal("not a credentials error")
			}
		})
	}
}

func TestCredentialsRejectedByInstance(t *testing.T) {
	const wrong = "WrongKey0123456789WrongKey0123456789abcd"
	fake := mispfake.New(t, mispfake.Options{})
	c := newClient(t, fake, wrong)
	for _, call := range []func() error{
		func() error { _, err := c.Attributes(t.Context(), misp.Query{Page: 1, Limit: 1}); return err },
		func() error { _, err := c.Version(t.Context()); return err },
	} {
		err := call()
		if !errors.Is(err, vigil.ErrCredentials) || !errors.Is(err, misp.ErrCredentials) {
			t.Fatalf("err %v", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "sources.misp.api_token") || !strings.Contains(msg, "HTTP 403") || !strings.Contains(msg, "Authentication failed") {
			t.Errorf("message %q", msg)
		}
		if strings.Contains(msg, wrong) || strings.Contains(msg, fake.APIKey()) {
			t.Fatalf("message shows a key: %q", msg)
		}
	}
	if n := len(fake.Requests()); n != 2 {
		t.Fatalf("%d requests: a 403 must not be retried", n)
	}
}

// TestRetriesResendTheBody: a POST retried after 429 and 503 sends its body
// again, whole.
func TestRetriesResendTheBody(t *testing.T) {
	fake := mispfake.New(t, mispfake.Options{Events: mispfake.Generate(mispfake.GenOptions{Events: 1, PerEvent: 5, Seed: 2})})
	fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointRestSearch, Status: 429, RetryAfter: "3"}, 1)
	fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointRestSearch, Status: 503, Body: "busy"}, 1)
	var waits []time.Duration
	c, err := misp.NewClient(misp.ClientConfig{URL: fake.URL, APIKey: fake.APIKey(), HTTP: httpx.Options{
		MaxAttempts: 3, MaxDelay: time.Minute,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil },
	}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Attributes(t.Context(), misp.Query{Since: mispfake.DefaultFrom, Page: 1, Limit: 10})
	if err != nil || len(p.Records) != 5 {
		t.Fatalf("%d records, %v", len(p.Records), err)
	}
	if len(waits) != 2 || waits[0] != 3*time.Second {
		t.Fatalf("waits %v, want Retry-After 3s then a backoff", waits)
	}
	reqs := fake.RequestsTo(mispfake.EndpointRestSearch)
	if len(reqs) != 3 || reqs[2].Search.Limit != 10 || reqs[2].Status != 200 {
		t.Fatalf("requests %+v", reqs)
	}
	// Past the attempts, the status is the error.
	fake.Inject(mispfake.Fault{Endpoint: mispfake.EndpointRestSearch, Status: 500, Body: `{"name":"Internal error","message":"Database down"}`}, 3)
	_, err = c.Attributes(t.Context(), misp.Query{Page: 1, Limit: 10})
	if err == nil || !strings.Contains(err.Error(), `HTTP 500 Internal Server Error: "Database down" (still failing after retries)`) {
		t.Fatalf("err %v", err)
	}
}

func TestVersion(t *testing.T) {
	fake := mispfake.New(t, mispfake.Options{})
	v, err := newClient(t, fake, fake.APIKey()).Version(t.Context())
	if err != nil || v.Version != mispfake.Version {
		t.Fatalf("%+v %v", v, err)
	}
}

func TestNewClientChecks(t *testing.T) {
	cases := []struct{ url, key, want string }{
		{"", "k", "sources.misp.url is empty"},
		{"misp.example.org", "k", "sources.misp.url must start with https:// or http://"},
		{"https://u:secret@misp.example.org", "k", "must not contain credentials: set api_token instead"},
		{"https://misp.example.org", " ", "sources.misp.api_token is empty"},
	}
	for _, c := range cases {
		_, err := misp.NewClient(misp.ClientConfig{URL: c.url, APIKey: c.key})
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: %v, want %q", c.url, err, c.want)
		}
	}
}
