package threatconnect

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/httpx"
)

// API paths, relative to the API root ({url}/api).
const (
	PathIndicators = "/v3/indicators"
	PathDeleted    = "/v3/indicators/deleted"
	PathOwners     = "/v3/security/owners"
)

// TimeLayout is the layout of the times vigil sends in TQL and in
// deletedSince: RFC 3339 with seconds and no fraction. TQL rejects some
// fractional forms (Elastic's 1.3.0 fix), so none is ever sent.
const TimeLayout = "2006-01-02T15:04:05Z"

// MaxResultLimit is the largest resultLimit ThreatConnect accepts.
const MaxResultLimit = 10000

// The additional fields of an indicator that the configuration may ask for.
const (
	FieldAssociatedGroups          = "associatedGroups"
	FieldAssociatedGroupAttributes = "associatedGroups.attributes"
	FieldAssociatedIndicators      = "associatedIndicators"
	FieldAttributes                = "attributes"
)

// alwaysFields are requested on every indicator page, as Elastic does.
var alwaysFields = []string{"securityLabels", "sightings", "tags", "threatAssess"}

// ErrCredentials is matched (errors.Is) by the error of any call that
// ThreatConnect answered with 401 or 403. The error names the configuration
// keys to check, never their values.
var ErrCredentials = errors.New("ThreatConnect rejected the request's signature or access")

// Authorization returns the Authorization header of a request signed with
// ThreatConnect's HMAC scheme: "TC <access id>:<signature>", where the
// signature is base64(HMAC-SHA256(secret, target + ":" + method + ":" +
// timestamp)) and target is the request's path and query exactly as they are
// sent (still percent-encoded).
func Authorization(accessID string, secret []byte, target, method string, timestamp int64) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(target))
	mac.Write([]byte{':'})
	mac.Write([]byte(method))
	mac.Write([]byte{':'})
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	return "TC " + accessID + ":" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// RequestTarget returns what a request puts on the wire after its method:
// the escaped path and the raw query, as net/http writes them.
func RequestTarget(u *url.URL) string { return u.RequestURI() }

// signer signs each attempt of a request as it is sent, so that a retry
// after a long backoff carries a fresh Timestamp.
type signer struct {
	next     http.RoundTripper
	accessID string
	secret   []byte
	clock    vigil.Clock
}

func (s *signer) RoundTrip(req *http.Request) (*http.Response, error) {
	ts := s.clock.Now().Unix()
	r := req.Clone(req.Context())
	r.Header.Set("Timestamp", strconv.FormatInt(ts, 10))
	r.Header.Set("Authorization", Authorization(s.accessID, s.secret, RequestTarget(req.URL), req.Method, ts))
	return s.next.RoundTrip(r)
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is ThreatConnect's base URL, e.g. https://app.threatconnect.com.
	// The API lives under {URL}/api; a URL that already ends in /api is
	// taken as the API root.
	URL       string
	AccessID  string
	SecretKey string
	// HTTP configures timeouts and retries. Its HTTPClient (nil: one on
	// http.DefaultTransport) is copied and its transport wrapped by the
	// signer.
	HTTP httpx.Options
	// Clock stamps the Timestamp header. Nil: the system clock.
	Clock vigil.Clock
	// Logger receives one Debug line per call. Nil: discard.
	Logger *slog.Logger
}

