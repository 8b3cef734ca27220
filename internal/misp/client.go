package misp

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
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/httpx"
)

// API paths, relative to the instance's URL.
const (
	PathRestSearch = "/attributes/restSearch"
	PathVersion    = "/servers/getVersion"
)

// The configuration keys errors name.
const (
	keyURL      = "sources.misp.url"
	keyAPIToken = "sources.misp.api_token"
)

// ErrCredentials is matched (errors.Is) by the error of any call that MISP
// answered with 401 or 403. The error names the configuration key to check,
// never its value.
var ErrCredentials = errors.New("MISP rejected the API key")

// ClientConfig configures a Client.
type ClientConfig struct {
	// URL is the MISP instance's base URL, e.g. https://misp.example.org.
	URL string
	// APIKey is the automation key sent as the Authorization header.
	APIKey string
	// HTTP configures timeouts and retries.
	HTTP httpx.Options
	// Logger receives one Debug line per call. Nil: discard.
	Logger *slog.Logger
}

// Client calls a MISP instance's REST API. It is safe for concurrent use.
type Client struct {
	base *url.URL
	key  string
	http *httpx.Client
	log  *slog.Logger
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	base, err := httpx.ParseBaseURL(cfg.URL, keyURL, "https://misp.example.org", "api_token")
	if err != nil {
		return nil, fmt.Errorf("misp: %w", err)
	}
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("misp: " + keyAPIToken + " is empty")
	}
	c := &Client{base: base, key: cfg.APIKey, http: httpx.New(cfg.HTTP), log: cfg.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// URL returns the instance's base URL.
func (c *Client) URL() string { return c.base.String() }

func (c *Client) endpoint(path string) *url.URL {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	return &u
}

// Query selects attributes for /attributes/restSearch.
type Query struct {
	// Since is the attribute timestamp the listing starts at (timestamp,
	// inclusive, in seconds).
	Since time.Time
	// Page is the 1-based page; Limit the attributes per page.
	Page, Limit int
	// ToIDs and Published, when set, keep only the attributes with that
	// to_ids flag, or of events with that published flag.
	ToIDs, Published *bool
	// Tags keeps the attributes with one of these tags; a tag written
	// "!name" excludes the attributes tagged name.
	Tags []string
	// EnforceWarningList drops the attributes on MISP's warning lists.
	EnforceWarningList bool
}

// Body returns the JSON body of the request for q: Elastic's (page, limit,
// returnFormat json, timestamp, includeDecayScore, order by timestamp),
// with the event tags included and the filters q sets.
func (q Query) Body() []byte {
	b := []byte(`{"returnFormat":"json","page":`)
	b = strconv.AppendInt(b, int64(max(q.Page, 1)), 10)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(max(q.Limit, 1)), 10)
	b = append(b, `,"timestamp":"`...)
	b = strconv.AppendInt(b, q.Since.Unix(), 10)
	b = append(b, `","order":"timestamp","includeDecayScore":true,"includeEventTags":true`...)
	if q.ToIDs != nil {
		b = append(b, `,"to_ids":`...)
		b = strconv.AppendBool(b, *q.ToIDs)
	}
	if q.Published != nil {
		b = append(b, `,"published":`...)
		b = strconv.AppendBool(b, *q.Published)
	}
	if len(q.Tags) > 0 {
		var or, not []string
		for _, t := range q.Tags {
			if rest, ok := strings.CutPrefix(t, "!"); ok {
				not = append(not, rest)
			} else {
				or = append(or, t)
			}
		}
		tags := map[string][]string{}
		if len(or) > 0 {
			tags["OR"] = or
		}
		if len(not) > 0 {
			tags["NOT"] = not
		}
		js, _ := json.Marshal(tags)
		b = append(b, `,"tags":`...)
		b = append(b, js...)
	}
	if q.EnforceWarningList {
		b = append(b, `,"enforceWarninglist":1`...)
	}
	return append(b, '}')
}

// Page is one page of attributes.
type Page struct {
	// Records holds the JSON of each element of response.Attribute, in
	// order, malformed ones included.
	Records [][]byte
}

// Attributes fetches one page of /attributes/restSearch.
func (c *Client) Attributes(ctx context.Context, q Query) (Page, error) {
	const what = "attributes page"
	start := time.Now()
	body, err := c.do(ctx, what, http.MethodPost, PathRestSearch, q.Body())
	if err != nil {
		return Page{}, err
	}
	p, err := parseAttributes(body)
	if err != nil {
		return Page{}, fmt.Errorf("misp: %s %d: %w", what, q.Page, err)
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "misp page",
		slog.Int("page", q.Page), slog.Int("records", len(p.Records)), slog.Duration("took", time.Since(start)))
	return p, nil
}

// Version is what /servers/getVersion says.
type Version struct {
	Version  string
	PermSync bool
}

// Version asks the instance for its version: one cheap authenticated
// request.
func (c *Client) Version(ctx context.Context) (Version, error) {
	body, err := c.do(ctx, "version", http.MethodGet, PathVersion, nil)
	if err != nil {
		return Version{}, err
	}
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return Version{}, fmt.Errorf("misp: version: the body is not JSON: %s", jsonError(err))
	}
	return Version{Version: string(v.GetStringBytes("version")), PermSync: v.GetBool("perm_sync")}, nil
}

