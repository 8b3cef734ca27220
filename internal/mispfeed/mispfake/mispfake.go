// Package mispfake is a MISP instance as far as pulling a feed of format
// "MISP Feed" goes: it does what MISP's Feed.php (branch 2.5) does when a
// feed is fetched, so that tests and benchmarks can pull vigil's feeds the
// way MISP would and look at what MISP would hold afterwards.
//
// A Fetch requests <url>/manifest.json (by plain string joining, as MISP
// does, so a URL ending in "/" gives "//manifest.json"), with If-None-Match
// when it has an ETag; then, for each listed event it does not hold, or
// holds with an older timestamp, <url>/<uuid>.json. An event is added, or
// merged into the copy held: new attribute UUIDs are added, known ones
// updated only when their timestamp grew, and attributes missing from the
// file are left alone. A deleted event's UUID is blocklisted, as MISP's
// event blocklist does by default. Attribute UUIDs are unique across the
// instance.
package mispfake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
)

// Instance is a MISP instance with one feed configured.
type Instance struct {
	// URL is the feed's URL as typed in MISP's "Add Feed" form.
	URL string
	// Headers are the feed's custom headers (e.g. Authorization).
	Headers http.Header
	Client  *http.Client
	// Check, when set, is called with each manifest and event body
	// received (kind "manifest" or "event"); an error fails the fetch.
	Check func(kind, name string, body []byte) error

	events    map[string]*Event
	attrs     map[string]string // attribute UUID → event UUID
	blocklist map[string]bool
	etag      string
	manifest  []byte
	// Requests lists the paths requested, in order.
	Requests []string
}

// Event is an event the instance holds.
type Event struct {
	UUID       string
	Info       string
	Timestamp  int64
	Attributes map[string]*Attribute // by UUID
}

// Attribute is an attribute the instance holds.
type Attribute struct {
	UUID, Type, Category, Value string
	ToIDs                       bool
	Timestamp                   int64
	Deleted                     bool // deleted by a user of the instance
	Tags                        []string
}

// New returns an instance with a feed at url, sending headers with every
// request.
func New(url string, headers http.Header) *Instance {
	return &Instance{URL: url, Headers: headers, Client: &http.Client{},
		events: map[string]*Event{}, attrs: map[string]string{}, blocklist: map[string]bool{}}
}

// Stats counts what a Fetch did.
type Stats struct {
	NotModified bool // the manifest was answered 304
	Listed      int  // events in the manifest
	Added       int  // events added
	Edited      int  // events downloaded again and merged
	Skipped     int  // events held with the same timestamp
	Blocked     int  // events on the blocklist
	NewAttrs    int  // attributes added
}

// MISP's UUID check (CakePHP Validation::uuid, with the version nibble of
// older releases).
var uuidRE = regexp.MustCompile(`^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[0-5][a-fA-F0-9]{3}-[089aAbB][a-fA-F0-9]{3}-[a-fA-F0-9]{12}$`)

// HTTPError is a response other than 200 (and 304 for the manifest).
type HTTPError struct {
	Path   string
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.Path, e.Status, e.Body)
}

