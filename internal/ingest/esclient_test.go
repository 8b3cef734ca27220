package ingest

// The bulk endpoint driven by Elastic's official Go client: its product
// check (Info, which fails unless the answer says X-Elastic-Product:
// Elasticsearch), its BulkIndexer, compatibility mode, credentials, and
// its retries of 429.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"
)

// bulkEvent is event i of a client test: every 50th carries the
// indicator address, event 7 is not JSON.
func bulkEvent(prefix string, i int) string {
	ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250)
	if i%50 == 0 {
		ip = "198.51.100.7"
	}
	if i == 7 {
		return `{"event":{"id":"broken"`
	}
	return fmt.Sprintf(`{"@timestamp":"2025-06-01T12:00:00Z","event":{"id":"%s-%d","kind":"event"},"source":{"ip":"10.0.0.9","port":51515},"destination":{"ip":%q,"port":443},"message":"%s"}`,
		prefix, i, ip, strings.Repeat("x", 150))
}

// index sends n events through a BulkIndexer and returns its stats and
// the failures' reasons. Each worker sends what it holds when it reaches
// flush bytes, or 50 ms after its last request.
func index(t *testing.T, es *elasticsearch.Client, prefix string, n, workers, flush int) (esutil.BulkIndexerStats, []string) {
	t.Helper()
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client: es, Index: "logs-vigil-test", NumWorkers: workers, FlushBytes: flush, FlushInterval: 50 * time.Millisecond,
		OnError: func(_ context.Context, err error) { t.Errorf("bulk indexer: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var failures []string
	for i := range n {
		err := bi.Add(t.Context(), esutil.BulkIndexerItem{
			Action: "index",
			Body:   strings.NewReader(bulkEvent(prefix, i)),
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				mu.Lock()
				defer mu.Unlock()
				failures = append(failures, fmt.Sprintf("%d %s %s %v", res.Status, res.Error.Type, res.Error.Reason, err))
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	return bi.Stats(), failures
}

func TestGoElasticsearchClient(t *testing.T) {
	const token = "0123456789abcdef-token"
	r := newRig(t, testStore(t), false, Options{Auth: Auth{Token: token, Username: "shipper", Password: "pw"}})
	cases := []struct {
		name string
		cfg  elasticsearch.Config
	}{
		{"basic auth", elasticsearch.Config{Username: "shipper", Password: "pw"}},
		{"api key, compatibility mode", elasticsearch.Config{APIKey: base64.StdEncoding.EncodeToString([]byte("filebeat:" + token)), EnableCompatibilityMode: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Addresses = []string{r.srv.URL}
			es, err := elasticsearch.NewClient(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := es.Info()
			if err != nil {
				t.Fatalf("Info (the client's product check): %v", err)
			}
			var info struct {
				Version struct{ Number string }
			}
			err = json.NewDecoder(res.Body).Decode(&info)
			res.Body.Close()
			if err != nil || res.IsError() || info.Version.Number != DefaultElasticsearchVersion {
				t.Fatalf("Info: %v %v %+v", res.Status(), err, info)
			}
			prefix := strings.ReplaceAll(c.name, " ", "")
			st, failures := index(t, es, prefix, 500, 2, 8<<10)
			if st.NumAdded != 500 || st.NumIndexed != 499 || st.NumFailed != 1 || st.NumRequests < 5 {
				t.Errorf("stats: %+v", st)
			}
			if len(failures) != 1 || !strings.Contains(failures[0], "400 document_parsing_exception failed to parse the document on line") {
				t.Errorf("failures: %q", failures)
			}
			var want, got []string
			for i := 0; i < 500; i += 50 {
				want = append(want, fmt.Sprintf("%s-%d/ip", prefix, i))
			}
			for _, a := range storedAlerts(t, r.db) {
				if strings.HasPrefix(a, prefix+"-") {
					got = append(got, a)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("stored alerts %v, want %v", got, want)
			}
		})
	}
	// Without credentials the client gets 401.
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{r.srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := es.Info()
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("Info without credentials: %s", res.Status())
	}
}

// TestGoElasticsearchClientRetries429: with the matcher behind, the queue
// fills and bulk requests are answered 429; the client retries them, and
// once the matcher catches up every event is matched, none lost.
func TestGoElasticsearchClientRetries429(t *testing.T) {
	r := newRig(t, testStore(t), true, Options{MaxBodyBytes: 16 << 10, MaxQueueBytes: 64 << 10})
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses:     []string{r.srv.URL},
		RetryOnStatus: []int{429, 502, 503, 504},
		MaxRetries:    100,
		RetryBackoff:  func(int) time.Duration { return 20 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for r.p.Stats().Rejected == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		r.unblock()
	}()

	st, failures := index(t, es, "retry", 1000, 6, 12<<10)
	if st.NumIndexed != 999 || st.NumFailed != 1 || len(failures) != 1 {
		t.Errorf("stats %+v, failures %q", st, failures)
	}
	ps := r.p.Stats()
	if ps.Rejected == 0 || ps.Events != 999 || ps.Alerts != 20 {
		t.Errorf("pipeline stats: %+v", ps)
	}
	if n := len(storedAlerts(t, r.db)); n != 20 {
		t.Errorf("%d alerts stored, want 20", n)
	}
}
