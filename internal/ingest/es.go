package ingest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/vigil-ti/vigil"
)

// esWriter answers a request of the Elasticsearch-compatible surface:
// every answer carries X-Elastic-Product: Elasticsearch (clients since
// 7.14 refuse a 2xx answer without it), and the Content-Type the client
// negotiated with a compatible-with Accept header.
type esWriter struct {
	w  http.ResponseWriter
	ct string
}

func (e *esWriter) header(status int) {
	e.w.Header().Set("Content-Type", e.ct)
	e.w.WriteHeader(status)
}

// json writes v as the answer.
func (e *esWriter) json(status int, v any) {
	e.header(status)
	json.NewEncoder(e.w).Encode(v)
}

// raw writes a JSON body as the answer.
func (e *esWriter) raw(status int, body []byte) {
	e.header(status)
	e.w.Write(body)
}

// error writes Elasticsearch's error answer:
// {"error":{"root_cause":[{type, reason}],"type","reason"},"status":N}.
func (e *esWriter) error(he *httpError) {
	if he.status == http.StatusTooManyRequests || he.status == http.StatusServiceUnavailable {
		e.w.Header().Set("Retry-After", "1")
	}
	cause := map[string]string{"type": he.esType, "reason": he.msg}
	e.json(he.status, map[string]any{
		"error":  map[string]any{"root_cause": []any{cause}, "type": he.esType, "reason": he.msg},
		"status": he.status,
	})
}

// esMajor returns the major version of an Elasticsearch version, 7 to 9.
func esMajor(v string) (int, error) {
	s, _, _ := strings.Cut(v, ".")
	major, err := strconv.Atoi(s)
	if err != nil || major < 7 || major > 9 {
		return 0, fmt.Errorf("ingest: Elasticsearch version %q is not 7.x.y, 8.x.y or 9.x.y", v)
	}
	return major, nil
}

// compatible returns the compatible-with version a media type asks for.
func compatible(h string) (string, bool) {
	for _, part := range strings.Split(h, ",") {
		_, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if v, ok := params["compatible-with"]; ok {
			return v, true
		}
	}
	return "", false
}

// es wraps a handler of the Elasticsearch-compatible surface: it checks
// the credentials and negotiates the compatible version as Elasticsearch
// does (the asked major, or the one before).
func (p *Pipeline) es(h func(*esWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		e := &esWriter{w: w, ct: "application/json"}
		if !p.authorized(r) {
			p.unauthorized(w)
			e.error(&httpError{http.StatusUnauthorized, "security_exception",
				fmt.Sprintf("missing or wrong authentication credentials for REST request [%s]", r.URL.Path)})
			return
		}
		accept, okA := compatible(r.Header.Get("Accept"))
		ctype, okC := compatible(r.Header.Get("Content-Type"))
		if okA || okC {
			v := accept
			if !okA {
				v = ctype
			}
			n, err := strconv.Atoi(v)
			if (okA && okC && accept != ctype) || err != nil || (n != p.major && n != p.major-1) {
				e.error(&httpError{http.StatusBadRequest, "media_type_header_exception", fmt.Sprintf(
					"Invalid media-type value on headers [Accept, Content-Type]: compatible-with must be %d or %d on both (found Accept=%q, Content-Type=%q); this server reports version %s (detection.inputs.elasticsearch_version)",
					p.major, p.major-1, r.Header.Get("Accept"), r.Header.Get("Content-Type"), p.opts.ElasticsearchVersion)})
				return
			}
			e.ct = "application/vnd.elasticsearch+json;compatible-with=" + v
		}
		h(e, r)
	}
}

// lucene is the Lucene version of each Elasticsearch major that GET /
// reports, with the oldest wire and index versions it reads.
var lucene = map[int][3]string{
	7: {"8.11.3", "6.8.0", "6.0.0-beta1"},
	8: {"9.12.0", "7.17.0", "7.0.0"},
	9: {"10.1.0", "8.18.0", "8.0.0"},
}

