package ingest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Handler serves the inputs' routes and passes every other request to
// next (serve's own API):
//
//	POST /api/v1/events                          NDJSON events
//	GET|HEAD /                                   Elasticsearch's info (the product check)
//	POST|PUT /_bulk, /{index}/_bulk              the bulk API
//	POST /{index}/_doc, PUT|POST /{index}/_doc/{id}, /{index}/_create/{id}
//	GET /_license, /_xpack, /_cluster/health     what shippers check at startup
//	/_index_template/{name}, /_component_template/{name}, /_template/{name},
//	/_ilm/policy/{name}, /_ingest/pipeline/{name}, /_data_stream/{name},
//	/_data_stream/{name}/_lifecycle              acknowledged, kept nowhere
//
// Every route asks for the configured credentials. The routes are matched
// here rather than as ServeMux patterns, whose rules would reject
// /{index}/_bulk beside /_index_template/{name} as overlapping.
func (p *Pipeline) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, methods, vals := p.route(r.URL.Path)
		switch {
		case h == nil:
			if next == nil {
				http.NotFound(w, r)
				return
			}
			next.ServeHTTP(w, r)
			return
		case !slices.Contains(methods, r.Method):
			w.Header().Set("Allow", strings.Join(methods, ", "))
			he := &httpError{http.StatusMethodNotAllowed, "illegal_argument_exception",
				fmt.Sprintf("Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]", r.URL.Path, r.Method, strings.Join(methods, ", "))}
			if strings.HasPrefix(r.URL.Path, "/api/") {
				writeAPIError(w, he)
				return
			}
			p.es(func(e *esWriter, _ *http.Request) { e.error(he) })(w, r)
			return
		}
		for k, v := range vals {
			r.SetPathValue(k, v)
		}
		h(w, r)
	})
}

var (
	get       = []string{http.MethodGet, http.MethodHead}
	write     = []string{http.MethodPost, http.MethodPut}
	anyMethod = []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete}
)

// route returns the handler of a path, its methods and its path values,
// or a nil handler for a path that is not the inputs'.
func (p *Pipeline) route(path string) (http.HandlerFunc, []string, map[string]string) {
	trimmed := strings.Trim(path, "/")
	if trimmed == "" {
		return p.es(p.handleInfo), get, nil
	}
	s := strings.Split(trimmed, "/")
	switch len(s) {
	case 1:
		switch s[0] {
		case "_bulk":
			return p.es(p.handleBulk), write, nil
		case "_license":
			return p.es(p.handleLicense), get, nil
		case "_xpack":
			return p.es(p.handleXPack), get, nil
		}
	case 2:
		switch {
		case s[0] == "_cluster" && s[1] == "health":
			return p.es(p.handleHealth), get, nil
		case strings.HasPrefix(s[0], "_"):
			if body, ok := probes[s[0]]; ok {
				return p.es(p.probe(body)), anyMethod, map[string]string{"name": s[1]}
			}
		case s[1] == "_bulk":
			return p.es(p.handleBulk), write, map[string]string{"index": s[0]}
		case s[1] == "_doc":
			return p.es(p.handleDoc), []string{http.MethodPost}, map[string]string{"index": s[0]}
		}
	case 3:
		switch {
		case s[0] == "api" && s[1] == "v1" && s[2] == "events":
			return p.withAuth(p.handleEvents), []string{http.MethodPost}, nil
		case s[0] == "_ilm" && s[1] == "policy", s[0] == "_ingest" && s[1] == "pipeline":
			return p.es(p.probe(probes[s[0]])), anyMethod, map[string]string{"name": s[2]}
		case s[0] == "_data_stream" && s[2] == "_lifecycle":
			return p.es(p.probe(lifecycleBody)), anyMethod, map[string]string{"name": s[1]}
		case strings.HasPrefix(s[0], "_"):
		case s[1] == "_doc":
			return p.es(p.handleDoc), write, map[string]string{"index": s[0], "id": s[2]}
		case s[1] == "_create":
			return p.es(p.handleDoc), write, map[string]string{"index": s[0], "id": s[2], "op": "create"}
		}
	}
	return nil, nil, nil
}
