package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const ndjson = `{"event":{"id":"a"},"destination":{"ip":"198.51.100.7"}}
{"event":{"id":"b"},"destination":{"ip":"10.0.0.1"}}

{"event":{"id":"c"},"dns":{"question":{"name":"www.evil.example"}}}
{"event":{"id":"d"},"destination":
not json at all
{"event":{"id":"e"},"source":{"ip":"198.51.100.7"}}`

func TestEvents(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		hdr  []string
	}{
		{"plain", []byte(ndjson), nil},
		{"gzip", gz(t, ndjson), []string{"Content-Encoding", "gzip"}},
		{"crlf and bom", []byte("\xef\xbb\xbf" + strings.ReplaceAll(ndjson, "\n", "\r\n")), []string{"Content-Type", "application/x-ndjson"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, testStore(t), false, Options{})
			resp, body := r.do(t, "POST", "/api/v1/events", c.body, c.hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var got eventsResponse
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("answer is not JSON: %v: %s", err, body)
			}
			if got.Events != 4 || got.Alerts != 3 || got.Malformed != 2 || got.Failed != 0 || len(got.Errors) != 2 {
				t.Fatalf("answer: %s", body)
			}
			if got.Errors[0].Line != 5 || got.Errors[1].Line != 6 || !strings.HasPrefix(got.Errors[0].Error, "malformed: not valid JSON") {
				t.Errorf("line errors: %+v", got.Errors)
			}
			alerts := storedAlerts(t, r.db)
			slices.Sort(alerts)
			if want := []string{"a/ip", "c/domain", "e/ip"}; !slices.Equal(alerts, want) {
				t.Errorf("stored alerts %v, want %v", alerts, want)
			}
			// Each alert is queued for the rule's actions.
			dels, err := r.db.DueDeliveries(t.Context(), time.Now().Add(time.Minute), 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(dels) != 3 || dels[0].Connector != "hook" {
				t.Errorf("deliveries queued: %+v", dels)
			}
			if r.stored.Load() == 0 {
				t.Error("Stored was not called after alerts were stored")
			}
			// The same events again: suppressed, nothing new stored.
			resp, body = r.do(t, "POST", "/api/v1/events", c.body, c.hdr...)
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"alerts":0`) {
				t.Errorf("second post: %d %s", resp.StatusCode, body)
			}
			st := r.p.Stats()
			if st.Events != 8 || st.Malformed != 4 || st.Alerts != 3 || st.Stored != 3 || st.Requests != 2 {
				t.Errorf("stats: %+v", st)
			}
		})
	}
}

// TestEventsErrorsCapped: a body of bad lines lists the first 20 with
// their numbers and counts the rest; the good lines after them match.
func TestEventsErrorsCapped(t *testing.T) {
	r := newRig(t, testStore(t), false, Options{})
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "{bad %d\n", i)
	}
	b.WriteString(`{"event":{"id":"z"},"destination":{"ip":"198.51.100.7"}}` + "\n")
	resp, body := r.do(t, "POST", "/api/v1/events", []byte(b.String()))
	var got eventsResponse
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v %s", resp.StatusCode, err, body)
	}
	if got.Malformed != 50 || got.Events != 1 || got.Alerts != 1 || len(got.Errors) != maxLinesShown || got.Errors[19].Line != 20 {
		t.Errorf("answer: %s", body)
	}
	// An empty body is no error.
	resp, body = r.do(t, "POST", "/api/v1/events", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"events":0`) {
		t.Errorf("empty body: %d %s", resp.StatusCode, body)
	}
}

func TestEventsBadRequests(t *testing.T) {
	r := newRig(t, testStore(t), false, Options{MaxBodyBytes: 4096, MaxQueueBytes: 1 << 20})
	big := strings.Repeat(`{"event":{"id":"x"}}`+"\n", 300) // 6300 bytes
	cases := []struct {
		name   string
		method string
		body   []byte
		hdr    []string
		status int
		want   string
	}{
		{"too large", "POST", []byte(big), nil, 413, "larger than the inputs' limit of 4096 bytes"},
		{"too large after gzip", "POST", gz(t, big), []string{"Content-Encoding", "gzip"}, 413, "detection.inputs.max_body_bytes"},
		{"not gzip", "POST", []byte("{}\n"), []string{"Content-Encoding", "gzip"}, 400, "the body is not gzip"},
		{"corrupt gzip", "POST", gz(t, ndjson)[:40], []string{"Content-Encoding", "gzip"}, 400, "gzip"},
		{"brotli", "POST", []byte("{}\n"), []string{"Content-Encoding", "br"}, 415, `Content-Encoding \"br\" is not supported (allowed: gzip, identity)`},
		{"get", "GET", nil, nil, 405, "allowed: [POST]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := r.do(t, c.method, "/api/v1/events", c.body, c.hdr...)
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.want) {
				t.Errorf("%d %s; want %d %q", resp.StatusCode, body, c.status, c.want)
			}
		})
	}
	// A body of unknown length (chunked) is cut at the limit too.
	pr, pw := io.Pipe()
	go func() {
		for range 10 {
			pw.Write([]byte(big))
		}
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", r.srv.URL+"/api/v1/events", pr)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked body over the limit: %d", resp.StatusCode)
	}
	resp, b := r.do(t, "GET", "/api/v1/events", nil)
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" || resp.Header.Get("X-Elastic-Product") != "" || !strings.HasPrefix(string(b), `{"error":`) {
		t.Errorf("GET /api/v1/events: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if st := r.p.Stats(); st.TooLarge != 3 {
		t.Errorf("too large: %d, want 3", st.TooLarge)
	}
	if q := r.p.QueuedBytes(); q != 0 {
		t.Errorf("%d bytes still charged to the queue after the failed requests", q)
	}
}

