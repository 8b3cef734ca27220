package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/notify/notifytest"
)

const connectorsYAML = `connectors:
  - name: soc-webhook
    type: webhook
    url: https://hooks.example.org/services/T0KEN
    headers:
      Authorization: Bearer ${HOOK_TOKEN}
      X-Team: soc
  - name: soc-mail
    type: email
    host: smtp.example.org
    username: vigil@example.org
    password: ${SMTP_PASSWORD}
    from: vigil <vigil@example.org>
    to: [soc@example.org, "Ops <ops@example.org>"]
`

var connectorsEnv = map[string]string{"HOOK_TOKEN": "tok-123456", "SMTP_PASSWORD": "pw-s3cret"}

func TestConnectorDefaults(t *testing.T) {
	cfg, err := parse(t, connectorsYAML, connectorsEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.ConnectorNames(); fmt.Sprint(got) != "[soc-webhook soc-mail]" {
		t.Fatalf("names %v", got)
	}
	hook, mail := cfg.Connector("soc-webhook"), cfg.Connector("soc-mail")
	if cfg.Connector("nope") != nil {
		t.Fatal("found a connector that is not configured")
	}
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"webhook.method", hook.Method, "POST"},
		{"webhook.headers.Authorization", hook.Headers["Authorization"].Value(), "Bearer tok-123456"},
		{"webhook.headers.X-Team", hook.Headers["X-Team"].Value(), "soc"},
		{"webhook.body", hook.Body, ""},
		{"email.port", mail.Port, 587},
		{"email.starttls", mail.StartTLSOn(), true},
		{"email.password", mail.Password.Value(), "pw-s3cret"},
		{"email.to", fmt.Sprint(mail.To), "[soc@example.org Ops <ops@example.org>]"},
		{"outbox.max_backoff", time.Duration(cfg.Outbox.MaxBackoff), time.Minute},
		{"outbox.timeout", time.Duration(cfg.Outbox.Timeout), 30 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v", cfg.Warnings)
	}
	none, err := parse(t, "", nil)
	if err != nil || len(none.Connectors) != 0 || time.Duration(none.Outbox.MaxBackoff) != time.Minute {
		t.Fatalf("no connectors: %+v, %v", none, err)
	}
}

func TestConnectorEveryKey(t *testing.T) {
	ca := writeCA(t)
	y := `connectors:
  - name: hook
    type: webhook
    url: http://127.0.0.1:9000/hook
    method: put
    headers: {X-Api-Key: k}
    body: '{"text": {{ json .Subject }}, "ip": {{ json (field .Doc "threat.indicator.name") }}}'
    ca_file: ` + ca + `
  - name: mail
    type: email
    host: 127.0.0.1
    port: 2525
    username: u
    password: p
    starttls: false
    from: a@example.org
    to: b@example.org
    ca_file: ` + ca + `
outbox:
  max_backoff: 5m
  timeout: 10s
`
	cfg, err := parse(t, y, nil)
	if err != nil {
		t.Fatal(err)
	}
	hook, mail := cfg.Connectors[0], cfg.Connectors[1]
	if hook.Method != "PUT" || hook.Headers["X-Api-Key"].Value() != "k" || !strings.Contains(hook.Body, "field .Doc") || hook.CAFile != ca {
		t.Errorf("webhook %+v", hook)
	}
	if mail.Port != 2525 || mail.StartTLSOn() || mail.Username != "u" || fmt.Sprint(mail.To) != "[b@example.org]" || mail.CAFile != ca {
		t.Errorf("email %+v", mail)
	}
	if time.Duration(cfg.Outbox.MaxBackoff) != 5*time.Minute || time.Duration(cfg.Outbox.Timeout) != 10*time.Second {
		t.Errorf("outbox %+v", cfg.Outbox)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings for a loopback http URL: %v", cfg.Warnings)
	}
}

