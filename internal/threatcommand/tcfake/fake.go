// Package tcfake is a fake Rapid7 Threat Command API on httptest, for tests
// and benchmarks: IOC and CVE paging with nextOffset, window and filter
// parameters, alerts, the diagnostic endpoints, basic auth, fault injection
// and a request log. IOC and CVE sets can be generated on demand, so a
// million records cost no memory.
package tcfake

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	EndpointIOCs            = "iocs"
	EndpointAlertList       = "alerts-list"
	EndpointAlert           = "get-complete-alert"
	EndpointCVEs            = "cves"
	EndpointTestCredentials = "test-credentials"
	EndpointSystemModules   = "system-modules"
)

// API paths.
const (
	PathIOCs            = "/public/v2/app/elastic/iocs"
	PathAlertList       = "/public/v1/data/alerts/alerts-list"
	PathAlert           = "/public/v1/data/alerts/get-complete-alert/" // + id
	PathCVEs            = "/public/v1/cves/get-cves-list"
	PathTestCredentials = "/public/v1/test-credentials"
	PathSystemModules   = "/public/v1/account/system-modules"
)

// Defaults of Options.
const (
	DefaultAccountID = "fake-account-id"
	DefaultAPIKey    = "fake-api-key-0123456789abcdef"
	DefaultPageSize  = 1000
)

// Hook sees every request before anything else. It returns true when it
// has answered the request itself.
type Hook func(w http.ResponseWriter, r *http.Request, endpoint string) bool

// Options configures a Server.
type Options struct {
	// AccountID and APIKey are the basic-auth credentials the server
	// accepts. "": DefaultAccountID, DefaultAPIKey.
	AccountID, APIKey string
	// PageSize is the number of records per IOC or CVE page.
	// 0: DefaultPageSize.
	PageSize int
	IOCs     IOCSet  // nil: none
	CVEs     CVESet  // nil: none
	Alerts   []Alert // listed in this order
	// EmptyAlertListBody answers an empty alert list with an empty body,
	// as the API can, instead of [].
	EmptyAlertListBody bool
	// SystemModules is the system-modules answer, marshalled with
	// encoding/json. Nil: an object of module names to booleans.
	SystemModules any
	// Hook, when set, sees every request first.
	Hook Hook
	// NumericOffsets sends nextOffset as a JSON number (the index of the
	// next record) instead of an opaque string.
	NumericOffsets bool
	// LenientOffsets accepts an offset with a query other than the one
	// that produced it. By default that is a 400, so tests catch a client
	// that moves its window or filters while paging.
	LenientOffsets bool
}

// DefaultSystemModules is the system-modules answer when Options has none.
var DefaultSystemModules = map[string]bool{
	"Discovery": true, "Remediation": true, "IOC": true, "VirtualAppliance": false,
	"InvestigationPage": true, "ThreatLibrary": true, "IntelliFind": false, "Cve": true,
}

// Fault is an injected answer. The zero fields leave the real answer alone.
type Fault struct {
	// Endpoint limits the fault to one endpoint; "": any.
	Endpoint string
	// Delay waits before answering (less if the client goes away).
	Delay time.Duration
	// Block waits until it is closed (or the client goes away) before
	// answering: a test can then cancel a client in the middle of a call.
	Block <-chan struct{}
	// Status, when set, is answered instead of the real answer, with
	// RetryAfter as the Retry-After header and Body as the body. Status
	// 200 with a Body serves a garbage page.
	Status     int
	RetryAfter string
	Body       string
	// Truncate > 0 serves only the first Truncate bytes of the real body,
	// as a complete response (valid HTTP, broken JSON); < 0: half of it.
	Truncate int
	// Abort sends the real headers and half the body, then drops the
	// connection.
	Abort bool
}

// Request is one logged request.
type Request struct {
	Method   string
	Endpoint string // "" for an unknown path
	Path     string
	Query    url.Values
	Account  string // the basic-auth user name; the key is never logged
	Status   int
	Injected bool // answered by a Fault or the Hook
	// Records is the number of records (or alert ids) served.
	Records    int
	NextOffset string
}

