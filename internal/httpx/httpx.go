// Package httpx is the HTTP plumbing shared by every vendor client: a
// per-request timeout, bounded exponential backoff with jitter for 429, 5xx
// and transport errors, Retry-After support, a bounded body reader, a
// User-Agent, and errors and log lines that never carry credentials.
package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-ti/vigil"
)

// Defaults of Options.
const (
	DefaultTimeout     = 60 * time.Second
	DefaultMaxAttempts = 5
	DefaultBaseDelay   = 1 * time.Second
	DefaultMaxDelay    = 1 * time.Minute
	DefaultMaxBodySize = 256 << 20 // 256 MiB
)

// Doer sends one logical request, retrying it as the implementation sees fit.
// *Client implements it.
type Doer interface {
	Do(ctx context.Context, req *http.Request) (*http.Response, error)
}

// SleepFunc waits for d or until ctx is done, whichever comes first, and
// returns ctx's cause in the second case.
type SleepFunc func(ctx context.Context, d time.Duration) error

// Options configures a Client. The zero value gives the defaults.
type Options struct {
	// HTTPClient sends the requests. Nil: a client on
	// http.DefaultTransport. Its own Timeout should be zero: Client
	// applies Timeout per attempt.
	HTTPClient *http.Client
	// Timeout bounds one attempt, from sending the request to closing the
	// response body. 0: DefaultTimeout; negative: no timeout.
	Timeout time.Duration
	// MaxAttempts is the number of attempts, the first included.
	// 0: DefaultMaxAttempts; 1: no retry.
	MaxAttempts int
	// BaseDelay is the delay before the first retry; it doubles on each
	// further retry up to MaxDelay. 0: DefaultBaseDelay.
	BaseDelay time.Duration
	// MaxDelay caps every delay, Retry-After included. 0: DefaultMaxDelay.
	MaxDelay time.Duration
	// MaxBodySize caps the bytes read from a response body. Reading more
	// fails with an error that wraps ErrBodyTooLarge.
	// 0: DefaultMaxBodySize; negative: no limit.
	MaxBodySize int64
	// Sleep waits between attempts. Nil: a timer that stops early when
	// the context is done. Tests pass a recorder so they do not wait.
	Sleep SleepFunc
	// Jitter turns a backoff delay into the delay actually waited. Nil:
	// a uniform random delay in [d/2, d]. Retry-After delays are not
	// jittered.
	Jitter func(d time.Duration) time.Duration
	// UserAgent is sent when a request has none. "": "vigil/" + vigil.Version.
	UserAgent string
	// Logger receives one Warn line per retry. Nil: discard.
	Logger *slog.Logger
}

// Client sends HTTP requests with timeouts, retries and bounded bodies. It
// is safe for concurrent use.
type Client struct {
	hc          *http.Client
	timeout     time.Duration
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
	maxBody     int64
	sleep       SleepFunc
	jitter      func(time.Duration) time.Duration
	userAgent   string
	log         *slog.Logger
}

var _ Doer = (*Client)(nil)

// New returns a Client configured by opts.
func New(opts Options) *Client {
	c := &Client{
		hc:          opts.HTTPClient,
		timeout:     opts.Timeout,
		maxAttempts: opts.MaxAttempts,
		baseDelay:   opts.BaseDelay,
		maxDelay:    opts.MaxDelay,
		maxBody:     opts.MaxBodySize,
		sleep:       opts.Sleep,
		jitter:      opts.Jitter,
		userAgent:   opts.UserAgent,
		log:         opts.Logger,
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.baseDelay <= 0 {
		c.baseDelay = DefaultBaseDelay
	}
	if c.maxDelay <= 0 {
		c.maxDelay = DefaultMaxDelay
	}
	if c.maxBody == 0 {
		c.maxBody = DefaultMaxBodySize
	}
	if c.sleep == nil {
		c.sleep = Sleep
	}
	if c.jitter == nil {
		c.jitter = EqualJitter
	}
	if c.userAgent == "" {
		c.userAgent = "vigil/" + vigil.Version
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// MaxBodySize returns the body limit the client applies (negative: none).
func (c *Client) MaxBodySize() int64 { return c.maxBody }

// Sleep waits for d or until ctx is done. It is the default SleepFunc.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// EqualJitter returns a uniform random delay in [d/2, d] ("equal
// jitter"), so that clients that failed together do not all retry at the
// same instant. It is the default of Options.Jitter.
func EqualJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// Do sends req under ctx and returns the response when its status is 2xx or
// 304. The response body is bounded by MaxBodySize and must be closed; the
// per-attempt timeout runs until it is.
//
// 429, 5xx and transport errors are retried up to MaxAttempts times with
// exponential backoff, or after the server's Retry-After (capped at
// MaxDelay). A request with a body is retried only when req.GetBody is set.
// Any other status, or a retryable one on the last attempt, gives a
// *StatusError. Errors never contain headers, URL userinfo or secret-looking
// query values.
func (c *Client) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	safeURL := RedactURL(req.URL)
	attempts := c.maxAttempts
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		attempts = 1
	}
	for attempt := 1; ; attempt++ {
		resp, err := c.try(ctx, req, safeURL, attempt)
		if err == nil && (resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusNotModified) {
			return resp, nil
		}
		if ctx.Err() != nil { // the caller gave up: no retry, no wrapping of a stale error
			if resp != nil {
				resp.Body.Close()
			}
			return nil, fmt.Errorf("%s %s: %w", req.Method, safeURL, context.Cause(ctx))
		}
		var (
			serr  *StatusError
			delay time.Duration
		)
		if err != nil {
			err = &TransportError{Method: req.Method, URL: safeURL, Err: unwrapURLError(err)}
		} else {
			serr = c.statusError(req, resp, safeURL)
			err = serr
		}
		retryable := serr == nil || Retryable(serr.StatusCode)
		if !retryable || attempt >= attempts {
			if retryable && attempt > 1 {
				return nil, fmt.Errorf("giving up after %d attempts: %w", attempt, err)
			}
			return nil, err
		}
		if serr != nil && serr.RetryAfter >= 0 {
			delay = min(serr.RetryAfter, c.maxDelay)
		} else {
			delay = c.jitter(c.backoff(attempt))
		}
		attrs := []slog.Attr{
			slog.String("method", req.Method),
			slog.String("url", safeURL),
			slog.Int("attempt", attempt),
			slog.Int("max_attempts", attempts),
			slog.Duration("delay", delay),
		}
		if serr != nil {
			attrs = append(attrs, slog.Int("status", serr.StatusCode))
		} else {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "http request failed, retrying", attrs...)
		if werr := c.sleep(ctx, delay); werr != nil {
			return nil, fmt.Errorf("%w (while waiting to retry: %w)", err, werr)
		}
	}
}

// backoff returns the un-jittered delay after the given failed attempt.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.baseDelay
	for i := 1; i < attempt; i++ {
		d *= 2
		if d >= c.maxDelay || d <= 0 {
			return c.maxDelay
		}
	}
	return min(d, c.maxDelay)
}

