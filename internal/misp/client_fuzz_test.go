package misp

import (
	"encoding/json"
	"testing"
)

// FuzzParseAttributes: any body gives an error or records that are each
// one JSON value.
func FuzzParseAttributes(f *testing.F) {
	f.Add([]byte(`{"response":{"Attribute":[{"uuid":"a","value":"192.0.2.1"},[1],"x"]}}`))
	f.Add([]byte(`{"response":[]}`))
	f.Add([]byte(`{"name":"Forbidden","message":"Authentication failed"}`))
	f.Add([]byte(`{"response":{"Attribute":null}}`))
	f.Add([]byte(`{"response":{"Attribute":[{"\u0000":""}]}}`)) // fastjson re-encodes the key unescaped
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseAttributes(body)
		if err != nil {
			if len(p.Records) != 0 {
				t.Fatal("records with an error")
			}
			return
		}
		for _, r := range p.Records {
			if !json.Valid(r) {
				t.Fatalf("record is not JSON: %q", r)
			}
		}
	})
}
