// Package notifytest holds the receivers that the tests and benchmarks of
// the connectors share: a webhook receiver on httptest that can be taken
// down and brought back on the same address, and a real SMTP server
// (Python's aiosmtpd) that requires STARTTLS and authentication.
package notifytest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/vigil-ti/vigil/internal/fakeapi"
)

// Request is one request a Receiver got.
type Request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
	Status int // the status answered
}

// Fault is an answer the Receiver gives instead of 204.
type Fault struct {
	Status     int
	RetryAfter string // the Retry-After header, if any
	Body       string
}

// Receiver is a webhook receiver. It answers 204 and counts the request as
// accepted under its Idempotency-Key, unless a fault is queued.
type Receiver struct {
	URL string // http://127.0.0.1:port/hook
	// Faults are answered first, in order.
	Faults fakeapi.Faults[Fault]
	// Log holds every request answered (endpoint "hook").
	Log fakeapi.Log[Request]

	addr string
	mu   sync.Mutex
	srv  *httptest.Server
	// accepted counts the requests answered 2xx per Idempotency-Key.
	accepted map[string]int
}

// NewReceiver starts a receiver; it stops when the test ends.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{accepted: map[string]int{}}
	r.start(t, "127.0.0.1:0")
	r.URL = "http://" + r.addr + "/hook"
	t.Cleanup(r.Stop)
	return r
}

func (r *Receiver) start(t testing.TB, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("notifytest: listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	r.mu.Lock()
	r.srv, r.addr = srv, ln.Addr().String()
	r.mu.Unlock()
}

// Stop closes the receiver: connections to its address are refused.
func (r *Receiver) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// Restart listens again on the same address after Stop.
func (r *Receiver) Restart(t testing.TB) {
	t.Helper()
	r.start(t, r.addr)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.Log.Hit("hook")
	body, _ := io.ReadAll(req.Body)
	rec := Request{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body, Status: http.StatusNoContent}
	if f, ok := r.Faults.Take("hook"); ok {
		rec.Status = f.Status
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.WriteHeader(f.Status)
		io.WriteString(w, f.Body)
	} else {
		r.mu.Lock()
		r.accepted[req.Header.Get("Idempotency-Key")]++
		r.mu.Unlock()
		w.WriteHeader(rec.Status)
	}
	r.Log.Add("hook", rec)
}

// Accepted returns how many times each Idempotency-Key was answered 2xx.
func (r *Receiver) Accepted() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.accepted))
	for k, v := range r.accepted {
		out[k] = v
	}
	return out
}