// try sends one attempt. On success the body is wrapped so that closing it
// releases the attempt's timeout and reading it is bounded.
func (c *Client) try(ctx context.Context, req *http.Request, safeURL string, attempt int) (*http.Response, error) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if c.timeout > 0 {
		actx, cancel = context.WithTimeoutCause(ctx, c.timeout,
			fmt.Errorf("request timed out after %s", c.timeout))
	}
	r := req.Clone(actx) // headers are copied: req is never changed
	if r.Header.Get("User-Agent") == "" {
		r.Header.Set("User-Agent", c.userAgent)
	}
	if attempt > 1 && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			cancel()
			return nil, err
		}
		r.Body = body
	}
	resp, err := c.hc.Do(r)
	if err != nil {
		// Report the timeout's cause rather than a bare "context deadline exceeded".
		if cause := context.Cause(actx); cause != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", unwrapURLError(err), cause)
		}
		cancel()
		return nil, err
	}
	resp.Body = &boundedBody{
		rc:     resp.Body,
		r:      NewLimitedReader(resp.Body, c.maxBody),
		cancel: cancel,
		ctx:    actx,
		parent: ctx,
		what:   req.Method + " " + safeURL,
	}
	return resp, nil
}

// statusError reads the start of resp's body into a *StatusError and
// closes the body.
func (c *Client) statusError(req *http.Request, resp *http.Response, safeURL string) *StatusError {
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyRead))
	// Drain a little more so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	return &StatusError{
		Method:     req.Method,
		URL:        safeURL,
		StatusCode: resp.StatusCode,
		Body:       redactBody(head, req),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// boundedBody is a response body with a size limit, which releases its attempt's
// timeout when closed and names the request when a read fails.
type boundedBody struct {
	rc     io.ReadCloser
	r      io.Reader
	cancel context.CancelFunc
	ctx    context.Context // the attempt's context
	parent context.Context // the caller's context
	what   string
}

func (b *boundedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		if b.parent.Err() == nil {
			if cause := context.Cause(b.ctx); cause != nil {
				err = fmt.Errorf("%w: %w", err, cause)
			}
		}
		err = fmt.Errorf("%s: reading body: %w", b.what, err)
	}
	return n, err
}

func (b *boundedBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}

// ErrBodyTooLarge is wrapped by the error of a read past the body limit.
var ErrBodyTooLarge = errors.New("response body too large")

// NewLimitedReader returns a reader of r that fails with an error wrapping
// ErrBodyTooLarge once more than max bytes have been read. A negative max
// means no limit.
func NewLimitedReader(r io.Reader, max int64) io.Reader {
	if max < 0 {
		return r
	}
	return &limitedReader{r: r, left: max, max: max}
}

type limitedReader struct {
	r    io.Reader
	left int64 // bytes still allowed
	max  int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, l.tooLarge()
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // read one byte past the limit to detect overflow
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n = int(l.left)
		l.left = -1
		return n, l.tooLarge()
	}
	l.left -= int64(n)
	return n, err
}

func (l *limitedReader) tooLarge() error {
	return fmt.Errorf("%w: more than %s", ErrBodyTooLarge, formatSize(l.max))
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// ReadAll reads resp's whole (bounded) body and closes it.
func ReadAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength < 64<<20 {
		buf.Grow(int(resp.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(resp.Body)
	return buf.Bytes(), err
}

// Retryable reports whether a response status is worth retrying: 429 and
// every 5xx.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 && status <= 599
}

// retryAfter parses a Retry-After value (delay-seconds or an HTTP date) into
// a delay from now; -1 when absent or unparsable. Past dates give 0.
func retryAfter(v string, now time.Time) time.Duration {
	d, ok := ParseRetryAfter(v, now)
	if !ok {
		return -1
	}
	return d
}

// ParseRetryAfter parses a Retry-After header value: a number of seconds or
// an HTTP date. It returns the delay from now (never negative) and whether
// the value was understood.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		var secs int64
		for i := 0; i < len(v); i++ {
			ch := v[i]
			if ch < '0' || ch > '9' {
				return 0, false
			}
			secs = secs*10 + int64(ch-'0')
			if secs > 1<<31 {
				secs = 1 << 31 // far beyond any cap
			}
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// unwrapURLError drops *url.Error's wrapping: it prints the request's URL,
// query included, and our messages carry the redacted URL instead.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
