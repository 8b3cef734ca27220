package detect

import "testing"

// sameSet returns n hashes of distinct values that fall in the set of h.
func sameSet(c *missCache, h uint64, n int) []uint64 {
	var out []uint64
	for v := h + 2; len(out) < n; v += 2 {
		if c.set(v) == c.set(h) && v != h {
			out = append(out, v|1)
		}
	}
	return out
}

func TestMissCache(t *testing.T) {
	var c missCache
	c.reset(&Snapshot{})
	h := c.hash(lookupDomain, "popular.example")
	if h == 0 {
		t.Fatal("a hash is 0, the empty slot")
	}
	if c.hash(lookupIP, "popular.example") == h {
		t.Fatal("two lookups of one value share a hash")
	}
	if c.known(h) {
		t.Fatal("known before it was added")
	}
	c.add(h)
	if !c.known(h) {
		t.Fatal("not known after it was added")
	}

	// Values seen once, all in the set of h, take the last way in turn:
	// h, which came again, stays.
	for _, u := range sameSet(&c, h, 100) {
		if c.known(u) {
			t.Fatalf("%x known before it was added", u)
		}
		c.add(u)
		if !c.known(h) {
			t.Fatalf("a value seen once (%x) pushed out one seen again", u)
		}
	}

	// Four values that come again and again fill the set; each hit moves
	// its value up, and all four stay.
	c.reset(c.snap)
	rep := sameSet(&c, h, 4)
	for _, v := range rep {
		c.add(v)
		for range 3 {
			if !c.known(v) {
				t.Fatalf("%x lost after its add", v)
			}
		}
	}
	for range 10 {
		for _, v := range rep {
			if !c.known(v) {
				t.Fatalf("%x of four repeated values lost", v)
			}
		}
	}
	// A fifth takes the last way, pushing out the least recent.
	extra := sameSet(&c, h, 5)[4]
	c.add(extra)
	lost := 0
	for _, v := range rep {
		if !c.known(v) {
			lost++
		}
	}
	if lost != 1 || !c.known(extra) {
		t.Fatalf("after a fifth value: %d of four lost (want 1), fifth known %v", lost, c.known(extra))
	}

	// A new Snapshot empties it.
	c.reset(&Snapshot{})
	if c.known(extra) {
		t.Fatal("known after a reset")
	}
}
