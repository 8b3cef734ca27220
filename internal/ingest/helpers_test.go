package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/detect"
	"github.com/vigil-ti/vigil/internal/importer"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// testStore opens a real store in a temporary directory holding two live
// indicators, imported as a list: the address 198.51.100.7 and the domain
// evil.example.
func testStore(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	im, err := importer.New(importer.Options{Store: db, Provider: "Unit Feed", ExpirationDuration: "1d"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := im.Read(t.Context(), "list.txt", strings.NewReader("198.51.100.7\nevil.example\n"))
	if err != nil || st.Imported != 2 {
		t.Fatalf("import: %+v %v", st, err)
	}
	return db
}

// rig is a running Pipeline over a real store, served by httptest.
type rig struct {
	p       *Pipeline
	db      *sqlite.DB
	srv     *httptest.Server
	ready   chan struct{}
	stored  atomic.Int64 // calls of Options.Stored
	runDone chan struct{}
}

// newRig starts a Pipeline on db. With blocked, the index is not ready:
// Run matches nothing until r.unblock.
func newRig(t testing.TB, db *sqlite.DB, blocked bool, opts Options) *rig {
	t.Helper()
	r := &rig{db: db, ready: make(chan struct{}), runDone: make(chan struct{})}
	eng, err := detect.New(detect.Config{Actions: []string{"hook"}, SuppressionWindow: time.Hour}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := detect.Load(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	eng.Swap(snap)
	opts.Engine, opts.Store, opts.Ready = eng, db, r.ready
	opts.Stored = func() { r.stored.Add(1) }
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r.p, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !blocked {
		close(r.ready)
	}
	go func() {
		defer close(r.runDone)
		r.p.Run(t.Context())
	}()
	r.srv = httptest.NewServer(r.p.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot) // serve's own API, behind the inputs
	})))
	t.Cleanup(func() {
		r.srv.Close()
		r.p.Close()
		<-r.runDone
	})
	return r
}

func (r *rig) unblock() { close(r.ready) }

// do sends a request and returns the answer with its body read.
func (r *rig) do(t testing.TB, method, path string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, r.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// storedAlerts returns the stored alerts' event.id and rule.id, as
// "event/rule", and their count per alert id.
func storedAlerts(t testing.TB, db *sqlite.DB) []string {
	t.Helper()
	var out []string
	err := db.Detections(t.Context(), sqlite.DetectionFilter{}, func(d vigil.Detection) error {
		var doc struct {
			Event struct{ ID string } `json:"event"`
		}
		if err := json.Unmarshal(d.Source, &doc); err != nil {
			return err
		}
		out = append(out, doc.Event.ID+"/"+d.RuleID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// contains fails unless s contains every one of want.
func contains(t testing.TB, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}
