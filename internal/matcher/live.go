package matcher

import "sync/atomic"

// Live holds the current Index. Matching goroutines Load it for each event
// (or batch) while a new Index is built and swapped in, so matching never
// waits for a build. The zero Live holds a nil *Index, which matches
// nothing.
type Live struct {
	p atomic.Pointer[Index]
}

// Load returns the current Index.
func (l *Live) Load() *Index { return l.p.Load() }

// Swap makes x the current Index and returns the previous one. Lookups
// already running on the previous Index finish on it.
func (l *Live) Swap(x *Index) *Index { return l.p.Swap(x) }
