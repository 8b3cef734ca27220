package mispfeed

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// Routes.
const (
	feedPrefix  = "misp"
	devicesPath = "/api/v1/devices"
)

// Wrap serves the MISP feed routes and the device API, and passes every
// other request to next:
//
//	GET /misp/{group}/manifest.json   the device's manifest (this is its pull)
//	GET /misp/{group}/{uuid}.json     one event
//	GET /misp/{group}/hashes.csv      md5 of each value, with its event
//	GET|POST /api/v1/devices          list or add devices
//	DELETE /api/v1/devices/{name}     remove a runtime device
//
// The feed routes tolerate repeated slashes (MISP asks for
// //manifest.json when a feed URL ends in "/"), so they are matched here,
// before a ServeMux would redirect such paths.
func (s *Service) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs := segments(r.URL.Path)
		switch {
		case len(segs) > 0 && segs[0] == feedPrefix:
			s.serveFeed(w, r, segs[1:])
		case r.URL.Path == devicesPath || strings.HasPrefix(r.URL.Path, devicesPath+"/"):
			s.serveDevices(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// segments splits a path on runs of slashes.
func segments(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

const realm = `Basic realm="vigil MISP feed", charset="UTF-8"`

func (s *Service) serveFeed(w http.ResponseWriter, r *http.Request, segs []string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		httpError(w, http.StatusMethodNotAllowed, "the feed is read with GET")
		return
	}
	if len(segs) != 2 {
		httpError(w, http.StatusNotFound, "not a feed file: use /misp/{group}/manifest.json, /misp/{group}/{uuid}.json or /misp/{group}/hashes.csv")
		return
	}
	group, file := segs[0], segs[1]
	ctx := r.Context()
	user, pass, ok := r.BasicAuth()
	if !ok {
		w.Header().Set("WWW-Authenticate", realm)
		httpError(w, http.StatusUnauthorized, "HTTP basic auth required: the device's username and password (or key)")
		return
	}
	dev, ok, err := s.Authenticate(ctx, user, pass)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !ok {
		s.log().Warn("misp feed: credentials rejected", "username", user, "remote", r.RemoteAddr, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", realm)
		httpError(w, http.StatusUnauthorized, "unknown username or wrong password")
		return
	}
	if _, configured := s.Config.Group(group); !configured || !slices.Contains(dev.Groups, group) {
		s.log().Warn("misp feed: group refused", "device", dev.Name, "group", group, "remote", r.RemoteAddr)
		httpError(w, http.StatusForbidden, "device "+dev.Name+" may not pull group "+group)
		return
	}
	switch {
	case file == "manifest.json":
		s.serveManifest(w, r, dev, group)
	case file == "hashes.csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		s.stream(w, r, func(out io.Writer) error { return s.WriteHashes(ctx, out, dev, group) })
	case strings.HasSuffix(file, ".json") && isUUIDText(strings.TrimSuffix(file, ".json")):
		uuid := strings.TrimSuffix(file, ".json")
		if _, ok, err := s.Store.EventByUUID(ctx, dev.ID, group, strings.ToLower(uuid)); err != nil || !ok {
			if err != nil {
				s.serverError(w, r, err)
				return
			}
			httpError(w, http.StatusNotFound, "no event "+uuid+" in this feed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		s.stream(w, r, func(out io.Writer) error { return s.WriteEvent(ctx, out, dev, group, uuid) })
	default:
		httpError(w, http.StatusNotFound, "no file "+file+" in this feed")
	}
}

// serveManifest answers the manifest. A GET is the device's pull; a HEAD
// only shows the manifest as it stands.
func (s *Service) serveManifest(w http.ResponseWriter, r *http.Request, dev Device, group string) {
	ctx := r.Context()
	if r.Method == http.MethodGet {
		if _, err := s.Pull(ctx, dev, group); err != nil {
			s.serverError(w, r, err)
			return
		}
	}
	body, err := s.Manifest(ctx, dev, group)
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	gz := acceptsGzip(r)
	suffix := ""
	if gz {
		suffix = "-gz" // a strong ETag names one encoding of the body
	}
	tag := etag(body, suffix)
	h := w.Header()
	h.Set("ETag", tag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	if noneMatch(r.Header.Get("If-None-Match"), tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	s.stream(w, r, func(out io.Writer) error {
		_, err := out.Write(body)
		return err
	})
}

// noneMatch reports whether an If-None-Match header names tag (or is "*").
func noneMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for _, e := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(e), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// stream writes a body with write, gzip-compressed when the client takes
// it. An error after the first byte can only be logged.
func (s *Service) stream(w http.ResponseWriter, r *http.Request, write func(io.Writer) error) {
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	var out io.Writer = w
	var zw *gzip.Writer
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Vary", "Accept-Encoding")
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		out = zw
	}
	err := write(out)
	if zw != nil && err == nil {
		err = zw.Close()
	}
	if err != nil && r.Context().Err() == nil {
		s.log().Error("misp feed: response failed", "path", r.URL.Path, "err", err)
	}
}

func isUUIDText(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Service) serverError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	s.log().Error("misp: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	httpError(w, http.StatusInternalServerError, "internal error; see vigil's log")
}

func httpError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code, b = http.StatusInternalServerError, *bytes.NewBufferString(`{"error":"encode response"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// serveDevices is the device API. It is guarded by feeds.misp.admin_token
// as a bearer token, and off when no token is configured.
func (s *Service) serveDevices(w http.ResponseWriter, r *http.Request) {
	token := s.Config.AdminToken.Value()
	if token == "" {
		httpError(w, http.StatusForbidden, "the device API is off: set feeds.misp.admin_token to turn it on")
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare(hashKey(got), hashKey(token)) != 1 {
		s.log().Warn("device API: token rejected", "remote", r.RemoteAddr, "method", r.Method)
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil device API"`)
		httpError(w, http.StatusUnauthorized, "Authorization: Bearer <feeds.misp.admin_token> required")
		return
	}
	ctx := r.Context()
	name, one := strings.CutPrefix(r.URL.Path, devicesPath+"/")
	switch {
	case !one && r.Method == http.MethodGet:
		list, err := s.Devices(ctx)
		if err != nil {
			s.serverError(w, r, err)
			return
		}
		if list == nil {
			list = []DeviceStatus{}
		}
		writeJSON(w, http.StatusOK, list)
	case !one && r.Method == http.MethodPost:
		var req struct {
			Name   string   `json:"name"`
			Groups []string `json:"groups"`
			Limit  int      `json:"limit"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			httpError(w, http.StatusBadRequest, "the body must be a JSON object {\"name\": …, \"groups\": […], \"limit\": N}: "+err.Error())
			return
		}
		nd, err := s.AddDevice(ctx, req.Name, req.Groups, req.Limit)
		switch {
		case errors.Is(err, ErrExists):
			httpError(w, http.StatusConflict, err.Error())
		case err != nil:
			httpError(w, http.StatusBadRequest, err.Error())
		default:
			writeJSON(w, http.StatusCreated, struct {
				DeviceStatus
				Key  string `json:"key"`
				Note string `json:"note"`
			}{status(nd.Device, s.clock().Now()), nd.Key, "the key is shown this once; vigil keeps only its hash"})
		}
	case one && name != "" && r.Method == http.MethodDelete:
		err := s.RemoveDevice(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			httpError(w, http.StatusNotFound, err.Error())
		case errors.Is(err, ErrConfigured):
			httpError(w, http.StatusConflict, err.Error())
		case err != nil:
			s.serverError(w, r, err)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	case one:
		w.Header().Set("Allow", "DELETE")
		httpError(w, http.StatusMethodNotAllowed, "a device is removed with DELETE "+devicesPath+"/{name}")
	default:
		w.Header().Set("Allow", "GET, POST")
		httpError(w, http.StatusMethodNotAllowed, "devices are listed with GET and added with POST")
	}
}
