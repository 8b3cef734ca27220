// Package prefetch asks the CPU to bring memory into its caches ahead of
// use, without waiting for it: a load that misses the caches holds up
// every instruction after it once the CPU's window of instructions in
// flight is full, while a prefetch lets them run. Code that reads a large
// table at random can then name the lines it will read, do other work
// (read the next event, say), and find them in the cache.
package prefetch

import "unsafe"

// Addrs collects the addresses of the cache lines to prefetch.
type Addrs struct {
	a []uintptr
}

// Add adds the cache line that p points into.
func (s *Addrs) Add(p unsafe.Pointer) { s.a = append(s.a, uintptr(p)) }

// Slice returns the addresses added since the last Fetch; it is valid
// until the next Add or Fetch.
func (s *Addrs) Slice() []uintptr { return s.a }

// Len returns the number of addresses added since the last Fetch.
func (s *Addrs) Len() int { return len(s.a) }

// Fetch prefetches the lines added, into every level of the cache, and
// forgets them. A prefetch never faults: an address that is not mapped is
// ignored.
func (s *Addrs) Fetch() {
	if len(s.a) > 0 {
		fetch(s.a)
		s.a = s.a[:0]
	}
}
