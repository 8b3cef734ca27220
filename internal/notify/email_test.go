package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/notify"
	"github.com/vigil-ti/vigil/internal/notify/notifytest"
)

const (
	smtpUser     = "vigil@example.org"
	smtpPassword = "s3cret-smtp-pw"
)

var t0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

func alert(key string) vigil.Delivery {
	return vigil.Delivery{
		Key: key, Connector: "mail", Subject: "vigil: rule Known bad IP matched 203.0.113.7",
		Body: fmt.Appendf(nil, `{"@timestamp":"2026-03-01T09:29:00Z","event":{"id":%q,"kind":"alert"},"rule":{"name":"Known bad IP"},"threat":{"indicator":{"name":"203.0.113.7"}}}`, key),
	}
}

func emailSettings(s *notifytest.SMTPServer) notify.EmailSettings {
	return notify.EmailSettings{
		Name: "mail", Host: s.Host, Port: s.Port, Username: smtpUser, Password: smtpPassword,
		StartTLS: true, From: "vigil <vigil@example.org>", To: []string{"soc@example.org", "Ops Team <ops@example.net>"},
		CAFile: s.CAFile, Clock: vigil.ClockFunc(func() time.Time { return t0 }),
	}
}

func newEmail(t *testing.T, s notify.EmailSettings) *notify.Email {
	t.Helper()
	e, err := notify.NewEmail(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEmailSMTP sends through a real SMTP server that requires STARTTLS
// and AUTH, with PLAIN offered and with LOGIN only.
func TestEmailSMTP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exclude []string
		mech    string
	}{
		{"plain", nil, "PLAIN"},
		{"login only", []string{"PLAIN"}, "LOGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := notifytest.StartSMTP(t, notifytest.SMTPOptions{Username: smtpUser, Password: smtpPassword, ExcludeMechanisms: tc.exclude})
			e := newEmail(t, emailSettings(srv))
			d := alert("alert-1")
			if err := e.Send(t.Context(), d); err != nil {
				t.Fatal(err)
			}
			msgs := srv.Messages(t)
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			m := msgs[0]
			if !m.TLS || m.Auth != tc.mech+":"+smtpUser {
				t.Errorf("tls %v auth %q, want TLS and %s:%s", m.TLS, m.Auth, tc.mech, smtpUser)
			}
			if m.MailFrom != "vigil@example.org" || strings.Join(m.RcptTo, ",") != "soc@example.org,ops@example.net" {
				t.Errorf("envelope from %q to %q", m.MailFrom, m.RcptTo)
			}
			checkMessage(t, m, d)
		})
	}
}

