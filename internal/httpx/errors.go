package httpx

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// errorBodyLen is how much of an error response's body a StatusError keeps.
// errorBodyRead is how much is read to find it: more, so that a credential
// echoed across the cut is removed whole before the cut is made.
const (
	errorBodyLen  = 512
	errorBodyRead = 4096
)

// StatusError is an HTTP response whose status the caller did not accept.
// Its fields hold no credentials: URL is redacted and headers are never kept.
type StatusError struct {
	Method     string
	URL        string // redacted by RedactURL: no userinfo, secret-looking query values replaced
	StatusCode int
	Body       string // the first 512 bytes of the body, trimmed, credentials removed
	// RetryAfter is the server's Retry-After delay, or -1 when it sent none.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}

// TransportError is a request that got no HTTP response: a refused
// connection, a TLS failure, a timeout.
type TransportError struct {
	Method string
	URL    string // redacted
	Err    error
}

func (e *TransportError) Error() string { return fmt.Sprintf("%s %s: %v", e.Method, e.URL, e.Err) }
func (e *TransportError) Unwrap() error { return e.Err }

// StatusCode returns the status of the *StatusError in err's chain, or 0.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// IsStatus reports whether err's chain holds a *StatusError with one of the
// given statuses.
func IsStatus(err error, codes ...int) bool {
	sc := StatusCode(err)
	if sc == 0 {
		return false
	}
	for _, c := range codes {
		if c == sc {
			return true
		}
	}
	return false
}

// Query parameter names (lowercased, without "_", "-", "[" and "]") whose
// values RedactURL hides: exact names, and suffixes such as "accesstoken".
var (
	secretParams = map[string]bool{
		"key": true, "apikey": true, "token": true, "secret": true, "password": true,
		"passwd": true, "pass": true, "pwd": true, "signature": true, "sig": true,
		"auth": true, "authorization": true, "credential": true, "credentials": true,
		"session": true, "sessionid": true,
	}
	secretSuffixes = []string{"apikey", "token", "secret", "secretkey", "password", "signature"}
)

func isSecretParam(name string) bool {
	n := strings.ToLower(paramNormalizer.Replace(name))
	if secretParams[n] {
		return true
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

var paramNormalizer = strings.NewReplacer("_", "", "-", "", "[", "", "]", "")

// RedactURL returns u as a string without userinfo and with the values of
// secret-looking query parameters (api_key, token, signature, …) replaced
// by REDACTED. The rest of the query is kept: it says what was asked.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := *u
	r.User = nil
	if r.RawQuery != "" {
		q, err := url.ParseQuery(r.RawQuery)
		if err != nil {
			r.RawQuery = "(unparsable query removed)"
		} else {
			changed := false
			for k, vs := range q {
				if isSecretParam(k) {
					for i := range vs {
						vs[i] = "REDACTED"
					}
					changed = true
				}
			}
			if changed {
				r.RawQuery = q.Encode()
			}
		}
	}
	return r.String()
}

// redactBody removes from an error body any credential of req that a server
// might have echoed back, cuts it to errorBodyLen bytes, trims it and makes it
// valid UTF-8.
func redactBody(b []byte, req *http.Request) string {
	s := string(b)
	for _, secret := range requestSecrets(req) {
		s = strings.ReplaceAll(s, secret, "[REDACTED]")
	}
	if len(s) > errorBodyLen {
		cut := errorBodyLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
}

// requestSecrets lists the credential strings a request carries: the
// Authorization header and its parts, the basic-auth password, URL userinfo
// and secret-looking query values. Strings shorter than 4 bytes are left
// out: replacing them would mangle the body without protecting anything.
func requestSecrets(req *http.Request) []string {
	var out []string
	add := func(s string) {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	for _, h := range []string{"Authorization", "Proxy-Authorization", "X-Api-Key", "Cookie"} {
		v := req.Header.Get(h)
		if v == "" {
			continue
		}
		add(v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			add(cred)
			if dec, err := base64.StdEncoding.DecodeString(cred); err == nil {
				add(string(dec))
				if _, pw, ok := strings.Cut(string(dec), ":"); ok {
					add(pw)
				}
			}
		}
	}
	if _, pw, ok := req.BasicAuth(); ok {
		add(pw)
	}
	if req.URL != nil {
		if pw, ok := req.URL.User.Password(); ok {
			add(pw)
			// net/http turns userinfo into this header on its own copy.
			add(base64.StdEncoding.EncodeToString([]byte(req.URL.User.Username() + ":" + pw)))
		}
		for k, vs := range req.URL.Query() {
			if isSecretParam(k) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// The pieces below word a failed call's status the same way in every
// source's error messages.

// WriteQuoted appends `: "message"` to b when message is not empty.
func WriteQuoted(b *strings.Builder, message string) {
	if message != "" {
		b.WriteString(": ")
		b.WriteString(strconv.Quote(message))
	}
}

// WriteStatus appends "HTTP 404 Not Found", with the upstream's message
// quoted after it.
func WriteStatus(b *strings.Builder, code int, message string) {
	fmt.Fprintf(b, "HTTP %d", code)
	if t := http.StatusText(code); t != "" {
		b.WriteString(" " + t)
	}
	WriteQuoted(b, message)
}

// WriteRetried appends that the status stayed after the retries, when it
// did.
func WriteRetried(b *strings.Builder, retried bool) {
	if retried {
		b.WriteString(" (still failing after retries)")
	}
}

// IsCredentialStatus reports whether code means the credentials were
// rejected: 401 or 403.
func IsCredentialStatus(code int) bool {
	return code == http.StatusUnauthorized || code == http.StatusForbidden
}
