package ingest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// bulkAnswer is the bulk API's answer.
type bulkAnswer struct {
	Took   *int64 `json:"took"`
	Errors *bool  `json:"errors"`
	Items  []map[string]struct {
		Index   string `json:"_index"`
		ID      string `json:"_id"`
		Version int    `json:"_version"`
		Result  string `json:"result"`
		Status  int    `json:"status"`
		SeqNo   *int64 `json:"_seq_no"`
		Error   *struct {
			Type, Reason string
		} `json:"error"`
	} `json:"items"`
}

// one returns item i's operation and body.
func (a *bulkAnswer) one(t *testing.T, i int) string {
	t.Helper()
	for op := range a.Items[i] {
		return op
	}
	t.Fatalf("item %d is empty", i)
	return ""
}

const bulkBody = `{"index":{"_index":"logs-a","_id":"1"}}
{"event":{"id":"b1"},"destination":{"ip":"198.51.100.7"}}
{"create":{}}
{"event":{"id":"b2"},"url":{"domain":"x.evil.example"}}
{"index":{"_id":"3"}}
{"event":{"id":"b3"},"destination":
{"indx":{"_id":"4"}}
{"event":{"id":"b4"},"destination":{"ip":"198.51.100.7"}}
{"delete":{"_id":"5"}}

{"update":{"_id":"6"}}
{"doc":{"event":{"id":"b6"},"source":{"ip":"198.51.100.7"}},"doc_as_upsert":true}
{"update":{"_id":"7"}}
{"script":{"source":"ctx._source.n += 1"}}
{"index":{"_index":"logs-a"}}
{"event":{"id":"b8"},"destination":{"ip":"192.0.2.1"}}
"not an action"
{"index":{}}
`

func TestBulk(t *testing.T) {
	r := newRig(t, testStore(t), false, Options{})
	resp, body := r.do(t, "POST", "/default-idx/_bulk", []byte(bulkBody), "Content-Type", "application/x-ndjson")
	if resp.StatusCode != 200 || resp.Header.Get("X-Elastic-Product") != "Elasticsearch" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
	}
	var a bulkAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, body)
	}
	want := []struct {
		op, index, id, result string
		status                int
		errType, reason       string
	}{
		{"index", "logs-a", "1", "created", 201, "", ""},
		{"create", "default-idx", "", "created", 201, "", ""},
		{"index", "default-idx", "3", "", 400, "document_parsing_exception", "failed to parse the document on line 6: not valid JSON"},
		{"index", "default-idx", "", "", 400, "illegal_argument_exception", "Malformed action/metadata line [7], expected one of [create, delete, index, update] but found [indx]"},
		{"delete", "default-idx", "5", "not_found", 404, "", ""},
		{"update", "default-idx", "6", "updated", 200, "", ""},
		{"update", "default-idx", "7", "noop", 200, "", ""},
		{"index", "logs-a", "", "created", 201, "", ""},
		{"index", "default-idx", "", "", 400, "illegal_argument_exception", "Malformed action/metadata line [17], expected an object"},
		{"index", "default-idx", "", "", 400, "action_request_validation_exception", "the index action on line 18 has no document line"},
	}
	if len(a.Items) != len(want) || a.Errors == nil || !*a.Errors || a.Took == nil {
		t.Fatalf("%d items, errors %v; want %d items and errors:\n%s", len(a.Items), a.Errors, len(want), body)
	}
	for i, w := range want {
		op := a.one(t, i)
		it := a.Items[i][op]
		if op != w.op || it.Index != w.index || it.Status != w.status || it.Result != w.result || (w.id != "" && it.ID != w.id) {
			t.Errorf("item %d: %s %+v; want %+v", i, op, it, w)
		}
		if w.errType == "" {
			if it.Error != nil || it.Version != 1 || it.SeqNo == nil || it.Result == "" {
				t.Errorf("item %d: %+v; want a success with _version and _seq_no", i, it)
			}
			if it.ID == "" && w.status < 300 {
				t.Errorf("item %d has no _id", i)
			}
			continue
		}
		if it.Error == nil || it.Error.Type != w.errType || !strings.Contains(it.Error.Reason, w.reason) {
			t.Errorf("item %d error: %+v; want %s %q", i, it.Error, w.errType, w.reason)
		}
	}
	// Generated ids look like Elasticsearch's and differ.
	id2, id8 := a.Items[1]["create"].ID, a.Items[7]["index"].ID
	if len(id2) != 20 || len(id8) != 20 || id2 == id8 {
		t.Errorf("generated ids %q %q", id2, id8)
	}
	alerts := storedAlerts(t, r.db)
	slices.Sort(alerts)
	if w := []string{"b1/ip", "b2/domain", "b6/ip"}; !slices.Equal(alerts, w) {
		t.Errorf("stored alerts %v, want %v", alerts, w)
	}
}

