// Package hugemem allocates arrays that are read at random, one element
// per lookup (Bloom filters, direct-mapped caches), on transparent huge
// pages. With 4 KiB pages nearly every such read of an array of a few
// hundred kilobytes or more also misses the TLB, and on a virtual machine
// a TLB miss walks two page tables; a 2 MiB page covers what 512 small
// pages do.
package hugemem

import "unsafe"

// HugePage is the size of a transparent huge page on the platforms vigil
// runs on (x86-64, and arm64 with 4 KiB base pages).
const HugePage = 2 << 20

// Slice returns a zeroed slice of n elements (len and cap n) that starts
// on a huge page boundary and whose whole huge pages the kernel is asked
// to back with transparent huge pages, on Linux. It takes up to one huge
// page more than the elements need, so callers use it for arrays of a
// few hundred kilobytes and more. Where the advice is not followed
// (another platform, huge pages disabled), the memory is plain.
func Slice[T any](n int) []T {
	var t T
	size := int(unsafe.Sizeof(t))
	if n <= 0 || size == 0 || HugePage%size != 0 {
		return make([]T, max(n, 0))
	}
	per := HugePage / size
	m := (n + per - 1) / per * per // whole huge pages
	buf := make([]T, m+per)        // and one more, to align the start
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	gap := int((HugePage - addr%HugePage) % HugePage)
	if gap%size != 0 {
		return buf[:n:n]
	}
	s := buf[gap/size : gap/size+m : gap/size+m]
	advise(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), m*size))
	return s[:n:n]
}
