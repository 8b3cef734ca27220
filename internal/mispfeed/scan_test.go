package mispfeed

import (
	"hash/fnv"
	"testing"
)

// TestIOCHash holds iocHash to the 64-bit FNV-1a of "type|value": the
// seen sets in the store are made of it.
func TestIOCHash(t *testing.T) {
	for _, c := range []struct{ typ, value string }{{"domain", "login.example.com"}, {"url", "http://a.example/é"}, {"", ""}, {"md5", "|"}} {
		h := fnv.New64a()
		h.Write([]byte(c.typ + "|" + c.value))
		if got, want := iocHash(c.typ, c.value), h.Sum64(); got != want {
			t.Errorf("%s|%s: %x, want %x", c.typ, c.value, got, want)
		}
	}
}
