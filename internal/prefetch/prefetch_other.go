//go:build !amd64

package prefetch

// fetch does nothing where vigil has no prefetch instruction: the lines
// are read when they are used.
func fetch([]uintptr) {}
