// Package api is vigil's HTTP server: health, and (in later versions) the
// REST API and the feeds.
package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/scheduler"
)

// Server holds what the handlers read.
type Server struct {
	Scheduler *scheduler.Scheduler
	// Detection reports the state of detection's inputs and index, when
	// serve runs them; nil otherwise.
	Detection func() DetectionHealth
}

// DetectionHealth is what /healthz says of detection: the index events
// are matched against, and the counts of the HTTP inputs since start.
type DetectionHealth struct {
	Indicators    int       `json:"indicators"`               // in the index
	IndexLoadedAt time.Time `json:"index_loaded_at,omitzero"` // zero until the first index is in
	Requests      int64     `json:"requests"`                 // requests whose events were matched
	Events        int64     `json:"events"`
	Malformed     int64     `json:"malformed"`
	Failed        int64     `json:"failed"` // events that could not be matched (the store failed)
	Alerts        int64     `json:"alerts"`
	Stored        int64     `json:"stored"`    // alerts new to the store
	Rejected      int64     `json:"rejected"`  // requests answered 429 (queue full)
	TooLarge      int64     `json:"too_large"` // requests answered 413
	QueuedBytes   int64     `json:"queued_bytes"`
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

type health struct {
	Status    string             `json:"status"`
	Version   string             `json:"version"`
	Datasets  []scheduler.Status `json:"datasets"`
	Detection *DetectionHealth   `json:"detection,omitempty"`
}

// healthz answers 200 while the process serves. The body lists each
// dataset's schedule, so a stopped source is visible without failing the
// liveness check.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	h := health{Status: "ok", Version: vigil.Version, Datasets: []scheduler.Status{}}
	if s.Scheduler != nil {
		h.Datasets = s.Scheduler.Statuses()
		for _, d := range h.Datasets {
			if d.State == "stopped" {
				h.Status = "degraded"
			}
		}
	}
	if s.Detection != nil {
		d := s.Detection()
		h.Detection = &d
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(h)
}
