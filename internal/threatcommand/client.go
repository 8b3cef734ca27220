package threatcommand

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/httpx"
)

// TimeLayout is the layout of the API's date query parameters: UTC,
// milliseconds and a literal Z.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// API paths, relative to the base URL.
const (
	PathIOCs            = "/public/v2/app/elastic/iocs"
	PathAlertList       = "/public/v1/data/alerts/alerts-list"
	PathAlert           = "/public/v1/data/alerts/get-complete-alert/" // + id
	PathCVEs            = "/public/v1/cves/get-cves-list"
	PathTestCredentials = "/public/v1/test-credentials"
	PathSystemModules   = "/public/v1/account/system-modules"
)

// ErrCredentials is matched (errors.Is) by the error of any call the API
// answered with 401 or 403. The error names the configuration keys to check,
// never their values.
var ErrCredentials = errors.New("Threat Command rejected the credentials: check sources.threatcommand.account_id and sources.threatcommand.api_key")

// credentialsError is a 401 or 403 answer. It wraps the *httpx.StatusError.
type credentialsError struct{ err *httpx.StatusError }

func (e *credentialsError) Error() string {
	return fmt.Sprintf("Threat Command rejected the credentials (HTTP %d): check sources.threatcommand.account_id and sources.threatcommand.api_key", e.err.StatusCode)
}
func (e *credentialsError) Is(target error) bool {
	return target == ErrCredentials || target == vigil.ErrCredentials
}
func (e *credentialsError) Unwrap() error { return e.err }

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the API's base URL, e.g. https://api.intsights.com. It may
	// carry a path prefix; it must not carry credentials, a query or a
	// fragment.
	URL       string
	AccountID string
	APIKey    string
	// HTTP sends the requests. Nil: httpx.New with its defaults.
	HTTP *httpx.Client
	// Logger receives one Debug line per call. Nil: discard.
	Logger *slog.Logger
}

