package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzBulk: any body splits into items without a panic; every item is
// either decided (a status) or has a document to match; there are never
// more items than lines; and the answer, whatever the filter_path, is
// valid JSON with one item per action.
func FuzzBulk(f *testing.F) {
	f.Add([]byte(bulkBody), "")
	f.Add([]byte(bulkBody), "errors,items.*.error,items.*.status")
	f.Add([]byte("{\"index\":{\"_id\":\"\\u00e9\\n\"}}\n{}\n{\"update\":{\"_id\":1}}\n{\"doc\":{\"a\":[1,{\"b\":null}]}}\n"), "**.status,took")
	f.Add([]byte("\xef\xbb\xbf{\"delete\":{\"_index\":\"\\\"x\",\"_id\":\"7\"}}\r\n"), "items.index")
	p := &Pipeline{}
	p.ids.init()
	f.Fuzz(func(t *testing.T, body []byte, filterPath string) {
		items, extra := p.parseBulk(body, "dflt")
		if extra < int64(len(items))*itemCharge {
			t.Fatalf("charge %d for %d items", extra, len(items))
		}
		if len(items) > bytes.Count(body, []byte("\n"))+1 {
			t.Fatalf("%d items from %d lines", len(items), bytes.Count(body, []byte("\n"))+1)
		}
		for i := range items {
			it := &items[i]
			if (it.status == 0) == (it.src == nil) && it.errType == "" {
				t.Fatalf("item %d is neither decided nor to match: %+v", i, it)
			}
			if it.index == "" {
				t.Fatalf("item %d has no index", i)
			}
			if it.status == 0 { // as Run would decide it
				it.status, it.result = 201, "created"
			}
		}
		var b bytes.Buffer
		bw := bufio.NewWriter(&b)
		p.writeBulk(bw, items, 1, newFilter(filterPath))
		bw.Flush()
		var a struct {
			Items []map[string]json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(b.Bytes(), &a); err != nil {
			t.Fatalf("answer is not JSON: %v\n%s", err, b.Bytes())
		}
		if filterPath == "" && len(a.Items) != len(items) {
			t.Fatalf("%d answered items for %d actions", len(a.Items), len(items))
		}
	})
}
