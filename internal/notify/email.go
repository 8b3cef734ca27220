package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-ti/vigil"
)

// EmailSettings configure an e-mail connector (connectors[] with type
// email).
type EmailSettings struct {
	Name     string
	Host     string
	Port     int // 587 by default
	Username string
	Password string // never in errors or logs
	// StartTLS upgrades the connection with STARTTLS before anything else
	// is sent, and fails when the server does not offer it.
	StartTLS bool
	From     string   // an RFC 5322 address, e.g. "vigil <vigil@example.org>"
	To       []string // addresses
	// CAFile is a PEM file of CA certificates trusted besides the
	// system's, for a server with a private CA.
	CAFile string
	// Clock dates the messages; the wall clock by default.
	Clock vigil.Clock
}

// Email sends each delivery as one e-mail over SMTP: EHLO, STARTTLS (when
// configured), AUTH PLAIN (or LOGIN when only that is offered), then one
// message to every recipient.
//
// The message is plain text: the document as indented JSON. Its
// Message-ID is derived from the delivery's key, so a copy sent again
// after a crash has the same Message-ID. SMTP refusals of the message
// itself (a 5xx answer to DATA) wrap ErrRejected; any other failure
// (connection, TLS, authentication, a recipient refused) means the
// connector does not work.
type Email struct {
	name     string
	addr     string // host:port
	host     string
	username string
	password string
	startTLS bool
	tls      *tls.Config
	from     *mail.Address
	to       []*mail.Address
	clock    vigil.Clock
}

var _ Connector = (*Email)(nil)

// DefaultSMTPPort is the message submission port (RFC 6409), where
// STARTTLS and authentication are the rule.
const DefaultSMTPPort = 587

// NewEmail returns an e-mail connector.
func NewEmail(s EmailSettings) (*Email, error) {
	if s.Host == "" {
		return nil, fmt.Errorf("email %s: host is required", s.Name)
	}
	e := &Email{
		name: s.Name, host: s.Host, username: s.Username, password: s.Password,
		startTLS: s.StartTLS, clock: s.Clock,
	}
	port := s.Port
	if port == 0 {
		port = DefaultSMTPPort
	}
	e.addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	if e.clock == nil {
		e.clock = vigil.SystemClock{}
	}
	var err error
	if e.from, err = mail.ParseAddress(s.From); err != nil {
		return nil, fmt.Errorf("email %s: from: %w", s.Name, err)
	}
	if len(s.To) == 0 {
		return nil, fmt.Errorf("email %s: to: at least one address is required", s.Name)
	}
	for _, t := range s.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("email %s: to: %q: %w", s.Name, t, err)
		}
		e.to = append(e.to, a)
	}
	e.tls = &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		if e.tls.RootCAs, err = LoadCAFile(s.CAFile); err != nil {
			return nil, fmt.Errorf("email %s: ca_file: %w", s.Name, err)
		}
	}
	return e, nil
}

// Send mails the delivery to every recipient.
func (e *Email) Send(ctx context.Context, d vigil.Delivery) error {
	msg := BuildMessage(e.from, e.to, d, e.clock.Now())
	if err := e.send(ctx, msg); err != nil {
		err = redacted{err, []string{e.password}}
		if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
			err = fmt.Errorf("%w (%w)", err, cause)
		}
		return fmt.Errorf("email %s: %s: %w", e.name, e.addr, err)
	}
	return nil
}

