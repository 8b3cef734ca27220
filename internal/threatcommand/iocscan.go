package threatcommand

import (
	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// val is a member of a record: a value fastjson parsed (v), or, when raw
// is set, a value scanIOC vouched for, held as its text.
type val struct {
	v *fastjson.Value
	// s is, when raw: a string's content (it has no escapes), a number's
	// text, or an array's or object's JSON text.
	s    string
	kind fastjson.Type // when raw
	raw  bool
}

// fj returns v as a val.
func fj(v *fastjson.Value) val { return val{v: v} }

// set reports whether v holds a value, null included.
func (v val) set() bool { return v.raw || v.v != nil }

// Type returns v's type; a missing value is null, as Elastic treats it.
func (v val) Type() fastjson.Type {
	switch {
	case v.raw:
		return v.kind
	case v.v == nil:
		return fastjson.TypeNull
	}
	return v.v.Type()
}

// null reports whether v is missing or null.
func (v val) null() bool { return v.Type() == fastjson.TypeNull }

// str returns v's string, if v is a string.
func (v val) str() (string, bool) {
	if v.raw {
		return v.s, v.kind == fastjson.TypeString
	}
	return str(v.v)
}

// putVal writes v at s as Setter.Value writes a fastjson value: cleaned,
// numbers as Elasticsearch writes them back.
func (n *Normalizer) putVal(s ecs.Setter, v val) {
	if !v.raw {
		s.Value(v.v)
		return
	}
	switch v.kind {
	case fastjson.TypeString:
		s.Str(v.s)
	case fastjson.TypeTrue:
		s.Bool(true)
	case fastjson.TypeFalse:
		s.Bool(false)
	case fastjson.TypeNumber, fastjson.TypeArray, fastjson.TypeObject:
		var ok bool
		if n.clean, ok = appendCleanRaw(n.clean[:0], v); ok {
			s.Raw(n.clean)
		}
	}
}

// appendCleanRaw is ecs.AppendClean for a raw val.
func appendCleanRaw(dst []byte, v val) ([]byte, bool) {
	start := len(dst)
	switch v.kind {
	case fastjson.TypeString:
		if v.s == "" {
			return dst, false
		}
		return ecs.AppendString(dst, v.s), true
	case fastjson.TypeNumber:
		return ecs.AppendNumber(dst, v.s)
	case fastjson.TypeTrue:
		return append(dst, "true"...), true
	case fastjson.TypeFalse:
		return append(dst, "false"...), true
	case fastjson.TypeArray, fastjson.TypeObject:
		isObject := v.kind == fastjson.TypeObject
		dst = append(dst, v.s[0]) // '[' or '{'
		count := 0
		for it := newRawIter(v.s, shAny); ; {
			var key string
			var e val
			var ok bool
			switch {
			case isObject:
				key, e, ok = it.member()
			case it.nextIsString():
				// Most elements: a string, its text copied as is.
				str := it.nextString()
				if str == "" {
					continue
				}
				if count > 0 {
					dst = append(dst, ',')
				}
				dst = ecs.AppendString(dst, str)
				count++
				continue
			default:
				e, ok = it.next()
			}
			if !ok {
				break
			}
			mark := len(dst)
			if count > 0 {
				dst = append(dst, ',')
			}
			if isObject {
				dst = append(ecs.AppendString(dst, key), ':')
			}
			if dst, ok = appendCleanRaw(dst, e); ok {
				count++
			} else {
				dst = dst[:mark]
			}
		}
		if count == 0 {
			return dst[:start], false
		}
		return append(dst, v.s[len(v.s)-1]), true // ']' or '}'
	}
	return dst, false
}

// shape is the form of value scanIOC takes for a member.
type shape uint8

const (
	shScalar   shape = iota // a string, number, true, false or null
	shList                  // a scalar or an array of scalars
	shFeeds                 // a scalar or an array of scalars and shFeedElem objects
	shFeedElem              // a scalar or an object of scalars, with keys subPath knows
	shAny                   // anything scanVal took before (for rawIter)
)

// scanIOC is the fast path of IOC: one pass over raw that validates it and
// fills f, without fastjson's parse into pointerful values. It takes only
// what it can vouch for: an object whose members the pipeline knows, with
// values of the shapes iocFields.slot gives, strings without escapes and
// numbers as JSON writes them. It reports false for anything else, and the
// record then goes to fastjson; on false, f holds garbage.
//
// Where it takes a record, it reads it as fastjson does: the first of
// duplicate members counts, and a string's value is its text.
//
// The elements of reportedFeeds go to n.feeds (see scanVal's sink).
func (n *Normalizer) scanIOC(s string, f *iocFields) bool {
	n.feeds = n.feeds[:0]
	i, empty, ok := ecs.StartObject(s)
	if !ok || empty {
		return ok
	}
	for {
		// The key, inline: records rarely have white space.
		if i >= len(s) || s[i] != '"' {
			return false
		}
		end := ecs.IndexStringEnd(s[i+1:])
		if end < 0 || s[i+1+end] != '"' {
			return false
		}
		key := s[i+1 : i+1+end]
		if i += end + 2; i >= len(s) || s[i] != ':' {
			if i = ecs.SkipSpace(s, i); i >= len(s) || s[i] != ':' {
				return false
			}
		}
		if i++; i < len(s) && s[i] <= ' ' {
			i = ecs.SkipSpace(s, i)
		}
		slot, sh := f.slot(key)
		if slot == nil {
			return false // kept under rapid7.tc.ioc: left to fastjson
		}
		if i < len(s) && s[i] == '"' { // most values: scanVal's case inline
			end := ecs.IndexStringEnd(s[i+1:])
			if end < 0 || s[i+1+end] != '"' {
				return false
			}
			if !slot.raw {
				slot.s, slot.kind, slot.raw = s[i+1:i+1+end], fastjson.TypeString, true
			}
			i += end + 2
		} else {
			var sink *[]feedItem
			if sh == shFeeds && !slot.raw {
				sink = &n.feeds
			}
			var v val
			var ok bool
			if v, i, ok = scanVal(s, i, sh, sink); !ok {
				return false
			}
			if !slot.raw {
				// Field by field: copying the struct stalls on store
				// forwarding.
				slot.s, slot.kind, slot.raw = v.s, v.kind, true
			}
		}
		if i+1 < len(s) && s[i] == ',' && s[i+1] == '"' {
			i++
			continue
		}
		var done, ok bool
		if i, done, ok = ecs.NextItem(s, i, '}'); !ok || done {
			return ok && ecs.SkipSpace(s, i) == len(s)
		}
	}
}

// scanVal scans the value of shape sh at s[i:] and returns it and the
// index after it.
//
// With a sink, it appends the elements of an array there, and after an
// element that is an object, the object's members.
func scanVal(s string, i int, sh shape, sink *[]feedItem) (v val, next int, ok bool) {
	if i >= len(s) {
		return v, 0, false
	}
	v.raw = true
	switch c := s[i]; c {
	case '"':
		end := ecs.IndexStringEnd(s[i+1:])
		if end < 0 || s[i+1+end] != '"' {
			return v, 0, false // unterminated, or escapes to undo
		}
		v.kind, v.s = fastjson.TypeString, s[i+1:i+1+end]
		return v, i + 2 + end, true
	case 't':
		v.kind = fastjson.TypeTrue
		return v, i + 4, ecs.HasAt(s, i, "true")
	case 'f':
		v.kind = fastjson.TypeFalse
		return v, i + 5, ecs.HasAt(s, i, "false")
	case 'n':
		v.kind = fastjson.TypeNull
		return v, i + 4, ecs.HasAt(s, i, "null")
	case '[':
		var elem shape
		switch sh {
		case shList:
			elem = shScalar
		case shFeeds:
			elem = shFeedElem
		case shAny:
			elem = shAny
		default:
			return v, 0, false
		}
		start := i
		i = ecs.SkipSpace(s, i+1)
		if i < len(s) && s[i] == ']' {
			v.kind, v.s = fastjson.TypeArray, s[start:i+1]
			return v, i + 1, true
		}
		for {
			var e val
			at := i
			if sink != nil && i < len(s) && s[i] == '{' {
				*sink = append(*sink, feedItem{kind: uint8(fastjson.TypeObject)})
			}
			if e, i, ok = scanVal(s, at, elem, sink); !ok {
				return v, 0, false
			}
			if sink != nil && e.kind != fastjson.TypeObject {
				addFeedItem(sink, 0, 0, at, e)
			}
			var done bool
			if i, done, ok = ecs.NextItem(s, i, ']'); !ok {
				return v, 0, false
			}
			if done {
				v.kind, v.s = fastjson.TypeArray, s[start:i]
				return v, i, true
			}
		}
	case '{':
		if sh != shFeedElem && sh != shAny {
			return v, 0, false
		}
		start := i
		i = ecs.SkipSpace(s, i+1)
		if i < len(s) && s[i] == '}' {
			v.kind, v.s = fastjson.TypeObject, s[start:i+1]
			return v, i + 1, true
		}
		for {
			var key string
			keyAt := i + 1
			if key, i, ok = ecs.ScanKey(s, i); !ok || sh == shFeedElem && subPath(key) == nil {
				return v, 0, false
			}
			var m val
			at := i
			if m, i, ok = scanVal(s, i, shScalar, nil); !ok {
				return v, 0, false
			}
			if sink != nil {
				addFeedItem(sink, keyAt, keyAt+len(key), at, m)
			}
			var done bool
			if i, done, ok = ecs.NextItem(s, i, '}'); !ok {
				return v, 0, false
			}
			if done {
				v.kind, v.s = fastjson.TypeObject, s[start:i]
				return v, i, true
			}
		}
	}
	// A number: fastjson takes these bytes as its text.
	j := i
	for j < len(s) && ecs.NumberByte(s[j]) {
		j++
	}
	v.kind, v.s = fastjson.TypeNumber, s[i:j]
	return v, j, ecs.ValidNumber(v.s)
}

// feedItem is an entry of n.feeds: an element of reportedFeeds, or a
// member of the object element before it, as offsets into the record:
// unlike a val it holds no pointers, so n.feeds costs the GC nothing.
type feedItem struct {
	keyStart, keyEnd int32 // the member's key; empty for an element
	start, end       int32 // the value's text, as val.s
	kind             uint8 // the value's fastjson.Type
}

// addFeedItem appends the feedItem of v, scanned at s[at:], with the key at
// s[keyStart:keyEnd], to sink.
func addFeedItem(sink *[]feedItem, keyStart, keyEnd, at int, v val) {
	if v.kind == fastjson.TypeString {
		at++ // the quote
	}
	*sink = append(*sink, feedItem{})
	// Field by field: a struct built and copied whole stalls on store
	// forwarding.
	it := &(*sink)[len(*sink)-1]
	it.keyStart, it.keyEnd, it.start, it.end, it.kind = int32(keyStart), int32(keyEnd), int32(at), int32(at+len(v.s)), uint8(v.kind)
}

// isMember reports whether it is a member of an object element.
func (it feedItem) isMember() bool { return it.keyEnd > it.keyStart }

// key returns its key in rec, the record.
func (it feedItem) key(rec string) string { return rec[it.keyStart:it.keyEnd] }

// val returns its value in rec, the record.
func (it feedItem) val(rec string) val {
	return val{s: rec[it.start:it.end], kind: fastjson.Type(it.kind), raw: true}
}

// rawIter iterates over the elements or members of an array's or object's
// text that scanVal took.
type rawIter struct {
	s  string
	i  int
	sh shape // of the values
}

func newRawIter(s string, sh shape) rawIter { return rawIter{s: s, i: 1, sh: sh} }

// next returns the next element of an array.
func (it *rawIter) next() (val, bool) {
	i := ecs.SkipSpace(it.s, it.i)
	if it.s[i] == ',' {
		i = ecs.SkipSpace(it.s, i+1)
	}
	if it.s[i] == ']' {
		return val{}, false
	}
	v, next, _ := scanVal(it.s, i, it.sh, nil)
	it.i = next
	return v, true
}

// nextIsString reports whether the next element of an array is a string,
// and moves to it.
func (it *rawIter) nextIsString() bool {
	i := ecs.SkipSpace(it.s, it.i)
	if it.s[i] == ',' {
		i = ecs.SkipSpace(it.s, i+1)
	}
	it.i = i
	return it.s[i] == '"'
}

// nextString returns the string nextIsString found.
func (it *rawIter) nextString() string {
	start := it.i + 1
	end := start + ecs.IndexStringEnd(it.s[start:])
	it.i = end + 1
	return it.s[start:end]
}

// member returns the next member of an object.
func (it *rawIter) member() (string, val, bool) {
	i := ecs.SkipSpace(it.s, it.i)
	if it.s[i] == ',' {
		i = ecs.SkipSpace(it.s, i+1)
	}
	if it.s[i] == '}' {
		return "", val{}, false
	}
	key, i, _ := ecs.ScanKey(it.s, i)
	v, next, _ := scanVal(it.s, i, it.sh, nil)
	it.i = next
	return key, v, true
}

// plainKey reports whether key is a key a Doc writes as it is, at the top
// of a document: non-empty printable ASCII without '"', '\\' or '.'.
func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '.' {
			return false
		}
	}
	return true
}
