package ecs

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/valyala/fastjson"
)

// The accessors below read a parsed source record the way every normalizer
// does: a missing value and a value of another type are alike.

// B2S returns b as a string without copying; the string is valid while b
// is, and b must not change meanwhile.
func B2S(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// IsNull reports whether v is missing or JSON null, which Elastic's
// pipelines treat alike.
func IsNull(v *fastjson.Value) bool { return v == nil || v.Type() == fastjson.TypeNull }

// Str returns v's string, if v is a string. The string shares v's memory.
func Str(v *fastjson.Value) (string, bool) {
	if v == nil || v.Type() != fastjson.TypeString {
		return "", false
	}
	b, _ := v.StringBytes()
	return B2S(b), true
}

// Object returns v as an object, or nil.
func Object(v *fastjson.Value) *fastjson.Object {
	if v == nil || v.Type() != fastjson.TypeObject {
		return nil
	}
	o, _ := v.Object()
	return o
}

// Array returns v's elements, if v is an array.
func Array(v *fastjson.Value) ([]*fastjson.Value, bool) {
	if v == nil || v.Type() != fastjson.TypeArray {
		return nil, false
	}
	a, _ := v.Array()
	return a, true
}

// ParseLong parses s as Elastic's convert processor converts a string to
// "long": decimal, or hexadecimal after "0x" or "-0x"; no underscores and
// no sign after "0x".
func ParseLong(s string) (int64, bool) {
	var x int64
	var err error = strconv.ErrSyntax
	switch {
	case s == "" || strings.IndexByte(s, '_') >= 0 || strings.HasPrefix(s, "0x+") || strings.HasPrefix(s, "0x-"):
	case strings.HasPrefix(s, "0x"):
		x, err = strconv.ParseInt(s[2:], 16, 64)
	case strings.HasPrefix(s, "-0x"):
		x, err = strconv.ParseInt("-"+s[3:], 16, 64)
	default:
		x, err = strconv.ParseInt(s, 10, 64)
	}
	return x, err == nil
}

// ToBool converts v as Elastic's convert processor converts to "boolean":
// true and false, or the strings "true" and "false" in any case.
func ToBool(v *fastjson.Value) (bool, bool) {
	if v == nil {
		return false, false
	}
	switch v.Type() {
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse:
		return false, true
	case fastjson.TypeString:
		s, _ := Str(v)
		if strings.EqualFold(s, "true") {
			return true, true
		}
		if strings.EqualFold(s, "false") {
			return false, true
		}
	}
	return false, false
}
