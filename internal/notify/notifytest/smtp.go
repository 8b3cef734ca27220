package notifytest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RequireSMTPEnv names the environment variable that turns a missing SMTP
// server (python3 or its aiosmtpd module) from a skip into a failure. CI
// sets it.
const RequireSMTPEnv = "VIGIL_REQUIRE_SMTP"

// SMTPOptions configure an SMTPServer.
type SMTPOptions struct {
	// NoTLS starts a server that offers no STARTTLS. Otherwise STARTTLS
	// is required before any other command but EHLO, NOOP and QUIT.
	NoTLS bool
	// Username and Password are the one account accepted; AUTH is then
	// required before MAIL. Empty: no AUTH.
	Username, Password string
	// ExcludeMechanisms are AUTH mechanisms not offered, e.g. "PLAIN".
	ExcludeMechanisms []string
	// DataSizeLimit makes the server refuse (552) a message larger than
	// this many bytes; 0: aiosmtpd's default (32 MiB).
	DataSizeLimit int
}

// SMTPServer is a real SMTP server (aiosmtpd) in a child process, on
// 127.0.0.1, with a self-signed certificate for 127.0.0.1 and localhost.
type SMTPServer struct {
	Host   string // 127.0.0.1
	Port   int
	CAFile string // the server's certificate, PEM, to trust
	dir    string // where the server writes each message it accepts
}

// Message is one message the server accepted.
type Message struct {
	MailFrom string   // the envelope sender
	RcptTo   []string // the envelope recipients
	TLS      bool     // the message came over TLS
	Auth     string   // "MECHANISM:login", or "" without AUTH
	Header   mail.Header
	Body     string // decoded from quoted-printable when so encoded, lines ending in LF
	Raw      []byte // the message as received
}

// smtpScript is the server: aiosmtpd's Controller, with STARTTLS required
// when a certificate is given and AUTH required when a user is given. Each
// accepted message is written to --dir with the envelope before it. It
// prints "READY <port>" and runs until its stdin is closed.
const smtpScript = `
import argparse, os, socket, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("--dir", required=True)
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--user")
p.add_argument("--password")
p.add_argument("--exclude", default="")
p.add_argument("--max-size", type=int, default=0)
args = p.parse_args()

class Handler:
    def __init__(self):
        self.n = 0
    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        path = os.path.join(args.dir, "%06d.eml" % self.n)
        with open(path + ".tmp", "wb") as f:
            f.write(("X-Test-Mail-From: %s\r\n" % envelope.mail_from).encode())
            f.write(("X-Test-Rcpt-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(("X-Test-TLS: %s\r\n" % ("yes" if session.ssl else "no")).encode())
            f.write(("X-Test-Auth: %s\r\n" % (session.auth_data or "")).encode())
            f.write(envelope.original_content)
        os.rename(path + ".tmp", path)
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == args.user.encode()
          and auth_data.password == args.password.encode())
    if not ok:
        return AuthResult(success=False, handled=False)
    return AuthResult(success=True, auth_data="%s:%s" % (mechanism, args.user))

kwargs = {}
if args.cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    kwargs.update(tls_context=ctx, require_starttls=True)
if args.user:
    kwargs.update(authenticator=authenticator, auth_required=True,
                  auth_require_tls=bool(args.cert))
if args.max_size:
    kwargs.update(data_size_limit=args.max_size)
if args.exclude:
    kwargs.update(auth_exclude_mechanism=args.exclude.split(","))

for _ in range(20):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
    try:
        c.start()
        break
    except OSError:
        continue
else:
    sys.exit("no free port")
print("READY %d" % port, flush=True)
sys.stdin.read()
c.stop()
`

// pythonWithAiosmtpd returns a Python interpreter that can import aiosmtpd:
// $VIGIL_PYTHON, python3 on the PATH, or Debian's /usr/bin/python3 (a
// python3 from pyenv or a virtualenv does not see Debian's packages).
func pythonWithAiosmtpd() (string, error) {
	candidates := []string{os.Getenv("VIGIL_PYTHON"), "python3", "/usr/bin/python3"}
	var tried []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		path, err := exec.LookPath(c)
		if err != nil || slices.Contains(tried, path) {
			continue
		}
		tried = append(tried, path)
		if exec.Command(path, "-c", "import aiosmtpd").Run() == nil {
			return path, nil
		}
	}
	if len(tried) == 0 {
		return "", fmt.Errorf("no python3 found")
	}
	return "", fmt.Errorf("no python3 with the aiosmtpd module (tried %s)", strings.Join(tried, ", "))
}

