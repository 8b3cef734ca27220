package httpx

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
)

// sleeps records the delays a Client asked to wait, without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return context.Cause(ctx)
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func noJitter(d time.Duration) time.Duration { return d }

// step is one scripted server answer.
type step struct {
	status     int
	retryAfter string
	body       string
}

func scripted(t *testing.T, steps []step) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i >= len(steps) {
			t.Errorf("unexpected request %d", i+1)
			w.WriteHeader(http.StatusTeapot)
			return
		}
		s := steps[i]
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		w.WriteHeader(s.status)
		io.WriteString(w, s.body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestDoRetries(t *testing.T) {
	httpDate := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name        string
		steps       []step
		maxAttempts int
		wantStatus  int // of the error; 0: success
		wantBody    string
		wantSleeps  []time.Duration // nil: do not check exactly
		checkSleeps func(t *testing.T, d []time.Duration)
	}{
		{
			name:       "ok",
			steps:      []step{{200, "", "hello"}},
			wantBody:   "hello",
			wantSleeps: []time.Duration{},
		},
		{
			name:       "500 then ok",
			steps:      []step{{500, "", "boom"}, {200, "", "ok"}},
			wantBody:   "ok",
			wantSleeps: []time.Duration{time.Second},
		},
		{
			name:       "backoff doubles",
			steps:      []step{{502, "", ""}, {503, "", ""}, {504, "", ""}, {500, "", ""}, {200, "", "ok"}},
			wantBody:   "ok",
			wantSleeps: []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
		},
		{
			name:       "429 retry-after seconds",
			steps:      []step{{429, "7", ""}, {200, "", "ok"}},
			wantBody:   "ok",
			wantSleeps: []time.Duration{7 * time.Second},
		},
		{
			name:       "retry-after capped",
			steps:      []step{{429, "3600", ""}, {200, "", "ok"}},
			wantBody:   "ok",
			wantSleeps: []time.Duration{time.Minute},
		},
		{
			name:     "retry-after http date",
			steps:    []step{{503, httpDate, ""}, {200, "", "ok"}},
			wantBody: "ok",
			checkSleeps: func(t *testing.T, d []time.Duration) {
				if len(d) != 1 || d[0] < 25*time.Second || d[0] > 30*time.Second {
					t.Errorf("sleeps = %v, want one of about 30s", d)
				}
			},
		},
		{
			name:       "retry-after garbage falls back to backoff",
			steps:      []step{{429, "soon", ""}, {200, "", "ok"}},
			wantBody:   "ok",
			wantSleeps: []time.Duration{time.Second},
		},
		{
			name:        "gives up",
			steps:       []step{{500, "", "a"}, {500, "", "b"}, {500, "", "c"}},
			maxAttempts: 3,
			wantStatus:  500,
			wantSleeps:  []time.Duration{time.Second, 2 * time.Second},
		},
		{
			name:       "404 not retried",
			steps:      []step{{404, "", "no such thing"}},
			wantStatus: 404,
			wantSleeps: []time.Duration{},
		},
		{
			name:       "401 not retried",
			steps:      []step{{401, "", ""}},
			wantStatus: 401,
			wantSleeps: []time.Duration{},
		},
		{
			name:       "304 is not an error",
			steps:      []step{{304, "", ""}},
			wantSleeps: []time.Duration{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, n := scripted(t, tt.steps)
			var sl sleeps
			c := New(Options{Sleep: sl.sleep, Jitter: noJitter, MaxAttempts: tt.maxAttempts})
			req, _ := http.NewRequest("GET", srv.URL+"/x?a=1", nil)
			resp, err := c.Do(t.Context(), req)
			if tt.wantStatus != 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("err = nil, want HTTP %d", tt.wantStatus)
				}
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != tt.wantStatus {
					t.Fatalf("err = %v, want a StatusError %d", err, tt.wantStatus)
				}
				if se.Method != "GET" || se.URL != srv.URL+"/x?a=1" {
					t.Errorf("StatusError = %+v", se)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, err := ReadAll(resp)
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != tt.wantBody {
					t.Errorf("body = %q, want %q", b, tt.wantBody)
				}
			}
			if got := int(n.Load()); got != len(tt.steps) {
				t.Errorf("requests = %d, want %d", got, len(tt.steps))
			}
			if tt.checkSleeps != nil {
				tt.checkSleeps(t, sl.got())
			}
			if tt.wantSleeps != nil {
				if got := sl.got(); fmt.Sprint(got) != fmt.Sprint(tt.wantSleeps) {
					t.Errorf("sleeps = %v, want %v", got, tt.wantSleeps)
				}
			}
		})
	}
}

