package fakeapi

import (
	"slices"
	"testing"
)

func TestFaults(t *testing.T) {
	var fs Faults[int]
	fs.Add(1, "a", 2)
	fs.Add(2, "", 1)
	fs.Add(3, "b", 0) // never used
	var got []int
	for _, ep := range []string{"b", "a", "a", "a", "b"} {
		if f, ok := fs.Take(ep); ok {
			got = append(got, f)
		} else {
			got = append(got, 0)
		}
	}
	// b takes the "any" fault 2; a takes 1 twice; then nothing is left.
	if want := []int{2, 1, 1, 0, 0}; !slices.Equal(got, want) {
		t.Fatalf("took %v, want %v", got, want)
	}
	fs.Add(4, "", 5)
	fs.Clear()
	if _, ok := fs.Take("a"); ok {
		t.Fatal("a fault survived Clear")
	}
}

func TestLog(t *testing.T) {
	var l Log[string]
	l.Hit("a")
	l.Hit("a")
	l.Hit("b")
	l.Add("a", "r1")
	l.Add("b", "r2")
	l.Add("a", "r3")
	if l.Count("a") != 2 || l.Count("b") != 1 || l.Count("c") != 0 {
		t.Fatalf("counts a=%d b=%d", l.Count("a"), l.Count("b"))
	}
	if got := l.To("a"); !slices.Equal(got, []string{"r1", "r3"}) {
		t.Fatalf("To(a) = %v", got)
	}
	if got := l.All(); !slices.Equal(got, []string{"r1", "r2", "r3"}) {
		t.Fatalf("All = %v", got)
	}
	l.Reset()
	if len(l.All()) != 0 || l.Count("a") != 0 {
		t.Fatal("Reset kept entries")
	}
}
