package ingest

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// httpError is a request that is answered with an error status.
type httpError struct {
	status int
	esType string // the Elasticsearch error type of the ES-compatible answer
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// queueError turns a failed reservation into its answer: 429 when the
// queue is full, 503 when vigil is stopping.
func (p *Pipeline) queueError(err error) *httpError {
	if errors.Is(err, errFull) {
		p.stats.rejected.Add(1)
		return &httpError{http.StatusTooManyRequests, "es_rejected_execution_exception",
			fmt.Sprintf("%v (%d bytes of requests wait to be matched); retry later", err, p.q.usedBytes())}
	}
	return &httpError{http.StatusServiceUnavailable, "node_closed_exception", err.Error()}
}

func (p *Pipeline) tooLarge() *httpError {
	p.stats.tooLarge.Add(1)
	return &httpError{http.StatusRequestEntityTooLarge, "content_too_long_exception",
		fmt.Sprintf("the request body is larger than the inputs' limit of %d bytes (detection.inputs.max_body_bytes, after gzip decoding): send smaller batches", p.opts.MaxBodyBytes)}
}

// readBody reads the request body, gzip-decoded when its Content-Encoding
// says so, and charges its bytes (and a request's cost) to the queue as
// it grows. It returns the body and the bytes charged; on failure nothing
// stays charged.
func (p *Pipeline) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int64, *httpError) {
	max := p.opts.MaxBodyBytes
	var src io.Reader = http.MaxBytesReader(w, r.Body, max)
	gz := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz = true
	default:
		return nil, 0, &httpError{http.StatusUnsupportedMediaType, "illegal_argument_exception",
			fmt.Sprintf("Content-Encoding %q is not supported (allowed: gzip, identity)", enc)}
	}
	size := int64(64 << 10)
	if !gz && r.ContentLength >= 0 {
		if r.ContentLength > max {
			return nil, 0, p.tooLarge()
		}
		size = r.ContentLength + 1 // room to read the end without growing
	}
	size = min(size, max+1)
	charge := jobCharge + size
	if err := p.q.reserve(charge); err != nil {
		return nil, 0, p.queueError(err)
	}
	fail := func(e *httpError) ([]byte, int64, *httpError) {
		p.q.release(charge)
		return nil, 0, e
	}
	if gz {
		zr, err := gzip.NewReader(src)
		if err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				return fail(p.tooLarge())
			}
			return fail(&httpError{http.StatusBadRequest, "parse_exception", fmt.Sprintf("Content-Encoding is gzip, but the body is not gzip: %v", err)})
		}
		defer zr.Close()
		src = zr
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return fail(p.tooLarge())
			}
			grown := min(2*int64(cap(buf)), max+1)
			if err := p.q.reserve(grown - int64(cap(buf))); err != nil {
				return fail(p.queueError(err))
			}
			charge += grown - int64(cap(buf))
			nb := make([]byte, len(buf), grown)
			copy(nb, buf)
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				return fail(p.tooLarge())
			}
			if gz {
				return fail(&httpError{http.StatusBadRequest, "parse_exception", fmt.Sprintf("the gzip body is corrupt: %v", err)})
			}
			return fail(&httpError{http.StatusBadRequest, "parse_exception", fmt.Sprintf("reading the body: %v", err)})
		}
	}
	if int64(len(buf)) > max {
		return fail(p.tooLarge())
	}
	return buf, charge, nil
}

// charge adds n bytes to a job's charge, or fails as readBody does (the
// job's charge then released).
func (p *Pipeline) chargeMore(j *job, n int64) *httpError {
	if err := p.q.reserve(n); err != nil {
		p.q.release(j.charge)
		j.charge = 0
		return p.queueError(err)
	}
	j.charge += n
	return nil
}
