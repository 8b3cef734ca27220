package ecs

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestScan checks the scan helpers, each case a call and what it returns,
// shown by show.
func TestScan(t *testing.T) {
	for _, tt := range []struct {
		call, got, want string
	}{
		{`ScanKey("a":1})`, show(ScanKey(`"a":1}`, 0)), `"a" 4 true`},
		{`ScanKey("ab" : 1})`, show(ScanKey(`"ab" : 1}`, 0)), `"ab" 7 true`},
		{`ScanKey(white space)`, show(ScanKey("\"a\"\n:\t\r 1}", 0)), `"a" 8 true`},
		{`ScanKey("":1})`, show(ScanKey(`"":1}`, 0)), `"" 3 true`},
		{`ScanKey("a":)`, show(ScanKey(`"a":`, 0)), `"a" 4 true`},
		{`ScanKey(an escape)`, show(ScanKey(`"a\"b":1}`, 0)), `"" 0 false`},
		{`ScanKey(unterminated)`, show(ScanKey(`"a`, 0)), `"" 0 false`},
		{`ScanKey(no colon)`, show(ScanKey(`"a" 1}`, 0)), `"" 0 false`},
		{`ScanKey(at the end)`, show(ScanKey(`"a"`, 0)), `"" 0 false`},
		{`ScanKey(not a string)`, show(ScanKey(`a:1}`, 0)), `"" 0 false`},
		{`ScanKey(past the end)`, show(ScanKey(`{`, 1)), `"" 0 false`},

		{`StartObject({"a":1})`, show(StartObject(`{"a":1}`)), `1 false true`},
		{`StartObject(white space)`, show(StartObject(" \n{ \"a\":1}")), `4 false true`},
		{`StartObject({})`, show(StartObject(`{}`)), `2 true true`},
		{`StartObject({ } )`, show(StartObject(" { } \t")), `4 true true`},
		{`StartObject({} x)`, show(StartObject(`{} x`)), `2 true false`},
		{`StartObject([])`, show(StartObject(`[]`)), `0 false false`},
		{`StartObject()`, show(StartObject(``)), `0 false false`},
		{`StartObject({)`, show(StartObject(`{`)), `1 false true`}, // ScanKey finds the key missing

		{`NextItem([1,2])`, show(NextItem(`[1,2]`, 2, ']')), `3 false true`},
		{`NextItem([1 , 2])`, show(NextItem(`[1 , 2]`, 2, ']')), `5 false true`},
		{`NextItem([1])`, show(NextItem(`[1]`, 2, ']')), `3 true true`},
		{`NextItem({"a":1 })`, show(NextItem(`{"a":1 }`, 6, '}')), `8 true true`},
		{`NextItem([1})`, show(NextItem(`[1}`, 2, ']')), `0 false false`},
		{`NextItem([1 )`, show(NextItem(`[1 `, 2, ']')), `0 false false`},
		{`NextItem([1 2])`, show(NextItem(`[1 2]`, 2, ']')), `0 false false`},

		{`SkipSpace("", 0)`, show(SkipSpace("", 0)), `0`},
		{`SkipSpace("a", 0)`, show(SkipSpace("a", 0)), `0`},
		{`SkipSpace(" \t\r\na", 0)`, show(SkipSpace(" \t\r\na", 0)), `4`},
		{`SkipSpace("a  ", 1)`, show(SkipSpace("a  ", 1)), `3`},
		{`SkipSpace("a\v", 1)`, show(SkipSpace("a\v", 1)), `1`}, // not JSON white space

		{`HasAt("null", 0, "null")`, show(HasAt("null", 0, "null")), `true`},
		{`HasAt("[true]", 1, "true")`, show(HasAt("[true]", 1, "true")), `true`},
		{`HasAt("[tru", 1, "true")`, show(HasAt("[tru", 1, "true")), `false`},
		{`HasAt("[false]", 1, "true")`, show(HasAt("[false]", 1, "true")), `false`},
		{`HasAt("null", -1, "null")`, show(HasAt("null", -1, "null")), `false`},
		{`HasAt("null", 4, "")`, show(HasAt("null", 4, "")), `true`},
		{`HasAt("null", 5, "")`, show(HasAt("null", 5, "")), `false`},

		{`NumberByte(every byte)`, numberBytesTaken(), `"+-.0123456789Ee"`},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %s, want %s", tt.call, tt.got, tt.want)
		}
	}
}

// show shows the results of a call, strings quoted.
func show(results ...any) string {
	parts := make([]string, len(results))
	for i, r := range results {
		if s, ok := r.(string); ok {
			parts[i] = strconv.Quote(s)
		} else {
			parts[i] = fmt.Sprint(r)
		}
	}
	return strings.Join(parts, " ")
}

// numberBytesTaken returns the bytes NumberByte takes, quoted.
func numberBytesTaken() string {
	var b []byte
	for c := range 256 {
		if NumberByte(byte(c)) {
			b = append(b, byte(c))
		}
	}
	return strconv.Quote(string(b))
}
