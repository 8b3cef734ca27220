// Package fakeapi holds what every fake vendor API (tcfake, tcnfake, …)
// needs besides the vendor's own endpoints: a queue of injected faults and
// a log of the requests served, counted per endpoint. Both are safe for
// concurrent use.
package fakeapi

import (
	"slices"
	"sync"
)

// Faults is a queue of injected faults of a fake's own fault type F.
type Faults[F any] struct {
	mu sync.Mutex
	q  []pending[F]
}

type pending[F any] struct {
	f        F
	endpoint string // "" matches every endpoint
	n        int
}

// Add makes the next n requests to endpoint ("" for any) get f. Faults are
// used in the order they were added.
func (fs *Faults[F]) Add(f F, endpoint string, n int) {
	if n <= 0 {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.q = append(fs.q, pending[F]{f, endpoint, n})
}

// Take returns the first fault that matches endpoint and uses it once.
func (fs *Faults[F]) Take(endpoint string) (F, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := range fs.q {
		p := &fs.q[i]
		if p.endpoint == "" || p.endpoint == endpoint {
			f := p.f
			if p.n--; p.n == 0 {
				fs.q = slices.Delete(fs.q, i, i+1)
			}
			return f, true
		}
	}
	var zero F
	return zero, false
}

// Clear drops the faults not used yet.
func (fs *Faults[F]) Clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.q = nil
}

// Log records a fake's requests (of its own type R) with their endpoints,
// and counts the requests per endpoint, answered or not.
type Log[R any] struct {
	mu      sync.Mutex
	entries []entry[R]
	count   map[string]int
}

type entry[R any] struct {
	endpoint string
	r        R
}

// Hit counts one request to endpoint.
func (l *Log[R]) Hit(endpoint string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == nil {
		l.count = map[string]int{}
	}
	l.count[endpoint]++
}

// Add logs a request to endpoint.
func (l *Log[R]) Add(endpoint string, r R) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, entry[R]{endpoint, r})
}

// All returns a copy of the log.
func (l *Log[R]) All() []R { return l.filter(func(string) bool { return true }) }

// To returns the logged requests to one endpoint.
func (l *Log[R]) To(endpoint string) []R {
	return l.filter(func(ep string) bool { return ep == endpoint })
}

func (l *Log[R]) filter(keep func(endpoint string) bool) []R {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []R
	for _, e := range l.entries {
		if keep(e.endpoint) {
			out = append(out, e.r)
		}
	}
	return out
}

// Count returns the number of requests to endpoint, failed ones included.
func (l *Log[R]) Count(endpoint string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[endpoint]
}

// Reset clears the log and the counts.
func (l *Log[R]) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = nil
	clear(l.count)
}
