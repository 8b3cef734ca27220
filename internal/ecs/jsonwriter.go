package ecs

import "time"

// JSONWriter writes a JSON object whose keys come in the order a Doc sorts
// them, for the fast paths of the normalizers, which write a document
// directly instead of through a Doc. An object is opened when its first
// member may come, and taken back when none came, as a Doc leaves out
// empty objects. A normalizer embeds it in its own writer type, which adds
// the methods for its own kinds of values.
//
// The text is a slice its methods take and return, kept by the caller in a
// local variable rather than in a struct on the heap, where every append
// would store a pointer (with a write barrier while the GC marks).
type JSONWriter struct {
	Has bool // the innermost open object has a member
}

// Section is an object a JSONWriter opened, to close.
type Section struct {
	mark int  // where its key starts, with the comma before it
	had  bool // the object around it had a member
}

// Open opens the object or objects keys names, as `"a":{"b":{`.
func (w *JSONWriter) Open(b []byte, keys string) ([]byte, Section) {
	s := Section{len(b), w.Has}
	if w.Has {
		b = append(b, ',')
	}
	w.Has = false
	return append(b, keys...), s
}

// Close closes what Open opened, with closers (one '}' each), or takes it
// back when nothing was written in it.
func (w *JSONWriter) Close(b []byte, s Section, closers string) []byte {
	if !w.Has {
		w.Has = s.had
		return b[:s.mark]
	}
	return append(b, closers...)
}

// Key writes k, `"name":`, with the comma before it.
func (w *JSONWriter) Key(b []byte, k string) []byte {
	if w.Has {
		b = append(b, ',')
	}
	w.Has = true
	return append(b, k...)
}

// Lit writes js, members encoded ahead, unless it is empty.
func (w *JSONWriter) Lit(b []byte, js string) []byte {
	if js == "" {
		return b
	}
	if w.Has {
		b = append(b, ',')
	}
	w.Has = true
	return append(b, js...)
}

// Keep returns b when ok, or else b without what was written from mark
// on, had telling whether the object had a member before: the way to take
// back a value that turned out to give nothing.
func (w *JSONWriter) Keep(b []byte, ok bool, mark int, had bool) []byte {
	if !ok {
		w.Has = had
		return b[:mark]
	}
	return b
}

// Str writes s at k as Doc.Str: an empty s is left out.
func (w *JSONWriter) Str(b []byte, k, s string) []byte {
	if s == "" {
		return b
	}
	return AppendString(w.Key(b, k), s)
}

// Strs writes list at k as Doc.Strs: empty strings are left out, and a
// list with nothing left.
func (w *JSONWriter) Strs(b []byte, k string, list []string) []byte {
	count := 0
	for _, s := range list {
		if s == "" {
			continue
		}
		if count == 0 {
			b = append(w.Key(b, k), '[')
		} else {
			b = append(b, ',')
		}
		b = AppendString(b, s)
		count++
	}
	if count > 0 {
		b = append(b, ']')
	}
	return b
}

// Raw writes the JSON text js at k as Doc.Raw, for js that is empty or a
// value that is not empty: an empty js is left out.
func (w *JSONWriter) Raw(b []byte, k string, js []byte) []byte {
	if len(js) == 0 {
		return b
	}
	return append(w.Key(b, k), js...)
}

// Time writes t at k as Doc.Time: a zero t is left out.
func (w *JSONWriter) Time(b []byte, k string, t time.Time, dates *DateCache) []byte {
	if t.IsZero() {
		return b
	}
	return AppendTimeValue(w.Key(b, k), t, dates)
}
