package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ti/vigil/internal/notify"
)

// Connector is one entry of connectors[]: where alerts and warnings are
// delivered. Its settings are those of its type; a setting of the other
// type is an error.
type Connector struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // webhook or email

	// webhook
	URL    string `yaml:"url"`
	Method string `yaml:"method"` // POST (default), PUT, PATCH
	// Headers are sent with every request; their values may be secrets
	// (an Authorization header) and are never printed.
	Headers map[string]Secret `yaml:"headers"`
	// Body is a Go text/template of the request body; empty sends the
	// alert document as JSON (see notify.TemplateData).
	Body string `yaml:"body"`

	// email
	Host     string   `yaml:"host"`
	Port     int      `yaml:"port"` // 587 by default
	Username string   `yaml:"username"`
	Password Secret   `yaml:"password"`
	StartTLS *bool    `yaml:"starttls"` // true by default
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`

	// CAFile (both types) is a PEM file of CA certificates trusted
	// besides the system's, for a receiver with a private CA.
	CAFile string `yaml:"ca_file"`
}

// Connector types.
const (
	ConnectorWebhook = "webhook"
	ConnectorEmail   = "email"
)

// ConnectorTypes lists the connector types.
var ConnectorTypes = []string{ConnectorWebhook, ConnectorEmail}

// Outbox configures the delivery of the outbox to the connectors.
type Outbox struct {
	// MaxBackoff caps the delay between two attempts of a delivery.
	MaxBackoff Duration `yaml:"max_backoff"`
	// Timeout bounds one attempt.
	Timeout Duration `yaml:"timeout"`
}

// DefaultOutbox returns the outbox block's defaults.
func DefaultOutbox() Outbox {
	return Outbox{MaxBackoff: Duration(notify.DefaultMaxBackoff), Timeout: Duration(notify.DefaultTimeout)}
}

// Connector returns the connector named name, or nil.
func (c *Config) Connector(name string) *Connector {
	for i := range c.Connectors {
		if c.Connectors[i].Name == name {
			return &c.Connectors[i]
		}
	}
	return nil
}

// ConnectorNames lists the connectors' names, in configuration order.
func (c *Config) ConnectorNames() []string {
	out := make([]string, len(c.Connectors))
	for i, cn := range c.Connectors {
		out[i] = cn.Name
	}
	return out
}

// StartTLSOn reports whether STARTTLS is required (the default).
func (cn *Connector) StartTLSOn() bool { return cn.StartTLS == nil || *cn.StartTLS }

// reservedHeaders are set by vigil or by HTTP itself.
var reservedHeaders = []string{"Idempotency-Key", "Content-Length", "Host", "Transfer-Encoding", "Connection"}

func (c *Config) validateConnectors(errs *[]string) {
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	seen := map[string]int{}
	for i := range c.Connectors {
		cn := &c.Connectors[i]
		p := fmt.Sprintf("connectors[%d]", i)
		switch {
		case cn.Name == "":
			add("%s.name: required (a name for detection.actions to refer to, e.g. soc-webhook)", p)
		case !validName(cn.Name):
			add("%s.name: %q is not allowed (letters, digits, '-', '_' and '.')", p, cn.Name)
		default:
			if j, dup := seen[cn.Name]; dup {
				add("%s.name: %q is already the name of connectors[%d]; names must be unique", p, cn.Name, j)
			}
			seen[cn.Name] = i
			p = fmt.Sprintf("connectors[%d] (%s)", i, cn.Name)
		}
		switch cn.Type {
		case ConnectorWebhook:
			cn.validateWebhook(c, p, add)
		case ConnectorEmail:
			cn.validateEmail(p, add)
		case "":
			add("%s.type: required (allowed: %s)", p, strings.Join(ConnectorTypes, ", "))
		default:
			add("%s.type: %q is not allowed (allowed: %s)", p, cn.Type, strings.Join(ConnectorTypes, ", "))
		}
		if cn.CAFile != "" {
			if _, err := notify.LoadCAFile(cn.CAFile); err != nil {
				add("%s.ca_file: %v", p, err)
			}
		}
	}
	if c.Outbox.MaxBackoff < Duration(time.Second) {
		add("outbox.max_backoff: must be at least 1s (default 1m)")
	}
	if c.Outbox.Timeout < Duration(time.Second) {
		add("outbox.timeout: must be at least 1s (default 30s)")
	}
}

// others names the settings of the other type that were given.
func (cn *Connector) others() (webhook, email []string) {
	for _, f := range []struct {
		key string
		set bool
	}{{"url", cn.URL != ""}, {"method", cn.Method != ""}, {"headers", cn.Headers != nil}, {"body", cn.Body != ""}} {
		if f.set {
			webhook = append(webhook, f.key)
		}
	}
	for _, f := range []struct {
		key string
		set bool
	}{{"host", cn.Host != ""}, {"port", cn.Port != 0}, {"username", cn.Username != ""}, {"password", cn.Password.Value() != ""},
		{"starttls", cn.StartTLS != nil}, {"from", cn.From != ""}, {"to", cn.To != nil}} {
		if f.set {
			email = append(email, f.key)
		}
	}
	return webhook, email
}

func (cn *Connector) validateWebhook(c *Config, p string, add func(string, ...any)) {
	if _, email := cn.others(); len(email) > 0 {
		add("%s: %s: not a webhook setting (webhook settings: url, method, headers, body, ca_file)", p, strings.Join(email, ", "))
	}
	if cn.URL == "" {
		add("%s.url: required (the receiver's http or https URL)", p)
	} else if err := checkWebhookURL(cn.URL); err != nil {
		add("%s.url: %v", p, err)
	} else if u, _ := url.Parse(cn.URL); u.Scheme == "http" && !isLoopback(u.Hostname()) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s.url: not https: alerts and header values cross the network unencrypted", p))
	}
	cn.Method = strings.ToUpper(cn.Method)
	if cn.Method == "" {
		cn.Method = "POST"
	}
	if !slices.Contains(notify.WebhookMethods, cn.Method) {
		add("%s.method: %q is not allowed (allowed: %s)", p, cn.Method, strings.Join(notify.WebhookMethods, ", "))
	}
	names := make([]string, 0, len(cn.Headers))
	for name := range cn.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch {
		case !validHeaderName(name):
			add("%s.headers: %q is not a valid header name", p, name)
		case slices.ContainsFunc(reservedHeaders, func(r string) bool { return strings.EqualFold(r, name) }):
			add("%s.headers.%s: set by vigil or by HTTP; not allowed here", p, name)
		case strings.ContainsAny(cn.Headers[name].Value(), "\r\n\x00"):
			// The value is not quoted: it may be a secret.
			add("%s.headers.%s: the value holds a line break or NUL", p, name)
		}
	}
	if cn.Body != "" {
		if _, err := notify.ParseBodyTemplate(cn.Body); err != nil {
			add("%s.body: %v (fields: .Doc, .JSON, .Key, .Subject, .Connector; functions: json, field)", p, err)
		}
	}
}

func (cn *Connector) validateEmail(p string, add func(string, ...any)) {
	if webhook, _ := cn.others(); len(webhook) > 0 {
		add("%s: %s: not an email setting (email settings: host, port, username, password, starttls, from, to, ca_file)", p, strings.Join(webhook, ", "))
	}
	switch {
	case cn.Host == "":
		add("%s.host: required (the SMTP server's name, e.g. smtp.example.org)", p)
	case strings.ContainsAny(cn.Host, ":/ ") && !isIPv6(cn.Host):
		add("%s.host: %q is not a host name (give the port in port, without a scheme)", p, cn.Host)
	}
	if cn.Port == 0 {
		cn.Port = notify.DefaultSMTPPort
	}
	if cn.Port < 1 || cn.Port > 65535 {
		add("%s.port: %d is out of range (1 to 65535; default 587, the submission port)", p, cn.Port)
	}
	if cn.Password.Value() != "" && cn.Username == "" {
		add("%s.username: required when a password is given", p)
	}
	if cn.Username != "" && !cn.StartTLSOn() && !isLoopback(cn.Host) {
		add("%s.starttls: false would send the password unencrypted to %s; vigil refuses (allowed only for a loopback host)", p, cn.Host)
	}
	tls := true
	if cn.StartTLS != nil {
		tls = *cn.StartTLS
	}
	cn.StartTLS = &tls
	if cn.From == "" {
		add("%s.from: required (the sender, e.g. \"vigil <vigil@example.org>\")", p)
	} else if _, err := mail.ParseAddress(cn.From); err != nil {
		add("%s.from: %q is not an e-mail address (e.g. vigil@example.org or \"vigil <vigil@example.org>\")", p, cn.From)
	}
	if len(cn.To) == 0 {
		add("%s.to: at least one address is required", p)
	}
	for i, to := range cn.To {
		if _, err := mail.ParseAddress(to); err != nil {
			add("%s.to[%d]: %q is not an e-mail address (e.g. soc@example.org or \"SOC <soc@example.org>\")", p, i, to)
		}
	}
}

// checkWebhookURL checks an absolute http(s) URL without credentials. The
// URL is not quoted in errors: its path may hold a token.
func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("is not a valid URL (e.g. https://hooks.example.org/vigil)")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme %q is not allowed (allowed: http, https)", u.Scheme)
	case u.Host == "":
		return fmt.Errorf("has no host; give an absolute URL (e.g. https://hooks.example.org/vigil)")
	case u.User != nil:
		return fmt.Errorf("must not carry credentials; send them in headers (e.g. Authorization)")
	case u.Fragment != "":
		return fmt.Errorf("must not have a fragment (#…)")
	}
	if _, err := strconv.Atoi(u.Port()); u.Port() != "" && err != nil {
		return fmt.Errorf("has a bad port")
	}
	return nil
}

// validName reports whether a connector name is made of letters, digits,
// '-', '_' and '.'.
func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != ""
}

// validHeaderName reports whether s is an HTTP field name (an RFC 9110
// token).
func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}

func isIPv6(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.To4() == nil
}

// checkConnectorRefs checks that every connector name that detection and
// the MISP feeds send to is a configured connector.
func (c *Config) checkConnectorRefs(errs *[]string) {
	names := make([]string, 0, len(c.Connectors))
	for _, cn := range c.Connectors {
		names = append(names, cn.Name)
	}
	configured := "none is configured: add a connectors[] entry"
	if len(names) > 0 {
		configured = "configured: " + strings.Join(names, ", ")
	}
	check := func(path string, refs []string) {
		for i, r := range refs {
			if r != "" && !slices.Contains(names, r) {
				*errs = append(*errs, fmt.Sprintf("%s[%d]: no connector is named %q (%s)", path, i, r, configured))
			}
		}
	}
	check("detection.actions", c.Detection.Actions)
	for _, id := range DetectionRuleIDs {
		r, _ := c.Detection.Rules.Rule(id)
		check("detection.rules."+id+".actions", r.Actions)
	}
	if m := c.Feeds.MISP; m != nil {
		check("feeds.misp.actions", m.Actions)
	}
}

// WarningActions returns the connectors that the MISP devices' warnings go
// to: feeds.misp.actions, else detection.actions.
func (c *Config) WarningActions() []string {
	if m := c.Feeds.MISP; m != nil && len(m.Actions) > 0 {
		return m.Actions
	}
	return c.Detection.Actions
}
