package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// ThreatConnect configures the ThreatConnect source. The keys and defaults
// are those of Elastic's ti_threatconnect integration.
type ThreatConnect struct {
	URL                      string      `yaml:"url"`
	AccessID                 string      `yaml:"access_id"`
	SecretKey                Secret      `yaml:"secret_key"`
	Interval                 Duration    `yaml:"interval"`
	InitialInterval          Duration    `yaml:"initial_interval"`
	BatchSize                int         `yaml:"batch_size"`
	TQL                      string      `yaml:"tql"`
	IncludeAttributes        bool        `yaml:"include_attributes"`
	IncludeGroupAssoc        bool        `yaml:"include_group_assoc"`
	IncludeGroupAssocAttribs bool        `yaml:"include_group_assoc_attribs"`
	IncludeIndicatorAssoc    bool        `yaml:"include_indicator_assoc"`
	IOCExpirationDuration    string      `yaml:"ioc_expiration_duration"`
	Retry                    RetryConfig `yaml:"retry"`
	expiration               time.Duration
}

// TCNMaxBatchSize is ThreatConnect's largest resultLimit.
const TCNMaxBatchSize = 10000

// DefaultThreatConnect returns the ThreatConnect block's defaults, which are
// Elastic's.
func DefaultThreatConnect() ThreatConnect {
	return ThreatConnect{
		URL:                   "https://app.threatconnect.com",
		Interval:              Duration(24 * time.Hour),
		InitialInterval:       Duration(168 * time.Hour),
		BatchSize:             2000,
		IOCExpirationDuration: "90d",
		Retry:                 RetryConfig{MaxAttempts: 5, MaxBackoff: Duration(time.Minute)},
	}
}

// ExpirationDuration is the parsed ioc_expiration_duration (90 days when the
// unit was not one of d, h, m).
func (tc *ThreatConnect) ExpirationDuration() time.Duration { return tc.expiration }

func (tc *ThreatConnect) validate(c *Config, errs *[]string) {
	const p = "sources.threatconnect"
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	warn := func(format string, args ...any) { c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...)) }
	if err := checkTCNURL(tc.URL); err != nil {
		add("%s.url: %v", p, err)
	} else if u, _ := url.Parse(tc.URL); u.Scheme == "http" && !isLoopback(u.Hostname()) {
		warn("%s.url: %q is not https; ThreatConnect answers 403 to requests that are not HTTPS", p, tc.URL)
	}
	if strings.TrimSpace(tc.AccessID) == "" {
		add("%s.access_id: required (the API user's Access ID; ${ENV} references are allowed)", p)
	}
	if tc.SecretKey.Value() == "" {
		add("%s.secret_key: required (the API user's Secret Key; use ${ENV} so it need not sit in the file)", p)
	}
	if tc.Interval < Duration(time.Minute) {
		add("%s.interval: %s is too short (at least 1m; default 24h)", p, tc.Interval)
	}
	if tc.InitialInterval <= 0 {
		add("%s.initial_interval: must be positive (e.g. 168h)", p)
	}
	if tc.BatchSize < 1 || tc.BatchSize > TCNMaxBatchSize {
		add("%s.batch_size: %d is out of range (allowed: 1 to %d, ThreatConnect's largest resultLimit)", p, tc.BatchSize, TCNMaxBatchSize)
	}
	if i := strings.IndexFunc(tc.TQL, unicode.IsControl); i >= 0 {
		add("%s.tql: has a control character at byte %d; write the query on one line", p, i)
	}
	d, fallback, err := ecs.ParseExpiration(tc.IOCExpirationDuration)
	switch {
	case err != nil:
		add("%s.ioc_expiration_duration: %v", p, err)
	case fallback:
		warn("%s.ioc_expiration_duration: unit of %q is not d, h or m; indicators expire 90d after their last modification instead", p, tc.IOCExpirationDuration)
	}
	tc.expiration = d
	if tc.Retry.MaxAttempts < 1 || tc.Retry.MaxAttempts > 20 {
		add("%s.retry.max_attempts: %d is out of range (allowed: 1 to 20)", p, tc.Retry.MaxAttempts)
	}
	if tc.Retry.MaxBackoff < Duration(time.Second) {
		add("%s.retry.max_backoff: must be at least 1s", p)
	}
}

func checkTCNURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		// Not quoted: an unparsable URL may hold a password.
		return errors.New("is not a valid URL (e.g. https://app.threatconnect.com)")
	case u.User != nil:
		return errors.New("must not carry credentials; use access_id and secret_key")
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("%q is not an https URL (e.g. https://app.threatconnect.com)", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or a fragment", s)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
