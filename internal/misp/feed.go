package misp

import (
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/httpx"
)

// ManifestFile is the name of a feed's index of events.
const ManifestFile = "manifest.json"

// FeedConfig configures a Feed: exactly one of URL and Dir.
type FeedConfig struct {
	// Name is the feed's configured name.
	Name string
	// Key is the feed's configuration key, for messages, e.g.
	// "sources.misp.feeds[0]".
	Key string
	// URL is the feed's folder over HTTP(S): <URL>/manifest.json and
	// <URL>/<uuid>.json.
	URL string
	// Dir is the feed's folder on disk.
	Dir string
	// Username and Password, when set, are sent as HTTP basic auth.
	Username, Password string
	// HTTP sends the requests. Nil: httpx defaults.
	HTTP *httpx.Client
	// MaxEventAge, when positive, leaves out the events whose manifest
	// timestamp is older, as MISP's feed rule on timestamp does.
	MaxEventAge time.Duration
}

// Feed reads one MISP feed, over HTTP or from a directory. It is safe for
// concurrent use.
type Feed struct {
	name, key  string
	base       *url.URL
	dir        string
	user, pass string
	http       *httpx.Client
	maxAge     time.Duration
}

// NewFeed checks cfg and returns a Feed.
func NewFeed(cfg FeedConfig) (*Feed, error) {
	f := &Feed{name: cfg.Name, key: cfg.Key, user: cfg.Username, pass: cfg.Password, http: cfg.HTTP, maxAge: cfg.MaxEventAge}
	if f.key == "" {
		f.key = "feed " + strconv.Quote(cfg.Name)
	}
	switch {
	case (cfg.URL == "") == (cfg.Dir == ""):
		return nil, fmt.Errorf("misp: %s: set exactly one of url and path", f.key)
	case cfg.URL != "":
		u, err := httpx.ParseBaseURL(cfg.URL, f.key+".url", "https://www.circl.lu/doc/misp/feed-osint", "username and password")
		if err != nil {
			return nil, fmt.Errorf("misp: %w", err)
		}
		f.base = u
	default:
		f.dir = cfg.Dir
	}
	if f.http == nil {
		f.http = httpx.New(httpx.Options{})
	}
	return f, nil
}

// Name returns the feed's configured name.
func (f *Feed) Name() string { return f.name }

// Location returns the feed's URL or directory.
func (f *Feed) Location() string {
	if f.base != nil {
		return f.base.String()
	}
	return f.dir
}

// ManifestFetch is the answer to a manifest request.
type ManifestFetch struct {
	Body []byte
	// ETag is the manifest's ETag, if the server sent one.
	ETag string
	// NotModified is set when the server answered 304 to the ETag given:
	// the manifest has not changed and Body is empty.
	NotModified bool
}

// ErrNotFound is matched (errors.Is) by the error of a file the feed does
// not have.
var ErrNotFound = errors.New("not found")

// Manifest fetches manifest.json. With etag set, it is sent as
// If-None-Match, and a 304 answer is NotModified.
func (f *Feed) Manifest(ctx context.Context, etag string) (ManifestFetch, error) {
	if f.base == nil {
		b, err := f.readFile(ctx, ManifestFile)
		return ManifestFetch{Body: b}, err
	}
	resp, err := f.get(ctx, ManifestFile, etag)
	if err != nil {
		return ManifestFetch{}, err
	}
	if resp.StatusCode == http.StatusNotModified {
		resp.Body.Close()
		return ManifestFetch{ETag: etag, NotModified: true}, nil
	}
	b, err := f.read(resp, ManifestFile)
	if err != nil {
		return ManifestFetch{}, err
	}
	return ManifestFetch{Body: b, ETag: resp.Header.Get("ETag")}, nil
}

// Event fetches <uuid>.json. uuid must be a UUID (manifest keys are checked
// by ParseManifest), so it cannot name another file.
func (f *Feed) Event(ctx context.Context, uuid string) ([]byte, error) {
	if !ValidUUID(uuid) {
		return nil, fmt.Errorf("misp: feed %s: %q is not a UUID", f.name, uuid)
	}
	name := uuid + ".json"
	if f.base == nil {
		return f.readFile(ctx, name)
	}
	resp, err := f.get(ctx, name, "")
	if err != nil {
		return nil, err
	}
	return f.read(resp, name)
}

// read reads a response's body. A zip archive (Content-Type
// application/zip), which MISP accepts as well, must hold exactly one file,
// whose content is returned. gzip is undone by net/http.
func (f *Feed) read(resp *http.Response, name string) ([]byte, error) {
	b, err := httpx.ReadAll(resp)
	if err != nil {
		return nil, fmt.Errorf("misp: feed %s: %s: %w", f.name, name, err)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/zip" {
		return b, nil
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("misp: feed %s: %s: the zip archive is unreadable: %w", f.name, name, err)
	}
	if len(zr.File) != 1 {
		return nil, fmt.Errorf("misp: feed %s: %s: the zip archive holds %d files, want one", f.name, name, len(zr.File))
	}
	rc, err := zr.File[0].Open()
	if err != nil {
		return nil, fmt.Errorf("misp: feed %s: %s: %w", f.name, name, err)
	}
	defer rc.Close()
	b, err = io.ReadAll(httpx.NewLimitedReader(rc, maxFileSize))
	if err != nil {
		return nil, fmt.Errorf("misp: feed %s: %s: unzipping: %w", f.name, name, err)
	}
	return b, nil
}

