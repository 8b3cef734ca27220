package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
)

// eventsResponse is the answer of POST /api/v1/events.
type eventsResponse struct {
	Events    int `json:"events"`    // events matched
	Alerts    int `json:"alerts"`    // alerts raised (and stored)
	Malformed int `json:"malformed"` // lines that were not a JSON object
	Failed    int `json:"failed"`    // events that could not be matched
	// Errors lists the malformed and failed lines, the first 20.
	Errors []lineError `json:"errors"`
}

// handleEvents is POST /api/v1/events: NDJSON events, one a line, gzip
// accepted. Blank lines are skipped; a malformed line is counted and
// reported with its line number, and the rest of the body is matched.
func (p *Pipeline) handleEvents(w http.ResponseWriter, r *http.Request) {
	body, charge, herr := p.readBody(w, r)
	if herr != nil {
		writeAPIError(w, herr)
		return
	}
	j := &job{body: body, charge: charge}
	err := p.submit(r.Context(), j)
	defer p.release(j)
	if err != nil {
		writeAPIError(w, p.submitError(err))
		return
	}
	res := eventsResponse{Events: j.res.events, Alerts: j.res.alerts, Malformed: j.res.malformed, Failed: j.res.failed, Errors: j.res.lines}
	if res.Errors == nil {
		res.Errors = []lineError{}
	}
	status := http.StatusOK
	if res.Failed > 0 {
		status = http.StatusInternalServerError // a store fault: the events may be sent again
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(res)
}

// submitError is the answer of a job that Run did not complete.
func (p *Pipeline) submitError(err error) *httpError {
	if err == errClosed || err == errFull {
		return p.queueError(err)
	}
	return &httpError{http.StatusServiceUnavailable, "exception", err.Error()}
}

// writeAPIError writes vigil's own error answer: {"error": "..."}.
func writeAPIError(w http.ResponseWriter, e *httpError) {
	w.Header().Set("Content-Type", "application/json")
	if e.status == http.StatusTooManyRequests || e.status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"error": e.msg})
}

var bom = []byte("\xef\xbb\xbf")

// matchNDJSON matches each line of an NDJSON body. The body stays put
// while it is matched: each line is matched with the next (see
// detect.Engine.MatchAhead).
func (p *Pipeline) matchNDJSON(ctx context.Context, j *job) {
	body := bytes.TrimPrefix(j.body, bom)
	r := &j.res
	n := 0
	// nextEvent returns the next line that is not blank, or nil, and
	// counts the lines read.
	nextEvent := func() []byte {
		for len(body) > 0 {
			n++
			line := body
			if i := bytes.IndexByte(body, '\n'); i >= 0 {
				line, body = body[:i], body[i+1:]
			} else {
				body = nil
			}
			if len(bytes.TrimSpace(line)) > 0 {
				return line
			}
		}
		return nil
	}
	line := nextEvent()
	for line != nil {
		lineNo := n
		next := nextEvent()
		out, msg := p.match(ctx, r, line, next)
		if out != matched && len(r.lines) < maxLinesShown {
			what := "malformed: "
			if out == failed {
				what = "not matched: "
			}
			r.lines = append(r.lines, lineError{Line: lineNo, Error: what + msg})
		}
		line = next
	}
}
