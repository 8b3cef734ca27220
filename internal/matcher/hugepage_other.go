//go:build !linux

package matcher

// hugeWords returns n zeroed words (huge pages are only asked for on
// Linux).
func hugeWords(n int) []uint64 { return make([]uint64, n) }
