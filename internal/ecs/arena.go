package ecs

import "unsafe"

// Arena lays out the documents of one page end to end, each followed by a
// newline: the page's NDJSON, as the store writes it. A normalizer given an
// arena (NormalizeOptions.Arena) writes each document into it instead of
// allocating one, and the store writes the arena's bytes (vigil.Page's
// NDJSON) instead of copying the documents into a buffer of its own. A
// collector keeps one arena for its pages, so that after the first page no
// document is allocated at all.
//
// Documents from an arena stay valid until its Reset. An Arena is not safe
// for concurrent use.
type Arena struct {
	buf  []byte // the documents, each followed by '\n'
	side []byte // copies of keys and types
}

// Reset starts a new page. The documents handed out before must no longer
// be used: the next ones overwrite them.
func (a *Arena) Reset() {
	a.buf, a.side = a.buf[:0], a.side[:0]
}

// Doc appends src and a newline to the page and returns the copy of src,
// whose capacity ends at its length.
func (a *Arena) Doc(src []byte) []byte {
	if cap(a.buf)-len(a.buf) <= len(src) {
		// The page moves to a larger buffer; the documents handed out
		// before keep pointing into the old one, which holds the same
		// bytes (the store then finds them elsewhere than in NDJSON, and
		// copies the page).
		b := make([]byte, len(a.buf), max(2*cap(a.buf), len(a.buf)+len(src)+1, 64<<10))
		copy(b, a.buf)
		a.buf = b
	}
	start := len(a.buf)
	a.buf = append(a.buf, src...)
	a.buf = append(a.buf, '\n')
	return a.buf[start : start+len(src) : start+len(src)]
}

// Open returns the page so far, for a writer to append one document to it
// in place; Close then ends the document. Nothing but the document may be
// appended, and nothing before it changed.
func (a *Arena) Open() []byte {
	if a.buf == nil {
		a.buf = make([]byte, 0, 64<<10)
	}
	return a.buf
}

// OpenOr returns Open's slice, or scratch emptied when a is nil: where a
// normalizer writes a document, with or without an arena.
func (a *Arena) OpenOr(scratch []byte) []byte {
	if a == nil {
		return scratch[:0]
	}
	return a.Open()
}

// Close ends the document that was appended to Open's slice, as b (append
// may have moved the page: the documents handed out before keep pointing
// into the old buffer, as with Doc), writes its newline and returns it,
// its capacity ending at its length. b must hold at least the page Open
// returned.
func (a *Arena) Close(b []byte) []byte {
	start, end := len(a.buf), len(b)
	if end < start {
		panic("ecs: Arena.Close: the slice is shorter than the page")
	}
	a.buf = append(b, '\n')
	return a.buf[start:end:end]
}

// Place returns src as a document of the page: Close(src) when inPlace
// (src was written after Open's page), else Doc(src), a copy.
func (a *Arena) Place(src []byte, inPlace bool) []byte {
	if inPlace {
		return a.Close(src)
	}
	return a.Doc(src)
}

// String returns a copy of s that stays valid until Reset.
func (a *Arena) String(s string) string {
	if s == "" {
		return ""
	}
	if cap(a.side)-len(a.side) < len(s) {
		// The copies handed out before stay in the old buffer.
		a.side = make([]byte, 0, max(2*cap(a.side), len(s), 4<<10))
	}
	start := len(a.side)
	a.side = append(a.side, s...)
	return unsafe.String(&a.side[start], len(s))
}

// NDJSON returns the page so far: every document Doc returned since the
// last Reset, in order, each followed by a newline.
func (a *Arena) NDJSON() []byte { return a.buf }