func TestBulkFilterPath(t *testing.T) {
	r := newRig(t, testStore(t), false, Options{})
	body := []byte(`{"index":{"_index":"a"}}` + "\n{bad\n" + `{"index":{"_index":"a"}}` + "\n{}\n")
	cases := []struct{ filter, want string }{
		{"errors,items.*.error,items.*.status", `{"errors":true,"items":[{"index":{"status":400,"error":{"type":"document_parsing_exception","reason":"failed to parse the document on line 2: not valid JSON: invalid character 'b', expecting a string key at byte 1"}}},{"index":{"status":201}}]}`},
		{"took", `{"took":`},
		{"errors", `{"errors":true}`},
		{"items.index._index", `{"items":[{"index":{"_index":"a"}},{"index":{"_index":"a"}}]}`},
		{"**.result", `{"items":[{"index":{"result":"created"}}]}`},
		{"items.*.err*", `{"items":[{"index":{"error":{`},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			resp, b := r.do(t, "POST", "/_bulk?filter_path="+c.filter, body)
			if resp.StatusCode != 200 || !strings.HasPrefix(string(b), c.want) {
				t.Errorf("filter_path=%s: %d\n%s\nwant prefix\n%s", c.filter, resp.StatusCode, b, c.want)
			}
			if !json.Valid(b) {
				t.Errorf("not JSON: %s", b)
			}
		})
	}
}

// TestDoc: the single-document API.
func TestDoc(t *testing.T) {
	r := newRig(t, testStore(t), false, Options{})
	doc := []byte("{\n  \"event\": {\"id\": \"d1\"},\n  \"destination\": {\"ip\": \"198.51.100.7\"}\n}\n")
	for _, c := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"POST", "/logs/_doc", 201, `"result":"created"`},
		{"PUT", "/logs/_doc/abc", 201, `"_id":"abc"`},
		{"PUT", "/logs/_create/abd", 201, `"_index":"logs"`},
		{"GET", "/logs/_doc", 405, "allowed: [POST]"},
	} {
		resp, b := r.do(t, c.method, c.path, doc)
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %s: %d %s; want %d %s", c.method, c.path, resp.StatusCode, b, c.status, c.want)
		}
	}
	resp, b := r.do(t, "POST", "/logs/_doc", []byte("{oops"))
	if resp.StatusCode != 400 || !strings.Contains(string(b), `"type":"document_parsing_exception"`) {
		t.Errorf("malformed document: %d %s", resp.StatusCode, b)
	}
	if alerts := storedAlerts(t, r.db); !slices.Equal(alerts, []string{"d1/ip"}) {
		t.Errorf("stored alerts %v", alerts)
	}
}