func (m *Instance) get(ctx context.Context, path string, manifest bool) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+path, nil)
	if err != nil {
		return nil, 0, err
	}
	for k, v := range m.Headers {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json, text/plain, text/*")
	req.Header.Set("User-Agent", "MISP 2.5.0 - #mispfake")
	if manifest && m.etag != "" && m.manifest != nil {
		req.Header.Set("If-None-Match", m.etag)
	}
	m.Requests = append(m.Requests, req.URL.Path)
	resp, err := m.Client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if manifest && resp.StatusCode == http.StatusNotModified {
		return m.manifest, resp.StatusCode, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, &HTTPError{Path: req.URL.Path, Status: resp.StatusCode, Body: string(body)}
	}
	if manifest {
		if tag := resp.Header.Get("ETag"); tag != "" {
			m.etag, m.manifest = tag, body
		}
	}
	return body, resp.StatusCode, nil
}

// FetchManifest requests only the manifest, as a pull that dies before it
// downloads the events, and returns it.
func (m *Instance) FetchManifest(ctx context.Context) (map[string]ManifestEntry, error) {
	body, _, err := m.get(ctx, "/manifest.json", true)
	if err != nil {
		return nil, err
	}
	return m.parseManifest(body)
}

// ManifestEntry is the part of a manifest entry the pull reads.
type ManifestEntry struct {
	Info      string          `json:"info"`
	Timestamp json.RawMessage `json:"timestamp"`
}

func (m *Instance) parseManifest(body []byte) (map[string]ManifestEntry, error) {
	if m.Check != nil {
		if err := m.Check("manifest", "manifest.json", body); err != nil {
			return nil, err
		}
	}
	var man map[string]ManifestEntry
	if err := json.Unmarshal(body, &man); err != nil {
		return nil, fmt.Errorf("mispfake: manifest is not a JSON object: %w", err)
	}
	return man, nil
}

// unixText reads a timestamp written as a string or a number, as MISP
// accepts both.
func unixText(raw json.RawMessage) (int64, error) {
	if n := len(raw); n > 2 && raw[0] == '"' && raw[n-1] == '"' && !bytes.ContainsAny(raw[1:n-1], `"\\`) {
		return strconv.ParseInt(string(raw[1:n-1]), 10, 64) // a plain string
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		s = string(raw)
	}
	return strconv.ParseInt(s, 10, 64)
}

// Fetch pulls the feed as MISP's "Fetch and store all feed data" does.
func (m *Instance) Fetch(ctx context.Context) (Stats, error) {
	var st Stats
	body, code, err := m.get(ctx, "/manifest.json", true)
	if err != nil {
		return st, fmt.Errorf("mispfake: could not fetch event manifest: %w", err)
	}
	st.NotModified = code == http.StatusNotModified
	man, err := m.parseManifest(body)
	if err != nil {
		return st, err
	}
	st.Listed = len(man)
	uuids := make([]string, 0, len(man))
	for u := range man {
		uuids = append(uuids, u)
	}
	sort.Strings(uuids)
	var errs []error
	for _, u := range uuids {
		ts, err := unixText(man[u].Timestamp)
		if err != nil {
			errs = append(errs, fmt.Errorf("event %s: manifest timestamp: %w", u, err))
			continue
		}
		if !uuidRE.MatchString(u) {
			errs = append(errs, fmt.Errorf("given event UUID %q is invalid", u))
			continue
		}
		if m.blocklist[u] {
			st.Blocked++
			continue
		}
		local, held := m.events[u]
		if held && local.Timestamp >= ts {
			st.Skipped++
			continue
		}
		n, err := m.download(ctx, u, ts)
		if err != nil {
			errs = append(errs, fmt.Errorf("could not add event %s from feed: %w", u, err))
			continue
		}
		st.NewAttrs += n
		if held {
			st.Edited++
		} else {
			st.Added++
		}
	}
	return st, errors.Join(errs...)
}

type wireEvent struct {
	Event struct {
		UUID      string          `json:"uuid"`
		Info      string          `json:"info"`
		Published bool            `json:"published"`
		Timestamp json.RawMessage `json:"timestamp"`
		Attribute []struct {
			UUID      string          `json:"uuid"`
			Type      string          `json:"type"`
			Category  string          `json:"category"`
			Value     string          `json:"value"`
			ToIDs     bool            `json:"to_ids"`
			Timestamp json.RawMessage `json:"timestamp"`
			Deleted   bool            `json:"deleted"`
			Tag       []struct {
				Name string `json:"name"`
			} `json:"Tag"`
		} `json:"Attribute"`
	} `json:"Event"`
}

// download gets one event and adds or merges it; it returns how many
// attributes it added.
func (m *Instance) download(ctx context.Context, uuid string, manifestTS int64) (int, error) {
	body, _, err := m.get(ctx, "/"+uuid+".json", false)
	if err != nil {
		return 0, err
	}
	if m.Check != nil {
		if err := m.Check("event", uuid+".json", body); err != nil {
			return 0, err
		}
	}
	var w wireEvent
	if err := json.Unmarshal(body, &w); err != nil {
		return 0, fmt.Errorf("event is not JSON: %w", err)
	}
	in := w.Event
	if in.UUID == "" {
		return 0, errors.New("Event UUID field missing")
	}
	if in.UUID != uuid {
		return 0, fmt.Errorf("event file %s holds event %s", uuid, in.UUID)
	}
	if in.Published && len(in.Attribute) == 0 {
		return 0, errors.New("Received a published event that was empty")
	}
	ts, err := unixText(in.Timestamp)
	if err != nil {
		return 0, fmt.Errorf("event timestamp: %w", err)
	}
	if ts != manifestTS {
		return 0, fmt.Errorf("event timestamp %d is not the manifest's %d", ts, manifestTS)
	}
	e, held := m.events[uuid]
	if held && ts <= e.Timestamp {
		return 0, errors.New("Event in the request not newer than the local copy")
	}
	if !held {
		e = &Event{UUID: uuid, Attributes: make(map[string]*Attribute, len(in.Attribute))}
	}
	e.Info, e.Timestamp = in.Info, ts
	added := 0
	for _, a := range in.Attribute {
		ats, err := unixText(a.Timestamp)
		if err != nil {
			return added, fmt.Errorf("attribute %s timestamp: %w", a.UUID, err)
		}
		if other, ok := m.attrs[a.UUID]; ok && other != uuid {
			continue // "blocked … due to a duplicate UUID"
		}
		tags := make([]string, len(a.Tag))
		for i, t := range a.Tag {
			tags[i] = t.Name
		}
		na := &Attribute{UUID: a.UUID, Type: a.Type, Category: a.Category, Value: a.Value, ToIDs: a.ToIDs, Timestamp: ats, Deleted: a.Deleted, Tags: tags}
		if old, ok := e.Attributes[a.UUID]; ok {
			if ats > old.Timestamp {
				e.Attributes[a.UUID] = na
			}
			continue
		}
		e.Attributes[a.UUID] = na
		m.attrs[a.UUID] = uuid
		added++
	}
	m.events[uuid] = e
	return added, nil
}

// Events returns the events held, by UUID.
func (m *Instance) Events() map[string]*Event { return m.events }

// Values returns the attributes held and not deleted, as "type|value",
// with how many times each is held.
func (m *Instance) Values() map[string]int {
	out := map[string]int{}
	for _, e := range m.events {
		for _, a := range e.Attributes {
			if !a.Deleted {
				out[a.Type+"|"+a.Value]++
			}
		}
	}
	return out
}

// DeleteAttribute soft-deletes every attribute of that type and value, as
// a user of the instance would, and returns how many it deleted.
func (m *Instance) DeleteAttribute(typ, value string) int {
	n := 0
	for _, e := range m.events {
		for _, a := range e.Attributes {
			if a.Type == typ && a.Value == value && !a.Deleted {
				a.Deleted = true
				n++
			}
		}
	}
	return n
}

// DeleteEvent deletes an event and blocklists its UUID, as MISP does.
func (m *Instance) DeleteEvent(uuid string) {
	if e, ok := m.events[uuid]; ok {
		for u := range e.Attributes {
			delete(m.attrs, u)
		}
	}
	delete(m.events, uuid)
	m.blocklist[uuid] = true
}