// Server is a fake Threat Command API. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:43567.
	URL string
	srv *httptest.Server

	account, key  string
	numericOffset bool
	lenient       bool
	emptyAlerts   bool

	mu       sync.Mutex
	pageSize int
	iocs     *dataset
	cves     *dataset
	alerts   []Alert
	modules  any
	hook     Hook
	faults   fakeapi.Faults[Fault]
	log      fakeapi.Log[Request]
	pages    map[string]int
	served   map[string]int
}

// New starts a Server. When tb is not nil the server is closed at the end
// of the test.
func New(tb testing.TB, opts Options) *Server {
	s := &Server{
		account:       opts.AccountID,
		key:           opts.APIKey,
		numericOffset: opts.NumericOffsets,
		lenient:       opts.LenientOffsets,
		emptyAlerts:   opts.EmptyAlertListBody,
		pageSize:      opts.PageSize,
		alerts:        slices.Clone(opts.Alerts),
		modules:       opts.SystemModules,
		hook:          opts.Hook,
		pages:         map[string]int{},
		served:        map[string]int{},
	}
	if s.account == "" {
		s.account = DefaultAccountID
	}
	if s.key == "" {
		s.key = DefaultAPIKey
	}
	if s.pageSize <= 0 {
		s.pageSize = DefaultPageSize
	}
	if s.modules == nil {
		s.modules = DefaultSystemModules
	}
	iocs, cves := opts.IOCs, opts.CVEs
	if iocs == nil {
		iocs = IOCRecords()
	}
	if cves == nil {
		cves = CVERecords()
	}
	s.iocs = &dataset{base: iocAdapter{iocs}, iocs: iocs}
	s.cves = &dataset{base: cveAdapter{cves}, cves: cves}
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

// AccountID returns the account id the server accepts.
func (s *Server) AccountID() string { return s.account }

// APIKey returns the API key the server accepts.
func (s *Server) APIKey() string { return s.key }

// SetPageSize changes the page size.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		n = DefaultPageSize
	}
	s.pageSize = n
}

// SetHook replaces the hook (nil: none).
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// Inject makes the next n requests that match f.Endpoint get f. Faults are
// used in the order they were injected.
func (s *Server) Inject(f Fault, n int) { s.faults.Add(f, f.Endpoint, n) }

// FailNext makes the next n requests, to any endpoint, answer status.
func (s *Server) FailNext(n, status int) {
	s.Inject(Fault{Status: status, Body: http.StatusText(status)}, n)
}

// ClearFaults drops the faults not used yet.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Requests returns a copy of the request log.
func (s *Server) Requests() []Request { return s.log.All() }

// RequestsTo returns the logged requests to one endpoint.
func (s *Server) RequestsTo(endpoint string) []Request { return s.log.To(endpoint) }

// ResetLog clears the request log and the counters.
func (s *Server) ResetLog() {
	s.log.Reset()
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.pages)
	clear(s.served)
}

// Count returns the number of requests to an endpoint, failed ones included.
func (s *Server) Count(endpoint string) int { return s.log.Count(endpoint) }

// Pages returns the number of IOC or CVE pages served with 200.
func (s *Server) Pages(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pages[endpoint]
}

// Served returns the number of records (alert ids, alerts) served by an
// endpoint with 200.
func (s *Server) Served(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[endpoint]
}

// ---- Records and mutations ---------------------------------------------------

// item is a mutable record.
type item interface {
	meta() meta
	AppendJSON(b []byte) []byte
}

// recordSet is the read side of an IOCSet or CVESet.
type recordSet interface {
	Len() int
	meta(i int) meta
	appendAt(b []byte, i int) []byte
}

type iocAdapter struct{ IOCSet }

func (a iocAdapter) meta(i int) meta                 { return a.iocMeta(i) }
func (a iocAdapter) appendAt(b []byte, i int) []byte { return a.appendIOC(b, i) }

type cveAdapter struct{ CVESet }

func (a cveAdapter) meta(i int) meta                 { return a.cveMeta(i) }
func (a cveAdapter) appendAt(b []byte, i int) []byte { return a.appendCVE(b, i) }