// TestQueueFull: with the matcher blocked, requests fill the queue; the
// next is answered 429 with Retry-After, in vigil's shape on
// /api/v1/events and in Elasticsearch's on /_bulk; once the matcher runs,
// the queued requests are answered.
func TestQueueFull(t *testing.T) {
	const body = 15000
	r := newRig(t, testStore(t), true, Options{MaxBodyBytes: 16 << 10, MaxQueueBytes: 64 << 10})
	line := `{"event":{"id":"q"},"destination":{"ip":"198.51.100.7"}}` + "\n"
	events := []byte(strings.Repeat(line, body/len(line)))
	var wg sync.WaitGroup
	codes := make(chan int, 4)
	for range 4 { // 4 × (15 KB + 1 KiB) fit in 64 KiB
		wg.Go(func() {
			resp, _ := r.do(t, "POST", "/api/v1/events", events)
			codes <- resp.StatusCode
		})
	}
	for deadline := time.Now().Add(10 * time.Second); r.p.QueuedBytes() < 4*int64(len(events)) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	resp, b := r.do(t, "POST", "/api/v1/events", events)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "the input queue is full") {
		t.Fatalf("full queue: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	bulk := []byte(`{"index":{"_index":"x"}}` + "\n" + line + strings.Repeat(" ", 14000) + "\n")
	resp, b = r.do(t, "POST", "/_bulk", bulk)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-Elastic-Product") != "Elasticsearch" ||
		!strings.Contains(string(b), `"type":"es_rejected_execution_exception"`) || !strings.Contains(string(b), `"status":429`) {
		t.Fatalf("full queue, bulk: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	if st := r.p.Stats(); st.Rejected != 2 || st.Requests != 0 {
		t.Errorf("stats while blocked: %+v", st)
	}
	r.unblock()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("queued request answered %d", c)
		}
	}
	if st := r.p.Stats(); st.Requests != 4 || st.Events != 4*int64(len(events)/len(line)) || st.Alerts != 1 {
		t.Errorf("stats after unblocking: %+v", st)
	}
	// Room again.
	if resp, b := r.do(t, "POST", "/api/v1/events", events); resp.StatusCode != 200 {
		t.Errorf("after draining: %d %s", resp.StatusCode, b)
	}
}

// TestClosed: after Close, requests are answered 503.
func TestClosed(t *testing.T) {
	r := newRig(t, testStore(t), false, Options{})
	r.p.Close()
	<-r.runDone
	resp, b := r.do(t, "POST", "/api/v1/events", []byte(ndjson))
	if resp.StatusCode != 503 || !strings.Contains(string(b), "shutting down") {
		t.Errorf("after Close: %d %s", resp.StatusCode, b)
	}
}

// TestDo: a function handed to Do runs on the matching goroutine, once the
// index is ready, between requests; after Close, Do fails instead of
// waiting.
func TestDo(t *testing.T) {
	r := newRig(t, testStore(t), true, Options{})
	ran := make(chan struct{})
	go func() {
		if err := r.p.Do(t.Context(), func(context.Context) { close(ran) }); err != nil {
			t.Errorf("Do: %v", err)
		}
	}()
	select {
	case <-ran:
		t.Fatal("Do ran before the index was ready")
	case <-time.After(50 * time.Millisecond):
	}
	r.unblock()
	<-ran
	// Between requests: the events before and after are all matched.
	resp, b := r.do(t, "POST", "/api/v1/events", []byte(ndjson))
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d %s", resp.StatusCode, b)
	}
	n := 0
	for range 3 {
		if err := r.p.Do(t.Context(), func(context.Context) { n++ }); err != nil {
			t.Fatal(err)
		}
	}
	if n != 3 {
		t.Fatalf("ran %d of 3", n)
	}
	r.p.Close()
	<-r.runDone
	if err := r.p.Do(t.Context(), func(context.Context) { t.Error("ran after Close") }); err == nil {
		t.Fatal("Do after Close succeeded")
	}
}