func (e *Email) send(ctx context.Context, msg []byte) error {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return err
	}
	// The deadline bounds every read and write; cancelling ctx ends them.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("EHLO: %w", err)
	}
	if e.startTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the server does not offer STARTTLS (set starttls: false only for a server that cannot, on a trusted network)")
		}
		if err := c.StartTLS(e.tls); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if e.username != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return errors.New("the server offers no AUTH, and a username is configured")
		}
		var a smtp.Auth
		switch offered := strings.Fields(strings.ToUpper(mechs)); {
		case slices.Contains(offered, "PLAIN"):
			a = smtp.PlainAuth("", e.username, e.password, e.host)
		case slices.Contains(offered, "LOGIN"):
			a = &loginAuth{username: e.username, password: e.password, host: e.host}
		default:
			return fmt.Errorf("the server offers AUTH %s; vigil speaks PLAIN and LOGIN", mechs)
		}
		if err := c.Auth(a); err != nil {
			return fmt.Errorf("AUTH (check username and password): %w", err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, t := range e.to {
		if err := c.Rcpt(t.Address); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", t.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) && te.Code/100 == 5 {
			return fmt.Errorf("message refused: %w: %w", ErrRejected, err)
		}
		return fmt.Errorf("DATA: %w", err)
	}
	// The message is accepted: a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// loginAuth is the LOGIN mechanism (draft-murchison-sasl-login), for
// servers that offer no PLAIN. Like smtp.PlainAuth it sends the password
// only over TLS or to the local host.
type loginAuth struct {
	username, password, host string
}

func (a *loginAuth) Start(s *smtp.ServerInfo) (string, []byte, error) {
	if !s.TLS && !isLocalhost(s.Name) {
		return "", nil, errors.New("unencrypted connection: vigil does not send a password without TLS")
	}
	if s.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

func (a *loginAuth) Next(from []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	prompt := strings.ToLower(strings.TrimSpace(strings.TrimRight(string(from), "\x00")))
	switch {
	case strings.HasPrefix(prompt, "user"):
		return []byte(a.username), nil
	case strings.HasPrefix(prompt, "pass"):
		return []byte(a.password), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN prompt %q", clip(prompt, 40))
}

func isLocalhost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxSubject bounds the subject, in bytes before encoding.
const maxSubject = 200

// BuildMessage returns the RFC 5322 message of a delivery: headers From,
// To, Subject (the delivery's, or "vigil alert" and its key), Date,
// Message-ID (derived from the key), MIME-Version, a text/plain UTF-8 body
// in quoted-printable holding the document as indented JSON, and
// Auto-Submitted: auto-generated (RFC 3834), so that auto-responders stay
// quiet. Lines end in CRLF.
func BuildMessage(from *mail.Address, to []*mail.Address, d vigil.Delivery, date time.Time) []byte {
	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("From", from.String())
	tos := make([]string, len(to))
	for i, a := range to {
		tos[i] = a.String()
	}
	header("To", strings.Join(tos, ",\r\n "))
	subject := oneLine(d.Subject)
	if subject == "" {
		subject = "vigil alert " + oneLine(d.Key)
	}
	header("Subject", encodeHeader(clip(subject, maxSubject)))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", MessageID(d.Key, from.Address))
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	var body bytes.Buffer
	if err := json.Indent(&body, d.Body, "", "  "); err != nil {
		body.Reset()
		body.Write(d.Body)
	}
	body.WriteString("\n")
	// In text mode the writer ends every line in CRLF.
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ToValidUTF8(body.String(), "\uFFFD")))
	_ = qp.Close()
	return b.Bytes()
}

// MessageID is the Message-ID of the e-mail of a key: the same key gives
// the same id, on the sender's domain.
func MessageID(key, from string) string {
	sum := sha256.Sum256([]byte(key))
	domain := "vigil.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	return "<vigil." + hex.EncodeToString(sum[:16]) + "@" + domain + ">"
}

// oneLine turns control characters (line breaks included) into spaces.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return strings.Join(strings.Fields(s), " ")
}

// encodeHeader encodes a header value as RFC 2047 encoded words when it is
// not plain ASCII, and folds it so that no line is longer than 78
// characters (the name "Subject: " included).
func encodeHeader(s string) string {
	const first = 78 - len("Subject: ")
	var words []string
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		// "=?" would start an encoded word to a reader.
		words = strings.Fields(strings.ReplaceAll(s, "=?", "= ?"))
	} else {
		words = qWords(s, first-1)
	}
	var b strings.Builder
	line := 78 - first
	for i, w := range words {
		if i > 0 {
			if line+1+len(w) > 78 {
				b.WriteString("\r\n ")
				line = 1
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}

// qWords encodes s as "Q" encoded words (RFC 2047) of at most max
// characters each, never splitting a character. A reader joins adjacent
// encoded words without the space between them.
func qWords(s string, max int) []string {
	const pre, post = "=?utf-8?q?", "?="
	var words []string
	var w strings.Builder
	var buf [utf8.UTFMax]byte
	for _, r := range s {
		var enc string
		switch {
		case r == ' ':
			enc = "_"
		case r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!*+-/", r)):
			enc = string(r)
		default:
			n := utf8.EncodeRune(buf[:], r)
			for _, c := range buf[:n] {
				enc += fmt.Sprintf("=%02X", c)
			}
		}
		if w.Len() > 0 && len(pre)+w.Len()+len(enc)+len(post) > max {
			words = append(words, pre+w.String()+post)
			w.Reset()
		}
		w.WriteString(enc)
	}
	if w.Len() > 0 {
		words = append(words, pre+w.String()+post)
	}
	return words
}
