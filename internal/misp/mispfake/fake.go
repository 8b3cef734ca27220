// Package mispfake is a fake MISP on httptest, for tests and benchmarks:
// an instance's POST /attributes/restSearch (API key checked, filters,
// paging, ordering by timestamp) and GET /servers/getVersion, and the same
// events served as a MISP feed (manifest.json with an ETag, <uuid>.json,
// hashes.csv, optional basic auth), with fault injection and a request
// log. WriteFeed writes a feed directory for tests of local feeds.
package mispfake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-ti/vigil/internal/fakeapi"
)

// Endpoint names, as counted by Server.Count and logged in Request.Endpoint.
const (
	EndpointRestSearch = "restSearch"
	EndpointVersion    = "version"
	EndpointManifest   = "manifest"
	EndpointEvent      = "event"
	EndpointHashes     = "hashes"
)

// Paths of the instance's API.
const (
	PathRestSearch = "/attributes/restSearch"
	PathVersion    = "/servers/getVersion"
)

// Defaults of Options.
const (
	DefaultAPIKey   = "FakeMISPAutomationKey0123456789abcdefABCD"
	DefaultFeedPath = "/feed"
	Version         = "2.5.2"
)

// MsgAuth is the message MISP gives for a missing or wrong API key.
const MsgAuth = "Authentication failed. Please make sure you pass the API key of an API enabled user along in the Authorization header."

// Hook sees every request before anything else. It returns true when it
// has answered the request itself.
type Hook func(w http.ResponseWriter, r *http.Request, endpoint string) bool

// Options configures a Server.
type Options struct {
	// APIKey is the key the instance accepts. "": DefaultAPIKey.
	APIKey string
	// Events are the events, served by the instance and the feed.
	Events []Event
	// FeedPath is where the feed is served. "": DefaultFeedPath.
	FeedPath string
	// FeedUser and FeedPassword, when set, protect the feed with basic auth.
	FeedUser, FeedPassword string
	// NoETag serves the manifest without an ETag.
	NoETag bool
	// Hook, when set, sees every request first.
	Hook Hook
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
	// Truncate > 0 serves only the first Truncate bytes of the real body;
	// < 0: half of it.
	Truncate int
}

// Request is one logged request. Credentials are never logged.
type Request struct {
	Method   string
	Endpoint string // "" for an unknown path
	Path     string
	// Search is the decoded body of a restSearch request.
	Search      Search
	IfNoneMatch string
	Status      int
	Injected    bool // answered by a Fault or the Hook
	Records     int  // attributes answered by restSearch
}

// Search is the body of a restSearch request, as the fake reads it.
type Search struct {
	ReturnFormat       string
	Page, Limit        int
	Timestamp          int64
	Order              string
	ToIDs, Published   *bool
	TagsOR, TagsNOT    []string
	IncludeEventTags   bool
	IncludeDecayScore  bool
	EnforceWarninglist bool
	Raw                map[string]any
}

// Server is a fake MISP instance and feed. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the instance's base URL, e.g. http://127.0.0.1:43567.
	URL string
	// FeedURL is the feed's URL: URL + the feed path.
	FeedURL string
	srv     *httptest.Server

	key       string
	feedPath  string
	feedUser  string
	feedPass  string
	noETag    bool
	mu        sync.Mutex
	events    []Event
	hook      Hook
	faults    fakeapi.Faults[Fault]
	log       fakeapi.Log[Request]
	manifest  []byte            // cached encodings, nil when stale
	files     map[string][]byte // <uuid>.json by event uuid
	warnlist  map[string]bool
	decayedTo map[string]bool // attributes whose decay score says decayed
}