// Client calls the Threat Command API. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	accountID string
	apiKey    string
	http      *httpx.Client
	log       *slog.Logger
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	base, err := parseBaseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.AccountID) == "" {
		return nil, errors.New("threatcommand: sources.threatcommand.account_id is empty")
	}
	if cfg.APIKey == "" {
		return nil, errors.New("threatcommand: sources.threatcommand.api_key is empty")
	}
	c := &Client{base: base, accountID: cfg.AccountID, apiKey: cfg.APIKey, http: cfg.HTTP, log: cfg.Logger}
	if c.http == nil {
		c.http = httpx.New(httpx.Options{})
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func parseBaseURL(s string) (*url.URL, error) {
	u, err := httpx.ParseBaseURL(s, "sources.threatcommand.url", "https://api.intsights.com", "account_id and api_key")
	if err != nil {
		return nil, fmt.Errorf("threatcommand: %w", err)
	}
	u.RawPath = ""
	return u, nil
}

// URL returns the base URL.
func (c *Client) URL() string { return c.base.String() }

// IOCQuery selects IOCs. Zero times are not sent.
type IOCQuery struct {
	From, To   time.Time
	SyncID     string
	Severities []string // High, Medium, Low, PendingEnrichment; none: all
	Types      []string // IpAddresses, Urls, Domains, Hashes, Emails; none: all
	Offset     string   // the previous page's NextOffset
}

// Page is one page of IOCs or CVEs.
type Page struct {
	// Records holds the raw JSON of each element of the page's content,
	// each in its own slice, malformed ones included.
	Records [][]byte
	// NextOffset is the offset of the next page; "" on the last page.
	NextOffset string
}

// IOCs fetches one page of IOCs.
func (c *Client) IOCs(ctx context.Context, q IOCQuery) (Page, error) {
	v := url.Values{}
	setTime(v, "lastUpdatedFrom", q.From)
	setTime(v, "lastUpdatedTo", q.To)
	if q.SyncID != "" {
		v.Set("syncId", q.SyncID)
	}
	setIndexed(v, "severity", q.Severities)
	setIndexed(v, "type", q.Types)
	if q.Offset != "" {
		v.Set("offset", q.Offset)
	}
	return c.page(ctx, "IOC page", PathIOCs, v)
}

// CVEQuery selects CVEs. Zero times are not sent.
type CVEQuery struct {
	From, To   time.Time
	Severities []string // Critical, High, Medium, Low; none: all
	Offset     string
}

// CVEs fetches one page of CVEs.
func (c *Client) CVEs(ctx context.Context, q CVEQuery) (Page, error) {
	v := url.Values{}
	setTime(v, "updateDateFrom", q.From)
	setTime(v, "updateDateTo", q.To)
	setIndexed(v, "severity", q.Severities)
	if q.Offset != "" {
		v.Set("offset", q.Offset)
	}
	return c.page(ctx, "CVE page", PathCVEs, v)
}

func (c *Client) page(ctx context.Context, what, path string, v url.Values) (Page, error) {
	start := time.Now()
	resp, err := c.send(ctx, http.MethodGet, path, v)
	if err != nil {
		return Page{}, c.wrap(what, err)
	}
	defer resp.Body.Close()
	var p Page
	if resp.StatusCode == http.StatusNoContent {
		p = Page{}
	} else {
		p, err = parsePage(resp.Body)
		if err != nil {
			return Page{}, fmt.Errorf("threatcommand: %s: %w", what, err)
		}
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "threatcommand page",
		slog.String("what", what), slog.Int("records", len(p.Records)),
		slog.Bool("more", p.NextOffset != ""), slog.Duration("took", time.Since(start)))
	return p, nil
}

// AlertQuery selects alerts. Zero times are not sent.
type AlertQuery struct {
	From, To   time.Time
	Severities []string // High, Medium, Low; none: all
	Types      []string // AttackIndication, DataLeakage, Phishing, BrandSecurity, ExploitableData, vip; none: all
	Closed     bool     // closed alerts instead of open ones
}

// AlertIDs lists the ids of the alerts updated in the query's window. An
// empty body or a 204 gives no ids.
func (c *Client) AlertIDs(ctx context.Context, q AlertQuery) ([]string, error) {
	v := url.Values{}
	if len(q.Severities) > 0 {
		v.Set("severity", strings.Join(q.Severities, ","))
	}
	if len(q.Types) > 0 {
		v.Set("alertType", strings.Join(q.Types, ","))
	}
	v.Set("isClosed", strconv.FormatBool(q.Closed))
	setTime(v, "lastUpdatedFrom", q.From)
	setTime(v, "lastUpdatedTo", q.To)
	resp, err := c.send(ctx, http.MethodGet, PathAlertList, v)
	if err != nil {
		return nil, c.wrap("alert list", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	ids, err := parseAlertIDs(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("threatcommand: alert list: %w", err)
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "threatcommand alert list", slog.Int("ids", len(ids)))
	return ids, nil
}

// Alert fetches one complete alert and returns its raw JSON. A 404 gives an
// error wrapping an *httpx.StatusError.
func (c *Client) Alert(ctx context.Context, id string) ([]byte, error) {
	if id == "" {
		return nil, errors.New("threatcommand: alert: empty id")
	}
	what := "alert " + strconv.Quote(id)
	resp, err := c.send(ctx, http.MethodGet, PathAlert+escapeID(id), nil)
	if err != nil {
		return nil, c.wrap(what, err)
	}
	b, err := httpx.ReadAll(resp)
	if err != nil {
		return nil, fmt.Errorf("threatcommand: %s: %w", what, err)
	}
	if err := checkObject(b); err != nil {
		return nil, fmt.Errorf("threatcommand: %s: %w", what, err)
	}
	return b, nil
}

// TestCredentials asks the API whether the credentials are valid. It
// returns nil on 200, an error matching ErrCredentials on 401 or 403, and
// another error otherwise.
func (c *Client) TestCredentials(ctx context.Context) error {
	resp, err := c.send(ctx, http.MethodHead, PathTestCredentials, nil)
	if err != nil {
		return c.wrap("test credentials", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("threatcommand: test credentials: HTTP %d, want 200", resp.StatusCode)
	}
	return nil
}

// Module is one ETP Suite module of the account.
type Module struct {
	Name    string
	Enabled bool
}

// SystemModules lists the modules of the account's subscription, sorted by
// name, and returns the raw answer as well so that a caller can show what
// it did not understand. The API answers an object of module name to
// boolean ({"IOC": true, "Cve": false, ...}); a list of names (each
// enabled) or of {"name": ..., "enabled": ...} objects is accepted too.
func (c *Client) SystemModules(ctx context.Context) ([]Module, []byte, error) {
	resp, err := c.send(ctx, http.MethodGet, PathSystemModules, nil)
	if err != nil {
		return nil, nil, c.wrap("system modules", err)
	}
	raw, err := httpx.ReadAll(resp)
	if err != nil {
		return nil, nil, fmt.Errorf("threatcommand: system modules: %w", err)
	}
	mods, err := parseModules(raw)
	if err != nil {
		return nil, raw, fmt.Errorf("threatcommand: system modules: %w", err)
	}
	return mods, raw, nil
}

// send sends one authenticated request. escapedPath is relative to the base
// URL and already escaped.
func (c *Client) send(ctx context.Context, method, escapedPath string, v url.Values) (*http.Response, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + escapedPath
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, err
	}
	u.Path = p
	if len(v) > 0 {
		u.RawQuery = v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.accountID, c.apiKey)
	req.Header.Set("Accept", "application/json")
	return c.http.Do(ctx, req)
}

// escapeID escapes an alert id as one path segment; "." and ".." are
// escaped too, so that no one cleans them away.
func escapeID(id string) string {
	if id == "." || id == ".." {
		return strings.Repeat("%2E", len(id))
	}
	return url.PathEscape(id)
}

// wrap turns a failed call's error into the package's: 401 and 403 become
// credential errors, the rest are prefixed with what was asked.
func (c *Client) wrap(what string, err error) error {
	var se *httpx.StatusError
	if errors.As(err, &se) && httpx.IsCredentialStatus(se.StatusCode) {
		return &credentialsError{err: se}
	}
	if errors.As(err, &se) {
		if reason, ok := invalidReason([]byte(se.Body)); ok {
			return fmt.Errorf("threatcommand: %s: %w: %w", what, invalidError(reason), err)
		}
	}
	return fmt.Errorf("threatcommand: %s: %w", what, err)
}

func setTime(v url.Values, key string, t time.Time) {
	if !t.IsZero() {
		v.Set(key, t.UTC().Format(TimeLayout))
	}
}

func setIndexed(v url.Values, key string, vals []string) {
	for i, s := range vals {
		v.Set(key+"["+strconv.Itoa(i)+"]", s)
	}
}

// ---- Response parsing --------------------------------------------------
//
// IOC and CVE pages and alert lists are parsed as they stream in: a
// pageScanner reads the body in chunks and validates it with scanValue, and
// each record is copied once into its own slice, so no more than the page
// is held. Small bodies (one alert, the module list) are read whole.

// headLen is how much of a body's start error messages quote.
const headLen = 64

// describeHead says what a body starts with.
func describeHead(head []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(head[:min(len(head), headLen)]), "\uFFFD"))
	if s == "" {
		return "the body is empty"
	}
	return "the body starts with " + strconv.Quote(s)
}

// jsonText returns a JSON string's text, or the raw JSON of another value.
func jsonText(raw []byte) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func invalidError(reason string) error {
	if reason == "" {
		reason = "(no FailedReason given)"
	}
	return fmt.Errorf("Threat Command answered Status \"Invalid\": %s", reason)
}

// invalidReason reports whether b is a {"Status":"Invalid"} object, with its
// FailedReason.
func invalidReason(b []byte) (string, bool) {
	var v struct {
		Status       any `json:"Status"`
		FailedReason any `json:"FailedReason"`
	}
	if json.Unmarshal(b, &v) != nil {
		return "", false
	}
	if s, ok := v.Status.(string); !ok || !strings.EqualFold(s, "Invalid") {
		return "", false
	}
	switch r := v.FailedReason.(type) {
	case nil:
		return "", true
	case string:
		return r, true
	default:
		b, _ := json.Marshal(r)
		return string(b), true
	}
}

// checkObject accepts a complete alert's body: one JSON object that is not
// a {"Status":"Invalid"} answer.
func checkObject(b []byte) error {
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(t) == 0:
		return errors.New("the body is empty")
	case !json.Valid(b):
		return fmt.Errorf("the body is not valid JSON; %s", describeHead(b))
	case t[0] != '{':
		return fmt.Errorf("the body is not a JSON object; %s", describeHead(b))
	}
	if reason, ok := invalidReason(b); ok {
		return invalidError(reason)
	}
	return nil
}