// Client calls the ThreatConnect v3 API with HMAC authentication. It is
// safe for concurrent use.
type Client struct {
	base *url.URL // the API root, e.g. https://app.threatconnect.com/api
	http *httpx.Client
	log  *slog.Logger
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	base, err := parseBaseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(cfg.AccessID) == "" {
		return nil, errors.New("threatconnect: sources.threatconnect.access_id is empty")
	}
	if cfg.SecretKey == "" {
		return nil, errors.New("threatconnect: sources.threatconnect.secret_key is empty")
	}
	clock := cfg.Clock
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	opts := cfg.HTTP
	var hc http.Client
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = &signer{next: next, accessID: cfg.AccessID, secret: []byte(cfg.SecretKey), clock: clock}
	opts.HTTPClient = &hc
	c := &Client{base: base, http: httpx.New(opts), log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func parseBaseURL(s string) (*url.URL, error) {
	const p = "threatconnect: sources.threatconnect.url"
	u, err := httpx.ParseBaseURL(s, "sources.threatconnect.url", "https://app.threatconnect.com", "access_id and secret_key")
	if err != nil {
		return nil, fmt.Errorf("threatconnect: %w", err)
	}
	path := strings.TrimRight(u.EscapedPath(), "/")
	if !strings.HasSuffix(path, "/api") {
		path += "/api"
	}
	if u.Path, err = url.PathUnescape(path); err != nil {
		return nil, fmt.Errorf("%s has a badly escaped path: %v", p, err)
	}
	u.RawPath = path
	return u, nil
}

// URL returns the API root, e.g. https://app.threatconnect.com/api.
func (c *Client) URL() string { return c.base.String() }

// endpoint returns the absolute URL of an API path with a query.
func (c *Client) endpoint(path string, v url.Values) *url.URL {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	u.Path = c.base.Path + path
	u.RawQuery = v.Encode()
	return &u
}

// IndicatorQuery selects indicators.
type IndicatorQuery struct {
	// Since is the lastModified the listing starts at, inclusive (GEQ).
	Since time.Time
	// TQL is the user's filter, ANDed onto the time filter; "" for none.
	TQL string
	// Fields are the additional fields to request, in the order they are
	// sent; the fields every page asks for are appended.
	Fields []string
	// Limit is resultLimit, 1 to MaxResultLimit.
	Limit int
}

// IndicatorsURL returns the URL of the first page of a listing. The query is
// encoded as url.Values.Encode does: keys sorted, fields in order, spaces as
// "+".
func (c *Client) IndicatorsURL(q IndicatorQuery) *url.URL {
	v := url.Values{}
	v["fields"] = append(append([]string(nil), q.Fields...), alwaysFields...)
	v.Set("resultLimit", strconv.Itoa(q.Limit))
	v.Set("resultStart", "0")
	v.Set("sorting", "lastModified asc")
	v.Set("tql", TQL(q.Since, q.TQL))
	return c.endpoint(PathIndicators, v)
}

// TQL returns the filter of a listing: lastModified at or after since, and
// the user's filter, in parentheses so that an OR in it cannot escape the
// time filter.
func TQL(since time.Time, user string) string {
	tql := `lastModified GEQ "` + since.UTC().Format(TimeLayout) + `"`
	if user = strings.TrimSpace(user); user != "" {
		tql += " AND (" + user + ")"
	}
	return tql
}

// Page is one page of a listing.
type Page struct {
	// Records holds the raw JSON of each element of "data", in order,
	// malformed ones included.
	Records [][]byte
	// Next is the absolute link to the next page; "" on the last page.
	Next string
	// Target is the page's own request target (path and query), to detect
	// a next link that repeats it.
	Target string
}

// Repeats reports whether the page's next link asks for the page itself.
func (p *Page) Repeats() bool {
	l, err := url.Parse(p.Next)
	return err == nil && p.Next != "" && l.RequestURI() == p.Target
}

// Indicators fetches the first page of a listing.
func (c *Client) Indicators(ctx context.Context, q IndicatorQuery) (Page, error) {
	return c.page(ctx, "indicator page", c.IndicatorsURL(q))
}

// DeletedQuery selects recently deleted indicators.
type DeletedQuery struct {
	// Since is the deletion time the listing starts at (deletedSince).
	Since time.Time
	// Limit is resultLimit, 1 to MaxResultLimit.
	Limit int
}

// DeletedURL returns the URL of the first page of deleted indicators.
func (c *Client) DeletedURL(q DeletedQuery) *url.URL {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("deletedSince", q.Since.UTC().Format(TimeLayout))
	}
	v.Set("resultLimit", strconv.Itoa(q.Limit))
	v.Set("resultStart", "0")
	return c.endpoint(PathDeleted, v)
}

// Deleted fetches the first page of the indicators deleted since q.Since.
func (c *Client) Deleted(ctx context.Context, q DeletedQuery) (Page, error) {
	return c.page(ctx, "deleted indicators page", c.DeletedURL(q))
}

// Next follows a page's next link. The link's path and query are sent, and
// signed, exactly as ThreatConnect wrote them; the scheme and host are always
// the configured ones, so a signed request never goes elsewhere.
func (c *Client) Next(ctx context.Context, what, link string) (Page, error) {
	u, err := c.resolve(link)
	if err != nil {
		return Page{}, fmt.Errorf("threatconnect: %s: %w", what, err)
	}
	return c.page(ctx, what, u)
}

func (c *Client) resolve(link string) (*url.URL, error) {
	l, err := url.Parse(link)
	if err != nil || l.Opaque != "" || !strings.HasPrefix(l.EscapedPath(), "/") {
		return nil, fmt.Errorf("ThreatConnect returned a next link that is not an absolute URL: %q", truncate(link, 200))
	}
	u := *c.base
	u.Path, u.RawPath, u.RawQuery, u.ForceQuery = l.Path, l.RawPath, l.RawQuery, l.ForceQuery
	if l.Host != "" && (l.Host != c.base.Host || l.Scheme != c.base.Scheme) {
		c.log.Debug("threatconnect next link names another host; sending it to the configured one",
			"link_host", l.Host, "host", c.base.Host)
	}
	return &u, nil
}

func (c *Client) page(ctx context.Context, what string, u *url.URL) (Page, error) {
	start := time.Now()
	body, err := c.get(ctx, what, u)
	if err != nil {
		return Page{}, err
	}
	p, err := parsePage(body)
	if err != nil {
		return Page{}, fmt.Errorf("threatconnect: %s: %w", what, err)
	}
	p.Target = RequestTarget(u)
	c.log.LogAttrs(ctx, slog.LevelDebug, "threatconnect page",
		slog.String("what", what), slog.Int("records", len(p.Records)),
		slog.Bool("more", p.Next != ""), slog.Duration("took", time.Since(start)))
	return p, nil
}

// get sends one signed GET and returns the whole body of a 2xx answer.
func (c *Client) get(ctx context.Context, what string, u *url.URL) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("threatconnect: %s: %w", what, err)
	}
	// NewRequest parses the string again; keep the exact escaping.
	req.URL = u
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return nil, wrap(what, err)
	}
	body, err := httpx.ReadAll(resp)
	if err != nil {
		return nil, fmt.Errorf("threatconnect: %s: %w", what, err)
	}
	return body, nil
}