// New starts a Server. When tb is not nil the server is closed at the end
// of the test.
func New(tb testing.TB, opts Options) *Server {
	s := &Server{
		key:      opts.APIKey,
		feedPath: strings.TrimRight(opts.FeedPath, "/"),
		feedUser: opts.FeedUser,
		feedPass: opts.FeedPassword,
		noETag:   opts.NoETag,
		events:   cloneEvents(opts.Events),
		hook:     opts.Hook,
		files:    map[string][]byte{},
	}
	if s.key == "" {
		s.key = DefaultAPIKey
	}
	if s.feedPath == "" {
		s.feedPath = DefaultFeedPath
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	s.FeedURL = s.srv.URL + s.feedPath
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

func cloneEvents(events []Event) []Event {
	out := slices.Clone(events)
	for i := range out {
		out[i].Attributes = slices.Clone(out[i].Attributes)
		out[i].Objects = slices.Clone(out[i].Objects)
		for j := range out[i].Objects {
			out[i].Objects[j].Attributes = slices.Clone(out[i].Objects[j].Attributes)
		}
	}
	return out
}

// Close shuts the server down. It may be called more than once.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// APIKey returns the key the instance accepts.
func (s *Server) APIKey() string { return s.key }

// SetHook replaces the hook (nil: none).
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// Inject makes the next n requests that match f.Endpoint get f.
func (s *Server) Inject(f Fault, n int) { s.faults.Add(f, f.Endpoint, n) }

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request { return s.log.All() }

// RequestsTo returns the logged requests to one endpoint.
func (s *Server) RequestsTo(endpoint string) []Request { return s.log.To(endpoint) }

// ResetLog clears the request log and the counters.
func (s *Server) ResetLog() { s.log.Reset() }

// Count returns the number of requests to an endpoint, failed ones included.
func (s *Server) Count(endpoint string) int { return s.log.Count(endpoint) }

// Events returns a copy of the events.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneEvents(s.events)
}

// Put replaces the event with e's UUID, or adds e.
func (s *Server) Put(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e = cloneEvents([]Event{e})[0]
	s.manifest = nil
	delete(s.files, e.UUID)
	for i := range s.events {
		if s.events[i].UUID == e.UUID {
			s.events[i] = e
			return
		}
	}
	s.events = append(s.events, e)
}

// Remove drops the event with the given UUID from the instance and the
// feed's manifest. It reports whether there was one.
func (s *Server) Remove(uuid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.events {
		if s.events[i].UUID == uuid {
			s.events = slices.Delete(s.events, i, i+1)
			s.manifest = nil
			delete(s.files, uuid)
			return true
		}
	}
	return false
}

// SetWarningList makes restSearch with enforceWarninglist drop these values.
func (s *Server) SetWarningList(values ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warnlist = map[string]bool{}
	for _, v := range values {
		s.warnlist[v] = true
	}
}

// SetDecayed makes restSearch with includeDecayScore give these attributes
// (by UUID) a decay score that says decayed, and every other one a score
// that does not.
func (s *Server) SetDecayed(uuids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.decayedTo = map[string]bool{}
	for _, u := range uuids {
		s.decayedTo[u] = true
	}
}

// ---- Serving -------------------------------------------------------------------

type answer struct {
	status  int
	body    []byte
	header  http.Header
	records int
}

func jsonError(status int, msg, url string) answer {
	b, _ := json.Marshal(map[string]string{"name": msg, "message": msg, "url": url})
	return answer{status: status, body: b}
}

func (s *Server) endpointOf(p string) (string, string) {
	clean := path.Clean("/" + p) // MISP joins feed URLs plainly: accept "//"
	switch clean {
	case PathRestSearch:
		return EndpointRestSearch, ""
	case PathVersion:
		return EndpointVersion, ""
	}
	rest, ok := strings.CutPrefix(clean, s.feedPath+"/")
	if !ok {
		return "", ""
	}
	switch {
	case rest == "manifest.json":
		return EndpointManifest, ""
	case rest == "hashes.csv":
		return EndpointHashes, ""
	case strings.HasSuffix(rest, ".json") && !strings.Contains(rest, "/"):
		return EndpointEvent, strings.TrimSuffix(rest, ".json")
	}
	return "", ""
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// Read the body first: the server notices a client that hangs up (and
	// cancels r's context) only once the body is read.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	endpoint, uuid := s.endpointOf(r.URL.Path)
	entry := Request{Method: r.Method, Endpoint: endpoint, Path: r.URL.Path, IfNoneMatch: r.Header.Get("If-None-Match")}
	s.log.Hit(endpoint)
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	var fault *Fault
	if f, ok := s.faults.Take(endpoint); ok {
		fault = &f
	}
	if hook != nil && hook(w, r, endpoint) {
		entry.Injected = true
		s.log.Add(endpoint, entry)
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
		a = s.answer(r, endpoint, uuid, &entry)
		if fault != nil && fault.Truncate != 0 && a.status == http.StatusOK {
			entry.Injected = true
			n := fault.Truncate
			if n < 0 || n > len(a.body) {
				n = len(a.body) / 2
			}
			a.body = a.body[:n]
		}
	}
	entry.Status, entry.Records = a.status, a.records
	s.log.Add(endpoint, entry)
	for k, v := range a.header {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(a.status)
	w.Write(a.body)
}

func (s *Server) answer(r *http.Request, endpoint, uuid string, entry *Request) answer {
	switch endpoint {
	case "":
		return jsonError(http.StatusNotFound, "Not Found", r.URL.Path)
	case EndpointRestSearch, EndpointVersion:
		if r.Header.Get("Authorization") != s.key {
			return jsonError(http.StatusForbidden, MsgAuth, r.URL.Path)
		}
		if endpoint == EndpointVersion {
			if r.Method != http.MethodGet {
				return jsonError(http.StatusMethodNotAllowed, "Method not allowed", r.URL.Path)
			}
			return answer{status: http.StatusOK, body: []byte(`{"version":"` + Version + `","pymisp_recommended_version":"` + Version + `","perm_sync":false,"perm_sighting":false,"perm_galaxy_editor":false,"request_encoding":["gzip"],"filter_sightings":true}`)}
		}
		if r.Method != http.MethodPost {
			return jsonError(http.StatusMethodNotAllowed, "Method not allowed: use POST", r.URL.Path)
		}
		return s.restSearch(r, entry)
	}
	if r.Method != http.MethodGet {
		return answer{status: http.StatusMethodNotAllowed, body: []byte("method not allowed")}
	}
	if s.feedUser != "" || s.feedPass != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != s.feedUser || p != s.feedPass {
			return answer{status: http.StatusUnauthorized, body: []byte("unauthorized"),
				header: http.Header{"Www-Authenticate": {`Basic realm="misp feed"`}, "Content-Type": {"text/plain"}}}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch endpoint {
	case EndpointManifest:
		if s.manifest == nil {
			s.manifest = Manifest(s.events)
		}
		h := http.Header{}
		if !s.noETag {
			sum := sha256.Sum256(s.manifest)
			etag := `"` + hex.EncodeToString(sum[:8]) + `"`
			h.Set("ETag", etag)
			if r.Header.Get("If-None-Match") == etag {
				return answer{status: http.StatusNotModified, header: h}
			}
		}
		return answer{status: http.StatusOK, body: s.manifest, header: h}
	case EndpointHashes:
		return answer{status: http.StatusOK, body: Hashes(s.events), header: http.Header{"Content-Type": {"text/csv"}}}
	default:
		if b, ok := s.files[uuid]; ok {
			return answer{status: http.StatusOK, body: b}
		}
		for i := range s.events {
			if s.events[i].UUID == uuid {
				b := s.events[i].AppendFeedJSON(nil)
				s.files[uuid] = b
				return answer{status: http.StatusOK, body: b}
			}
		}
		return answer{status: http.StatusNotFound, body: []byte("404 page not found"), header: http.Header{"Content-Type": {"text/plain"}}}
	}
}

// restSearch answers POST /attributes/restSearch.
func (s *Server) restSearch(r *http.Request, entry *Request) answer {
	var raw map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return jsonError(http.StatusBadRequest, "Invalid JSON body: "+err.Error(), r.URL.Path)
	}
	q, err := parseSearch(raw)
	if err != nil {
		return jsonError(http.StatusBadRequest, err.Error(), r.URL.Path)
	}
	entry.Search = q
	if q.ReturnFormat != "json" {
		return jsonError(http.StatusBadRequest, "the fake serves returnFormat json only", r.URL.Path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	type hit struct {
		e *Event
		a AttributeOf
	}
	var hits []hit
	for i := range s.events {
		e := &s.events[i]
		if q.Published != nil && e.Published != *q.Published {
			continue
		}
		for _, a := range e.AllAttributes() {
			if a.Deleted || a.Timestamp.Unix() < q.Timestamp {
				continue
			}
			if q.ToIDs != nil && a.ToIDs != *q.ToIDs {
				continue
			}
			if q.EnforceWarninglist && s.warnlist[a.Value] {
				continue
			}
			if !tagsMatch(q, a.Tags, e.Tags) {
				continue
			}
			hits = append(hits, hit{e, a})
		}
	}
	if q.Order != "" {
		if q.Order != "timestamp" && q.Order != "Attribute.timestamp" && q.Order != "timestamp ASC" {
			return jsonError(http.StatusBadRequest, "the fake orders by timestamp only, got "+q.Order, r.URL.Path)
		}
		slices.SortStableFunc(hits, func(x, y hit) int {
			if c := x.a.Timestamp.Compare(y.a.Timestamp); c != 0 {
				return c
			}
			return int(x.a.ID - y.a.ID)
		})
	}
	start, end := 0, len(hits)
	if q.Limit > 0 {
		start = min((max(q.Page, 1)-1)*q.Limit, len(hits))
		end = min(start+q.Limit, len(hits))
	}
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"response":{"Attribute":[`...)
	for i, h := range hits[start:end] {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAPIAttribute(b, h.e, h.a, q.IncludeEventTags)
		if q.IncludeDecayScore && h.a.Raw == "" && b[len(b)-1] == '}' {
			b = b[:len(b)-1]
			decayed := s.decayedTo[h.a.UUID]
			b = append(b, `,"decay_score":[{"score":`...)
			if decayed {
				b = append(b, `0.5,"base_score":80,"decayed":true`...)
			} else {
				b = append(b, `72.5,"base_score":80,"decayed":false`...)
			}
			b = append(b, `,"DecayingModel":{"id":"1","name":"NIDS Simple Decaying Model"}}]}`...)
		}
	}
	b = append(b, "]}}"...)
	return answer{status: http.StatusOK, body: b, records: end - start}
}

func tagsMatch(q Search, attr, event []string) bool {
	if len(q.TagsOR) == 0 && len(q.TagsNOT) == 0 {
		return true
	}
	has := func(name string) bool {
		for _, t := range attr {
			if strings.EqualFold(t, name) {
				return true
			}
		}
		for _, t := range event {
			if strings.EqualFold(t, name) {
				return true
			}
		}
		return false
	}
	for _, t := range q.TagsNOT {
		if has(t) {
			return false
		}
	}
	if len(q.TagsOR) == 0 {
		return true
	}
	for _, t := range q.TagsOR {
		if has(t) {
			return true
		}
	}
	return false
}

// parseSearch reads the parameters the fake understands; any other is an
// error, so that tests see what the client sends.
func parseSearch(raw map[string]any) (Search, error) {
	q := Search{Raw: raw}
	for k, v := range raw {
		var err error
		switch k {
		case "returnFormat":
			q.ReturnFormat, _ = v.(string)
		case "page":
			q.Page, err = intOf(k, v)
		case "limit":
			q.Limit, err = intOf(k, v)
		case "timestamp":
			var n int
			n, err = intOf(k, v)
			q.Timestamp = int64(n)
		case "order":
			q.Order, _ = v.(string)
		case "to_ids":
			q.ToIDs, err = boolOf(k, v)
		case "published":
			q.Published, err = boolOf(k, v)
		case "includeEventTags":
			b, e := boolOf(k, v)
			q.IncludeEventTags, err = b != nil && *b, e
		case "includeDecayScore":
			b, e := boolOf(k, v)
			q.IncludeDecayScore, err = b != nil && *b, e
		case "enforceWarninglist":
			b, e := boolOf(k, v)
			q.EnforceWarninglist, err = b != nil && *b, e
		case "tags":
			q.TagsOR, q.TagsNOT, err = tagsOf(v)
		default:
			err = fmt.Errorf("the fake does not know the parameter %q", k)
		}
		if err != nil {
			return q, err
		}
	}
	return q, nil
}

func intOf(k string, v any) (int, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, fmt.Errorf("%s: want a number, got %v", k, v)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: want a whole number, got %q", k, s)
	}
	return n, nil
}

func boolOf(k string, v any) (*bool, error) {
	var b bool
	switch x := v.(type) {
	case bool:
		b = x
	case json.Number:
		b = x.String() != "0"
	case string:
		b = x == "1" || strings.EqualFold(x, "true")
	default:
		return nil, fmt.Errorf("%s: want a boolean, got %v", k, v)
	}
	return &b, nil
}

func tagsOf(v any) (or, not []string, err error) {
	list := func(v any) []string {
		var out []string
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
		}
		return out
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch k {
			case "OR":
				or = list(e)
			case "NOT":
				not = list(e)
			default:
				return nil, nil, fmt.Errorf("tags: the fake knows OR and NOT, got %q", k)
			}
		}
	default:
		for _, t := range list(v) {
			if rest, ok := strings.CutPrefix(t, "!"); ok {
				not = append(not, rest)
			} else {
				or = append(or, t)
			}
		}
	}
	return or, not, nil
}

// ---- Feed directory -----------------------------------------------------------

// WriteFeed writes the events as a feed directory: manifest.json, one
// <uuid>.json per event (indented, as PyMISP writes them) and hashes.csv.
func WriteFeed(dir string, events []Event) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range events {
		var buf bytes.Buffer
		if err := json.Indent(&buf, events[i].AppendFeedJSON(nil), "", "    "); err != nil {
			return fmt.Errorf("event %s: %w", events[i].UUID, err)
		}
		buf.WriteByte('\n')
		if err := os.WriteFile(filepath.Join(dir, events[i].UUID+".json"), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), Manifest(events), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "hashes.csv"), Hashes(events), 0o644)
}
