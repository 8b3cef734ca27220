package prefetch

import (
	"testing"
	"unsafe"
)

// TestFetch: prefetching lines of a live array, and nil, which is not
// mapped, neither faults nor
// changes memory, and Fetch forgets what was added.
func TestFetch(t *testing.T) {
	buf := make([]uint64, 1<<16)
	for i := range buf {
		buf[i] = uint64(i)
	}
	var s Addrs
	for i := 0; i < len(buf); i += 8 {
		s.Add(unsafe.Pointer(&buf[i]))
	}
	s.Add(nil)
	if s.Len() != len(buf)/8+1 {
		t.Fatalf("Len %d, want %d", s.Len(), len(buf)/8+1)
	}
	s.Fetch()
	if s.Len() != 0 {
		t.Errorf("Len after Fetch %d, want 0", s.Len())
	}
	for i := range buf {
		if buf[i] != uint64(i) {
			t.Fatalf("buf[%d] = %d after a prefetch", i, buf[i])
		}
	}
	s.Fetch() // nothing added: no call
}

func BenchmarkFetch(b *testing.B) {
	buf := make([]uint64, 1<<20)
	var s Addrs
	for i := 0; b.Loop(); i++ {
		for k := range 8 {
			s.Add(unsafe.Pointer(&buf[(i*8+k)*4099&(len(buf)-1)]))
		}
		s.Fetch()
	}
}
