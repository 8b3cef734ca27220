package hugemem

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestSlice: the elements are n, zeroed and writable whatever the size and
// the element type; on Linux, a slice of an element size that divides a
// huge page starts on a huge page boundary.
func TestSlice(t *testing.T) {
	const per = HugePage / 8 // words in a huge page
	for _, n := range []int{0, 1, 1000, per/2 - 1, per / 2, per, per + 1, 3*per + 5} {
		check(t, Slice[uint64](n), n, true)
		check(t, Slice[[2]uint64](n), n, true)
		check(t, Slice[[3]uint64](n), n, false) // 24 bytes: no alignment
	}
	if s := Slice[uint64](-1); len(s) != 0 {
		t.Errorf("n=-1: len %d", len(s))
	}
	if s := Slice[struct{}](5); len(s) != 5 {
		t.Errorf("zero-size elements: len %d", len(s))
	}
}

func check[T comparable](t *testing.T, s []T, n int, aligned bool) {
	t.Helper()
	var zero, one T
	*(*byte)(unsafe.Pointer(&one)) = 1
	if len(s) != n || cap(s) != n {
		t.Fatalf("%T n=%d: len %d, cap %d", s, n, len(s), cap(s))
	}
	for i := range s {
		if s[i] != zero {
			t.Fatalf("%T n=%d: element %d is not zero", s, n, i)
		}
		s[i] = one
	}
	if n > 0 && s[n-1] != one {
		t.Fatalf("%T n=%d: last element not written", s, n)
	}
	if aligned && runtime.GOOS == "linux" && n > 0 {
		if a := uintptr(unsafe.Pointer(unsafe.SliceData(s))); a%HugePage != 0 {
			t.Errorf("%T n=%d: starts at %#x, not on a huge page boundary", s, n, a)
		}
	}
}
