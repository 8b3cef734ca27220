package ecs

import (
	"testing"
	"time"
)

// TestJSONWriter writes fields with a JSONWriter and checks the text, and
// that a Doc given the same fields encodes the same document.
func TestJSONWriter(t *testing.T) {
	ts := time.Date(2024, 3, 1, 12, 30, 0, 5e6, time.UTC)
	for _, tt := range []struct {
		name  string
		write func(w *JSONWriter, b []byte, dates *DateCache) []byte
		doc   func(d *Doc)
		want  string
	}{
		{
			name: "scalars",
			write: func(w *JSONWriter, b []byte, dates *DateCache) []byte {
				b = w.Time(b, `"@timestamp":`, ts, dates)
				b = w.Raw(b, `"n":`, []byte(`1`))
				b = w.Str(b, `"s":`, "x\"y")
				return w.Strs(b, `"t":`, []string{"", "a", "", "b"})
			},
			doc: func(d *Doc) {
				d.Time("@timestamp", ts)
				d.Raw("n", []byte(`1`))
				d.Str("s", "x\"y")
				d.Strs("t", []string{"", "a", "", "b"})
			},
			want: `{"@timestamp":"2024-03-01T12:30:00.005Z","n":1,"s":"x\"y","t":["a","b"]}`,
		},
		{
			name: "empty values left out",
			write: func(w *JSONWriter, b []byte, dates *DateCache) []byte {
				b = w.Time(b, `"a":`, time.Time{}, dates)
				b = w.Raw(b, `"b":`, nil)
				b = w.Str(b, `"c":`, "")
				b = w.Strs(b, `"d":`, []string{"", ""})
				b = w.Lit(b, "")
				return w.Str(b, `"e":`, "e")
			},
			doc:  func(d *Doc) { d.Str("e", "e") },
			want: `{"e":"e"}`,
		},
		{
			name: "objects, an empty one taken back",
			write: func(w *JSONWriter, b []byte, dates *DateCache) []byte {
				b = w.Str(b, `"a":`, "1")
				b, s := w.Open(b, `"b":{"c":{`)
				b = w.Str(b, `"d":`, "")
				b = w.Close(b, s, "}}")
				b, s = w.Open(b, `"e":{`)
				b = w.Str(b, `"f":`, "2")
				b, s2 := w.Open(b, `"g":{`)
				b = w.Str(b, `"h":`, "3")
				b = w.Close(b, s2, "}")
				b = w.Close(b, s, "}")
				return w.Lit(b, `"z":true`)
			},
			doc: func(d *Doc) {
				d.Str("a", "1")
				d.Str("e.f", "2")
				d.Str("e.g.h", "3")
				d.Bool("z", true)
			},
			want: `{"a":"1","e":{"f":"2","g":{"h":"3"}},"z":true}`,
		},
		{
			name: "nothing in the first object",
			write: func(w *JSONWriter, b []byte, dates *DateCache) []byte {
				b, s := w.Open(b, `"a":{`)
				b = w.Close(b, s, "}")
				b = w.Str(b, `"b":`, "1")
				had, mark := w.Has, len(b)
				b = w.Keep(w.Key(b, `"c":`), false, mark, had)
				had, mark = w.Has, len(b)
				return w.Keep(append(w.Key(b, `"d":`), '2'), true, mark, had)
			},
			doc: func(d *Doc) {
				d.Str("b", "1")
				d.Raw("d", []byte(`2`))
			},
			want: `{"b":"1","d":2}`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w JSONWriter
			var dates DateCache
			got := string(append(tt.write(&w, []byte{'{'}, &dates), '}'))
			if got != tt.want {
				t.Errorf("JSONWriter wrote %s, want %s", got, tt.want)
			}
			var d Doc
			tt.doc(&d)
			if doc := string(d.AppendJSON(nil)); doc != got {
				t.Errorf("JSONWriter wrote %s, Doc encodes %s", got, doc)
			}
		})
	}
}