// StartSMTP starts an SMTP server that stops when the test ends. Without
// python3 and aiosmtpd the test is skipped, or fails when
// $VIGIL_REQUIRE_SMTP is 1.
func StartSMTP(t testing.TB, opts SMTPOptions) *SMTPServer {
	t.Helper()
	python, err := pythonWithAiosmtpd()
	if err != nil {
		msg := fmt.Sprintf("notifytest: a real SMTP server is needed: %v (install it with `apt-get install python3-aiosmtpd`)", err)
		if os.Getenv(RequireSMTPEnv) == "1" {
			t.Fatalf("%s; %s=1 requires it", msg, RequireSMTPEnv)
		}
		t.Skip(msg + "; set " + RequireSMTPEnv + "=1 to fail instead")
	}
	dir := t.TempDir()
	s := &SMTPServer{Host: "127.0.0.1", dir: filepath.Join(dir, "mail")}
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "smtpd.py")
	if err := os.WriteFile(script, []byte(smtpScript), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{script, "--dir", s.dir}
	if !opts.NoTLS {
		s.CAFile = filepath.Join(dir, "cert.pem")
		key := filepath.Join(dir, "key.pem")
		if err := WriteSelfSigned(s.CAFile, key); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--cert", s.CAFile, "--key", key)
	}
	if opts.Username != "" {
		args = append(args, "--user", opts.Username, "--password", opts.Password)
	}
	if len(opts.ExcludeMechanisms) > 0 {
		args = append(args, "--exclude", strings.Join(opts.ExcludeMechanisms, ","))
	}
	if opts.DataSizeLimit > 0 {
		args = append(args, "--max-size", strconv.Itoa(opts.DataSizeLimit))
	}
	cmd := exec.Command(python, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("notifytest: start the SMTP server: %v", err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		close(exited)
	}()
	var line string
	select {
	case line = <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("notifytest: the SMTP server did not start within 60s")
	}
	port, ok := strings.CutPrefix(line, "READY ")
	if !ok {
		<-exited
		t.Fatalf("notifytest: the SMTP server did not start: %q\n%s", line, stderr.String())
	}
	if s.Port, err = strconv.Atoi(port); err != nil {
		t.Fatalf("notifytest: SMTP server said %q", line)
	}
	return s
}

// Addr returns host:port.
func (s *SMTPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages returns the messages accepted so far, in order. The server
// writes a message before it answers the DATA, so a message is here once
// the client's Send has returned.
func (s *SMTPServer) Messages(t testing.TB) []Message {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(s.dir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	var out []Message
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parseMessage(t, b))
	}
	return out
}

func parseMessage(t testing.TB, b []byte) Message {
	t.Helper()
	var m Message
	rest := b
	for _, h := range []string{"X-Test-Mail-From", "X-Test-Rcpt-To", "X-Test-TLS", "X-Test-Auth"} {
		line, after, _ := bytes.Cut(rest, []byte("\r\n"))
		rest = after
		v, ok := strings.CutPrefix(string(line), h+": ")
		if !ok {
			t.Fatalf("notifytest: message file starts with %q, want %s", line, h)
		}
		switch h {
		case "X-Test-Mail-From":
			m.MailFrom = v
		case "X-Test-Rcpt-To":
			m.RcptTo = strings.Split(v, ",")
		case "X-Test-TLS":
			m.TLS = v == "yes"
		case "X-Test-Auth":
			m.Auth = v
		}
	}
	m.Raw = rest
	msg, err := mail.ReadMessage(bytes.NewReader(rest))
	if err != nil {
		t.Fatalf("notifytest: the message does not parse: %v\n%s", err, rest)
	}
	m.Header = msg.Header
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	bb, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("notifytest: the message body does not decode: %v", err)
	}
	m.Body = strings.ReplaceAll(string(bb), "\r\n", "\n")
	return m
}

// WriteSelfSigned writes a self-signed CA certificate for 127.0.0.1 and
// localhost, and its key, as PEM files.
func WriteSelfSigned(certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "vigil test SMTP server"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
}