// Owner is one owner (organization, community or source) the API user can
// see.
type Owner struct {
	ID            int64
	Name          string
	Type          string
	Role          string // ownerRole
	PermIndicator string // permIndicator: FULL, READ, NONE…
}

// Owners lists the owners the API user can see, with one request. more
// reports that ThreatConnect has further pages, which are not fetched.
func (c *Client) Owners(ctx context.Context) (owners []Owner, more bool, err error) {
	v := url.Values{}
	v.Set("resultLimit", "500")
	body, err := c.get(ctx, "owners", c.endpoint(PathOwners, v))
	if err != nil {
		return nil, false, err
	}
	p, err := parsePage(body)
	if err != nil {
		return nil, false, fmt.Errorf("threatconnect: owners: %w", err)
	}
	var parser fastjson.Parser
	for i, raw := range p.Records {
		v, err := parser.ParseBytes(raw)
		if err != nil || v.Type() != fastjson.TypeObject {
			return nil, false, fmt.Errorf("threatconnect: owners: element %d of \"data\" is not an object", i)
		}
		o := Owner{
			Name:          string(v.GetStringBytes("name")),
			Type:          string(v.GetStringBytes("type")),
			Role:          string(v.GetStringBytes("ownerRole")),
			PermIndicator: string(v.GetStringBytes("permIndicator")),
		}
		if id := v.Get("id"); id != nil {
			if o.ID, err = id.Int64(); err != nil {
				return nil, false, fmt.Errorf("threatconnect: owners: element %d has the id %s, want an integer", i, truncate(id.String(), 40))
			}
		}
		owners = append(owners, o)
	}
	return owners, p.Next != "", nil
}

