package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-ti/vigil/internal/ecs"
	"github.com/vigil-ti/vigil/internal/httpx"
)

// MISP configures the MISP source: a MISP instance (url and api_token), MISP
// feeds, or both. The instance's keys and defaults are those of Elastic's
// ti_misp integration (threat_attributes data stream), except limit.
type MISP struct {
	URL                   string      `yaml:"url"`
	APIToken              Secret      `yaml:"api_token"`
	Limit                 int         `yaml:"limit"`
	Interval              Duration    `yaml:"interval"`
	InitialInterval       Duration    `yaml:"initial_interval"`
	IOCExpirationDuration string      `yaml:"ioc_expiration_duration"`
	HTTPClientTimeout     Duration    `yaml:"http_client_timeout"`
	EnforceWarningList    bool        `yaml:"enforce_warning_list"`
	ToIDs                 *bool       `yaml:"to_ids"`
	Published             *bool       `yaml:"published"`
	Tags                  []string    `yaml:"tags"`
	Feeds                 []MISPFeed  `yaml:"feeds"`
	Retry                 RetryConfig `yaml:"retry"`
	expiration            time.Duration
}

// MISPFeed is one MISP feed: a folder with manifest.json and one
// <uuid>.json per event, over HTTP(S) (url) or on disk (path).
type MISPFeed struct {
	Name     string `yaml:"name"`
	URL      string `yaml:"url"`
	Path     string `yaml:"path"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// MaxEventAge, when set, leaves out the events whose manifest
	// timestamp (their last change) is older.
	MaxEventAge Duration `yaml:"max_event_age"`
}

// MISPMaxLimit bounds the restSearch page size.
const MISPMaxLimit = 100000

// DefaultMISP returns the MISP block's defaults: Elastic's, with limit 1000
// (Elastic's 10 costs a round trip and a transaction per 10 attributes).
func DefaultMISP() MISP {
	return MISP{
		Limit:                 1000,
		Interval:              Duration(10 * time.Minute),
		InitialInterval:       Duration(120 * time.Hour),
		IOCExpirationDuration: "90d",
		HTTPClientTimeout:     Duration(30 * time.Second),
		Retry:                 RetryConfig{MaxAttempts: 5, MaxBackoff: Duration(time.Minute)},
	}
}

// ExpirationDuration is the parsed ioc_expiration_duration (90 days when the
// unit was not one of d, h, m).
func (m *MISP) ExpirationDuration() time.Duration { return m.expiration }

// HasInstance reports whether a MISP instance is configured.
func (m *MISP) HasInstance() bool { return m.URL != "" || m.APIToken.Value() != "" }

// validate checks the block. dir is the directory relative feed paths are
// taken from (the configuration file's); they are made absolute.
func (m *MISP) validate(c *Config, errs *[]string, dir string) {
	const p = "sources.misp"
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	warn := func(format string, args ...any) { c.Warnings = append(c.Warnings, fmt.Sprintf(format, args...)) }
	switch {
	case m.HasInstance():
		if _, err := httpx.ParseBaseURL(m.URL, p+".url", "https://misp.example.org", p+".api_token"); err != nil {
			add("%v", err)
		}
		if strings.TrimSpace(m.APIToken.Value()) == "" {
			add("%s.api_token: required with %s.url (a MISP automation key; use ${ENV} so it need not sit in the file)", p, p)
		}
	case len(m.Feeds) == 0:
		add("%s: nothing to read: configure a MISP instance (url and api_token), feeds, or both", p)
	}
	if m.Limit < 1 || m.Limit > MISPMaxLimit {
		add("%s.limit: %d is out of range (allowed: 1 to %d)", p, m.Limit, MISPMaxLimit)
	}
	if m.Interval < Duration(time.Minute) {
		add("%s.interval: %s is too short (at least 1m; default 10m)", p, m.Interval)
	}
	if m.InitialInterval <= 0 {
		add("%s.initial_interval: must be positive (e.g. 120h)", p)
	}
	if m.HTTPClientTimeout <= 0 {
		add("%s.http_client_timeout: must be positive (e.g. 30s)", p)
	}
	d, fallback, err := ecs.ParseExpiration(m.IOCExpirationDuration)
	switch {
	case err != nil:
		add("%s.ioc_expiration_duration: %v", p, err)
	case fallback:
		warn("%s.ioc_expiration_duration: unit of %q is not d, h or m; IOCs expire 90d after their last update instead", p, m.IOCExpirationDuration)
	}
	m.expiration = d
	for i, t := range m.Tags {
		name := strings.TrimPrefix(t, "!")
		if strings.TrimSpace(name) == "" || strings.IndexFunc(t, unicode.IsControl) >= 0 {
			add("%s.tags[%d]: %q is not a tag name (write a MISP tag such as tlp:white, or !tlp:red to exclude one)", p, i, t)
		}
	}
	names := map[string]int{}
	for i := range m.Feeds {
		m.Feeds[i].validate(fmt.Sprintf("%s.feeds[%d]", p, i), dir, add)
		if j, dup := names[m.Feeds[i].Name]; dup && m.Feeds[i].Name != "" {
			add("%s.feeds[%d].name: %q is also the name of feeds[%d]; names must be unique", p, i, m.Feeds[i].Name, j)
		}
		names[m.Feeds[i].Name] = i
	}
	if m.Retry.MaxAttempts < 1 || m.Retry.MaxAttempts > 20 {
		add("%s.retry.max_attempts: %d is out of range (allowed: 1 to 20)", p, m.Retry.MaxAttempts)
	}
	if m.Retry.MaxBackoff < Duration(time.Second) {
		add("%s.retry.max_backoff: must be at least 1s", p)
	}
}

func (f *MISPFeed) validate(p, dir string, add func(string, ...any)) {
	if f.Name == "" {
		add("%s.name: required (a short name for logs and status, e.g. circl-osint)", p)
	} else if !validFeedName(f.Name) {
		add("%s.name: %q may only hold letters, digits, '.', '_' and '-'", p, f.Name)
	}
	switch {
	case f.URL != "" && f.Path != "":
		add("%s: has both url and path; set exactly one", p)
	case f.URL != "":
		if _, err := httpx.ParseBaseURL(f.URL, p+".url", "https://www.circl.lu/doc/misp/feed-osint/", p+".username and "+p+".password"); err != nil {
			add("%v", err)
		}
	case f.Path != "":
		if !filepath.IsAbs(f.Path) && dir != "" {
			f.Path = filepath.Join(dir, f.Path)
		}
		if fi, err := os.Stat(filepath.Join(f.Path, "manifest.json")); err != nil || !fi.Mode().IsRegular() {
			add("%s.path: %s has no manifest.json (path must be a MISP feed's folder; a relative path is taken from the configuration file's folder)", p, f.Path)
		}
	default:
		add("%s: set url (a feed served over HTTP) or path (a feed's folder on disk)", p)
	}
	if f.MaxEventAge < 0 {
		add("%s.max_event_age: must not be negative (e.g. 365d; unset: every event)", p)
	}
	if (f.Username == "") != (f.Password.Value() == "") {
		add("%s: username and password go together (HTTP basic auth)", p)
	} else if f.Username != "" && f.URL == "" {
		add("%s: username and password are for a feed given by url", p)
	}
}

func validFeedName(s string) bool {
	for _, r := range s {
		if r != '.' && r != '_' && r != '-' && (r > unicode.MaxASCII || !unicode.IsLetter(r) && !unicode.IsDigit(r)) {
			return false
		}
	}
	return true
}
