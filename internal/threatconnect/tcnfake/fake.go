// Package tcnfake is a fake ThreatConnect v3 API on httptest, for tests and
// benchmarks: HMAC signatures verified exactly (over the request target as
// received) with stale timestamps rejected, indicator listings filtered by
// TQL and paged through absolute next links, the deleted-indicators and
// owners endpoints, fault injection and a request log.
package tcnfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/fakeapi"
)

// Endpoint names, as counted by Server.Count and logged in Request.Endpoint.
const (
	EndpointIndicators = "indicators"
	EndpointDeleted    = "deleted"
	EndpointOwners     = "owners"
)

// API paths.
const (
	PathIndicators = "/api/v3/indicators"
	PathDeleted    = "/api/v3/indicators/deleted"
	PathOwners     = "/api/v3/security/owners"
)

// Defaults of Options.
const (
	DefaultAccessID  = "12345678901234567890"
	DefaultSecretKey = "fake-Secret/Key+0123456789=abcdefghijklmnopqrstuv"
	// MaxSkew is how far a request's Timestamp may be from the server's
	// time, as ThreatConnect allows.
	MaxSkew = 5 * time.Minute
	// MaxResultLimit is the largest resultLimit accepted.
	MaxResultLimit = 10000
)

// The error messages ThreatConnect gives for a rejected signature.
const (
	MsgBadSignature = "Signature Data Did Not Match Expected Result"
	MsgStale        = "Timestamp Out of Acceptable Time Range"
)

// Hook sees every request before anything else. It returns true when it
// has answered the request itself.
type Hook func(w http.ResponseWriter, r *http.Request, endpoint string) bool

// Options configures a Server.
type Options struct {
	// AccessID and SecretKey are the credentials the server accepts.
	// "": DefaultAccessID, DefaultSecretKey.
	AccessID, SecretKey string
	// Now is the server's clock, for the Timestamp check. Nil: time.Now.
	Now func() time.Time
	// Indicators are the active indicators.
	Indicators []Indicator
	// Deletions are the recently deleted indicators.
	Deletions []Deletion
	// Owners answers the owners endpoint. Nil: DefaultOwners.
	Owners []Owner
	// Hook, when set, sees every request first.
	Hook Hook
	// LenientNext accepts a continuation (resultStart > 0) that is not,
	// byte for byte, a next link the server gave. By default it is a 400,
	// so tests catch a client that re-encodes next links.
	LenientNext bool
	// NextHost, when set, is the host the next links name instead of the
	// server's own, as a ThreatConnect behind a proxy may write them.
	NextHost string
}

// DefaultOwners answers the owners endpoint when Options has none.
var DefaultOwners = []Owner{
	{ID: 51, Name: "Demo Organization", Type: "Organization", Role: "Organization Administrator", PermIndicator: "FULL"},
	{ID: 52, Name: "Common Community", Type: "Community", Role: "Subscriber", PermIndicator: "READ"},
	{ID: 53, Name: "Abuse.ch Source", Type: "Source", Role: "Subscriber", PermIndicator: "READ"},
}

// Fault is an injected answer. The zero fields leave the real answer alone.
type Fault struct {
	// Endpoint limits the fault to one endpoint; "": any.
	Endpoint string
	// Status, when set, is answered instead of the real answer, with
	// RetryAfter as the Retry-After header and Body as the body.
	Status     int
	RetryAfter string
	Body       string
	// Truncate > 0 serves only the first Truncate bytes of the real body
	// (valid HTTP, broken JSON); < 0: half of it.
	Truncate int
}

// Request is one logged request. Credentials are never logged.
type Request struct {
	Method   string
	Endpoint string // "" for an unknown path
	// Target is the request target exactly as received (path and query).
	Target    string
	Query     url.Values
	Timestamp string // the Timestamp header
	Status    int
	Injected  bool // answered by a Fault or the Hook
	Records   int
	Next      string
}

// Server is a fake ThreatConnect API. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:43567; the API is under
	// URL + "/api".
	URL string
	srv *httptest.Server

	accessID string
	secret   []byte
	lenient  bool
	nextHost string

	mu         sync.Mutex
	now        func() time.Time
	indicators []Indicator // sorted by (LastModified, ID)
	deletions  []Deletion
	owners     []Owner
	hook       Hook
	faults     fakeapi.Faults[Fault]
	inject     [][]byte
	issued     map[string]bool // next links given, by request target
	log        fakeapi.Log[Request]
}

