package notify_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/notify"
)

// FuzzBuildMessage checks that any subject, key and document give a
// message that parses, with exactly vigil's headers (nothing injected), no
// line over 78 characters, a one-line subject that decodes, and a body
// that decodes to the document.
func FuzzBuildMessage(f *testing.F) {
	f.Add("rule X matched 203.0.113.7", "k1", []byte(`{"a":1,"b":"é"}`))
	f.Add("règle « IP connue »\r\nBcc: x@example.org", "k\n2", []byte(`not json`))
	f.Add("=?utf-8?q?x?= "+strings.Repeat("ü", 120), "", []byte(`{"long":"`+strings.Repeat("x", 2000)+`"}`))
	f.Add("\x00\xff\xfe", "\x7f", []byte{0xff, '\r', '\n', '.', '\r', '\n'})
	from := &mail.Address{Name: "vigil", Address: "vigil@example.org"}
	to := []*mail.Address{{Address: "soc@example.org"}}
	want := []string{"Auto-Submitted", "Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}
	f.Fuzz(func(t *testing.T, subject, key string, body []byte) {
		raw := notify.BuildMessage(from, to, vigil.Delivery{Key: key, Subject: subject, Body: body}, t0)
		for i, line := range bytes.Split(raw, []byte("\r\n")) {
			if len(line) > 78 {
				t.Fatalf("line %d is %d long: %q", i, len(line), line)
			}
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("line %d holds a bare CR or LF: %q", i, line)
			}
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("does not parse: %v\n%s", err, raw)
		}
		var keys []string
		for k := range m.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("headers %v, want %v", keys, want)
		}
		subj, err := new(mimeDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatalf("subject %q does not decode: %v", m.Header.Get("Subject"), err)
		}
		if strings.IndexFunc(subj, unicode.IsControl) >= 0 || subj == "" {
			t.Fatalf("subject %q", subj)
		}
		got, err := io.ReadAll(quotedprintable.NewReader(m.Body))
		if err != nil {
			t.Fatalf("body does not decode: %v", err)
		}
		if json.Valid(body) {
			var a, b bytes.Buffer
			// The body is UTF-8: invalid bytes become U+FFFD.
			if json.Compact(&a, bytes.ToValidUTF8(body, []byte("\uFFFD"))) != nil || json.Compact(&b, got) != nil || a.String() != b.String() {
				t.Fatalf("body %q, want the document %q", got, body)
			}
		}
	})
}
