package ecs

import "github.com/valyala/fastjson"

// AppendClean appends the JSON value v to dst without the values Elastic's
// clean-up script removes: null, "", and objects and lists that are empty or
// become empty once cleaned, at any depth. Numbers are written as
// Elasticsearch writes back numbers it parsed (see AppendNumber). It returns
// dst unchanged and false when nothing is left.
func AppendClean(dst []byte, v *fastjson.Value) ([]byte, bool) {
	if v == nil {
		return dst, false
	}
	start := len(dst)
	switch v.Type() {
	case fastjson.TypeNull:
		return dst, false
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if len(b) == 0 {
			return dst, false
		}
		return AppendString(dst, b2s(b)), true
	case fastjson.TypeNumber:
		// MarshalTo appends the number's text as parsed; normalize it from
		// a copy, since AppendNumber writes where the text is.
		dst = v.MarshalTo(dst)
		var tmp [64]byte
		if len(dst)-start > len(tmp) {
			return AppendNumber(dst[:start], string(dst[start:]))
		}
		n := copy(tmp[:], dst[start:])
		return AppendNumber(dst[:start], b2s(tmp[:n]))
	case fastjson.TypeTrue:
		return append(dst, "true"...), true
	case fastjson.TypeFalse:
		return append(dst, "false"...), true
	case fastjson.TypeArray:
		a, _ := v.Array()
		dst = append(dst, '[')
		n := 0
		for _, e := range a {
			mark := len(dst)
			if n > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = AppendClean(dst, e); ok {
				n++
			} else {
				dst = dst[:mark]
			}
		}
		if n == 0 {
			return dst[:start], false
		}
		return append(dst, ']'), true
	case fastjson.TypeObject:
		o, _ := v.Object()
		dst = append(dst, '{')
		n := 0
		o.Visit(func(key []byte, e *fastjson.Value) {
			mark := len(dst)
			if n > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, b2s(key))
			dst = append(dst, ':')
			var ok bool
			if dst, ok = AppendClean(dst, e); ok {
				n++
			} else {
				dst = dst[:mark]
			}
		})
		if n == 0 {
			return dst[:start], false
		}
		return append(dst, '}'), true
	}
	return dst, false
}

// Value sets path to the JSON value v cleaned as AppendClean does, and
// reports whether anything was left to set.
func (d *Doc) Value(path string, v *fastjson.Value) bool { return d.value(key{s: path}, v) }

func (d *Doc) value(k key, v *fastjson.Value) bool {
	if v == nil {
		return false
	}
	switch v.Type() {
	case fastjson.TypeNull:
		return false
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if len(b) == 0 {
			return false
		}
		d.str(k, b2s(b))
		return true
	case fastjson.TypeTrue:
		d.bool(k, true)
		return true
	case fastjson.TypeFalse:
		d.bool(k, false)
		return true
	case fastjson.TypeArray:
		if a, _ := v.Array(); len(a) == 0 {
			return false // skip the work of writing the key to take it back
		}
	case fastjson.TypeObject:
		if o, _ := v.Object(); o.Len() == 0 {
			return false
		}
	}
	saved := d.save()
	start := d.begin(k)
	b, ok := AppendClean(d.buf[len(d.buf):len(d.buf)], v)
	if !ok {
		d.restore(saved)
		return false
	}
	d.addAppended(b)
	d.end(k, start)
	return true
}