// do sends one request with the API key and returns the body of a 2xx
// answer.
func (c *Client) do(ctx context.Context, what, method, path string, body []byte) ([]byte, error) {
	u := c.endpoint(path)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body) // NewRequest sets GetBody: retries resend it
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("misp: %s: %w", what, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", c.key)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(ctx, req)
	if err != nil {
		return nil, wrap(what, err)
	}
	b, err := httpx.ReadAll(resp)
	if err != nil {
		return nil, fmt.Errorf("misp: %s: %w", what, err)
	}
	return b, nil
}

// ---- Errors ------------------------------------------------------------------

// StatusError is an answer MISP gave with a status other than 2xx, after
// any retries. It wraps the *httpx.StatusError.
type StatusError struct {
	What    string // what was asked, e.g. "attributes page"
	Status  *httpx.StatusError
	Message string // MISP's error message, or the start of the body
	Retried bool   // the status was retried until the attempts ran out
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "misp: %s: ", e.What)
	switch code := e.Status.StatusCode; code {
	case http.StatusUnauthorized, http.StatusForbidden:
		fmt.Fprintf(&b, "MISP refused the API key (HTTP %d", code)
		httpx.WriteQuoted(&b, e.Message)
		b.WriteString("): check " + keyAPIToken + " (an automation key of a user allowed to use the API)")
		return b.String()
	case http.StatusNotFound:
		b.WriteString("HTTP 404 Not Found")
		httpx.WriteQuoted(&b, e.Message)
		b.WriteString(": check " + keyURL + " (the instance's base URL, without /attributes)")
		return b.String()
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

func wrap(what string, err error) error {
	var se *httpx.StatusError
	if errors.As(err, &se) {
		return &StatusError{What: what, Status: se, Message: errorMessage(se.Body), Retried: err != error(se)}
	}
	return fmt.Errorf("misp: %s: %w", what, err)
}

// errorMessage returns the message of a MISP error body
// ({"name":…,"message":…,"url":…}), or the body itself when it is not one.
func errorMessage(body string) string {
	body = strings.TrimSpace(body)
	if body == "" {
		return ""
	}
	var v struct {
		Name    any `json:"name"`
		Message any `json:"message"`
	}
	if json.Unmarshal([]byte(body), &v) == nil {
		if m, ok := v.Message.(string); ok && m != "" {
			return m
		}
		if m, ok := v.Name.(string); ok && m != "" {
			return m
		}
	}
	return truncate(body, 200)
}

// ---- Response parsing -----------------------------------------------------------

// parseAttributes reads {"response":{"Attribute":[…]}}. An empty result may
// also come as {"response":[]} or {"response":{}}. Each record is its
// element's JSON exactly as the body has it.
func parseAttributes(body []byte) (Page, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return Page{}, errors.New("the body is empty")
	}
	if err := fastjson.ValidateBytes(body); err != nil {
		return Page{}, fmt.Errorf("the body is not valid JSON (%s); %s", jsonError(err), describeHead(body))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return Page{}, fmt.Errorf("the body is not a JSON object; %s", describeHead(body))
	}
	r, ok := top["response"]
	if !ok {
		if _, ok := top["message"]; ok || top["name"] != nil {
			return Page{}, fmt.Errorf("MISP answered an error: %s", errorMessage(string(body)))
		}
		return Page{}, fmt.Errorf(`the body has no "response"; %s`, describeHead(body))
	}
	switch kind := jsonKind(r); kind {
	case "null":
		return Page{}, nil
	case "an array":
		var a []json.RawMessage
		if json.Unmarshal(r, &a) == nil && len(a) == 0 {
			return Page{}, nil
		}
		return Page{}, errors.New(`"response" is a list, want an object with an "Attribute" list`)
	case "an object":
	default:
		return Page{}, fmt.Errorf(`"response" is %s, want an object with an "Attribute" list`, kind)
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(r, &resp); err != nil {
		return Page{}, fmt.Errorf(`"response" is not readable: %w`, err)
	}
	a, ok := resp["Attribute"]
	if !ok || jsonKind(a) == "null" {
		return Page{}, nil
	}
	if kind := jsonKind(a); kind != "an array" {
		return Page{}, fmt.Errorf(`"response.Attribute" is %s, want a list`, kind)
	}
	var p Page
	var list []json.RawMessage
	if err := json.Unmarshal(a, &list); err != nil {
		return Page{}, fmt.Errorf(`"response.Attribute" is not readable: %w`, err)
	}
	p.Records = make([][]byte, len(list))
	for i, e := range list {
		p.Records[i] = e
	}
	return p, nil
}

// jsonKind names the kind of a JSON value.
func jsonKind(js []byte) string {
	js = bytes.TrimSpace(js)
	if len(js) == 0 {
		return "empty"
	}
	switch c := js[0]; {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 'n':
		return "null"
	case c == 't' || c == 'f':
		return "a boolean"
	}
	return "a number"
}

// describeHead says what a body starts with.
func describeHead(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b[:min(len(b), 64)]), "\uFFFD"))
	if s == "" {
		return "the body is empty"
	}
	return "the body starts with " + strconv.Quote(s)
}