// parseAlertIDs reads a JSON array of alert id strings. An empty body or
// null gives no ids.
func parseAlertIDs(r io.Reader) ([]string, error) {
	s := newPageScanner(r)
	c, err := s.peek()
	if err != nil {
		if s.blank() {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	switch c {
	case '[':
		err = s.array("the alert id array", func(i int, c byte) error {
			start, end, err := s.value()
			if err != nil {
				return err
			}
			if c != '"' {
				return fmt.Errorf("element %d of the alert id array is %s, want a string", i, kindOf(c))
			}
			id := unquote(s.buf[start:end])
			if id == "" {
				return fmt.Errorf("element %d of the alert id array is an empty string", i)
			}
			ids = append(ids, id)
			return nil
		})
	case '{': // perhaps {"Status":"Invalid","FailedReason":...}
		var status, reason string
		err = s.members(func(key string) error {
			start, end, err := s.value()
			switch {
			case err != nil:
				return err
			case key == "Status":
				status = jsonText(s.buf[start:end])
			case key == "FailedReason":
				reason = jsonText(s.buf[start:end])
			}
			return nil
		})
		if err == nil {
			if strings.EqualFold(status, "Invalid") {
				return nil, invalidError(reason)
			}
			return nil, fmt.Errorf("the body is an object, want an array of alert ids; %s", s.describe())
		}
	default:
		var null bool
		if null, err = s.null(); err == nil && !null {
			err = s.notWanted(c, "the body", "an array of alert ids")
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.end(); err != nil {
		return nil, err
	}
	return ids, nil
}

// parseModules reads the system-modules answer.
func parseModules(b []byte) ([]Module, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, errors.New("the body is empty")
		}
		return nil, fmt.Errorf("the body is not valid JSON; %s", describeHead(b))
	}
	var mods []Module
	switch v := v.(type) {
	case map[string]any:
		if s, ok := v["Status"].(string); ok && strings.EqualFold(s, "Invalid") {
			r, _ := invalidReason(b)
			return nil, invalidError(r)
		}
		for name, val := range v {
			on, ok := truthy(val)
			if !ok {
				return nil, fmt.Errorf("module %q has the value %s, want a boolean", name, compact(val))
			}
			mods = append(mods, Module{Name: name, Enabled: on})
		}
	case []any:
		for i, e := range v {
			switch e := e.(type) {
			case string:
				mods = append(mods, Module{Name: e, Enabled: true})
			case map[string]any:
				m, ok := moduleObject(e)
				if !ok {
					return nil, fmt.Errorf("element %d of the module list, %s, has no name", i, compact(e))
				}
				mods = append(mods, m)
			default:
				return nil, fmt.Errorf("element %d of the module list is %s, want a name or an object", i, compact(e))
			}
		}
	default:
		return nil, fmt.Errorf("the body is %s, want an object of module names to booleans", compact(v))
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Name < mods[j].Name })
	return mods, nil
}

// moduleObject reads {"name": ..., "enabled"|"status"|...: ...}, keys in any case.
func moduleObject(o map[string]any) (Module, bool) {
	var m Module
	found := false
	for k, v := range o {
		switch strings.ToLower(k) {
		case "name", "module", "modulename", "module_name":
			if s, ok := v.(string); ok && s != "" {
				m.Name, found = s, true
			}
		}
	}
	m.Enabled = true // listed without a flag: available
	for k, v := range o {
		switch strings.ToLower(k) {
		case "enabled", "isenabled", "status", "active", "value":
			if on, ok := truthy(v); ok {
				m.Enabled = on
			}
		}
	}
	return m, found
}

// truthy reads a boolean, or a string that spells one.
func truthy(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true", "enabled", "active", "on", "yes":
			return true, true
		case "false", "disabled", "inactive", "off", "no":
			return false, true
		}
	}
	return false, false
}

