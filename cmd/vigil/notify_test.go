package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/notify/notifytest"
	"github.com/vigil-ti/vigil/internal/sqlite"
	"github.com/vigil-ti/vigil/internal/threatcommand/tcfake"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitFor waits up to 30 s for a line of the log that matches re, and
// returns its submatches.
func (s *syncBuffer) waitFor(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := rx.FindStringSubmatch(s.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %s after 30s; log:\n%s", re, s.String())
		}
	}
}

// TestServeDeliversOutbox queues alerts in the store, then runs serve with
// a webhook connector whose receiver is down at first: serve retries until
// it is up and delivers each alert once; status shows the outbox, with the
// delivery to a connector that is not configured still queued.
func TestServeDeliversOutbox(t *testing.T) {
	fake := tcfake.New(t, tcfake.Options{PageSize: 200, IOCs: tcfake.GenerateIOCs(genOpts(50, 7))})
	r := notifytest.NewReceiver(t)
	r.Stop()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, fake, fmt.Sprintf(`connectors:
  - name: hook
    type: webhook
    url: %s
    headers:
      Authorization: Bearer ${TEST_HOOK_TOKEN}
outbox:
  max_backoff: 1s
`, r.URL))
	env := keyEnv(fake)
	env["TEST_HOOK_TOKEN"] = "hook-token-123"

	db, err := sqlite.Open(t.Context(), dataDir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ds []vigil.Delivery
	for i := range 3 {
		ds = append(ds, vigil.Delivery{Key: fmt.Sprintf("alert-%d", i), Connector: "hook", Subject: "s", Body: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	ds = append(ds, vigil.Delivery{Key: "alert-x", Connector: "gone", Body: []byte(`{}`)})
	if err := db.Enqueue(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	db.Close()

	stop := make(chan struct{})
	var logs syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(t.Context(), stop, []string{"--config", cfg, "serve"}, func(k string) string { return env[k] }, &bytes.Buffer{}, &logs)
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 30s; log:\n%s", what, logs.String())
			}
		}
	}
	waitFor("failed delivery logged", func() bool { return strings.Contains(logs.String(), "delivery failed; retrying") })
	r.Restart(t)
	waitFor("delivery", func() bool { return len(r.Accepted()) == 3 })
	close(stop)
	if code := <-exit; code != 0 {
		t.Fatalf("serve exited %d; log:\n%s", code, logs.String())
	}
	for k, n := range r.Accepted() {
		if n != 1 {
			t.Errorf("%s accepted %d times", k, n)
		}
	}
	for _, req := range r.Log.All() {
		if req.Header.Get("Authorization") != "Bearer hook-token-123" {
			t.Errorf("Authorization %q", req.Header.Get("Authorization"))
		}
	}
	if strings.Contains(logs.String(), "hook-token-123") {
		t.Error("the header value was logged")
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="connector not configured: its deliveries stay queued" component=outbox connector=gone postponed=1 err="no connector \"gone\" (configured: hook)`) {
		t.Errorf("the delivery to an unknown connector was not reported; log:\n%s", logs.String())
	}

	code, out, errOut := runIn(t, nil, "--config", cfg, "status")
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	if !regexpMatch(`(?m)^CONNECTOR +QUEUED +FAILING +DELIVERED +OLDEST QUEUED +LAST ERROR$`, out) ||
		!regexpMatch(`(?m)^gone +1 +1 +0 +\S+ +\S+ not attempted: no connector "gone"`, out) ||
		!regexpMatch(`(?m)^hook +0 +0 +3 +- +-$`, out) {
		t.Fatalf("status:\n%s", out)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