// dataset is a base set plus replaced and added records.
type dataset struct {
	base   recordSet
	iocs   IOCSet // the base, typed
	cves   CVESet
	over   map[int]item // replaced base records
	extra  []item       // added records, indexes base.Len()...
	inject [][]byte     // raw elements for the next page
}

func (d *dataset) len() int { return d.base.Len() + len(d.extra) }

func (d *dataset) item(i int) (item, bool) {
	if n := d.base.Len(); i >= n {
		return d.extra[i-n], true
	}
	it, ok := d.over[i]
	return it, ok
}

func (d *dataset) meta(i int) meta {
	if it, ok := d.item(i); ok {
		return it.meta()
	}
	return d.base.meta(i)
}

func (d *dataset) appendAt(b []byte, i int) []byte {
	if it, ok := d.item(i); ok {
		return it.AppendJSON(b)
	}
	return d.base.appendAt(b, i)
}

// set replaces record i, or adds it when i == len().
func (d *dataset) set(i int, it item) {
	n := d.base.Len()
	switch {
	case i < 0 || i > d.len():
		panic(fmt.Sprintf("tcfake: record index %d out of range [0, %d]", i, d.len()))
	case i == d.len():
		d.extra = append(d.extra, it)
	case i >= n:
		d.extra[i-n] = it
	default:
		if d.over == nil {
			d.over = map[int]item{}
		}
		d.over[i] = it
	}
}

// IOCLen returns the number of IOC records.
func (s *Server) IOCLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.iocs.len()
}

// IOC returns IOC record i as the server now has it.
func (s *Server) IOC(i int) IOC {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.iocs.item(i); ok {
		return *it.(*IOC)
	}
	return s.iocs.iocs.IOC(i)
}

// SetIOC replaces IOC record i; i == IOCLen() adds a record.
func (s *Server) SetIOC(i int, rec IOC) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.iocs.set(i, &rec)
}

// PutIOC replaces the IOC record with rec's Value, or adds rec, and returns
// its index. It looks the value up record by record: O(n).
func (s *Server) PutIOC(rec IOC) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.iocIndex(rec.Value)
	if i < 0 {
		i = s.iocs.len()
	}
	s.iocs.set(i, &rec)
	return i
}

// IOCIndex returns the index of the IOC record with the given value, or -1.
// O(n).
func (s *Server) IOCIndex(value string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.iocIndex(value)
}

func (s *Server) iocIndex(value string) int {
	for i := range s.iocs.len() {
		if it, ok := s.iocs.item(i); ok {
			if it.(*IOC).Value == value {
				return i
			}
			continue
		}
		var v string
		if g, ok := s.iocs.iocs.(*iocGen); ok {
			v = g.build(i).Value
		} else {
			v = s.iocs.iocs.IOC(i).Value
		}
		if v == value {
			return i
		}
	}
	return -1
}

// RetireIOC marks IOC record i Retired, updated at the given time.
func (s *Server) RetireIOC(i int, at time.Time) {
	rec := s.IOC(i)
	rec.Status = "Retired"
	rec.LastUpdateDate = at
	s.SetIOC(i, rec)
}

// InjectIOCRecords adds raw JSON elements (objects or not, valid JSON) to
// the content of the next IOC page served, after its real records.
func (s *Server) InjectIOCRecords(raw ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range raw {
		s.iocs.inject = append(s.iocs.inject, []byte(r))
	}
}

// CVELen returns the number of CVE records.
func (s *Server) CVELen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cves.len()
}

// CVE returns CVE record i as the server now has it.
func (s *Server) CVE(i int) CVE {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.cves.item(i); ok {
		return *it.(*CVE)
	}
	return s.cves.cves.CVE(i)
}

// SetCVE replaces CVE record i; i == CVELen() adds a record.
func (s *Server) SetCVE(i int, rec CVE) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cves.set(i, &rec)
}

