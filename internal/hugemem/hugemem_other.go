//go:build !linux

package hugemem

// advise does nothing: huge pages are only asked for on Linux.
func advise([]byte) {}
