package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/vigil-ti/vigil"
)

// WebhookSettings configure a webhook connector (connectors[] with type
// webhook).
type WebhookSettings struct {
	Name   string
	URL    string
	Method string // POST (default), PUT or PATCH
	// Headers are sent with every request. Their values may be secrets:
	// they never appear in errors or logs.
	Headers map[string]string
	// Body is a Go text/template executed with TemplateData; empty sends
	// the document as JSON.
	Body string
	// CAFile is a PEM file of CA certificates trusted besides the
	// system's, for a receiver with a private CA.
	CAFile string
	// Clock tells the time of an HTTP-date Retry-After; the wall clock by
	// default.
	Clock vigil.Clock
	// Transport sends the requests; nil: a clone of
	// http.DefaultTransport (with CAFile's certificates).
	Transport http.RoundTripper
}

// Webhook sends each delivery as one HTTP request.
//
// The request carries the Idempotency-Key header (the delivery's key),
// Content-Type application/json (unless the headers set another), and the
// configured headers. 2xx is success. Redirects are not followed.
// 408, 429, 5xx and transport errors mean the receiver is down; other
// statuses (a 4xx, a 3xx) mean it refused the delivery (the error wraps
// ErrRejected). Errors name the connector and the URL's scheme and host,
// never its path or query (a webhook URL's path often holds its token) nor
// a header value.
type Webhook struct {
	name    string
	url     string
	where   string // scheme://host, for errors
	method  string
	headers http.Header
	secrets []string
	body    *template.Template
	hc      *http.Client
	clock   vigil.Clock
}

var _ Connector = (*Webhook)(nil)

// Webhook methods allowed.
var WebhookMethods = []string{http.MethodPost, http.MethodPut, http.MethodPatch}

// maxErrorBody is how much of a refusal's body an error keeps.
const maxErrorBody = 300

// NewWebhook returns a webhook connector.
func NewWebhook(s WebhookSettings) (*Webhook, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook %s: url is not an absolute http or https URL", s.Name)
	}
	w := &Webhook{
		name:    s.Name,
		url:     s.URL,
		where:   u.Scheme + "://" + u.Host,
		method:  strings.ToUpper(s.Method),
		headers: http.Header{},
		clock:   s.Clock,
	}
	if w.method == "" {
		w.method = http.MethodPost
	}
	if w.clock == nil {
		w.clock = vigil.SystemClock{}
	}
	for k, v := range s.Headers {
		w.headers.Set(k, v)
		w.secrets = append(w.secrets, v)
		if _, cred, ok := strings.Cut(v, " "); ok { // "Bearer <token>"
			w.secrets = append(w.secrets, strings.TrimSpace(cred))
		}
	}
	// Longest first, so that a secret holding another goes whole.
	slices.SortFunc(w.secrets, func(a, b string) int { return len(b) - len(a) })
	if s.Body != "" {
		if w.body, err = ParseBodyTemplate(s.Body); err != nil {
			return nil, fmt.Errorf("webhook %s: body: %w", s.Name, err)
		}
	}
	rt := s.Transport
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if s.CAFile != "" {
			pool, err := LoadCAFile(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("webhook %s: ca_file: %w", s.Name, err)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		rt = tr
	}
	w.hc = &http.Client{
		Transport: rt,
		// A redirect is answered as it is: a POST turned into a GET, or
		// the headers sent to another host, would be worse than a
		// clear error.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// Send posts the delivery.
func (w *Webhook) Send(ctx context.Context, d vigil.Delivery) error {
	body := d.Body
	if w.body != nil {
		b, err := renderBody(w.body, w.name, d)
		if err != nil {
			return fmt.Errorf("webhook %s: body template: %w: %w", w.name, ErrRejected, err)
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, w.method, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %s %s: %w", w.name, w.method, w.where, ErrRejected)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vigil/"+vigil.Version)
	for k, vs := range w.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Idempotency-Key", d.Key)
	resp, err := w.hc.Do(req)
	if err != nil {
		// *url.Error names the whole URL: keep what it wraps.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		return fmt.Errorf("webhook %s: %s %s: %w", w.name, w.method, w.where, err)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // so the connection can be reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	se := &StatusError{
		Connector:  w.name,
		Method:     w.method,
		Where:      w.where,
		StatusCode: resp.StatusCode,
		Body:       clip(redact(string(head), w.secrets), maxErrorBody),
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), w.clock.Now()),
	}
	return se
}

// StatusError is a webhook answer other than 2xx.
type StatusError struct {
	Connector  string
	Method     string
	Where      string // scheme://host
	StatusCode int
	Body       string // the start of the body, without header values
	retryAfter time.Duration
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webhook %s: %s %s: HTTP %d", e.Connector, e.Method, e.Where, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.StatusCode/100 == 3 {
		b.WriteString(" (redirects are not followed: set url to the final address)")
	}
	if e.Body != "" {
		b.WriteString(": " + e.Body)
	}
	return b.String()
}

// Unwrap gives ErrRejected for the statuses that refuse the delivery
// itself: all but 408, 429 and 5xx.
func (e *StatusError) Unwrap() error {
	if Transient(e.StatusCode) {
		return nil
	}
	return ErrRejected
}

// RetryAfter is the receiver's Retry-After delay (0: none).
func (e *StatusError) RetryAfter() time.Duration { return e.retryAfter }

// Transient reports whether an HTTP status means the receiver is down or
// busy rather than refusing the delivery: 408, 429 and 5xx.
func Transient(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status/100 == 5
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unparsable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 || n > 7*24*3600 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