// PutCVE replaces the CVE record with rec's ID, or adds rec, and returns
// its index. O(n).
func (s *Server) PutCVE(rec CVE) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := -1
	for i := range s.cves.len() {
		var id string
		if it, ok := s.cves.item(i); ok {
			id = it.(*CVE).ID
		} else if g, ok := s.cves.cves.(*cveGen); ok {
			id = g.build(i).ID
		} else {
			id = s.cves.cves.CVE(i).ID
		}
		if id == rec.ID {
			idx = i
			break
		}
	}
	if idx < 0 {
		idx = s.cves.len()
	}
	s.cves.set(idx, &rec)
	return idx
}

// InjectCVERecords adds raw JSON elements to the content of the next CVE
// page served.
func (s *Server) InjectCVERecords(raw ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range raw {
		s.cves.inject = append(s.cves.inject, []byte(r))
	}
}

// PutAlert replaces the alert with a's ID, or adds a.
func (s *Server) PutAlert(a Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.alerts {
		if s.alerts[i].ID == a.ID {
			s.alerts[i] = a
			return
		}
	}
	s.alerts = append(s.alerts, a)
}

// Alerts returns a copy of the alerts.
func (s *Server) Alerts() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.alerts)
}

// ---- Serving ---------------------------------------------------------------------

// answer is a complete response, built before it is written so that a
// fault can cut it.
type answer struct {
	status     int
	header     http.Header
	body       []byte
	records    int
	nextOffset string
	page       bool // an IOC or CVE page
}

func jsonAnswer(status int, body []byte) answer {
	return answer{status: status, header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, body: body}
}

func invalid(status int, reason string) answer {
	b, _ := json.Marshal(map[string]string{"Status": "Invalid", "FailedReason": reason})
	return jsonAnswer(status, b)
}

func endpointOf(path string) string {
	switch {
	case path == PathIOCs:
		return EndpointIOCs
	case path == PathAlertList:
		return EndpointAlertList
	case strings.HasPrefix(path, PathAlert) && len(path) > len(PathAlert):
		return EndpointAlert
	case path == PathCVEs:
		return EndpointCVEs
	case path == PathTestCredentials:
		return EndpointTestCredentials
	case path == PathSystemModules:
		return EndpointSystemModules
	}
	return ""
}

