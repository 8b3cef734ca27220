package prefetch

// fetch prefetches each address of addrs (PREFETCHT0).
//
//go:noescape
func fetch(addrs []uintptr)