func compact(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	b, _ := json.Marshal(v)
	if len(b) > 40 {
		b = append(b[:40], "..."...)
	}
	return string(b)
}

// parsePage reads {"content":[...],"nextOffset":...}. Each element of
// content is returned as its own raw JSON, whatever its type. nextOffset may
// be a string or an integer, and is absent, null or "" on the last page.
// {"Status":"Invalid","FailedReason":...} is an error carrying the reason.
func parsePage(r io.Reader) (Page, error) {
	s := newPageScanner(r)
	c, err := s.peek()
	if err != nil {
		return Page{}, err
	}
	if c != '{' {
		return Page{}, s.notWanted(c, "the body", "an object with a \"content\" array")
	}
	var (
		p           Page
		haveContent bool
		status      string
		reason      string
		keys        []string
	)
	err = s.members(func(key string) error {
		var err error
		switch key {
		case "content":
			if haveContent {
				return errors.New("\"content\" appears twice")
			}
			haveContent = true
			p.Records, err = s.content()
		case "nextOffset":
			p.NextOffset, err = s.offset()
		case "Status", "FailedReason":
			var start, end int
			if start, end, err = s.value(); err == nil {
				if key == "Status" {
					status = jsonText(s.buf[start:end])
				} else {
					reason = jsonText(s.buf[start:end])
				}
			}
		default:
			if len(keys) < 8 {
				keys = append(keys, strconv.Quote(key))
			}
			_, _, err = s.value()
		}
		return err
	})
	if err != nil {
		return Page{}, err
	}
	if err := s.end(); err != nil {
		return Page{}, err
	}
	if strings.EqualFold(status, "Invalid") {
		return Page{}, invalidError(reason)
	}
	if !haveContent {
		if len(keys) == 0 {
			return Page{}, errors.New("the body has no \"content\" array")
		}
		return Page{}, fmt.Errorf("the body has no \"content\" array (its keys: %s)", strings.Join(keys, ", "))
	}
	return p, nil
}