// ---- Errors ------------------------------------------------------------------

// StatusError is an answer ThreatConnect gave with a status other than 2xx,
// after any retries. It wraps the *httpx.StatusError.
type StatusError struct {
	What    string // what was asked, e.g. "indicator page"
	Status  *httpx.StatusError
	Message string // ThreatConnect's error message, or the start of the body
	Retried bool   // the status was retried until the attempts ran out
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "threatconnect: %s: ", e.What)
	code := e.Status.StatusCode
	switch code {
	case http.StatusUnauthorized:
		b.WriteString("ThreatConnect rejected the signature (HTTP 401")
		httpx.WriteQuoted(&b, e.Message)
		b.WriteString("): check sources.threatconnect.access_id and sources.threatconnect.secret_key, " +
			"and this machine's clock (the Timestamp header must be within 5 minutes of ThreatConnect's time)")
		return b.String()
	case http.StatusForbidden:
		b.WriteString("ThreatConnect refused access (HTTP 403")
		httpx.WriteQuoted(&b, e.Message)
		b.WriteString("): the API user of sources.threatconnect.access_id may not read this owner, or sources.threatconnect.url is not https")
		return b.String()
	case http.StatusServiceUnavailable:
		b.WriteString("ThreatConnect answered 503 Service Unavailable")
		httpx.WriteQuoted(&b, e.Message)
		b.WriteString(": the API is not licensed on this ThreatConnect instance (ask your administrator or ThreatConnect to enable API access), or the service is down")
	case http.StatusTooManyRequests:
		b.WriteString("ThreatConnect answered 429 Too Many Requests")
		httpx.WriteQuoted(&b, e.Message)
	default:
		httpx.WriteStatus(&b, code, e.Message)
	}
	httpx.WriteRetried(&b, e.Retried)
	return b.String()
}

// Is matches ErrCredentials and vigil.ErrCredentials for 401 and 403.
func (e *StatusError) Is(target error) bool {
	if target != ErrCredentials && target != vigil.ErrCredentials {
		return false
	}
	return httpx.IsCredentialStatus(e.Status.StatusCode)
}

func (e *StatusError) Unwrap() error { return e.Status }

// wrap turns a failed call's error into the package's: a status becomes a
// *StatusError carrying ThreatConnect's message, the rest is prefixed with
// what was asked.
func wrap(what string, err error) error {
	var se *httpx.StatusError
	if errors.As(err, &se) {
		return &StatusError{What: what, Status: se, Message: errorMessage(se.Body), Retried: err != error(se)}
	}
	return fmt.Errorf("threatconnect: %s: %w", what, err)
}