// New starts a Server. When tb is not nil the server is closed at the end
// of the test.
func New(tb testing.TB, opts Options) *Server {
	s := &Server{
		accessID: opts.AccessID,
		secret:   []byte(opts.SecretKey),
		lenient:  opts.LenientNext,
		nextHost: opts.NextHost,
		now:      opts.Now,
		owners:   slices.Clone(opts.Owners),
		hook:     opts.Hook,
		issued:   map[string]bool{},
	}
	if s.accessID == "" {
		s.accessID = DefaultAccessID
	}
	if len(s.secret) == 0 {
		s.secret = []byte(DefaultSecretKey)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.owners == nil {
		s.owners = slices.Clone(DefaultOwners)
	}
	s.indicators = slices.Clone(opts.Indicators)
	s.sortIndicators()
	s.deletions = slices.Clone(opts.Deletions)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

// Close shuts the server down. It may be called more than once.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// AccessID returns the access id the server accepts.
func (s *Server) AccessID() string { return s.accessID }

// SecretKey returns the secret key the server accepts.
func (s *Server) SecretKey() string { return string(s.secret) }

// SetNow replaces the server's clock.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// SetHook replaces the hook (nil: none).
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// Inject makes the next n requests that match f.Endpoint get f.
func (s *Server) Inject(f Fault, n int) { s.faults.Add(f, f.Endpoint, n) }

// InjectRecords adds raw JSON elements to the data of the next indicator
// page served, after its real records.
func (s *Server) InjectRecords(raw ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range raw {
		s.inject = append(s.inject, []byte(r))
	}
}

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request { return s.log.All() }

// RequestsTo returns the logged requests to one endpoint.
func (s *Server) RequestsTo(endpoint string) []Request { return s.log.To(endpoint) }

// ResetLog clears the request log and the counters.
func (s *Server) ResetLog() { s.log.Reset() }

// Count returns the number of requests to an endpoint, failed ones included.
func (s *Server) Count(endpoint string) int { return s.log.Count(endpoint) }

// Indicators returns a copy of the active indicators, ordered by
// lastModified and id.
func (s *Server) Indicators() []Indicator {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.indicators)
}

// Put replaces the indicator with ind's ID, or adds ind.
func (s *Server) Put(ind Indicator) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.index(ind.ID); i >= 0 {
		s.indicators[i] = ind
	} else {
		s.indicators = append(s.indicators, ind)
	}
	s.sortIndicators()
}

// Delete removes the indicator with the given id and lists it as deleted at
// the given time. It reports whether there was one.
func (s *Server) Delete(id int64, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.index(id)
	if i < 0 {
		return false
	}
	ind := s.indicators[i]
	s.indicators = slices.Delete(s.indicators, i, i+1)
	s.deletions = append(s.deletions, Deletion{OwnerName: ind.OwnerName, Date: at, Type: ind.Type, Summary: ind.Summary})
	return true
}

func (s *Server) index(id int64) int {
	for i := range s.indicators {
		if s.indicators[i].ID == id {
			return i
		}
	}
	return -1
}

func (s *Server) sortIndicators() {
	sort.SliceStable(s.indicators, func(i, j int) bool {
		a, b := &s.indicators[i], &s.indicators[j]
		if !a.LastModified.Equal(b.LastModified) {
			return a.LastModified.Before(b.LastModified)
		}
		return a.ID < b.ID
	})
}

// ---- Serving -------------------------------------------------------------------

func endpointOf(path string) string {
	switch path {
	case PathIndicators, PathIndicators + "/":
		return EndpointIndicators
	case PathDeleted:
		return EndpointDeleted
	case PathOwners:
		return EndpointOwners
	}
	return ""
}

type answer struct {
	status  int
	body    []byte
	records int
	next    string
}

func errorAnswer(status int, msg string) answer {
	b := []byte(`{"status":"Error","message":`)
	b = appendString(b, msg)
	return answer{status: status, body: append(b, '}')}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	endpoint := endpointOf(r.URL.Path)
	entry := Request{Method: r.Method, Endpoint: endpoint, Target: r.RequestURI, Query: r.URL.Query(), Timestamp: r.Header.Get("Timestamp")}

	s.log.Hit(endpoint)
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	var fault *Fault
	if f, ok := s.faults.Take(endpoint); ok {
		fault = &f
	}

	logEntry := func(status int) {
		entry.Status = status
		s.log.Add(endpoint, entry)
	}
	if hook != nil && hook(w, r, endpoint) {
		entry.Injected = true
		logEntry(0)
		return
	}
	var a answer
	if fault != nil && fault.Status != 0 {
		entry.Injected = true
		a = answer{status: fault.Status, body: []byte(fault.Body)}
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
	} else {
		a = s.answer(r, endpoint)
		if fault != nil && fault.Truncate != 0 && a.status == http.StatusOK {
			entry.Injected = true
			n := fault.Truncate
			if n < 0 || n > len(a.body) {
				n = len(a.body) / 2
			}
			a.body = a.body[:n]
		}
	}
	entry.Records, entry.Next = a.records, a.next
	logEntry(a.status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	w.Write(a.body)
}

// authorize checks the Timestamp and the signature over the request target
// as received. It returns "" when they are right, otherwise ThreatConnect's
// message.
func (s *Server) authorize(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	tsHeader := r.Header.Get("Timestamp")
	rest, ok := strings.CutPrefix(auth, "TC ")
	if !ok || tsHeader == "" {
		return "No authorization provided"
	}
	id, sig, ok := strings.Cut(rest, ":")
	if !ok || id != s.accessID {
		return MsgBadSignature
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return MsgStale
	}
	s.mu.Lock()
	now := s.now()
	s.mu.Unlock()
	if d := now.Sub(time.Unix(ts, 0)); d > MaxSkew || d < -MaxSkew {
		return MsgStale
	}
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(r.RequestURI + ":" + r.Method + ":" + tsHeader))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return MsgBadSignature
	}
	return ""
}

