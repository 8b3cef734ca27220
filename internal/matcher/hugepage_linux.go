package matcher

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on the platforms vigil
// runs on (x86-64 and arm64 with 4 KiB base pages).
const hugePage = 2 << 20

// madvCollapse is MADV_COLLAPSE (Linux 6.1), which the syscall package
// does not name.
const madvCollapse = 25

// hugeWords returns n zeroed words whose whole huge pages the kernel is
// asked to back with transparent huge pages (MADV_HUGEPAGE, then
// MADV_COLLAPSE for pages already touched). A filter is probed at random,
// one word per lookup: with 4 KiB pages nearly every probe of a filter of
// megabytes also misses the TLB, and on a virtual machine a TLB miss walks
// two page tables. Small arrays, and kernels without transparent huge
// pages, get plain memory (the advice is only advice).
func hugeWords(n int) []uint64 {
	const per = hugePage / 8
	if n < per/2 {
		return make([]uint64, n)
	}
	// Round up to whole huge pages, plus one to align the start.
	m := (n + per - 1) / per * per
	buf := make([]uint64, m+per)
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	skip := int((hugePage-addr%hugePage)%hugePage) / 8
	words := buf[skip : skip+m : skip+m]
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(words))), m*8)
	if syscall.Madvise(b, syscall.MADV_HUGEPAGE) == nil {
		syscall.Madvise(b, madvCollapse)
	}
	return words[:n:n]
}
