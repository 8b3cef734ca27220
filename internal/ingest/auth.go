package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// Auth names the credentials the inputs require; empty fields ask for
// none. With both a token and a username, either is accepted.
type Auth struct {
	// Token is accepted as "Authorization: Bearer TOKEN", and as an
	// Elasticsearch API key: "Authorization: ApiKey X" where X is the
	// token, or base64 of "ID:TOKEN" with any ID (what Elastic's
	// clients send for an api_key of "ID:TOKEN").
	Token string
	// Username and Password are accepted as HTTP basic authentication.
	Username, Password string
}

// auth holds digests of the credentials, compared in constant time.
type auth struct {
	token, user, pass [sha256.Size]byte
	hasToken, hasUser bool
}

func newAuth(a Auth) auth {
	return auth{
		token: sha256.Sum256([]byte(a.Token)), hasToken: a.Token != "",
		user: sha256.Sum256([]byte(a.Username)), pass: sha256.Sum256([]byte(a.Password)), hasUser: a.Username != "",
	}
}

func equal(digest [sha256.Size]byte, s string) bool {
	d := sha256.Sum256([]byte(s))
	return subtle.ConstantTimeCompare(digest[:], d[:]) == 1
}

// authorized reports whether r carries credentials the inputs accept.
func (p *Pipeline) authorized(r *http.Request) bool {
	a := &p.auth
	if !a.hasToken && !a.hasUser {
		return true
	}
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "bearer":
		return a.hasToken && equal(a.token, cred)
	case "apikey":
		if !a.hasToken {
			return false
		}
		if equal(a.token, cred) {
			return true
		}
		dec, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return false
		}
		_, key, ok := strings.Cut(string(dec), ":")
		return ok && equal(a.token, key)
	case "basic":
		u, pw, ok := r.BasicAuth()
		return a.hasUser && ok && equal(a.user, u) && equal(a.pass, pw)
	}
	return false
}

// unauthorized sets the WWW-Authenticate challenges of a 401 answer.
func (p *Pipeline) unauthorized(w http.ResponseWriter) {
	if p.auth.hasUser {
		w.Header().Add("WWW-Authenticate", `Basic realm="vigil", charset="UTF-8"`)
	}
	if p.auth.hasToken {
		w.Header().Add("WWW-Authenticate", `Bearer realm="vigil"`)
		w.Header().Add("WWW-Authenticate", "ApiKey")
	}
}

// withAuth wraps a handler of vigil's own API with the credentials check.
func (p *Pipeline) withAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !p.authorized(r) {
			p.unauthorized(w)
			writeAPIError(w, &httpError{status: http.StatusUnauthorized, msg: "missing or wrong credentials: send the token as Authorization: Bearer, or basic authentication (detection.inputs)"})
			return
		}
		h(w, r)
	}
}