// errorMessage returns the message of a ThreatConnect error body
// ({"status":"Error","message":"…"}), or the body itself when it is not one.
func errorMessage(body string) string {
	body = strings.TrimSpace(body)
	if body == "" {
		return ""
	}
	var v struct {
		Message any `json:"message"`
		ErrCode any `json:"errCode"`
	}
	if json.Unmarshal([]byte(body), &v) == nil {
		if m, ok := v.Message.(string); ok && m != "" {
			if c, ok := v.ErrCode.(string); ok && c != "" {
				return m + " (errCode " + c + ")"
			}
			return m
		}
	}
	return truncate(body, 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// ---- Response parsing --------------------------------------------------------

// parsePage reads {"data":[...],"next":"…","status":"Success"}. Each element
// of data is returned as its own raw JSON (a slice of body), whatever its
// type. A body whose status is not "Success" is an error carrying its
// message.
func parsePage(body []byte) (Page, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return Page{}, errors.New("the body is empty")
	}
	if err := fastjson.ValidateBytes(body); err != nil {
		msg, _, _ := strings.Cut(err.Error(), "; unparsed tail")
		return Page{}, fmt.Errorf("the body is not valid JSON (%s); %s", msg, describeHead(body))
	}
	s := scanner{b: body}
	s.ws()
	if s.b[s.i] != '{' {
		return Page{}, fmt.Errorf("the body is %s, want an object with a \"data\" array; %s", kindOf(s.b[s.i]), describeHead(body))
	}
	var (
		p        Page
		haveData bool
		status   string
		message  string
		keys     []string
	)
	err := s.members(func(key string) error {
		switch key {
		case "data":
			haveData = true
			p.Records = p.Records[:0]
			switch c := s.b[s.i]; c {
			case '[':
				s.elements(func(start, end int) { p.Records = append(p.Records, body[start:end:end]) })
			case 'n':
				s.skip()
			default:
				return fmt.Errorf("\"data\" is %s, want an array", kindOf(c))
			}
		case "next":
			start, end := s.skip()
			switch c := body[start]; c {
			case '"':
				p.Next = unquote(body[start:end])
			case 'n':
			default:
				return fmt.Errorf("\"next\" is %s, want a string", kindOf(c))
			}
		case "status", "message":
			start, end := s.skip()
			t := text(body[start:end])
			if key == "status" {
				status = t
			} else {
				message = t
			}
		default:
			if len(keys) < 8 {
				keys = append(keys, strconv.Quote(key))
			}
			s.skip()
		}
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	if status != "" && !strings.EqualFold(status, "Success") {
		if message == "" {
			message = "(no message given)"
		}
		return Page{}, fmt.Errorf("ThreatConnect answered status %q: %s", status, message)
	}
	if !haveData && !strings.EqualFold(status, "Success") {
		if len(keys) == 0 {
			return Page{}, errors.New("the body has no \"data\" array")
		}
		return Page{}, fmt.Errorf("the body has no \"data\" array (its keys: %s)", strings.Join(keys, ", "))
	}
	return p, nil
}

// scanner walks JSON that fastjson has already validated.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// skip moves past the value at i (after white space) and returns its bounds.
func (s *scanner) skip() (int, int) {
	s.ws()
	start := s.i
	depth := 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			s.i++
			for s.i < len(s.b) && s.b[s.i] != '"' {
				if s.b[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
			s.i++
		case '{', '[':
			depth++
			s.i++
		case '}', ']':
			depth--
			s.i++
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return start, s.i
			}
			s.i++
		default:
			s.i++
		}
		if depth == 0 && (s.i >= len(s.b) || isDelim(s.b[s.i])) {
			return start, s.i
		}
	}
	return start, s.i
}

func isDelim(c byte) bool {
	switch c {
	case ',', ':', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// members calls fn with i at each member's value; fn must skip the value.
func (s *scanner) members(fn func(key string) error) error {
	s.i++ // '{'
	for {
		s.ws()
		if s.b[s.i] == '}' {
			s.i++
			return nil
		}
		if s.b[s.i] == ',' {
			s.i++
			s.ws()
		}
		start, end := s.skip()
		key := unquote(s.b[start:end])
		s.ws()
		s.i++ // ':'
		s.ws()
		if err := fn(key); err != nil {
			return err
		}
	}
}

// elements calls fn with the bounds of each element of the array at i.
func (s *scanner) elements(fn func(start, end int)) {
	s.i++ // '['
	for {
		s.ws()
		switch s.b[s.i] {
		case ']':
			s.i++
			return
		case ',':
			s.i++
			continue
		}
		start, end := s.skip()
		fn(start, end)
	}
}

// unquote returns a JSON string's text.
func unquote(b []byte) string {
	if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 {
		return string(b[1 : len(b)-1])
	}
	var s string
	_ = json.Unmarshal(b, &s) // validated
	return s
}

// text returns a JSON string's text, or the raw JSON of another value.
func text(b []byte) string {
	if len(b) > 0 && b[0] == '"' {
		return unquote(b)
	}
	return string(b)
}

// describeHead says what a body starts with.
func describeHead(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b[:min(len(b), 64)]), "\uFFFD"))
	if s == "" {
		return "the body is empty"
	}
	return "the body starts with " + strconv.Quote(s)
}

// kindOf names the JSON type a value starting with c has.
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
	return "not JSON"
}
