package config_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-ti/vigil/internal/config"
)

func TestInputsDefaults(t *testing.T) {
	cfg, err := parse(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Detection.Inputs
	if !in.Enabled || in.MaxQueueBytes != 64<<20 || in.MaxBodyBytes != 32<<20 || in.ElasticsearchVersion != "8.17.0" || in.AuthRequired() {
		t.Fatalf("inputs defaults: %+v", in)
	}
}

func TestInputsEveryKey(t *testing.T) {
	y := `detection:
  inputs:
    enabled: false
    max_queue_bytes: 1GiB
    max_body_bytes: 100mb
    token: ${IN_TOKEN}
    username: shipper
    password: ${IN_PASS}
    elasticsearch_version: 8.19.2
`
	cfg, err := parse(t, y, map[string]string{"IN_TOKEN": "0123456789abcdef0123", "IN_PASS": "pw-secret"})
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Detection.Inputs
	if in.Enabled || in.MaxQueueBytes != 1<<30 || in.MaxBodyBytes != 100<<20 || in.Token.Value() != "0123456789abcdef0123" ||
		in.Username != "shipper" || in.Password.Value() != "pw-secret" || in.ElasticsearchVersion != "8.19.2" || !in.AuthRequired() {
		t.Fatalf("inputs: %+v", in)
	}
	// Secrets never print.
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", in, in, in), mustJSON(t, in)} {
		if strings.Contains(s, "0123456789abcdef0123") || strings.Contains(s, "pw-secret") {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInputsErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "detection:\n  inputs:\n    max_queue: 1mb\n", []string{"detection.inputs.max_queue: unknown key", "max_queue_bytes, max_body_bytes"}},
		{"bad size", "detection:\n  inputs:\n    max_body_bytes: lots\n", []string{"detection.inputs.max_body_bytes", `"lots" is not a size`}},
		{"bad unit", "detection:\n  inputs:\n    max_body_bytes: 5tb\n", []string{`"5tb" is not a size`}},
		{"negative", "detection:\n  inputs:\n    max_body_bytes: -5mb\n", []string{`"-5mb" is not a size`}},
		{"body too small", "detection:\n  inputs:\n    max_body_bytes: 1kb\n", []string{"detection.inputs.max_body_bytes: 1kb is too small"}},
		{"queue smaller than body", "detection:\n  inputs:\n    max_queue_bytes: 16mb\n", []string{"detection.inputs.max_queue_bytes: 16mb is smaller than max_body_bytes (32mb)"}},
		{"user without password", "detection:\n  inputs:\n    username: a\n", []string{"detection.inputs: username and password go together"}},
		{"password without user", "detection:\n  inputs:\n    password: a\n", []string{"username and password go together"}},
		{"user with colon", "detection:\n  inputs:\n    username: a:b\n    password: p\n", []string{"detection.inputs.username: must not contain ':'"}},
		{"short token", "detection:\n  inputs:\n    token: abc\n", []string{"detection.inputs.token: must be at least 16 characters"}},
		{"token with space", "detection:\n  inputs:\n    token: 0123456789 abcdef\n", []string{"detection.inputs.token", "without spaces"}},
		{"bad version", "detection:\n  inputs:\n    elasticsearch_version: '8.17'\n", []string{"detection.inputs.elasticsearch_version", "MAJOR.MINOR.PATCH"}},
		{"old version", "detection:\n  inputs:\n    elasticsearch_version: 6.8.0\n", []string{"detection.inputs.elasticsearch_version", "7.x.y, 8.x.y or 9.x.y"}},
		{"unset token", "detection:\n  inputs:\n    token: ${NOPE}\n", []string{"detection.inputs.token", "NOPE is not set"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.yaml, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "0123456789 abcdef") {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
}

// TestInputsReadOnly: a command that only reads the store loads a
// configuration whose input credentials are not in its environment.
func TestInputsReadOnly(t *testing.T) {
	y := "detection:\n  inputs:\n    token: ${IN_TOKEN}\n    username: ${IN_USER}\n    password: ${IN_PASS}\n"
	if _, err := config.Parse(strings.NewReader(y), env(nil), config.Options{ReadOnly: true}); err != nil {
		t.Fatalf("read-only: %v", err)
	}
	// Other keys stay strict.
	if _, err := config.Parse(strings.NewReader("detection:\n  inputs:\n    max_body_bytes: ${SIZE}\n"), env(nil), config.Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only load of an unset size: no error")
	}
}

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1048576", 1 << 20}, {"512b", 512}, {"64kb", 64 << 10}, {"64KiB", 64 << 10},
		{"64mb", 64 << 20}, {"64 MB", 64 << 20}, {"2gib", 2 << 30}, {"1GB", 1 << 30},
	}
	for _, c := range cases {
		got, err := config.ParseByteSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "mb", "1.5mb", "-1", "1pb", "9999999999gb"} {
		if _, err := config.ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q): no error", bad)
		}
	}
	for _, c := range []struct {
		n    config.ByteSize
		want string
	}{{64 << 20, "64mb"}, {1 << 30, "1gb"}, {1536, "1536b"}, {3 << 10, "3kb"}, {0, "0b"}} {
		if got := c.n.String(); got != c.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(c.n), got, c.want)
		}
	}
}
