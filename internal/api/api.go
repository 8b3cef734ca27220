// Package api is vigil's HTTP server: health, and (in later versions) the
// REST API and the feeds.
package api

import (
	"encoding/json"
	"net/http"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/scheduler"
)

// Server holds what the handlers read.
type Server struct {
	Scheduler *scheduler.Scheduler
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	return mux
}

type health struct {
	Status   string             `json:"status"`
	Version  string             `json:"version"`
	Datasets []scheduler.Status `json:"datasets"`
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
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(h)
}