// maxFileSize bounds a file read from a feed directory, as httpx bounds
// bodies.
const maxFileSize = httpx.DefaultMaxBodySize

func (f *Feed) readFile(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := filepath.Join(f.dir, name)
	file, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			hint := ""
			if name == ManifestFile {
				hint = fmt.Sprintf(" (%s.path must be the feed's folder, the one holding %s)", f.key, ManifestFile)
			}
			return nil, fmt.Errorf("misp: feed %s: %s: %w%s", f.name, path, ErrNotFound, hint)
		}
		return nil, fmt.Errorf("misp: feed %s: %w", f.name, err)
	}
	defer file.Close()
	b, err := io.ReadAll(httpx.NewLimitedReader(file, maxFileSize))
	if err != nil {
		return nil, fmt.Errorf("misp: feed %s: %s: %w", f.name, path, err)
	}
	return b, nil
}

// get sends one GET for a file of the feed.
func (f *Feed) get(ctx context.Context, name, etag string) (*http.Response, error) {
	u := *f.base
	u.Path = f.base.Path + "/" + name
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("misp: feed %s: %w", f.name, err)
	}
	req.Header.Set("Accept", "application/json, text/plain, */*")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if f.user != "" || f.pass != "" {
		req.SetBasicAuth(f.user, f.pass)
	}
	resp, err := f.http.Do(ctx, req)
	if err != nil {
		return nil, f.wrap(name, err)
	}
	return resp, nil
}

// FeedError is an answer a feed's server gave with a status other than 2xx
// or 304, after any retries.
type FeedError struct {
	Feed, Key, File string
	Status          *httpx.StatusError
	Retried         bool
}

func (e *FeedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "misp: feed %s: %s: ", e.Feed, e.File)
	httpx.WriteStatus(&b, e.Status.StatusCode, "")
	switch e.Status.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		fmt.Fprintf(&b, ": the server refused the credentials; check %s.username and %s.password", e.Key, e.Key)
	case http.StatusNotFound:
		if e.File == ManifestFile {
			fmt.Fprintf(&b, ": %s.url must be the feed's folder, the one serving %s", e.Key, ManifestFile)
		}
	default:
		httpx.WriteQuoted(&b, truncate(e.Status.Body, 200))
		httpx.WriteRetried(&b, e.Retried)
	}
	return b.String()
}

// Is matches ErrNotFound for 404 and 410.
func (e *FeedError) Is(target error) bool {
	return target == ErrNotFound && (e.Status.StatusCode == http.StatusNotFound || e.Status.StatusCode == http.StatusGone)
}

func (e *FeedError) Unwrap() error { return e.Status }

func (f *Feed) wrap(file string, err error) error {
	var se *httpx.StatusError
	if errors.As(err, &se) {
		return &FeedError{Feed: f.name, Key: f.key, File: file, Status: se, Retried: err != error(se)}
	}
	return fmt.Errorf("misp: feed %s: %s: %w", f.name, file, err)
}

// ---- Manifest ------------------------------------------------------------------

// ManifestEntry is one event a feed's manifest lists.
type ManifestEntry struct {
	UUID string
	// Timestamp is the event's timestamp (seconds): it changes when the
	// event does.
	Timestamp int64
	Info      string
}

// ParseManifest reads a manifest: an object keyed by event UUID, each value
// the event's metadata, whose numbers may be JSON numbers or strings. An
// entry whose key is not a UUID or that has no timestamp is left out and
// described in problems. The entries are ordered by timestamp, then UUID.
func ParseManifest(body []byte) (entries []ManifestEntry, problems []string, err error) {
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not valid JSON: %s; %s", ManifestFile, jsonError(err), describeHead(body))
	}
	o, err := v.Object()
	if err != nil {
		return nil, nil, fmt.Errorf("%s is %s, want an object keyed by event UUID", ManifestFile, v.Type())
	}
	entries = make([]ManifestEntry, 0, o.Len())
	o.Visit(func(k []byte, e *fastjson.Value) {
		key := string(k)
		if !ValidUUID(key) {
			problems = append(problems, fmt.Sprintf("key %q is not a UUID; left out", truncate(key, 60)))
			return
		}
		ts := e.Get("timestamp")
		var t int64
		ok := false
		if ts != nil {
			switch ts.Type() {
			case fastjson.TypeString:
				s, _ := str(ts)
				t, err = strconv.ParseInt(s, 10, 64)
				ok = err == nil
			case fastjson.TypeNumber:
				t, err = ts.Int64()
				ok = err == nil
			}
		}
		if !ok {
			what := "no timestamp"
			if ts != nil {
				what = "the timestamp " + display(ts) + ", not a number of seconds"
			}
			problems = append(problems, fmt.Sprintf("event %s has %s; left out", key, what))
			return
		}
		entries = append(entries, ManifestEntry{UUID: key, Timestamp: t, Info: string(e.GetStringBytes("info"))})
	})
	slices.SortFunc(entries, func(a, b ManifestEntry) int {
		return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), strings.Compare(a.UUID, b.UUID))
	})
	return entries, problems, nil
}

// ValidUUID reports whether s is a UUID in its 8-4-4-4-12 hexadecimal form.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