// TestElasticsearchSurface: what clients call before they send, and
// compatibility negotiation.
func TestElasticsearchSurface(t *testing.T) {
	r := newRig(t, testStore(t), false, Options{})
	resp, b := r.do(t, "GET", "/", nil)
	var info struct {
		Name, ClusterName, ClusterUUID string
		Version                        map[string]any
		Tagline                        string
	}
	if err := json.Unmarshal(b, &info); err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("GET /: %d %v %s", resp.StatusCode, err, b)
	}
	if info.Version["number"] != DefaultElasticsearchVersion || info.Version["build_flavor"] != "default" || info.Tagline != "You Know, for Search" ||
		info.Version["lucene_version"] == nil || info.Version["minimum_wire_compatibility_version"] == nil || info.Version["minimum_index_compatibility_version"] == nil {
		t.Errorf("GET /: %s", b)
	}
	cases := []struct {
		method, path string
		hdr          []string
		status       int
		ctype, want  string
	}{
		{"HEAD", "/", nil, 200, "application/json", ""},
		{"GET", "/", []string{"Accept", "application/vnd.elasticsearch+json; compatible-with=8"}, 200, "application/vnd.elasticsearch+json;compatible-with=8", `"number": "8.17.0"`},
		{"GET", "/", []string{"Accept", "application/vnd.elasticsearch+json;compatible-with=7"}, 200, "application/vnd.elasticsearch+json;compatible-with=7", ""},
		{"GET", "/", []string{"Accept", "application/vnd.elasticsearch+json; compatible-with=9"}, 400, "application/json", "media_type_header_exception"},
		{"GET", "/", []string{"Accept", "application/vnd.elasticsearch+json; compatible-with=8", "Content-Type", "application/vnd.elasticsearch+json; compatible-with=7"}, 400, "application/json", "compatible-with must be 8 or 7 on both"},
		{"GET", "/_license", nil, 200, "application/json", `"status":"active"`},
		{"GET", "/_xpack", nil, 200, "application/json", `"ilm":{"available":false,"enabled":false}`},
		{"GET", "/_cluster/health", nil, 200, "application/json", `"status":"green"`},
		{"HEAD", "/_index_template/filebeat-8.17.0", nil, 200, "application/json", ""},
		{"GET", "/_index_template/filebeat-8.17.0", nil, 200, "application/json", `"name":"filebeat-8.17.0"`},
		{"PUT", "/_index_template/filebeat-8.17.0", nil, 200, "application/json", `{"acknowledged":true}`},
		{"GET", "/_ilm/policy/filebeat", nil, 200, "application/json", `"filebeat":{`},
		{"PUT", "/_ilm/policy/filebeat", nil, 200, "application/json", `{"acknowledged":true}`},
		{"GET", "/_ingest/pipeline/p1", nil, 200, "application/json", `"p1":{`},
		{"PUT", "/_data_stream/logs-x-default", nil, 200, "application/json", `{"acknowledged":true}`},
		{"GET", "/_data_stream/logs-x-default/_lifecycle", nil, 200, "application/json", `"lifecycle"`},
		{"GET", "/_template/old", nil, 200, "application/json", `"old":{`},
		{"GET", "/_component_template/c", nil, 200, "application/json", `"component_templates"`},
		{"GET", "/_bulk", nil, 405, "application/json", "Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [POST, PUT]"},
		{"POST", "/_license", nil, 405, "application/json", "allowed: [GET, HEAD]"},
	}
	for _, c := range cases {
		resp, b := r.do(t, c.method, c.path, nil, c.hdr...)
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != c.ctype || resp.Header.Get("X-Elastic-Product") != "Elasticsearch" || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %s %v: %d %q %q\n%s", c.method, c.path, c.hdr, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Elastic-Product"), b)
		}
	}
	// Other paths belong to serve's API.
	for _, p := range []string{"/healthz", "/_nodes/x/y/z", "/api/v1/indicators", "/a/b/c"} {
		if resp, _ := r.do(t, "GET", p, nil); resp.StatusCode != http.StatusTeapot {
			t.Errorf("GET %s: %d; want it passed on", p, resp.StatusCode)
		}
	}
}

func TestAuth(t *testing.T) {
	const token = "0123456789abcdef-token"
	r := newRig(t, testStore(t), false, Options{Auth: Auth{Token: token, Username: "shipper", Password: "pw"}})
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	apiKey := "ApiKey " + base64.StdEncoding.EncodeToString([]byte("filebeat:"+token))
	cases := []struct {
		name, authz string
		ok          bool
	}{
		{"none", "", false},
		{"bearer", "Bearer " + token, true},
		{"bearer wrong", "Bearer " + token + "x", false},
		{"api key encoded", apiKey, true},
		{"api key raw", "ApiKey " + token, true},
		{"api key wrong", "ApiKey " + base64.StdEncoding.EncodeToString([]byte("filebeat:nope")), false},
		{"basic", basic("shipper", "pw"), true},
		{"basic wrong password", basic("shipper", "pw2"), false},
		{"basic wrong user", basic("other", "pw"), false},
		{"other scheme", "Digest x", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.authz != "" {
				hdr = []string{"Authorization", c.authz}
			}
			for _, path := range []string{"/", "/_bulk", "/api/v1/events"} {
				method := "POST"
				if path == "/" {
					method = "GET"
				}
				resp, b := r.do(t, method, path, []byte(`{"index":{}}`+"\n{}\n"), hdr...)
				if c.ok && resp.StatusCode != 200 {
					t.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
				}
				if !c.ok {
					if resp.StatusCode != 401 || len(resp.Header.Values("WWW-Authenticate")) != 3 {
						t.Errorf("%s %s: %d %v %s; want 401 with challenges", method, path, resp.StatusCode, resp.Header, b)
					}
					if strings.Contains(string(b), token) || strings.Contains(string(b), "pw") {
						t.Errorf("401 answer shows a credential: %s", b)
					}
				}
			}
		})
	}
	// healthz and serve's API are not the inputs'.
	if resp, _ := r.do(t, "GET", "/healthz", nil); resp.StatusCode != http.StatusTeapot {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
}
