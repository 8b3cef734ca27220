// Package ecstest compares ECS documents in tests: it reads reference
// fixtures in place (skipping when they are absent), decodes documents with
// numbers kept exact, edits them by dotted path, and lists differences by
// field path.
package ecstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// ReferencePath returns dir/name, where dir is relative to the calling
// package's folder (for example "../../../shared/reference/threatconnect").
// When dir does not exist the test is skipped with a message saying where it
// looked: the reference material sits beside the project, not in it.
func ReferencePath(t testing.TB, dir, name string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Skipf("reference fixtures not found: looked in %s (%s relative to the package folder): %v", abs, dir, err)
	}
	return filepath.Join(abs, name)
}

// ReadJSON decodes the file at path into v, keeping numbers as json.Number.
func ReadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := decode(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Decode parses a document's JSON source into a map, keeping numbers exact.
func Decode(t testing.TB, src []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := decode(src, &m); err != nil {
		t.Fatalf("source is not a JSON object: %v\n%s", err, src)
	}
	return m
}

func decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// Get returns the value at a dotted path.
func Get(m map[string]any, path string) (any, bool) {
	head, rest, nested := strings.Cut(path, ".")
	v, ok := m[head]
	if !ok || !nested {
		return v, ok
	}
	sub, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	return Get(sub, rest)
}

// Set sets the value at a dotted path, creating objects on the way.
func Set(m map[string]any, path string, v any) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		m[head] = v
		return
	}
	sub, ok := m[head].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[head] = sub
	}
	Set(sub, rest, v)
}

// Drop removes a dotted path, and the objects that become empty.
func Drop(m map[string]any, path string) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		delete(m, head)
		return
	}
	if sub, ok := m[head].(map[string]any); ok {
		Drop(sub, rest)
		if len(sub) == 0 {
			delete(m, head)
		}
	}
}

// Diff lists the differences between two decoded JSON values by field path.
// Numbers are compared by value, so 100 equals 100.0.
func Diff(want, got any) []string { return diff("", want, got) }

func diff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want object, got %s", orRoot(path), show(got))}
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			wv, wok := w[k]
			gv, gok := g[k]
			switch {
			case !gok:
				out = append(out, fmt.Sprintf("%s: missing, want %s", p, show(wv)))
			case !wok:
				out = append(out, fmt.Sprintf("%s: unexpected %s", p, show(gv)))
			default:
				out = append(out, diff(p, wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %s, got %s", orRoot(path), show(want), show(got))}
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	case json.Number:
		g, ok := got.(json.Number)
		if !ok || !sameNumber(w, g) {
			return []string{fmt.Sprintf("%s: want %s, got %s", orRoot(path), show(want), show(got))}
		}
		return nil
	default:
		if want != got {
			return []string{fmt.Sprintf("%s: want %s, got %s", orRoot(path), show(want), show(got))}
		}
		return nil
	}
}

func orRoot(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

func sameNumber(a, b json.Number) bool {
	x, _, err1 := big.ParseFloat(string(a), 10, 200, big.ToNearestEven)
	y, _, err2 := big.ParseFloat(string(b), 10, 200, big.ToNearestEven)
	return err1 == nil && err2 == nil && x.Cmp(y) == 0
}

// Show renders a decoded value as JSON for messages.
func Show(v any) string { return show(v) }

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Empties lists the paths of null, "", {} and [] values anywhere in v:
// Elastic's pipelines remove them, so an ECS document never has one.
func Empties(v any) []string { return empties("", v) }

func empties(path string, v any) []string {
	var out []string
	switch v := v.(type) {
	case nil:
		out = append(out, orRoot(path)+" is null")
	case string:
		if v == "" {
			out = append(out, orRoot(path)+" is an empty string")
		}
	case map[string]any:
		if len(v) == 0 {
			out = append(out, orRoot(path)+" is an empty object")
		}
		for k, e := range v {
			p := k
			if path != "" {
				p = path + "." + k
			}
			out = append(out, empties(p, e)...)
		}
	case []any:
		if len(v) == 0 {
			out = append(out, orRoot(path)+" is an empty list")
		}
		for _, e := range v {
			out = append(out, empties(path+"[]", e)...)
		}
	}
	return out
}

// ReadFiles returns the contents of the files matching pattern, in the
// order filepath.Glob lists them: the inputs of a package's testdata, to
// run or to seed a fuzz target with.
func ReadFiles(t testing.TB, pattern string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Golden compares got with the golden file at path, listing the differences
// by field path; with update it rewrites the file instead.
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		for _, d := range Diff(Decode(t, want), Decode(t, got)) {
			t.Error(d)
		}
		t.Errorf("output differs from %s (rerun with -update after checking)", path)
	}
}

// Covered fails for every file matching pattern that a table of cases does
// not name, so that no fixture is left untested.
func Covered(t testing.TB, pattern string, covered map[string]bool) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !covered[f] {
			t.Errorf("%s has no entry in the table of cases", f)
		}
	}
}
