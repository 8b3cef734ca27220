package misp_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/misp"
	"github.com/vigil-ti/vigil/internal/misp/mispfake"
)

func TestParseManifest(t *testing.T) {
	const a, b, c = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002", "CCCCCCCC-0000-4000-8000-000000000003"
	cases := []struct {
		name     string
		body     string
		want     []string // uuid@timestamp, in order
		problems []string
		err      string
	}{
		{"integers and strings", `{"` + b + `":{"timestamp":1700000000,"info":"B"},"` + a + `":{"timestamp":"1600000000"}}`,
			[]string{a + "@1600000000", b + "@1700000000"}, nil, ""},
		{"same timestamp ordered by uuid", `{"` + c + `":{"timestamp":5},"` + a + `":{"timestamp":5}}`,
			[]string{c + "@5", a + "@5"}, nil, ""},
		{"empty", `{}`, nil, nil, ""},
		{"bad key", `{"../../etc/passwd":{"timestamp":1},"` + a + `":{"timestamp":2}}`,
			[]string{a + "@2"}, []string{`key "../../etc/passwd" is not a UUID; left out`}, ""},
		{"no timestamp", `{"` + a + `":{"info":"x"},"` + b + `":{"timestamp":"soon"},"` + c + `":{"timestamp":1.5}}`, nil,
			[]string{"event " + a + " has no timestamp; left out", "event " + b + " has the timestamp soon, not a number of seconds; left out",
				"event " + c + " has the timestamp 1.5, not a number of seconds; left out"}, ""},
		{"not an object", `[]`, nil, nil, "manifest.json is array, want an object keyed by event UUID"},
		{"not JSON", `{"`, nil, nil, "manifest.json is not valid JSON"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			entries, problems, err := misp.ParseManifest([]byte(cs.body))
			if cs.err != "" {
				if err == nil || !strings.Contains(err.Error(), cs.err) {
					t.Fatalf("err %v, want %q", err, cs.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.UUID+"@"+strconv.FormatInt(e.Timestamp, 10))
			}
			if !slices.Equal(got, cs.want) || !slices.Equal(problems, cs.problems) {
				t.Fatalf("entries %v problems %q\nwant %v %q", got, problems, cs.want, cs.problems)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"aaaaaaaa-0000-4000-8000-000000000001":{"timestamp":1}}`))
	f.Add([]byte(`{"x":{"timestamp":"2"}}`))
	if b, err := os.ReadFile("../../examples/misp-feed/manifest.json"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		entries, _, err := misp.ParseManifest(body)
		if err != nil {
			return
		}
		for i, e := range entries {
			if !misp.ValidUUID(e.UUID) || strings.ContainsAny(e.UUID, "/\\.") {
				t.Fatalf("entry %q is not a UUID", e.UUID)
			}
			if i > 0 && entries[i-1].Timestamp > e.Timestamp {
				t.Fatal("entries out of order")
			}
		}
	})
}

func TestFeedOverHTTP(t *testing.T) {
	evs := mispfake.Generate(mispfake.GenOptions{Events: 3, PerEvent: 4, Seed: 3})
	fake := mispfake.New(t, mispfake.Options{Events: evs, FeedUser: "dev1", FeedPassword: "feed-pw"})
	open := func(url, user, pw string) *misp.Feed {
		f, err := misp.NewFeed(misp.FeedConfig{Name: "f", Key: "sources.misp.feeds[0]", URL: url, Username: user, Password: pw,
			HTTP: httpx.New(httpx.Options{MaxAttempts: 2, Sleep: noSleep})})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// A trailing slash, as MISP users type feed URLs, is accepted.
	f := open(fake.FeedURL+"/", "dev1", "feed-pw")
	mf, err := f.Manifest(t.Context(), "")
	if err != nil || mf.NotModified || mf.ETag == "" {
		t.Fatalf("%+v %v", mf, err)
	}
	entries, _, err := misp.ParseManifest(mf.Body)
	if err != nil || len(entries) != 3 {
		t.Fatalf("%d entries, %v", len(entries), err)
	}
	again, err := f.Manifest(t.Context(), mf.ETag)
	if err != nil || !again.NotModified || len(again.Body) != 0 || again.ETag != mf.ETag {
		t.Fatalf("with the ETag: %+v %v", again, err)
	}
	if r := fake.RequestsTo(mispfake.EndpointManifest); r[1].IfNoneMatch != mf.ETag || r[1].Status != http.StatusNotModified {
		t.Fatalf("second manifest request %+v", r[1])
	}
	raw, err := f.Event(t.Context(), evs[1].UUID)
	if err != nil || string(fastjson.MustParseBytes(raw).GetStringBytes("Event", "uuid")) != evs[1].UUID {
		t.Fatalf("event: %v %.100s", err, raw)
	}
	if _, err := f.Event(t.Context(), "aaaaaaaa-0000-4000-8000-000000000001"); !errors.Is(err, misp.ErrNotFound) {
		t.Fatalf("missing event: %v", err)
	}
	if _, err := f.Event(t.Context(), "../manifest"); err == nil || !strings.Contains(err.Error(), "is not a UUID") {
		t.Fatalf("not a uuid: %v", err)
	}
	// Wrong credentials name the keys, never the password.
	_, err = open(fake.FeedURL, "dev1", "wrong-pw").Manifest(t.Context(), "")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401 Unauthorized: the server refused the credentials; check sources.misp.feeds[0].username and sources.misp.feeds[0].password") ||
		strings.Contains(err.Error(), "pw") {
		t.Fatalf("wrong password: %v", err)
	}
	// A URL that is not the feed's folder.
	_, err = open(fake.URL+"/elsewhere", "dev1", "feed-pw").Manifest(t.Context(), "")
	if !errors.Is(err, misp.ErrNotFound) || !strings.Contains(err.Error(), "sources.misp.feeds[0].url must be the feed's folder") {
		t.Fatalf("wrong folder: %v", err)
	}
	if f.Location() != fake.FeedURL || f.Name() != "f" {
		t.Fatalf("location %s", f.Location())
	}
}

// TestFeedZipAndGzip: an event served zipped (one file in the archive) or
// gzip-encoded is read like a plain one.
func TestFeedZipAndGzip(t *testing.T) {
	evs := mispfake.Generate(mispfake.GenOptions{Events: 3, PerEvent: 2, Seed: 5})
	zipped := func(files int) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for i := range files {
			w, _ := zw.Create(fmt.Sprintf("f%d.json", i))
			w.Write(evs[0].AppendFeedJSON(nil))
		}
		zw.Close()
		return buf.Bytes()
	}
	fake := mispfake.New(t, mispfake.Options{Events: evs, Hook: func(w http.ResponseWriter, r *http.Request, ep string) bool {
		switch {
		case strings.HasSuffix(r.URL.Path, evs[0].UUID+".json"):
			w.Header().Set("Content-Type", "application/zip")
			w.Write(zipped(1))
		case strings.HasSuffix(r.URL.Path, evs[1].UUID+".json"):
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			zw.Write(evs[1].AppendFeedJSON(nil))
			zw.Close()
		case strings.HasSuffix(r.URL.Path, evs[2].UUID+".json"):
			w.Header().Set("Content-Type", "application/zip")
			w.Write(zipped(2))
		default:
			return false
		}
		return true
	}})
	f, err := misp.NewFeed(misp.FeedConfig{Name: "z", URL: fake.FeedURL})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs[:2] {
		raw, err := f.Event(t.Context(), e.UUID)
		if err != nil || !json.Valid(raw) || !bytes.Contains(raw, []byte(evs[0].UUID)) && !bytes.Contains(raw, []byte(e.UUID)) {
			t.Fatalf("%s: %v %.80s", e.UUID, err, raw)
		}
	}
	if _, err := f.Event(t.Context(), evs[2].UUID); err == nil || !strings.Contains(err.Error(), "the zip archive holds 2 files, want one") {
		t.Fatalf("two files: %v", err)
	}
}

func TestFeedFromDirectory(t *testing.T) {
	evs := mispfake.Generate(mispfake.GenOptions{Events: 2, PerEvent: 3, Seed: 4})
	dir := t.TempDir()
	if err := mispfake.WriteFeed(dir, evs); err != nil {
		t.Fatal(err)
	}
	f, err := misp.NewFeed(misp.FeedConfig{Name: "local", Key: "sources.misp.feeds[1]", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mf, err := f.Manifest(t.Context(), "ignored")
	if err != nil || mf.NotModified || len(mf.Body) == 0 {
		t.Fatalf("%+v %v", mf, err)
	}
	if _, err := f.Event(t.Context(), evs[0].UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Event(t.Context(), "aaaaaaaa-0000-4000-8000-000000000001"); !errors.Is(err, misp.ErrNotFound) {
		t.Fatalf("missing event: %v", err)
	}
	empty, err := misp.NewFeed(misp.FeedConfig{Name: "empty", Key: "sources.misp.feeds[1]", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty.Manifest(t.Context(), ""); !errors.Is(err, misp.ErrNotFound) || !strings.Contains(err.Error(), "sources.misp.feeds[1].path must be the feed's folder") {
		t.Fatalf("no manifest: %v", err)
	}
	for _, cfg := range []misp.FeedConfig{{Name: "x"}, {Name: "x", URL: "https://x.example", Dir: dir}} {
		if _, err := misp.NewFeed(cfg); err == nil || !strings.Contains(err.Error(), "set exactly one of url and path") {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

// TestExampleFeedIntegrity runs on the repository's example feed the checks
// MISP and PyMISP apply to a feed: manifest keys are UUIDs; each event file
// exists and holds that event, with the manifest's timestamp; no published
// event is empty; attribute UUIDs are unique; hashes.csv lists md5(value)
// of every attribute value (composite values per part).
func TestExampleFeedIntegrity(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "misp-feed")
	body, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	entries, problems, err := misp.ParseManifest(body)
	if err != nil || len(problems) > 0 || len(entries) < 3 {
		t.Fatalf("%d entries, problems %v, %v", len(entries), problems, err)
	}
	var wantHashes []string
	seen := map[string]bool{}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.UUID+".json"))
		if err != nil {
			t.Fatal(err)
		}
		ev := fastjson.MustParseBytes(raw).Get("Event")
		if string(ev.GetStringBytes("uuid")) != e.UUID || string(ev.GetStringBytes("timestamp")) != strconv.FormatInt(e.Timestamp, 10) {
			t.Errorf("%s: uuid %s timestamp %s, manifest %d", e.UUID, ev.Get("uuid"), ev.Get("timestamp"), e.Timestamp)
		}
		var attrs []*fastjson.Value
		attrs = append(attrs, ev.GetArray("Attribute")...)
		for _, o := range ev.GetArray("Object") {
			attrs = append(attrs, o.GetArray("Attribute")...)
		}
		if ev.GetBool("published") && len(attrs) == 0 {
			t.Errorf("%s is published and empty", e.UUID)
		}
		for _, a := range attrs {
			u := string(a.GetStringBytes("uuid"))
			if !misp.ValidUUID(u) || seen[u] {
				t.Errorf("attribute uuid %q invalid or repeated", u)
			}
			seen[u] = true
			for _, part := range strings.Split(string(a.GetStringBytes("value")), "|") {
				sum := md5.Sum([]byte(part))
				wantHashes = append(wantHashes, hex.EncodeToString(sum[:])+","+e.UUID)
			}
		}
	}
	f, err := os.Open(filepath.Join(dir, "hashes.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	slices.Sort(got)
	slices.Sort(wantHashes)
	if !slices.Equal(got, wantHashes) {
		t.Fatalf("hashes.csv\n got %v\nwant %v", got, wantHashes)
	}
}