// pageScanner reads JSON from a stream in chunks. buf[pos:] is unread;
// bytes before the start of the value being scanned are dropped when more
// room is needed.
type pageScanner struct {
	r       io.Reader
	buf     []byte
	pos     int
	dropped int64 // bytes dropped from the front of buf, for error offsets
	eof     bool  // r is exhausted
	rerr    error // a read error other than EOF
	head    []byte
}

const scanChunk = 64 << 10

func newPageScanner(r io.Reader) *pageScanner {
	return &pageScanner{r: r, buf: make([]byte, 0, scanChunk)}
}

// fill reads more input, keeping buf[keep:]. It returns the shift applied
// to indexes into buf, and false when no more input will come.
func (s *pageScanner) fill(keep int) (int, bool) {
	if s.eof || s.rerr != nil {
		return 0, false
	}
	shift := 0
	if keep > 0 && (keep >= len(s.buf)/2 || cap(s.buf)-len(s.buf) < scanChunk/4) {
		n := copy(s.buf, s.buf[keep:])
		s.buf = s.buf[:n]
		s.dropped += int64(keep)
		s.pos -= keep
		shift = keep
	}
	if cap(s.buf)-len(s.buf) < scanChunk/4 {
		nb := make([]byte, len(s.buf), 2*cap(s.buf)+scanChunk)
		copy(nb, s.buf)
		s.buf = nb
	}
	for {
		n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		if len(s.head) < headLen { // reads are in order: head is the body's start
			s.head = append(s.head, s.buf[len(s.buf):len(s.buf)+min(n, headLen-len(s.head))]...)
		}
		s.buf = s.buf[:len(s.buf)+n]
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			s.rerr = err
		}
		if n > 0 || err != nil {
			return shift, n > 0
		}
	}
}

// peek skips whitespace and returns the next byte without consuming it.
func (s *pageScanner) peek() (byte, error) {
	for {
		for s.pos < len(s.buf) {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\n', '\r':
				s.pos++
			default:
				return c, nil
			}
		}
		if _, ok := s.fill(s.pos); !ok {
			return 0, s.short()
		}
	}
}

// short explains running out of input.
func (s *pageScanner) short() error {
	if s.rerr != nil {
		return s.rerr // a read error names the request already
	}
	if s.blank() {
		return errors.New("the body is empty")
	}
	return fmt.Errorf("the body is not valid JSON: it ends too early at byte %d (truncated?); %s",
		s.dropped+int64(len(s.buf)), s.describe())
}