func TestBackoffCap(t *testing.T) {
	c := New(Options{})
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		if got := c.backoff(i + 1); got != w*time.Second {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w*time.Second)
		}
	}
	if got := c.backoff(200); got != time.Minute {
		t.Errorf("backoff(200) = %v", got)
	}
}

func TestDefaultJitter(t *testing.T) {
	for range 1000 {
		d := EqualJitter(8 * time.Second)
		if d < 4*time.Second || d > 8*time.Second {
			t.Fatalf("jitter(8s) = %v, out of [4s, 8s]", d)
		}
	}
}

func TestTransportErrorRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close() // connections are now refused
	var sl sleeps
	c := New(Options{Sleep: sl.sleep, Jitter: noJitter, MaxAttempts: 3})
	req, _ := http.NewRequest("GET", u, nil)
	_, err := c.Do(t.Context(), req)
	var te *TransportError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want a TransportError", err)
	}
	if len(sl.got()) != 2 {
		t.Errorf("sleeps = %v, want 2", sl.got())
	}
	if !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Errorf("err = %v", err)
	}
}

func TestTimeoutPerAttempt(t *testing.T) {
	release := make(chan struct{})
	var n atomic.Int32
	var blockAll atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 || blockAll.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, "second")
	}))
	defer srv.Close()
	defer close(release)
	var sl sleeps
	c := New(Options{Sleep: sl.sleep, Timeout: 50 * time.Millisecond})
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := c.Do(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ReadAll(resp)
	if string(b) != "second" || len(sl.got()) != 1 {
		t.Errorf("body %q, sleeps %v", b, sl.got())
	}

	// All attempts time out: the error says so.
	c = New(Options{Sleep: sl.sleep, Timeout: 20 * time.Millisecond, MaxAttempts: 1})
	blockAll.Store(true)
	req, _ = http.NewRequest("GET", srv.URL, nil)
	_, err = c.Do(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "timed out after 20ms") {
		t.Errorf("err = %v, want a timeout", err)
	}
}

func TestTimeoutCoversBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := New(Options{Timeout: 50 * time.Millisecond})
	req, _ := http.NewRequest("GET", srv.URL+"/slow", nil)
	resp, err := c.Do(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ReadAll(resp)
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "/slow") {
		t.Errorf("err = %v, want a timeout naming the request", err)
	}
}

func TestContextCanceledStopsRetries(t *testing.T) {
	srv, n := scripted(t, []step{{500, "", ""}, {500, "", ""}})
	ctx, cancel := context.WithCancel(t.Context())
	c := New(Options{Sleep: func(ctx context.Context, d time.Duration) error {
		cancel()
		return Sleep(ctx, d)
	}})
	req, _ := http.NewRequest("GET", srv.URL, nil)
	_, err := c.Do(ctx, req)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n.Load() != 1 {
		t.Errorf("requests = %d, want 1", n.Load())
	}
}

