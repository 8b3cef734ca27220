package hugemem

import "syscall"

// madvCollapse is MADV_COLLAPSE (Linux 6.1), which the syscall package
// does not name.
const madvCollapse = 25

// advise asks for huge pages for b (MADV_HUGEPAGE, for the pages not
// touched yet), and collapses those already touched (MADV_COLLAPSE, which
// older kernels refuse). Both are advice: errors are ignored.
func advise(b []byte) {
	if syscall.Madvise(b, syscall.MADV_HUGEPAGE) == nil {
		syscall.Madvise(b, madvCollapse)
	}
}