func writeCA(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "ca.pem")
	if err := notifytest.WriteSelfSigned(p, filepath.Join(dir, "key.pem")); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConnectorErrors(t *testing.T) {
	hook := "connectors:\n  - name: h\n    type: webhook\n    url: https://hooks.example.org/x\n"
	mail := "connectors:\n  - name: m\n    type: email\n    host: smtp.example.org\n    from: a@example.org\n    to: [b@example.org]\n"
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"no name", "connectors:\n  - type: webhook\n    url: https://x.example\n", []string{"connectors[0].name: required"}},
		{"bad name", "connectors:\n  - name: a b\n    type: webhook\n    url: https://x.example\n", []string{`connectors[0].name: "a b" is not allowed`}},
		{"duplicate name", hook + "  - name: h\n    type: webhook\n    url: https://y.example\n", []string{`connectors[1].name: "h" is already the name of connectors[0]`}},
		{"no type", "connectors:\n  - name: a\n", []string{"connectors[0] (a).type: required (allowed: webhook, email)"}},
		{"bad type", "connectors:\n  - name: a\n    type: slack\n", []string{`connectors[0] (a).type: "slack" is not allowed (allowed: webhook, email)`}},
		{"unknown key", hook + "    uri: x\n", []string{"connectors[0].uri: unknown key", "name, type, url, method, headers, body, host"}},
		{"email key on a webhook", hook + "    host: smtp.example.org\n    to: [a@example.org]\n", []string{"connectors[0] (h): host, to: not a webhook setting"}},
		{"webhook key on an email", mail + "    url: https://x.example\n", []string{"connectors[0] (m): url: not an email setting"}},
		{"no url", "connectors:\n  - name: h\n    type: webhook\n", []string{"connectors[0] (h).url: required"}},
		{"relative url", "connectors:\n  - name: h\n    type: webhook\n    url: /hook\n", []string{"url: scheme \"\" is not allowed"}},
		{"ftp url", "connectors:\n  - name: h\n    type: webhook\n    url: ftp://x.example/T0KEN\n", []string{`url: scheme "ftp" is not allowed (allowed: http, https)`}},
		{"url with credentials", "connectors:\n  - name: h\n    type: webhook\n    url: https://u:pw@x.example/\n", []string{"url: must not carry credentials"}},
		{"bad method", hook + "    method: GET\n", []string{`method: "GET" is not allowed (allowed: POST, PUT, PATCH)`}},
		{"reserved header", hook + "    headers:\n      idempotency-key: x\n", []string{"headers.idempotency-key: set by vigil or by HTTP"}},
		{"bad header name", hook + "    headers:\n      \"X Bad\": x\n", []string{`headers: "X Bad" is not a valid header name`}},
		{"header with a line break", hook + "    headers:\n      X-A: \"a\\r\\nX-B: b\"\n", []string{"headers.X-A: the value holds a line break"}},
		{"headers twice", hook + "    headers:\n      X-A: a\n      X-A: b\n", []string{"connectors[0].headers.X-A: key given twice"}},
		{"headers not a mapping", hook + "    headers: [a]\n", []string{"connectors[0].headers: expected a mapping of keys, got a list"}},
		{"bad template", hook + "    body: '{{ .Doc.x '\n", []string{"connectors[0] (h).body: not a valid Go template", "functions: json, field"}},
		{"unknown template function", hook + "    body: '{{ jsonify .Doc }}'\n", []string{`function "jsonify" not defined`}},
		{"no host", "connectors:\n  - name: m\n    type: email\n    from: a@example.org\n    to: b@example.org\n", []string{"connectors[0] (m).host: required"}},
		{"host with port", mail + "    port: 25\n", nil},
		{"host with scheme", strings.Replace(mail, "smtp.example.org", "smtp://smtp.example.org:25", 1), []string{"is not a host name"}},
		{"bad port", mail + "    port: 70000\n", []string{"port: 70000 is out of range"}},
		{"password without username", mail + "    password: x\n", []string{"username: required when a password is given"}},
		{"password in clear", mail + "    username: u\n    password: x\n    starttls: false\n", []string{"starttls: false would send the password unencrypted to smtp.example.org"}},
		{"bad from", strings.Replace(mail, "from: a@example.org", "from: not an address", 1), []string{`from: "not an address" is not an e-mail address`}},
		{"no to", "connectors:\n  - name: m\n    type: email\n    host: h\n    from: a@example.org\n", []string{"to: at least one address is required"}},
		{"bad to", strings.Replace(mail, "to: [b@example.org]", "to: [b@example.org, nobody]", 1), []string{`to[1]: "nobody" is not an e-mail address`}},
		{"missing ca_file", mail + "    ca_file: /nonexistent/ca.pem\n", []string{"ca_file: open /nonexistent/ca.pem"}},
		{"outbox", "outbox:\n  max_backoff: 0s\n  timeout: 10ms\n", []string{"outbox.max_backoff: must be at least 1s", "outbox.timeout: must be at least 1s"}},
		{"unset secret", hook + "    headers:\n      Authorization: ${NOPE}\n", []string{"connectors[0].headers.Authorization: environment variable NOPE is not set"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "T0KEN") {
				t.Errorf("error quotes the URL: %v", err)
			}
		})
	}
}