func TestBodyWithGetBodyIsResent(t *testing.T) {
	var bodies []string
	var mu sync.Mutex
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		if n.Add(1) == 1 {
			w.WriteHeader(503)
		}
	}))
	defer srv.Close()
	var sl sleeps
	c := New(Options{Sleep: sl.sleep})
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader("payload"))
	resp, err := c.Do(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if fmt.Sprint(bodies) != "[payload payload]" {
		t.Errorf("bodies = %q", bodies)
	}

	// Without GetBody the request cannot be resent: one attempt only.
	n.Store(0)
	req, _ = http.NewRequest("POST", srv.URL, io.NopCloser(strings.NewReader("x")))
	req.GetBody = nil
	_, err = c.Do(t.Context(), req)
	if StatusCode(err) != 503 {
		t.Errorf("err = %v, want HTTP 503", err)
	}
}

func TestUserAgent(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.UserAgent())
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	resp, err := New(Options{}).Do(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "vigil/" + vigil.Version; got.Load() != want {
		t.Errorf("User-Agent = %q, want %q", got.Load(), want)
	}
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		size, limit int
		wantErr     bool
	}{
		{10, 10, false},
		{11, 10, true},
		{0, 10, false},
		{100000, 65536, true},
		{100000, -1, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%d", tt.size, tt.limit), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write(bytes.Repeat([]byte("a"), tt.size))
			}))
			defer srv.Close()
			req, _ := http.NewRequest("GET", srv.URL+"/big", nil)
			resp, err := New(Options{MaxBodySize: int64(tt.limit)}).Do(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ReadAll(resp)
			if tt.wantErr {
				if !errors.Is(err, ErrBodyTooLarge) {
					t.Fatalf("err = %v, want ErrBodyTooLarge", err)
				}
				if !strings.Contains(err.Error(), "GET "+srv.URL+"/big") || len(b) > tt.limit {
					t.Errorf("err = %v, read %d bytes", err, len(b))
				}
				return
			}
			if err != nil || len(b) != tt.size {
				t.Errorf("read %d bytes, err %v; want %d", len(b), err, tt.size)
			}
		})
	}
}

func TestLimitedReaderMessage(t *testing.T) {
	_, err := io.ReadAll(NewLimitedReader(strings.NewReader(strings.Repeat("x", 3<<20)), 2<<20))
	if err == nil || err.Error() != "response body too large: more than 2 MiB" {
		t.Errorf("err = %v", err)
	}
}

