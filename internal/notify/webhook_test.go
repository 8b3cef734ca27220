package notify_test

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/notify"
	"github.com/vigil-ti/vigil/internal/notify/notifytest"
)

const hookToken = "hdr-s3cret-token"

func newWebhook(t *testing.T, s notify.WebhookSettings) *notify.Webhook {
	t.Helper()
	if s.Name == "" {
		s.Name = "hook"
	}
	w, err := notify.NewWebhook(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestWebhookRequest checks what a webhook sends: method, headers,
// Idempotency-Key and body (the document, or the template's rendering).
func TestWebhookRequest(t *testing.T) {
	d := alert("alert-42")
	cases := []struct {
		name     string
		settings notify.WebhookSettings
		method   string
		ctype    string
		body     string
	}{
		{"default", notify.WebhookSettings{}, "POST", "application/json", string(d.Body)},
		{"put with headers", notify.WebhookSettings{Method: "put", Headers: map[string]string{"Authorization": "Bearer " + hookToken, "X-Team": "soc"}},
			"PUT", "application/json", string(d.Body)},
		{"template", notify.WebhookSettings{Method: "PATCH", Body: `{"text": {{ json .Subject }}, "ip": {{ json (field .Doc "threat.indicator.name") }}, "rule": "{{ .Doc.rule.name }}", "key": {{ json .Key }}, "via": {{ json .Connector }}, "missing": {{ json (field .Doc "no.such.field") }}, "at": {{ json (index .Doc "@timestamp") }}}`},
			"PATCH", "application/json",
			`{"text": "vigil: rule Known bad IP matched 203.0.113.7", "ip": "203.0.113.7", "rule": "Known bad IP", "key": "alert-42", "via": "hook", "missing": null, "at": "2026-03-01T09:29:00Z"}`},
		{"template with the raw document", notify.WebhookSettings{Body: `{"alert": {{ .JSON }}}`, Headers: map[string]string{"content-type": "application/vnd.example+json"}},
			"POST", "application/vnd.example+json", `{"alert": ` + string(d.Body) + `}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := notifytest.NewReceiver(t)
			tc.settings.URL = r.URL
			if err := newWebhook(t, tc.settings).Send(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			reqs := r.Log.All()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			req := reqs[0]
			if req.Method != tc.method || req.Path != "/hook" {
				t.Errorf("%s %s, want %s /hook", req.Method, req.Path, tc.method)
			}
			if got := req.Header.Get("Idempotency-Key"); got != "alert-42" {
				t.Errorf("Idempotency-Key %q", got)
			}
			if got := req.Header.Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if !strings.HasPrefix(req.Header.Get("User-Agent"), "vigil/") {
				t.Errorf("User-Agent %q", req.Header.Get("User-Agent"))
			}
			for k, v := range tc.settings.Headers {
				if got := req.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if string(req.Body) != tc.body {
				t.Errorf("body\n got %s\nwant %s", req.Body, tc.body)
			}
			if tc.ctype == "application/json" && !json.Valid(req.Body) {
				t.Errorf("body is not JSON: %s", req.Body)
			}
		})
	}
}

// TestWebhookFailures checks how answers other than 2xx are reported:
// transient or refused, with the receiver's Retry-After, and never with a
// header value or the URL's path.
func TestWebhookFailures(t *testing.T) {
	cases := []struct {
		name       string
		fault      notifytest.Fault
		want       string
		rejected   bool
		retryAfter time.Duration
	}{
		{"503", notifytest.Fault{Status: 503, Body: "maintenance"}, "HTTP 503 Service Unavailable: maintenance", false, 0},
		{"429 with Retry-After", notifytest.Fault{Status: 429, RetryAfter: "30"}, "HTTP 429 Too Many Requests", false, 30 * time.Second},
		{"Retry-After as a date", notifytest.Fault{Status: 503, RetryAfter: t0.Add(2 * time.Minute).Format(http.TimeFormat)}, "HTTP 503", false, 2 * time.Minute},
		{"408", notifytest.Fault{Status: 408}, "HTTP 408 Request Timeout", false, 0},
		{"400 echoing the token", notifytest.Fault{Status: 400, Body: "bad request; your header was Bearer " + hookToken + strings.Repeat(" and more", 100) + hookToken}, "HTTP 400 Bad Request: bad request; your header was [redacted] and more", true, 0},
		{"401", notifytest.Fault{Status: 401}, "HTTP 401 Unauthorized", true, 0},
		{"redirect", notifytest.Fault{Status: 301}, "HTTP 301 Moved Permanently (redirects are not followed: set url to the final address)", true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := notifytest.NewReceiver(t)
			r.Faults.Add(tc.fault, "hook", 1)
			w := newWebhook(t, notify.WebhookSettings{URL: r.URL + "/path-t0ken", Headers: map[string]string{"Authorization": "Bearer " + hookToken},
				Clock: fixedClock(t0)})
			err := w.Send(t.Context(), alert("k"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			checkWebhookError(t, err, r.URL)
			if errors.Is(err, notify.ErrRejected) != tc.rejected {
				t.Errorf("rejected = %v, want %v", !tc.rejected, tc.rejected)
			}
			var se *notify.StatusError
			if !errors.As(err, &se) || se.RetryAfter() != tc.retryAfter {
				t.Errorf("Retry-After %v, want %v", se, tc.retryAfter)
			}
			if len(se.Body) > 300 {
				t.Errorf("body of %d bytes kept", len(se.Body))
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		r := notifytest.NewReceiver(t)
		r.Stop()
		err := newWebhook(t, notify.WebhookSettings{URL: r.URL + "/path-t0ken"}).Send(t.Context(), alert("k"))
		if err == nil || !strings.Contains(err.Error(), "connection refused") || errors.Is(err, notify.ErrRejected) {
			t.Fatalf("error %v", err)
		}
		checkWebhookError(t, err, r.URL)
	})
	t.Run("template fails", func(t *testing.T) {
		r := notifytest.NewReceiver(t)
		err := newWebhook(t, notify.WebhookSettings{URL: r.URL, Body: `{{ .Doc.no.such }}`}).Send(t.Context(), alert("k"))
		if err == nil || !errors.Is(err, notify.ErrRejected) || !strings.Contains(err.Error(), "webhook hook: body template") {
			t.Fatalf("error %v", err)
		}
		if n := r.Log.Count("hook"); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})
}

func checkWebhookError(t *testing.T, err error, url string) {
	t.Helper()
	msg := err.Error()
	if !strings.HasPrefix(msg, "webhook hook: POST "+strings.TrimSuffix(url, "/hook")+":") {
		t.Errorf("error %q does not start with the connector, method and host", msg)
	}
	if strings.Contains(msg, hookToken) || strings.Contains(msg, "t0ken") {
		t.Errorf("error holds a secret: %q", msg)
	}
}

// TestWebhookCAFile checks that ca_file makes a receiver with a private CA
// trusted, and that it is not trusted without it.
func TestWebhookCAFile(t *testing.T) {
	accepted := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { accepted++ }))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	err := newWebhook(t, notify.WebhookSettings{URL: srv.URL}).Send(t.Context(), alert("k"))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v", err)
	}
	if err := newWebhook(t, notify.WebhookSettings{URL: srv.URL, CAFile: ca}).Send(t.Context(), alert("k")); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	if accepted != 1 {
		t.Fatalf("%d accepted", accepted)
	}
	for _, bad := range []string{filepath.Join(t.TempDir(), "missing.pem"), srvKeyless(t)} {
		if _, err := notify.NewWebhook(notify.WebhookSettings{Name: "hook", URL: srv.URL, CAFile: bad}); err == nil || !strings.Contains(err.Error(), "webhook hook: ca_file") {
			t.Errorf("ca_file %s: %v", bad, err)
		}
	}
}

// srvKeyless writes a file that holds no certificate.
func srvKeyless(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(p, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
