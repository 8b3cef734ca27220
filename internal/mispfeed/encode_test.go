package mispfeed

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
)

// FuzzAppendAttribute holds appendAttribute to the bytes json.Marshal
// writes, for any strings (HTML characters, control characters, invalid
// UTF-8, U+2028) and either shape of the optional fields.
func FuzzAppendAttribute(f *testing.F) {
	f.Add("login.example.com", "ThreatConnect; confidence High (85)", "vigil:source=\"ThreatConnect\"", "#33ff00", true)
	f.Add("http://a.example/?q=<script>&x=1", "a\tb\nc\x00\x7f", "tlp:amber+strict", "", false)
	f.Add("\xff\xfe bad utf-8 \u2028\u2029 é", "ümlaut \\ \"quoted\"", "", "", true)
	f.Fuzz(func(t *testing.T, value, comment, tag, colour string, seen bool) {
		a := Attribute{UUID: AttributeUUID("6cd1aa97-b555-54a3-b92f-1d13c14deb06", "url", value), Type: "url",
			Category: "Network activity", Value: value, ToIDs: true, Timestamp: "1717243200", Comment: comment}
		if seen {
			a.FirstSeen, a.LastSeen = "2024-03-22T19:00:00.000000+00:00", comment
		}
		if tag != "" {
			a.Tag = []Tag{{Name: tag, Colour: colour}, {Name: comment}}
		}
		want, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendAttribute([]byte("prefix"), &a); !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("appendAttribute:\n%s\njson.Marshal:\n%s", got, want)
		}
	})
}

// TestAttributeUUID holds the pull's UUIDv5 to the uuid package's.
func TestAttributeUUID(t *testing.T) {
	event := uuid.MustParse("45d76b9f-b848-5878-b68d-36b45463dc20")
	var buf []byte
	for _, c := range []struct{ typ, value string }{{"domain", "login.example.com"}, {"url", "http://a.example/é?x=<1>"}, {"md5", ""}, {"", "|"}} {
		var got uuid.UUID
		got, buf = attributeUUID(event, c.typ, c.value, buf)
		if want := uuid.NewSHA1(event, []byte(c.typ+"|"+c.value)); got != want {
			t.Errorf("%s|%s: %s, want %s", c.typ, c.value, got, want)
		}
	}
}