func TestConnectorWarnings(t *testing.T) {
	cfg, err := parse(t, "connectors:\n  - name: h\n    type: webhook\n    url: http://hooks.example.org/T0KEN\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "connectors[0] (h).url: not https") || strings.Contains(cfg.Warnings[0], "T0KEN") {
		t.Fatalf("warnings %v", cfg.Warnings)
	}
}

func TestConnectorSecretsNeverPrinted(t *testing.T) {
	cfg, err := parse(t, connectorsYAML, connectorsEnv)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "connectors", cfg.Connectors, "hook", cfg.Connectors[0].Headers)
	js, _ := json.Marshal(cfg)
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", cfg.Connectors, cfg.Connectors, cfg.Connectors), string(js), logs.String()} {
		for _, secret := range connectorsEnv {
			if strings.Contains(s, secret) {
				t.Fatalf("secret %q printed: %s", secret, s)
			}
		}
	}
}

func TestConnectorsReadOnly(t *testing.T) {
	// get and status need neither the connectors' secrets nor their
	// files; the keys are still checked.
	y := connectorsYAML + "    ca_file: /nonexistent.pem\n"
	if _, err := config.Parse(strings.NewReader(y), env(nil)); err == nil {
		t.Fatal("unset secrets accepted for a writer")
	}
	cfg, err := config.Parse(strings.NewReader(y), env(nil), config.Options{ReadOnly: true})
	if err != nil || len(cfg.Connectors) != 2 {
		t.Fatalf("read-only load: %v", err)
	}
	_, err = config.Parse(strings.NewReader(y+"    bogus: 1\n"), env(nil), config.Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "connectors[1].bogus: unknown key") {
		t.Fatalf("read-only load of an unknown key: %v", err)
	}
}

// TestConnectorRefs: every connector name that detection and the MISP feeds
// send to must be configured.
func TestConnectorRefs(t *testing.T) {
	const hook = "connectors:\n  - name: hook\n    type: webhook\n    url: https://hooks.example.org/x\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"detection", hook + "detection:\n  actions: [hook, pager]\n", `detection.actions[1]: no connector is named "pager" (configured: hook)`},
		{"rule", hook + "detection:\n  rules:\n    ip:\n      actions: [mail]\n", `detection.rules.ip.actions[0]: no connector is named "mail" (configured: hook)`},
		{"none configured", "detection:\n  actions: [hook]\n", `detection.actions[0]: no connector is named "hook" (none is configured: add a connectors[] entry)`},
		{"feeds", hook + "feeds:\n  misp:\n    actions: [admin-mail]\n", `feeds.misp.actions[0]: no connector is named "admin-mail" (configured: hook)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse(strings.NewReader(tc.yaml), func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	cfg, err := config.Parse(strings.NewReader(hook+"detection:\n  actions: [hook]\n"), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.WarningActions(); len(got) != 1 || got[0] != "hook" {
		t.Fatalf("WarningActions = %v, want detection.actions", got)
	}
}