// syntax reports a syntax error at buf[i] (i < 0: at pos).
func (s *pageScanner) syntax(i int, msg string) error {
	if i < 0 {
		i = s.pos
	}
	return fmt.Errorf("the body is not valid JSON: %s at byte %d; %s", msg, s.dropped+int64(i), s.describe())
}

// describe says what the body starts with, reading a little further if
// too little has been read to say.
func (s *pageScanner) describe() string {
	for len(s.head) < headLen && !s.eof && s.rerr == nil {
		var b [headLen]byte
		n, err := s.r.Read(b[:headLen-len(s.head)])
		s.head = append(s.head, b[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	return describeHead(s.head)
}

// value scans one value, which must be complete and valid, and returns its
// bounds in buf; pos moves past it.
func (s *pageScanner) value() (int, int, error) {
	if _, err := s.peek(); err != nil {
		return 0, 0, err
	}
	start := s.pos
	for {
		atEOF := s.eof
		end, err := scanValue(s.buf, start, atEOF)
		if err == nil {
			s.pos = end
			return start, end, nil
		}
		if se, ok := err.(*scanError); ok {
			if se.off >= len(s.buf) { // the input ended inside the value
				return 0, 0, s.short()
			}
			return 0, 0, s.syntax(se.off, se.msg)
		}
		// errShort: at least double what is buffered of the value before
		// scanning it again from its start, so a long value costs O(n).
		want := 2*(len(s.buf)-start) + 1
		got := false
		for len(s.buf)-start < want {
			shift, more := s.fill(start)
			start -= shift
			if !more {
				break
			}
			got = true
		}
		if !got && (atEOF || !s.eof) {
			return 0, 0, s.short()
		} // else: the input ended; scan again knowing it
	}
}

// key reads an object key and the colon after it.
func (s *pageScanner) key() (string, error) {
	c, err := s.peek()
	if err != nil {
		return "", err
	}
	if c != '"' {
		return "", s.syntax(-1, "want an object key (a string), got "+quoteChar(c))
	}
	start, end, err := s.value()
	if err != nil {
		return "", err
	}
	key := unquote(s.buf[start:end])
	if c, err = s.peek(); err != nil {
		return "", err
	}
	if c != ':' {
		return "", s.syntax(-1, "after an object key: want ':', got "+quoteChar(c))
	}
	s.pos++
	return key, nil
}

// blank reports whether the whole input read so far, which ended, was
// whitespace.
func (s *pageScanner) blank() bool {
	return s.rerr == nil && s.dropped == 0 && len(bytes.Trim(s.buf, " \t\r\n")) == 0
}

// members reads the object at pos, calling fn with pos at each member's
// value; fn must consume the value.
func (s *pageScanner) members(fn func(key string) error) error {
	s.pos++ // '{'
	if c, err := s.peek(); err != nil {
		return err
	} else if c == '}' {
		s.pos++
		return nil
	}
	for {
		key, err := s.key()
		if err != nil {
			return err
		}
		if err := fn(key); err != nil {
			return err
		}
		c, err := s.peek()
		if err != nil {
			return err
		}
		s.pos++
		switch c {
		case ',':
		case '}':
			return nil
		default:
			return s.syntax(s.pos-1, "after an object member: want ',' or '}', got "+quoteChar(c))
		}
	}
}

// array reads the array at pos, calling fn with pos at each element and
// its first byte; fn must consume the element. what names the array in
// errors.
func (s *pageScanner) array(what string, fn func(i int, c byte) error) error {
	s.pos++ // '['
	if c, err := s.peek(); err != nil {
		return err
	} else if c == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		c, err := s.peek()
		if err != nil {
			return err
		}
		if err := fn(i, c); err != nil {
			return err
		}
		if c, err = s.peek(); err != nil {
			return err
		}
		s.pos++
		switch c {
		case ',':
		case ']':
			return nil
		default:
			return s.syntax(s.pos-1, "after an element of "+what+": want ',' or ']', got "+quoteChar(c))
		}
	}
}

// null consumes a null at pos, if there is one.
func (s *pageScanner) null() (bool, error) {
	if c, err := s.peek(); err != nil || c != 'n' {
		return false, err
	}
	start, end, err := s.value()
	return err == nil && string(s.buf[start:end]) == "null", err
}

// content reads the content array (or null), copying each element.
func (s *pageScanner) content() ([][]byte, error) {
	c, err := s.peek()
	if err != nil {
		return nil, err
	}
	if c != '[' {
		if null, err := s.null(); null || err != nil {
			return nil, err
		}
		return nil, s.notWanted(c, "\"content\"", "an array")
	}
	recs := make([][]byte, 0, 64)
	err = s.array("\"content\"", func(int, byte) error {
		start, end, err := s.value()
		if err == nil {
			recs = append(recs, bytes.Clone(s.buf[start:end]))
		}
		return err
	})
	return recs, err
}

// offset reads nextOffset: a string, an integer or null.
func (s *pageScanner) offset() (string, error) {
	c, err := s.peek()
	if err != nil {
		return "", err
	}
	start, end, err := s.value()
	if err != nil {
		return "", err
	}
	v := s.buf[start:end]
	switch {
	case c == '"':
		return unquote(v), nil
	case c == 'n':
		return "", nil
	case c == '-' || c >= '0' && c <= '9':
		if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
			if _, err := strconv.ParseUint(string(v), 10, 64); err != nil {
				return "", fmt.Errorf("\"nextOffset\" is the number %s, want a string or an integer", v)
			}
		}
		return string(v), nil
	}
	return "", fmt.Errorf("\"nextOffset\" is %s, want a string or a number", kindOf(c))
}

// end checks that only whitespace follows the top-level value.
func (s *pageScanner) end() error {
	c, err := s.peek()
	if err == nil {
		return s.syntax(-1, "data after the top-level value, starting with "+quoteChar(c))
	}
	if s.rerr != nil {
		return s.rerr
	}
	return nil // end of input
}

// notWanted explains a value of the wrong type; it scans the value first
// so that invalid JSON is reported as such.
func (s *pageScanner) notWanted(c byte, what, want string) error {
	if k := kindOf(c); k != "" {
		if _, _, err := s.value(); err != nil && !strings.Contains(err.Error(), "ends too early") {
			return err
		}
		return fmt.Errorf("%s is %s, want %s", what, k, want)
	}
	return s.syntax(-1, "invalid character "+quoteChar(c)+" looking for the beginning of a value")
}

// kindOf names the JSON type a value starting with c has ("" if none).
func kindOf(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	}
	return ""
}