// clusterUUID is a stable id derived from the name.
func clusterUUID(name string) string {
	sum := sha256.Sum256([]byte("vigil cluster " + name))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// infoBody is the answer of GET /, which clients read to learn the
// product and its version.
func infoBody(name, version string, major int) []byte {
	l := lucene[major]
	b, _ := json.MarshalIndent(map[string]any{
		"name":         name,
		"cluster_name": name,
		"cluster_uuid": clusterUUID(name),
		"version": map[string]any{
			"number":                              version,
			"build_flavor":                        "default",
			"build_type":                          "vigil",
			"build_hash":                          "vigil-" + vigil.Version,
			"build_snapshot":                      false,
			"lucene_version":                      l[0],
			"minimum_wire_compatibility_version":  l[1],
			"minimum_index_compatibility_version": l[2],
		},
		"tagline": "You Know, for Search",
	}, "", "  ")
	return append(b, '\n')
}

// handleInfo is GET / (and HEAD /).
func (p *Pipeline) handleInfo(e *esWriter, r *http.Request) {
	e.raw(http.StatusOK, p.info)
}

// handleLicense is GET /_license: an active basic license, which Logstash
// and Beats check before they use a cluster.
func (p *Pipeline) handleLicense(e *esWriter, r *http.Request) {
	e.json(http.StatusOK, map[string]any{"license": map[string]any{
		"status": "active", "uid": clusterUUID(p.opts.Name + " license"), "type": "basic",
		"issue_date": "2024-01-01T00:00:00.000Z", "issue_date_in_millis": 1704067200000,
		"max_nodes": 1000, "issued_to": p.opts.Name, "issuer": "vigil", "start_date_in_millis": -1,
	}})
}

// handleXPack is GET /_xpack. Index lifecycle management is reported
// unavailable, so that Logstash's ilm_enabled => auto writes to its index
// as named instead of creating rollover aliases.
func (p *Pipeline) handleXPack(e *esWriter, r *http.Request) {
	off := map[string]bool{"available": false, "enabled": false}
	e.json(http.StatusOK, map[string]any{
		"build":   map[string]string{"hash": "vigil-" + vigil.Version},
		"license": map[string]string{"uid": clusterUUID(p.opts.Name + " license"), "type": "basic", "mode": "basic", "status": "active"},
		"features": map[string]any{
			"ilm": off, "security": off, "monitoring": off, "ml": off, "watcher": off,
		},
		"tagline": "You know, for X",
	})
}

// handleHealth is GET /_cluster/health (Vector's health check).
func (p *Pipeline) handleHealth(e *esWriter, r *http.Request) {
	e.json(http.StatusOK, map[string]any{
		"cluster_name": p.opts.Name, "status": "green", "timed_out": false,
		"number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": 0, "active_shards": 0,
		"relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0, "delayed_unassigned_shards": 0,
		"number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
		"active_shards_percent_as_number": 100.0,
	})
}

// probe answers the setup calls shippers make at startup (index
// templates, lifecycle policies, ingest pipelines, data streams, indices)
// as harmless acknowledgements: a HEAD or GET finds the resource, so
// that nothing is created, and a PUT, POST or DELETE is acknowledged.
// vigil keeps none of it. body builds the GET answer from the name.
func (p *Pipeline) probe(body func(name string) any) func(*esWriter, *http.Request) {
	return func(e *esWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			e.json(http.StatusOK, body(r.PathValue("name")))
		default:
			e.json(http.StatusOK, map[string]any{"acknowledged": true})
		}
	}
}

// probes are the setup endpoints, by their first path segment (the
// name follows it; /_ilm/policy/{name} and /_ingest/pipeline/{name} have
// a segment more), and their GET answers.
var probes = map[string]func(name string) any{
	"_index_template": func(n string) any {
		return map[string]any{"index_templates": []any{map[string]any{"name": n, "index_template": map[string]any{
			"index_patterns": []string{n + "*"}, "template": map[string]any{}, "composed_of": []string{}}}}}
	},
	"_component_template": func(n string) any {
		return map[string]any{"component_templates": []any{map[string]any{"name": n, "component_template": map[string]any{"template": map[string]any{}}}}}
	},
	"_template": func(n string) any {
		return map[string]any{n: map[string]any{"order": 0, "index_patterns": []string{n + "*"}, "settings": map[string]any{}, "mappings": map[string]any{}, "aliases": map[string]any{}}}
	},
	"_ilm": func(n string) any {
		return map[string]any{n: map[string]any{"version": 1, "modified_date": "2024-01-01T00:00:00.000Z", "policy": map[string]any{"phases": map[string]any{}}}}
	},
	"_ingest": func(n string) any {
		return map[string]any{n: map[string]any{"description": "accepted by vigil; not run", "processors": []any{}}}
	},
	"_data_stream": func(n string) any {
		return map[string]any{"data_streams": []any{map[string]any{"name": n, "timestamp_field": map[string]string{"name": "@timestamp"},
			"indices": []any{}, "generation": 1, "status": "GREEN", "template": n}}}
	},
}

// lifecycleBody is the GET answer of /_data_stream/{name}/_lifecycle.
func lifecycleBody(n string) any {
	return map[string]any{"data_streams": []any{map[string]any{"name": n, "lifecycle": map[string]bool{"enabled": true}}}}
}
