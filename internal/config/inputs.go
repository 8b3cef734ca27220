package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// DetectionInputs configures the HTTP event inputs of `vigil serve`:
// POST /api/v1/events (NDJSON) and the Elasticsearch-compatible bulk API.
type DetectionInputs struct {
	// Enabled serves the inputs (and keeps the detection index of the live
	// indicators in memory) under serve.
	Enabled bool `yaml:"enabled"`
	// MaxQueueBytes bounds the request bodies accepted and not yet
	// matched; past it the inputs answer 429.
	MaxQueueBytes ByteSize `yaml:"max_queue_bytes"`
	// MaxBodyBytes bounds one request body (after gzip decoding); a longer
	// one is answered 413.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// Token, when set, is accepted as "Authorization: Bearer TOKEN" or as
	// an Elasticsearch API key ("Authorization: ApiKey ...").
	Token Secret `yaml:"token"`
	// Username and Password, when set, are accepted as HTTP basic
	// authentication.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// ElasticsearchVersion is the version GET / reports to Elasticsearch
	// clients.
	ElasticsearchVersion string `yaml:"elasticsearch_version"`
}

// Defaults of detection.inputs.
const (
	DefaultInputsMaxQueueBytes        = 64 << 20
	DefaultInputsMaxBodyBytes         = 32 << 20
	DefaultInputsElasticsearchVersion = "8.17.0"
	// MinInputsBodyBytes is the least max_body_bytes allowed.
	MinInputsBodyBytes = 64 << 10
)

// DefaultDetectionInputs returns the inputs block's defaults: on, a 64 MiB
// queue, 32 MiB bodies, no authentication.
func DefaultDetectionInputs() DetectionInputs {
	return DetectionInputs{
		Enabled:              true,
		MaxQueueBytes:        DefaultInputsMaxQueueBytes,
		MaxBodyBytes:         DefaultInputsMaxBodyBytes,
		ElasticsearchVersion: DefaultInputsElasticsearchVersion,
	}
}

// AuthRequired reports whether the inputs ask for credentials.
func (in *DetectionInputs) AuthRequired() bool {
	return in.Token.Value() != "" || in.Username != ""
}

// validate checks the block. Credentials are not checked for a read-only
// load, whose ${ENV} references may be unset.
func (in *DetectionInputs) validate(errs *[]string, readOnly bool) {
	const p = "detection.inputs"
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	if in.MaxBodyBytes < MinInputsBodyBytes {
		add("%s.max_body_bytes: %s is too small (at least 64kb; default 32mb)", p, in.MaxBodyBytes)
	}
	if in.MaxQueueBytes < in.MaxBodyBytes {
		add("%s.max_queue_bytes: %s is smaller than max_body_bytes (%s): a body that size could never be queued (default 64mb)", p, in.MaxQueueBytes, in.MaxBodyBytes)
	}
	if major, err := ElasticsearchMajor(in.ElasticsearchVersion); err != nil {
		add("%s.elasticsearch_version: %v", p, err)
	} else if major < 7 || major > 9 {
		add("%s.elasticsearch_version: %q is not allowed (allowed: a 7.x.y, 8.x.y or 9.x.y version; default %s)", p, in.ElasticsearchVersion, DefaultInputsElasticsearchVersion)
	}
	if readOnly {
		return
	}
	if (in.Username == "") != (in.Password.Value() == "") {
		add("%s: username and password go together: set both for basic authentication, or neither", p)
	}
	if strings.ContainsRune(in.Username, ':') || strings.IndexFunc(in.Username, unicode.IsControl) >= 0 {
		add("%s.username: must not contain ':' or control characters (HTTP basic authentication)", p)
	}
	if t := in.Token.Value(); t != "" && (len(t) < 16 || strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0) {
		add("%s.token: must be at least 16 characters, without spaces (e.g. the output of `openssl rand -hex 32`)", p)
	}
}

// ElasticsearchMajor returns the major version of a "MAJOR.MINOR.PATCH"
// version.
func ElasticsearchMajor(v string) (int, error) {
	parts := strings.Split(v, ".")
	bad := fmt.Errorf("%q is not a version such as %s (MAJOR.MINOR.PATCH)", v, DefaultInputsElasticsearchVersion)
	if len(parts) != 3 {
		return 0, bad
	}
	major := 0
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || s[0] == '+' || s[0] == '-' {
			return 0, bad
		}
		if i == 0 {
			major = n
		}
	}
	return major, nil
}

// ByteSize is a size in bytes, written as a whole number with an optional
// unit: b, kb, mb, gb (powers of 1024, as Elasticsearch reads them) or
// kib, mib, gib, in any case.
type ByteSize int64

func (s *ByteSize) decodeScalar(v string) error {
	n, err := ParseByteSize(v)
	if err != nil {
		return err
	}
	*s = ByteSize(n)
	return nil
}

// String formats the size with the largest unit that divides it.
func (s ByteSize) String() string {
	n := int64(s)
	for _, u := range []struct {
		name string
		size int64
	}{{"gb", 1 << 30}, {"mb", 1 << 20}, {"kb", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10) + "b"
}

// ParseByteSize parses a size such as "64mb", "512KiB" or "1048576".
func ParseByteSize(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult := map[string]int64{"": 1, "b": 1, "kb": 1 << 10, "kib": 1 << 10, "mb": 1 << 20, "mib": 1 << 20, "gb": 1 << 30, "gib": 1 << 30}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if num == "" || err != nil || mult == 0 {
		return 0, fmt.Errorf("%q is not a size (a whole number with an optional unit b, kb, mb, gb; e.g. 64mb)", v)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}

// inputsCredential reports whether path is a credential of the inputs,
// whose ${ENV} reference may be unset in a read-only load.
func inputsCredential(path string) bool {
	switch path {
	case "detection.inputs.token", "detection.inputs.username", "detection.inputs.password":
		return true
	}
	return false
}