func quoteChar(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// unquote returns a scanned JSON string's text, as encoding/json would
// (invalid UTF-8 becomes U+FFFD).
func unquote(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		return string(b[1 : len(b)-1])
	}
	var s string
	_ = json.Unmarshal(b, &s) // scanValue validated it
	return s
}

// ---- A validating JSON value scanner ----------------------------------

// errShort means the input ended inside a value and more may follow.
var errShort = errors.New("short input")

type scanError struct {
	off int
	msg string
}

func (e *scanError) Error() string { return e.msg }

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// strSafe marks the bytes a JSON string holds without escaping.
var strSafe = func() (t [256]bool) {
	for i := 0x20; i < 256; i++ {
		t[i] = i != '"' && i != '\\'
	}
	return t
}()

// scanValue returns the index just past the JSON value that starts at b[i]
// (after any whitespace). It accepts exactly what encoding/json accepts. It
// returns errShort when b ends inside the value and atEOF is false, and a
// *scanError for invalid input.
func scanValue(b []byte, i int, atEOF bool) (int, error) {
	short := func(at int) (int, error) {
		if atEOF {
			return at, &scanError{at, "unexpected end of input"}
		}
		return at, errShort
	}
	bad := func(at int, what string) (int, error) {
		if at >= len(b) {
			return short(at)
		}
		return at, &scanError{at, "invalid character " + quoteChar(b[at]) + " " + what}
	}
	var stack []byte // '{' or '[' per open container
	for {
		// A value starts at i (after whitespace).
		i = ecs.SkipSpace(b, i)
		if i >= len(b) {
			return short(i)
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return i, &scanError{i, "exceeded max depth"}
			}
			i = ecs.SkipSpace(b, i+1)
			if i >= len(b) {
				return short(i)
			}
			if c == '{' && b[i] == '}' || c == '[' && b[i] == ']' {
				i++
				break // an empty container is a complete value
			}
			stack = append(stack, c)
			if c == '{' {
				var err error
				if i, err = scanKey(b, i, atEOF, bad); err != nil {
					return i, err
				}
			}
			continue // the first element or member value
		case c == '"':
			j, err := scanString(b, i, bad)
			if err != nil {
				return j, err
			}
			i = j
		case c == '-' || c >= '0' && c <= '9':
			j, err := scanNumber(b, i, atEOF, bad)
			if err != nil {
				return j, err
			}
			i = j
		case c == 't':
			j, err := scanLiteral(b, i, "true", atEOF, bad)
			if err != nil {
				return j, err
			}
			i = j
		case c == 'f':
			j, err := scanLiteral(b, i, "false", atEOF, bad)
			if err != nil {
				return j, err
			}
			i = j
		case c == 'n':
			j, err := scanLiteral(b, i, "null", atEOF, bad)
			if err != nil {
				return j, err
			}
			i = j
		default:
			return bad(i, "looking for beginning of value")
		}
		// A value ended at i: close containers or move to the next element.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = ecs.SkipSpace(b, i)
			if i >= len(b) {
				return short(i)
			}
			top := stack[len(stack)-1]
			if b[i] == ',' {
				i++
				if top == '{' {
					var err error
					i = ecs.SkipSpace(b, i)
					if i, err = scanKey(b, i, atEOF, bad); err != nil {
						return i, err
					}
				}
				break
			}
			if top == '{' && b[i] == '}' || top == '[' && b[i] == ']' {
				i++
				stack = stack[:len(stack)-1]
				continue
			}
			if top == '{' {
				return bad(i, "after object key:value pair")
			}
			return bad(i, "after array element")
		}
	}
}