// statusWriter logs its request when the status is written, before any
// byte reaches the client, so a client that has its answer finds the
// request in the log.
type statusWriter struct {
	http.ResponseWriter
	status int
	commit func(status int)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.commit(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) serve(rw http.ResponseWriter, r *http.Request) {
	endpoint := endpointOf(r.URL.Path)
	user, _, _ := r.BasicAuth()
	entry := Request{Method: r.Method, Endpoint: endpoint, Path: r.URL.Path, Query: r.URL.Query(), Account: user}
	logged := false
	logEntry := func(status int) {
		if logged {
			return
		}
		logged = true
		entry.Status = status
		s.log.Add(endpoint, entry)
	}
	w := &statusWriter{ResponseWriter: rw, commit: logEntry}

	s.log.Hit(endpoint)
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	var fault *Fault
	if f, ok := s.faults.Take(endpoint); ok {
		fault = &f
	}

	defer logEntry(0) // no answer: the client went away first

	if hook != nil {
		entry.Injected = true // as logged if the hook answers
		if hook(w, r, endpoint) {
			return
		}
		entry.Injected = false
	}
	if fault != nil {
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fault.Block != nil {
			select {
			case <-fault.Block:
			case <-r.Context().Done():
				return
			}
		}
		if fault.Status != 0 {
			entry.Injected = true
			if fault.RetryAfter != "" {
				w.Header().Set("Retry-After", fault.RetryAfter)
			}
			w.WriteHeader(fault.Status)
			if r.Method != http.MethodHead {
				w.Write([]byte(fault.Body))
			}
			return
		}
	}

	a := s.answer(r, endpoint)
	if a.status == http.StatusOK {
		entry.Records, entry.NextOffset = a.records, a.nextOffset
	}
	body := a.body
	for k, v := range a.header {
		w.Header()[k] = v
	}
	if fault != nil && fault.Abort {
		entry.Injected = true
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(a.status)
		w.Write(body[:len(body)/2])
		w.Flush()
		panic(http.ErrAbortHandler)
	}
	if fault != nil && fault.Truncate != 0 {
		entry.Injected = true
		n := fault.Truncate
		if n < 0 || n > len(body) {
			n = len(body) / 2
		}
		body = body[:n]
	}
	if a.status == http.StatusOK && !entry.Injected {
		s.mu.Lock()
		if a.page {
			s.pages[endpoint]++
		}
		s.served[endpoint] += a.records
		s.mu.Unlock()
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(a.status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func (s *Server) authorized(r *http.Request) bool {
	user, key, ok := r.BasicAuth()
	return ok && user == s.account && key == s.key
}

func (s *Server) answer(r *http.Request, endpoint string) answer {
	if endpoint == "" {
		return answer{status: http.StatusNotFound, body: []byte("404 page not found\n")}
	}
	want := http.MethodGet
	if endpoint == EndpointTestCredentials {
		want = http.MethodHead
	}
	if r.Method != want {
		return answer{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {want}}}
	}
	if !s.authorized(r) {
		return answer{status: http.StatusUnauthorized, header: http.Header{"Www-Authenticate": {`Basic realm="api"`}}, body: []byte("Unauthorized")}
	}
	q := r.URL.Query()
	switch endpoint {
	case EndpointIOCs:
		return s.page(q, s.iocs, "lastUpdatedFrom", "lastUpdatedTo", true)
	case EndpointCVEs:
		return s.page(q, s.cves, "updateDateFrom", "updateDateTo", false)
	case EndpointAlertList:
		return s.alertList(q)
	case EndpointAlert:
		return s.alert(strings.TrimPrefix(r.URL.Path, PathAlert))
	case EndpointTestCredentials:
		return answer{status: http.StatusOK}
	default: // EndpointSystemModules
		s.mu.Lock()
		b, err := json.Marshal(s.modules)
		s.mu.Unlock()
		if err != nil {
			return answer{status: http.StatusInternalServerError, body: []byte(err.Error())}
		}
		return jsonAnswer(http.StatusOK, b)
	}
}

// filter selects records.
type filter struct {
	from, to   int64 // Unix ms, inclusive
	types      []string
	severities []string
}

func (f *filter) match(m meta) bool {
	if m.updated != 0 && (m.updated < f.from || m.updated > f.to) {
		return false
	}
	if len(f.types) > 0 && !slices.Contains(f.types, m.typ) {
		return false
	}
	if len(f.severities) > 0 && !slices.Contains(f.severities, m.sev) {
		return false
	}
	return true
}

// window reads the from and to parameters into f.
func (f *filter) window(q url.Values, fromKey, toKey string) error {
	f.from, f.to = -1<<63, 1<<63-1
	for _, kv := range []struct {
		key string
		dst *int64
	}{{fromKey, &f.from}, {toKey, &f.to}} {
		v := q.Get(kv.key)
		if v == "" {
			continue
		}
		t, err := time.Parse(TimeLayout, v)
		if err != nil {
			if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return fmt.Errorf("%s: %q is not a date like 2024-06-15T10:39:07.841Z", kv.key, v)
			}
		}
		*kv.dst = t.UnixMilli()
	}
	return nil
}

// indexed returns the values of name[0], name[1], ... in index order.
func indexed(q url.Values, name string) []string {
	type kv struct {
		i int
		v string
	}
	var found []kv
	for k, vs := range q {
		rest, ok := strings.CutPrefix(k, name+"[")
		if !ok || !strings.HasSuffix(rest, "]") {
			continue
		}
		i, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
		if err != nil {
			continue
		}
		for _, v := range vs {
			found = append(found, kv{i, v})
		}
	}
	sort.Slice(found, func(a, b int) bool { return found[a].i < found[b].i })
	out := make([]string, len(found))
	for k, f := range found {
		out[k] = f.v
	}
	return out
}

// fingerprint identifies a query without its offset.
func fingerprint(q url.Values) uint64 {
	keys := make([]string, 0, len(q))
	for k := range q {
		if k != "offset" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		for _, v := range q[k] {
			fmt.Fprintf(h, "%s=%s\x00", k, v)
		}
	}
	return h.Sum64()
}

func (s *Server) encodeOffset(i int, fp uint64) string {
	if s.numericOffset {
		return strconv.Itoa(i)
	}
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "v1:%d:%016x", i, fp))
}