func checkMessage(t *testing.T, m notifytest.Message, d vigil.Delivery) {
	t.Helper()
	h := m.Header
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "vigil" || from[0].Address != "vigil@example.org" {
		t.Errorf("From %v (%v)", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "soc@example.org" || to[1].Name != "Ops Team" {
		t.Errorf("To %v (%v)", to, err)
	}
	subj, err := new(mimeDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subj != d.Subject {
		t.Errorf("Subject %q (%v), want %q", subj, err, d.Subject)
	}
	if date, err := h.Date(); err != nil || !date.Equal(t0) {
		t.Errorf("Date %v (%v)", date, err)
	}
	if got, want := h.Get("Message-ID"), notify.MessageID(d.Key, "vigil@example.org"); got != want || !strings.HasSuffix(got, "@example.org>") {
		t.Errorf("Message-ID %q, want %q", got, want)
	}
	if h.Get("Content-Type") != "text/plain; charset=utf-8" || h.Get("MIME-Version") != "1.0" || h.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers %v", h)
	}
	if !strings.Contains(m.Body, "\n  \"rule\": {\n    \"name\": \"Known bad IP\"\n  },") || !strings.Contains(m.Body, `"id": "`+d.Key+`"`) {
		t.Errorf("body is not the indented document:\n%s", m.Body)
	}
}

// TestEmailFailures checks that the connector fails clearly, without the
// password, and never sends without the TLS and authentication asked for.
func TestEmailFailures(t *testing.T) {
	tlsAuth := notifytest.StartSMTP(t, notifytest.SMTPOptions{Username: smtpUser, Password: smtpPassword})
	noTLS := notifytest.StartSMTP(t, notifytest.SMTPOptions{NoTLS: true})
	cases := []struct {
		name     string
		srv      *notifytest.SMTPServer
		change   func(*notify.EmailSettings)
		want     string
		rejected bool
	}{
		{"wrong password", tlsAuth, func(s *notify.EmailSettings) { s.Password = "not-the-password" }, "AUTH (check username and password): 535", false},
		{"no STARTTLS offered", noTLS, func(s *notify.EmailSettings) {}, "does not offer STARTTLS", false},
		{"untrusted certificate", tlsAuth, func(s *notify.EmailSettings) { s.CAFile = "" }, "STARTTLS: tls: failed to verify certificate", false},
		{"no AUTH offered", noTLS, func(s *notify.EmailSettings) { s.StartTLS = false }, "offers no AUTH", false},
		// Without TLS the server offers no AUTH, and refuses mail.
		{"STARTTLS off, AUTH", tlsAuth, func(s *notify.EmailSettings) { s.StartTLS = false }, "offers no AUTH", false},
		{"STARTTLS off, no AUTH", tlsAuth, func(s *notify.EmailSettings) { s.StartTLS, s.Username, s.Password = false, "", "" }, "MAIL FROM: 530", false},
		{"nothing listening", tlsAuth, func(s *notify.EmailSettings) { s.Port = 1 }, "connection refused", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := emailSettings(tc.srv)
			tc.change(&s)
			err := newEmail(t, s).Send(t.Context(), alert("k"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "email mail: 127.0.0.1:") {
				t.Errorf("error %q does not name the connector and server", err)
			}
			if (s.Password != "" && strings.Contains(err.Error(), s.Password)) || strings.Contains(err.Error(), smtpPassword) {
				t.Errorf("error holds the password: %v", err)
			}
			if errors.Is(err, notify.ErrRejected) != tc.rejected {
				t.Errorf("rejected = %v, want %v", errors.Is(err, notify.ErrRejected), tc.rejected)
			}
			if n := len(tc.srv.Messages(t)); n != 0 {
				t.Errorf("%d messages accepted", n)
			}
		})
	}
	t.Run("message refused", func(t *testing.T) {
		small := notifytest.StartSMTP(t, notifytest.SMTPOptions{Username: smtpUser, Password: smtpPassword, DataSizeLimit: 2000})
		d := alert("big")
		d.Body = fmt.Appendf(nil, `{"x":%q}`, strings.Repeat("a", 5000))
		err := newEmail(t, emailSettings(small)).Send(t.Context(), d)
		if err == nil || !errors.Is(err, notify.ErrRejected) || !strings.Contains(err.Error(), "message refused") || !strings.Contains(err.Error(), "552") {
			t.Fatalf("error %v, want a refusal wrapping ErrRejected", err)
		}
		if err := newEmail(t, emailSettings(small)).Send(t.Context(), alert("small")); err != nil {
			t.Fatalf("a small message after a refused one: %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := newEmail(t, emailSettings(tlsAuth)).Send(ctx, alert("k"))
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
	})
}

type mimeDecoder = mime.WordDecoder

func parse(t *testing.T, raw []byte) *mail.Message {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("the message does not parse: %v\n%s", err, raw)
	}
	return m
}

func TestBuildMessage(t *testing.T) {
	from := &mail.Address{Name: "vigil", Address: "vigil@example.org"}
	to := []*mail.Address{{Address: "soc@example.org"}}
	cases := []struct {
		name, subject, wantSubject string
		body                       string
	}{
		{"ascii", "rule X matched", "rule X matched", `{"a":1}`},
		{"unicode", "règle « IP connue » a trouvé 203.0.113.7", "règle « IP connue » a trouvé 203.0.113.7", `{"a":"é"}`},
		{"header injection", "x\r\nBcc: victim@example.org", "x Bcc: victim@example.org", `{}`},
		{"empty subject", "", "vigil alert k1", `{}`},
		{"encoded word look-alike", "=?utf-8?q?evil?=", "= ?utf-8?q?evil?=", `{}`},
		{"long", strings.Repeat("long subject words ", 30), strings.TrimSpace(strings.Repeat("long subject words ", 30))[:200], `{}`},
		{"not json", "s", "s", "plain text\r\nline two"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := notify.BuildMessage(from, to, vigil.Delivery{Key: "k1", Subject: tc.subject, Body: []byte(tc.body)}, t0)
			for i, line := range strings.Split(string(raw), "\r\n") {
				if len(line) > 78 {
					t.Errorf("line %d is %d long: %q", i, len(line), line)
				}
			}
			if strings.Contains(strings.ReplaceAll(string(raw), "\r\n", ""), "\n") {
				t.Error("a bare LF")
			}
			m := parse(t, raw)
			subj, err := new(mimeDecoder).DecodeHeader(m.Header.Get("Subject"))
			if err != nil || strings.TrimSpace(subj) != strings.TrimSpace(tc.wantSubject) {
				t.Errorf("subject %q (%v), want %q", subj, err, tc.wantSubject)
			}
			if m.Header.Get("Bcc") != "" {
				t.Error("a Bcc header was injected")
			}
		})
	}
}