func (s *Server) answer(r *http.Request, endpoint string) answer {
	if endpoint == "" {
		return errorAnswer(http.StatusNotFound, "Not Found: "+r.URL.Path)
	}
	if r.Method != http.MethodGet {
		return errorAnswer(http.StatusMethodNotAllowed, "Method Not Allowed")
	}
	if msg := s.authorize(r); msg != "" {
		return errorAnswer(http.StatusUnauthorized, msg)
	}
	q := r.URL.Query()
	start, limit, err := paging(q)
	if err != nil {
		return errorAnswer(http.StatusBadRequest, err.Error())
	}
	if start > 0 && !s.lenient {
		s.mu.Lock()
		ok := s.issued[r.RequestURI]
		s.mu.Unlock()
		if !ok {
			return errorAnswer(http.StatusBadRequest, "resultStart > 0 without a next link this server gave (the client re-encoded it?): "+r.RequestURI)
		}
	}
	switch endpoint {
	case EndpointIndicators:
		return s.indicatorPage(r, q, start, limit)
	case EndpointDeleted:
		return s.deletedPage(r, q, start, limit)
	default:
		s.mu.Lock()
		defer s.mu.Unlock()
		b := []byte(`{"data":[`)
		for i := range s.owners {
			if i > 0 {
				b = append(b, ',')
			}
			b = s.owners[i].appendJSON(b)
		}
		b = append(b, `],"status":"Success"}`...)
		return answer{status: http.StatusOK, body: b, records: len(s.owners)}
	}
}

func paging(q url.Values) (start, limit int, err error) {
	limit = 100
	if v := q.Get("resultLimit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxResultLimit {
			return 0, 0, fmt.Errorf("resultLimit must be between 1 and %d", MaxResultLimit)
		}
	}
	if v := q.Get("resultStart"); v != "" {
		if start, err = strconv.Atoi(v); err != nil || start < 0 {
			return 0, 0, fmt.Errorf("resultStart must be a non-negative integer")
		}
	}
	return start, limit, nil
}

// parseTime reads a TQL or deletedSince time: RFC 3339 with seconds, no
// fraction.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, s)
	if err != nil || strings.ContainsAny(s, ".,") { // time.Parse accepts a fraction the layout lacks
		err = fmt.Errorf("fraction")
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("Invalid date %q: use yyyy-MM-ddTHH:mm:ssZ", s)
	}
	return t, nil
}

var (
	tqlTime = regexp.MustCompile(`^lastModified GEQ "([^"]*)"(?: AND (.*))?$`)
	tqlEq   = regexp.MustCompile(`^(typeName|ownerName|summary) EQ "([^"]*)"$`)
	tqlIn   = regexp.MustCompile(`^typeName IN \(((?:"[^"]*"(?:, ?)?)+)\)$`)
)

// filter is the part of the TQL the fake understands besides the time.
type filter struct {
	since time.Time
	field string   // typeName, ownerName, summary or ""
	in    []string // accepted values
}

func parseTQL(tql string) (filter, error) {
	var f filter
	m := tqlTime.FindStringSubmatch(tql)
	if m == nil {
		return f, fmt.Errorf(`Invalid TQL: the fake understands lastModified GEQ "<time>" [AND <filter>], got %q`, tql)
	}
	var err error
	if f.since, err = parseTime(m[1]); err != nil {
		return f, err
	}
	extra := strings.TrimSpace(m[2])
	if strings.HasPrefix(extra, "(") && strings.HasSuffix(extra, ")") {
		extra = strings.TrimSpace(extra[1 : len(extra)-1])
	}
	switch {
	case extra == "":
	case tqlEq.MatchString(extra):
		mm := tqlEq.FindStringSubmatch(extra)
		f.field, f.in = mm[1], []string{mm[2]}
	case tqlIn.MatchString(extra):
		f.field = "typeName"
		for _, v := range strings.Split(tqlIn.FindStringSubmatch(extra)[1], ",") {
			f.in = append(f.in, strings.Trim(strings.TrimSpace(v), `"`))
		}
	default:
		return f, fmt.Errorf("Invalid TQL: unsupported filter %q", extra)
	}
	return f, nil
}

