// Package notify delivers alerts and warnings to the configured connectors
// (webhooks and e-mail) from the persisted outbox, with retries and
// exponential backoff.
//
// Every delivery carries the stable id of what it delivers: a webhook sends
// it as the Idempotency-Key header, an e-mail derives its Message-ID from
// it, so that a receiver can drop a copy sent again after a crash. A
// delivery stays in the outbox until a connector accepts it; nothing is
// dropped, so a receiver that is down for an hour gets every alert once it
// is back.
package notify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-ti/vigil"
)

// Connector sends deliveries to one destination.
type Connector interface {
	// Send delivers d once. An error wrapping ErrRejected means the
	// destination refused this delivery (the connector itself works);
	// any other error means the destination could not be reached or
	// failed, and the deliverer puts off the connector's other
	// deliveries until the next attempt. Either way the delivery is
	// retried with backoff.
	Send(ctx context.Context, d vigil.Delivery) error
}

// ErrRejected is wrapped by a Send error when the destination refused the
// delivery itself (e.g. HTTP 400, or an SMTP server refusing the message's
// content), as opposed to being unreachable or failing.
var ErrRejected = errors.New("rejected")

// retryAfterError is implemented by errors that carry the destination's
// own retry delay (HTTP Retry-After): the deliverer waits at least that
// long, up to its backoff cap.
type retryAfterError interface {
	error
	RetryAfter() time.Duration // <= 0: none
}

// LoadCAFile reads a PEM file of CA certificates and returns a pool of the
// system's roots plus those certificates.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// clip cuts s to at most n bytes on a rune boundary, makes it valid UTF-8
// and trims it.
func clip(s string, n int) string {
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD"))
}

// redact replaces each secret (of 4 bytes or more) in s by [redacted].
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}

// redacted is an error whose text has its secrets replaced by [redacted].
// errors.Is and errors.As still see the error it wraps.
type redacted struct {
	err     error
	secrets []string
}

func (r redacted) Error() string { return redact(r.err.Error(), r.secrets) }
func (r redacted) Unwrap() error { return r.err }
