package ecs

import "testing"

func TestScanKey(t *testing.T) {
	for _, tt := range []struct {
		s    string
		i    int
		key  string
		next int
		ok   bool
	}{
		{`{"a":1}`, 1, "a", 5, true},
		{`{"ab" : 1}`, 1, "ab", 8, true},
		{"{\"a\"\n:\t\r 1}", 1, "a", 9, true},
		{`{"":1}`, 1, "", 4, true},
		{`{"a":`, 1, "a", 5, true},
		{`{"a\"b":1}`, 1, "", 0, false},
		{`{"a`, 1, "", 0, false},
		{`{"a" 1}`, 1, "", 0, false},
		{`{"a"`, 1, "", 0, false},
		{`{a:1}`, 1, "", 0, false},
		{`{`, 1, "", 0, false},
	} {
		key, next, ok := ScanKey(tt.s, tt.i)
		if key != tt.key || next != tt.next || ok != tt.ok {
			t.Errorf("ScanKey(%q, %d) = %q, %d, %v, want %q, %d, %v", tt.s, tt.i, key, next, ok, tt.key, tt.next, tt.ok)
		}
	}
}

func TestNextItem(t *testing.T) {
	for _, tt := range []struct {
		s        string
		i        int
		closer   byte
		next     int
		done, ok bool
	}{
		{`[1,2]`, 2, ']', 3, false, true},
		{`[1 , 2]`, 2, ']', 5, false, true},
		{`[1]`, 2, ']', 3, true, true},
		{`{"a":1 }`, 6, '}', 8, true, true},
		{`[1}`, 2, ']', 0, false, false},
		{`[1 `, 2, ']', 0, false, false},
		{`[1 2]`, 2, ']', 0, false, false},
	} {
		next, done, ok := NextItem(tt.s, tt.i, tt.closer)
		if next != tt.next || done != tt.done || ok != tt.ok {
			t.Errorf("NextItem(%q, %d, %q) = %d, %v, %v, want %d, %v, %v", tt.s, tt.i, tt.closer, next, done, ok, tt.next, tt.done, tt.ok)
		}
	}
}

func TestSkipSpace(t *testing.T) {
	for _, tt := range []struct {
		s       string
		i, want int
	}{
		{"", 0, 0},
		{"a", 0, 0},
		{" \t\r\na", 0, 4},
		{"a  ", 1, 3},
		{"a\v", 1, 1}, // not JSON white space
	} {
		if got := SkipSpace(tt.s, tt.i); got != tt.want {
			t.Errorf("SkipSpace(%q, %d) = %d, want %d", tt.s, tt.i, got, tt.want)
		}
	}
}

func TestHasAt(t *testing.T) {
	for _, tt := range []struct {
		s, word string
		i       int
		want    bool
	}{
		{"null", "null", 0, true},
		{"[true]", "true", 1, true},
		{"[tru", "true", 1, false},
		{"[false]", "true", 1, false},
		{"null", "null", -1, false},
		{"null", "", 4, true},
		{"null", "", 5, false},
	} {
		if got := HasAt(tt.s, tt.i, tt.word); got != tt.want {
			t.Errorf("HasAt(%q, %d, %q) = %v, want %v", tt.s, tt.i, tt.word, got, tt.want)
		}
	}
}

func TestNumberByte(t *testing.T) {
	want := "+-.0123456789Ee"
	got := ""
	for c := range 256 {
		if NumberByte(byte(c)) {
			got += string(rune(c))
		}
	}
	if got != want {
		t.Errorf("NumberByte takes %q, want %q", got, want)
	}
}