func (f *filter) match(ind *Indicator) bool {
	if ind.LastModified.Before(f.since) {
		return false
	}
	var v string
	switch f.field {
	case "":
		return true
	case "typeName":
		v = ind.Type
	case "ownerName":
		v = ind.OwnerName
	case "summary":
		v = ind.Summary
	}
	return slices.Contains(f.in, v)
}

func fieldsOf(q url.Values) Fields {
	var f Fields
	for _, v := range q["fields"] {
		switch v {
		case "associatedGroups":
			f.Groups = true
		case "associatedGroups.attributes":
			f.Groups, f.GroupAttributes = true, true
		case "associatedIndicators":
			f.Associated = true
		case "attributes":
			f.Attributes = true
		case "securityLabels":
			f.SecurityLabels = true
		case "tags":
			f.Tags = true
		case "threatAssess":
			f.ThreatAssess = true
		}
	}
	return f
}

func (s *Server) indicatorPage(r *http.Request, q url.Values, start, limit int) answer {
	if v := q.Get("sorting"); v != "" && v != "lastModified asc" && v != "lastModified ASC" {
		return errorAnswer(http.StatusBadRequest, "the fake sorts by lastModified asc only, got "+v)
	}
	var f filter
	if tql := q.Get("tql"); tql != "" {
		var err error
		if f, err = parseTQL(tql); err != nil {
			return errorAnswer(http.StatusBadRequest, err.Error())
		}
	}
	fields := fieldsOf(q)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"data":[`...)
	count, total := 0, 0
	for i := range s.indicators {
		ind := &s.indicators[i]
		if !f.match(ind) {
			continue
		}
		if total >= start && count < limit {
			if count > 0 {
				b = append(b, ',')
			}
			b = ind.AppendJSON(b, fields)
			count++
		}
		total++
	}
	for _, raw := range s.inject {
		if count > 0 {
			b = append(b, ',')
		}
		b = append(b, raw...)
		count++
	}
	s.inject = nil
	b = append(b, ']')
	a := answer{status: http.StatusOK, records: count}
	if start+limit < total {
		a.next = s.nextLink(r, q, start+limit)
		b = append(b, `,"next":`...)
		b = appendString(b, a.next)
	}
	a.body = append(b, `,"status":"Success"}`...)
	return a
}

func (s *Server) deletedPage(r *http.Request, q url.Values, start, limit int) answer {
	var since time.Time
	if v := q.Get("deletedSince"); v != "" {
		var err error
		if since, err = parseTime(v); err != nil {
			return errorAnswer(http.StatusBadRequest, err.Error())
		}
	}
	typ := q.Get("type")
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]*Deletion, 0, len(s.deletions))
	for i := range s.deletions {
		d := &s.deletions[i]
		if d.Date.Before(since) || typ != "" && d.Type != typ {
			continue
		}
		list = append(list, d)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].Date.Before(list[j].Date) })
	b := []byte(`{"data":[`)
	count := 0
	for i := start; i < len(list) && count < limit; i++ {
		if count > 0 {
			b = append(b, ',')
		}
		b = list[i].appendJSON(b)
		count++
	}
	b = append(b, `],"count":`...)
	b = strconv.AppendInt(b, int64(len(list)), 10)
	a := answer{status: http.StatusOK, records: count}
	if start+limit < len(list) {
		a.next = s.nextLink(r, q, start+limit)
		b = append(b, `,"next":`...)
		b = appendString(b, a.next)
	}
	a.body = append(b, `,"status":"Success"}`...)
	return a
}

// nextLink returns the absolute link to the page at start, remembering its
// target. It is encoded unlike url.Values.Encode (spaces as %20, keys in
// their own order), so that a client that re-encodes it is caught. Call
// with mu held.
func (s *Server) nextLink(r *http.Request, q url.Values, start int) string {
	var parts []string
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "resultStart" {
			keys = append(keys, k)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	for _, k := range keys {
		for _, v := range q[k] {
			parts = append(parts, url.PathEscape(k)+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	parts = append(parts, "resultStart="+strconv.Itoa(start))
	target := r.URL.EscapedPath() + "?" + strings.Join(parts, "&")
	s.issued[target] = true
	host := r.Host
	if s.nextHost != "" {
		host = s.nextHost
	}
	return "http://" + host + target
}