// TestNoSecretsInErrorsOrLogs checks that neither the error nor the log line
// of a failing call contains the password, the Authorization header value or
// a secret query value, even when the server echoes them back.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	const (
		user     = "acct-1234"
		password = "s3cr3t-p4ssw0rd-value"
		token    = "tok-abcdef-123456"
	)
	authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		w.WriteHeader(http.StatusInternalServerError)
		// A careless server that echoes what it got.
		fmt.Fprintf(w, "bad request from %s:%s auth=%q query=%s", u, p, r.Header.Get("Authorization"), r.URL.RawQuery)
	}))
	defer srv.Close()

	for _, tc := range []struct {
		name string
		make func() *http.Request
	}{
		{"basic auth", func() *http.Request {
			req, _ := http.NewRequest("GET", srv.URL+"/api?x=1&api_key="+token, nil)
			req.SetBasicAuth(user, password)
			return req
		}},
		{"userinfo", func() *http.Request {
			u, _ := url.Parse(srv.URL)
			u.User = url.UserPassword(user, password)
			u.Path = "/api"
			u.RawQuery = "token=" + token
			req, _ := http.NewRequest("GET", u.String(), nil)
			return req
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			var sl sleeps
			c := New(Options{
				Sleep:       sl.sleep,
				MaxAttempts: 2,
				Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			req := tc.make()
			_, err := c.Do(t.Context(), req)
			if err == nil {
				t.Fatal("want an error")
			}
			if logs.Len() == 0 {
				t.Fatal("want a retry log line")
			}
			for name, s := range map[string]string{"error": err.Error(), "log": logs.String()} {
				for _, secret := range []string{password, authz, strings.TrimPrefix(authz, "Basic "), token} {
					if strings.Contains(s, secret) {
						t.Errorf("%s contains a secret %q: %s", name, secret, s)
					}
				}
			}
			if !strings.Contains(err.Error(), "/api") || !strings.Contains(err.Error(), "HTTP 500") {
				t.Errorf("err = %v, want the path and status", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://api.example.com/p?a=1&b=2", "https://api.example.com/p?a=1&b=2"},
		{"https://u:p@api.example.com/p", "https://api.example.com/p"},
		{"https://api.example.com/p?api_key=xyz&q=1", "https://api.example.com/p?api_key=REDACTED&q=1"},
		{"https://h/p?accessToken=xyz", "https://h/p?accessToken=REDACTED"},
		{"https://h/p?Signature=abc&severity%5B0%5D=High", "https://h/p?Signature=REDACTED&severity%5B0%5D=High"},
		{"https://h/p?offset=abc&syncId=1", "https://h/p?offset=abc&syncId=1"},
		{"https://h/p?keyword=x", "https://h/p?keyword=x"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := RedactURL(u); got != tt.want {
			t.Errorf("RedactURL(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if RedactURL(nil) != "" {
		t.Error("RedactURL(nil) != \"\"")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"Sat, 01 Jun 2024 12:00:30 GMT", 30 * time.Second, true},
		{"Sat, 01 Jun 2024 11:00:00 GMT", 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if d, ok := ParseRetryAfter("99999999999999999999", now); !ok || d <= 0 {
		t.Errorf("huge Retry-After = %v, %v", d, ok)
	}
}

func TestStatusErrorHelpers(t *testing.T) {
	se := &StatusError{Method: "GET", URL: "https://h/p", StatusCode: 404, Body: "missing", RetryAfter: -1}
	err := fmt.Errorf("wrapped: %w", se)
	if StatusCode(err) != 404 || !IsStatus(err, 401, 404) || IsStatus(err, 500) {
		t.Errorf("helpers disagree on %v", err)
	}
	if StatusCode(errors.New("x")) != 0 || IsStatus(nil, 404) {
		t.Error("non-status errors")
	}
	if got, want := se.Error(), "GET https://h/p: HTTP 404 Not Found: missing"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	for _, s := range []int{429, 500, 503, 599} {
		if !Retryable(s) {
			t.Errorf("Retryable(%d) = false", s)
		}
	}
	for _, s := range []int{200, 400, 401, 404, 600} {
		if Retryable(s) {
			t.Errorf("Retryable(%d) = true", s)
		}
	}
}

func TestErrorBodyCut(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes
	srv, _ := scripted(t, []step{{400, "", "  " + long}})
	req, _ := http.NewRequest("GET", srv.URL, nil)
	_, err := New(Options{}).Do(t.Context(), req)
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatal(err)
	}
	if len(se.Body) > 512 || !strings.HasPrefix(se.Body, "éé") || strings.ContainsRune(se.Body, '\uFFFD') {
		t.Errorf("body (%d bytes) = %q", len(se.Body), se.Body)
	}
}

func TestStatusWording(t *testing.T) {
	cases := []struct {
		code    int
		msg     string
		retried bool
		want    string
	}{
		{404, "", false, "HTTP 404 Not Found"},
		{503, `no "license"`, true, `HTTP 503 Service Unavailable: "no \"license\"" (still failing after retries)`},
		{599, "x", false, `HTTP 599: "x"`},
	}
	for _, c := range cases {
		var b strings.Builder
		WriteStatus(&b, c.code, c.msg)
		WriteRetried(&b, c.retried)
		if b.String() != c.want {
			t.Errorf("%d %q %v: %q, want %q", c.code, c.msg, c.retried, b.String(), c.want)
		}
	}
	for code, want := range map[int]bool{401: true, 403: true, 404: false, 429: false} {
		if IsCredentialStatus(code) != want {
			t.Errorf("IsCredentialStatus(%d) != %v", code, want)
		}
	}
}
