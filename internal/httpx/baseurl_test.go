package httpx

import (
	"strings"
	"testing"
)

func TestParseBaseURL(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"https://api.example.com/", "https://api.example.com", ""},
		{" http://127.0.0.1:8080/prefix// ", "http://127.0.0.1:8080/prefix", ""},
		{"", "", "k is empty"},
		{"api.example.com", "", "must start with https://"},
		{"https://", "", "has no host"},
		{"https://u:hunter2@api.example.com", "", "set user and key instead"},
		{"https://api.example.com/?a=1", "", "must not have a query"},
		{"https://api.example.com/#x", "", "must not have a query or a fragment"},
		{"https://hunter2@[::1", "", "is not a valid URL"},
	}
	for _, c := range cases {
		u, err := ParseBaseURL(c.in, "k", "https://api.example.com", "user and key")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%q: err %v, want %q without the secret", c.in, err, c.err)
			}
			continue
		}
		if err != nil || u.String() != c.want {
			t.Errorf("%q: %v %v, want %s", c.in, u, err, c.want)
		}
	}
}
