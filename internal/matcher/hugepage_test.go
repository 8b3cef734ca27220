package matcher

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestHugeWords: the words are n, zeroed and writable whatever the size;
// on Linux, an array of half a huge page or more starts on a huge page
// boundary (so that the kernel can back it with huge pages).
func TestHugeWords(t *testing.T) {
	const per = 2 << 20 / 8 // words in a huge page
	for _, n := range []int{0, 1, 1000, per/2 - 1, per / 2, per, per + 1, 3*per + 5} {
		w := hugeWords(n)
		if len(w) != n || cap(w) != n {
			t.Fatalf("n=%d: len %d, cap %d", n, len(w), cap(w))
		}
		for i := range w {
			if w[i] != 0 {
				t.Fatalf("n=%d: word %d is %#x, not zero", n, i, w[i])
			}
			w[i] = uint64(i)
		}
		if n > 0 && w[n-1] != uint64(n-1) {
			t.Fatalf("n=%d: last word not written", n)
		}
		if runtime.GOOS == "linux" && n >= per/2 {
			if a := uintptr(unsafe.Pointer(unsafe.SliceData(w))); a%(2<<20) != 0 {
				t.Errorf("n=%d: starts at %#x, not on a 2 MiB boundary", n, a)
			}
		}
	}
}
