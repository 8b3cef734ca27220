package ecs

import (
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