func (s *Server) decodeOffset(off string, fp uint64) (int, error) {
	if s.numericOffset {
		i, err := strconv.Atoi(off)
		if err != nil || i < 0 {
			return 0, fmt.Errorf("invalid offset %q", off)
		}
		return i, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(off)
	var i int
	var got uint64
	if err == nil {
		_, err = fmt.Sscanf(string(raw), "v1:%d:%016x", &i, &got)
	}
	if err != nil || i < 0 {
		return 0, fmt.Errorf("invalid offset %q", off)
	}
	if got != fp && !s.lenient {
		return 0, fmt.Errorf("offset %q belongs to another query: the window, the filters or the syncId changed while paging", off)
	}
	return i, nil
}

// page serves one IOC or CVE page.
func (s *Server) page(q url.Values, d *dataset, fromKey, toKey string, withTypes bool) answer {
	var f filter
	if err := f.window(q, fromKey, toKey); err != nil {
		return invalid(http.StatusBadRequest, err.Error())
	}
	f.severities = indexed(q, "severity")
	if withTypes {
		f.types = indexed(q, "type")
	}
	fp := fingerprint(q)
	start := 0
	if off := q.Get("offset"); off != "" {
		var err error
		if start, err = s.decodeOffset(off, fp); err != nil {
			return invalid(http.StatusBadRequest, err.Error())
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	n := d.len()
	b := make([]byte, 0, min(s.pageSize, 4096)*560+64)
	b = append(b, `{"content":[`...)
	count, i := 0, start
	for ; i < n && count < s.pageSize; i++ {
		if !f.match(d.meta(i)) {
			continue
		}
		if count > 0 {
			b = append(b, ',')
		}
		b = d.appendAt(b, i)
		count++
	}
	for _, raw := range d.inject {
		if count > 0 {
			b = append(b, ',')
		}
		b = append(b, raw...)
		count++
	}
	d.inject = nil
	b = append(b, ']')
	a := answer{status: http.StatusOK, records: count, page: true}
	if i < n {
		a.nextOffset = s.encodeOffset(i, fp)
		b = append(b, `,"nextOffset":`...)
		if s.numericOffset {
			b = append(b, a.nextOffset...)
		} else {
			b = appendString(b, a.nextOffset)
		}
	}
	b = append(b, '}')
	a.body = b
	a.header = http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	return a
}

func splitList(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) alertList(q url.Values) answer {
	var f filter
	if err := f.window(q, "lastUpdatedFrom", "lastUpdatedTo"); err != nil {
		return invalid(http.StatusBadRequest, err.Error())
	}
	f.severities = splitList(q.Get("severity"))
	f.types = splitList(q.Get("alertType"))
	closed := q.Get("isClosed")
	if closed != "" && closed != "true" && closed != "false" {
		return invalid(http.StatusBadRequest, "isClosed must be true or false")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := []byte{'['}
	count := 0
	for k := range s.alerts {
		a := &s.alerts[k]
		if !f.match(meta{updated: millis(a.UpdateDate), typ: a.Type, sev: a.Severity}) {
			continue
		}
		if closed != "" && strconv.FormatBool(a.Closed) != closed {
			continue
		}
		if count > 0 {
			b = append(b, ',')
		}
		b = appendString(b, a.ID)
		count++
	}
	b = append(b, ']')
	if count == 0 && s.emptyAlerts {
		b = nil
	}
	a := jsonAnswer(http.StatusOK, b)
	a.records = count
	return a
}

func (s *Server) alert(id string) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.alerts {
		if s.alerts[k].ID == id {
			a := jsonAnswer(http.StatusOK, s.alerts[k].AppendJSON(nil))
			a.records = 1
			return a
		}
	}
	return answer{status: http.StatusNotFound, body: []byte("alert not found")}
}
