package ecstest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	cases := []struct {
		want, got string
		diffs     []string
	}{
		{`{"a":1}`, `{"a":1.0}`, nil},
		{`{"a":{"b":[1,"x"]}}`, `{"a":{"b":[1,"y"]}}`, []string{`a.b[1]: want "x", got "y"`}},
		{`{"a":1}`, `{"b":1}`, []string{"a: missing, want 1", "b: unexpected 1"}},
		{`{"a":[1]}`, `{"a":[1,2]}`, []string{"a: want [1], got [1,2]"}},
		{`{"a":{"b":1}}`, `{"a":2}`, []string{"a: want object, got 2"}},
	}
	for _, c := range cases {
		got := Diff(Decode(t, []byte(c.want)), Decode(t, []byte(c.got)))
		if strings.Join(got, "|") != strings.Join(c.diffs, "|") {
			t.Errorf("Diff(%s, %s) = %q, want %q", c.want, c.got, got, c.diffs)
		}
	}
}

func TestPathsAndEmpties(t *testing.T) {
	m := Decode(t, []byte(`{"a":{"b":{"c":1}},"e":"","f":[],"g":{}}`))
	if v, ok := Get(m, "a.b.c"); !ok || v.(interface{ String() string }).String() != "1" {
		t.Fatalf("Get = %v %v", v, ok)
	}
	Set(m, "x.y", "z")
	Drop(m, "a.b.c")
	if _, ok := m["a"]; ok {
		t.Fatal("Drop left empty parents")
	}
	if got := strings.Join(Empties(m), "|"); !strings.Contains(got, "e is an empty string") || !strings.Contains(got, "f is an empty list") || !strings.Contains(got, "g is an empty object") {
		t.Fatalf("Empties = %s", got)
	}
}

func TestReadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"b.input.json": "2", "a.input.json": "1", "c.golden.json": "3"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		pattern string
		want    string
	}{
		{"*.input.json", "1,2"},
		{"*.json", "1,2,3"},
		{"*.xml", ""},
	} {
		var got []string
		for _, b := range ReadFiles(t, filepath.Join(dir, c.pattern)) {
			got = append(got, string(b))
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("ReadFiles(%s) = %q, want %s", c.pattern, got, c.want)
		}
	}
}