// scanKey scans `"key" :` at b[i] and returns the index after the colon.
func scanKey(b []byte, i int, atEOF bool, bad func(int, string) (int, error)) (int, error) {
	i = ecs.SkipSpace(b, i)
	if i >= len(b) || b[i] != '"' {
		return bad(i, "looking for beginning of object key string")
	}
	i, err := scanString(b, i, bad)
	if err != nil {
		return i, err
	}
	i = ecs.SkipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return bad(i, "after object key")
	}
	return i + 1, nil
}

// scanString scans the string that starts at b[i] == '"'.
func scanString(b []byte, i int, bad func(int, string) (int, error)) (int, error) {
	i++
	for {
		for i < len(b) && strSafe[b[i]] {
			i++
		}
		if i >= len(b) {
			return bad(i, "")
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return bad(i+1, "")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if i+k >= len(b) {
						return bad(i+k, "")
					}
					if !isHex(b[i+k]) {
						return bad(i+k, "in \\u hexadecimal character escape")
					}
				}
				i += 6
			default:
				return bad(i+1, "in string escape code")
			}
		default: // a control character
			return bad(i, "in string literal")
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber scans the number that starts at b[i].
func scanNumber(b []byte, i int, atEOF bool, bad func(int, string) (int, error)) (int, error) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	// more reports whether the number may continue past the end of b.
	end := func(i int) (int, error) {
		if i >= len(b) && !atEOF {
			return i, errShort
		}
		return i, nil
	}
	if b[i] == '-' {
		i++
		if i >= len(b) {
			return bad(i, "")
		}
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		i = digits(i + 1)
	default:
		return bad(i, "in numeric literal")
	}
	if i >= len(b) {
		return end(i)
	}
	if b[i] == '.' {
		i++
		if i >= len(b) {
			return bad(i, "")
		}
		if b[i] < '0' || b[i] > '9' {
			return bad(i, "after decimal point in numeric literal")
		}
		i = digits(i)
		if i >= len(b) {
			return end(i)
		}
	}
	if b[i] == 'e' || b[i] == 'E' {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			return bad(i, "")
		}
		if b[i] < '0' || b[i] > '9' {
			return bad(i, "in exponent of numeric literal")
		}
		i = digits(i)
		return end(i)
	}
	return i, nil
}

// scanLiteral scans true, false or null at b[i].
func scanLiteral(b []byte, i int, lit string, atEOF bool, bad func(int, string) (int, error)) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return bad(i+k, "")
		}
		if b[i+k] != lit[k] {
			return bad(i+k, "in literal "+lit+" (expecting "+strconv.QuoteRune(rune(lit[k]))+")")
		}
	}
	return i + len(lit), nil
}
