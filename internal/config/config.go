// Package config loads vigil's YAML configuration: strict parsing, ${ENV}
// expansion, Elastic's defaults and validation with errors that name the key
// and the allowed values.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// Config is the whole configuration file.
type Config struct {
	DataDir   string   `yaml:"data_dir"`
	Listen    string   `yaml:"listen"`
	Retention Duration `yaml:"retention"`
	Log       Log      `yaml:"log"`
	Sources   Sources  `yaml:"sources"`
	// Connectors are where alerts are delivered (connectors.go).
	Connectors []Connector `yaml:"connectors"`
	Outbox     Outbox      `yaml:"outbox"`
	Detection  Detection   `yaml:"detection"`
	Import     Import      `yaml:"import"`
	Feeds      Feeds       `yaml:"feeds"`

	// Warnings are problems that did not stop the load (values that fell
	// back to a default or were capped). The caller logs them.
	Warnings []string `yaml:"-"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Sources holds one block per upstream source. A nil block is not configured.
type Sources struct {
	ThreatCommand *ThreatCommand `yaml:"threatcommand"`
	ThreatConnect *ThreatConnect `yaml:"threatconnect"`
	MISP          *MISP          `yaml:"misp"`
}

// ThreatCommand configures the Rapid7 Threat Command source.
type ThreatCommand struct {
	URL                   string          `yaml:"url"`
	AccountID             string          `yaml:"account_id"`
	APIKey                Secret          `yaml:"api_key"`
	IOCExpirationDuration string          `yaml:"ioc_expiration_duration"`
	IOC                   TCIOC           `yaml:"ioc"`
	Alert                 TCAlert         `yaml:"alert"`
	Vulnerability         TCVulnerability `yaml:"vulnerability"`
	Retry                 RetryConfig     `yaml:"retry"`
	expiration            time.Duration
}

// Dataset holds the settings every dataset has.
type Dataset struct {
	Enabled         bool     `yaml:"enabled"`
	Interval        Duration `yaml:"interval"`
	InitialInterval Duration `yaml:"initial_interval"`
	Severities      []string `yaml:"severities"`
}

// TCIOC configures the IOC dataset.
type TCIOC struct {
	Dataset `yaml:",inline"`
	Types   []string `yaml:"types"`
}

// TCAlert configures the alert dataset.
type TCAlert struct {
	Dataset           `yaml:",inline"`
	Types             []string `yaml:"types"`
	FetchClosedAlerts bool     `yaml:"fetch_closed_alerts"`
}

// TCVulnerability configures the CVE dataset.
type TCVulnerability struct {
	Dataset `yaml:",inline"`
}

// RetryConfig bounds the retries of 429 and 5xx answers.
type RetryConfig struct {
	MaxAttempts int      `yaml:"max_attempts"`
	MaxBackoff  Duration `yaml:"max_backoff"`
}

// Allowed values, as Elastic's integration and the API spell them.
var (
	TCIOCSeverities   = []string{"High", "Medium", "Low", "PendingEnrichment"}
	TCIOCTypes        = []string{"IpAddresses", "Urls", "Domains", "Hashes", "Emails"}
	TCAlertSeverities = []string{"High", "Medium", "Low"}
	TCAlertTypes      = []string{"AttackIndication", "DataLeakage", "Phishing", "BrandSecurity", "ExploitableData", "vip"}
	TCCVESeverities   = []string{"Critical", "High", "Medium", "Low"}
)

// TCIOCMaxInitialInterval is how far back the IOC API serves: six months.
const TCIOCMaxInitialInterval = 4380 * time.Hour

// Default returns the configuration with every default set and no source.
func Default() Config {
	return Config{
		DataDir:   "./vigil-data",
		Listen:    "127.0.0.1:8080",
		Retention: Duration(5 * 24 * time.Hour),
		Log:       Log{Level: "info", Format: "text"},
		Outbox:    DefaultOutbox(),
		Detection: DefaultDetection(),
		Import:    DefaultImport(),
	}
}

// DefaultThreatCommand returns the Threat Command block's defaults, which
// are Elastic's.
func DefaultThreatCommand() ThreatCommand {
	return ThreatCommand{
		URL:                   "https://api.intsights.com",
		IOCExpirationDuration: "90d",
		IOC:                   TCIOC{Dataset: Dataset{Enabled: true, Interval: Duration(time.Hour), InitialInterval: Duration(720 * time.Hour)}},
		Alert:                 TCAlert{Dataset: Dataset{Enabled: true, Interval: Duration(4 * time.Hour), InitialInterval: Duration(720 * time.Hour)}},
		Vulnerability:         TCVulnerability{Dataset: Dataset{Enabled: true, Interval: Duration(6 * time.Hour), InitialInterval: Duration(1440 * time.Hour)}},
		Retry:                 RetryConfig{MaxAttempts: 5, MaxBackoff: Duration(time.Minute)},
	}
}

// ExpirationDuration is the parsed ioc_expiration_duration (90 days when the
// unit was not one of d, h, m).
func (tc *ThreatCommand) ExpirationDuration() time.Duration { return tc.expiration }

// Options change how a configuration is loaded.
type Options struct {
	// ReadOnly is for commands that only read the store (get, status):
	// the source blocks are still parsed strictly, but their ${ENV}
	// references may be unset and their required keys missing, so that
	// reading needs no credentials in the environment.
	ReadOnly bool
	// dir is the directory relative paths in the file are taken from (set
	// by LoadFile to the file's directory; "": the working directory).
	dir string
}

// LoadFile reads and validates the configuration file at path.
func LoadFile(path string, getenv func(string) string, opts ...Options) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	o := Options{}
	for _, x := range opts {
		o = x
	}
	if o.dir, err = filepath.Abs(filepath.Dir(path)); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(bytes.NewReader(b), getenv, o)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads and validates a configuration. getenv resolves ${NAME}
// references (os.Getenv in production).
func Parse(r io.Reader, getenv func(string) string, opts ...Options) (Config, error) {
	var o Options
	for _, x := range opts {
		o = x
	}
	cfg := Default()
	var root yaml.Node
	dec := yaml.NewDecoder(r)
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("not valid YAML: %w", err)
	}
	d := &decoder{getenv: getenv, lenientEnv: o.ReadOnly}
	// A source block that is present starts from its defaults.
	if tc := findKey(&root, "sources", "threatcommand"); tc != nil {
		def := DefaultThreatCommand()
		cfg.Sources.ThreatCommand = &def
	}
	if tcn := findKey(&root, "sources", "threatconnect"); tcn != nil {
		def := DefaultThreatConnect()
		cfg.Sources.ThreatConnect = &def
	}
	if m := findKey(&root, "sources", "misp"); m != nil {
		def := DefaultMISP()
		cfg.Sources.MISP = &def
	}
	if root.Kind != 0 { // an empty file keeps every default
		d.decode(&root, reflect.ValueOf(&cfg).Elem(), "")
	}
	cfg.applyMISPDefaults(&root)
	errs := d.errs
	cfg.validate(&errs, o)
	if len(errs) > 0 {
		return Config{}, errors.New(strings.Join(errs, "\n"))
	}
	return cfg, nil
}

// findKey returns the value node at the given key path, or nil.
func findKey(n *yaml.Node, keys ...string) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	for _, k := range keys {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

func (c *Config) validate(errs *[]string, o Options) {
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	if c.DataDir == "" {
		add("data_dir: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not a host:port address (e.g. 127.0.0.1:8080)", c.Listen)
	}
	if c.Retention <= 0 {
		add("retention: must be positive (e.g. 5d)")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level: %q is not allowed (allowed: debug, info, warn, error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		add("log.format: %q is not allowed (allowed: text, json)", c.Log.Format)
	}
	c.Detection.validate(errs)
	c.Detection.Inputs.validate(errs, o.ReadOnly)
	c.Import.validate(c, errs)
	if tc := c.Sources.ThreatCommand; tc != nil && !o.ReadOnly {
		tc.validate(c, errs)
	}
	if tcn := c.Sources.ThreatConnect; tcn != nil && !o.ReadOnly {
		tcn.validate(c, errs)
	}
	if !o.ReadOnly {
		c.validateConnectors(errs)
	}
	c.checkConnectorRefs(errs)
	if m := c.Feeds.MISP; m != nil {
		m.validate(errs, c, o)
	}
	if m := c.Sources.MISP; m != nil && !o.ReadOnly {
		m.validate(c, errs, o.dir)
	}
}

func (tc *ThreatCommand) validate(c *Config, errs *[]string) {
	const p = "sources.threatcommand"
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	if err := checkURL(tc.URL); err != nil {
		add("%s.url: %v", p, err)
	}
	if tc.AccountID == "" {
		add("%s.account_id: required (the Threat Command account ID; ${ENV} references are allowed)", p)
	}
	if tc.APIKey.Value() == "" {
		add("%s.api_key: required (the Threat Command API key; use ${ENV} so it need not sit in the file)", p)
	}
	d, fallback, err := ecs.ParseExpiration(tc.IOCExpirationDuration)
	switch {
	case err != nil:
		add("%s.ioc_expiration_duration: %v", p, err)
	case fallback:
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s.ioc_expiration_duration: unit of %q is not d, h or m; IOCs expire 90d after their last update instead", p, tc.IOCExpirationDuration))
	}
	tc.expiration = d
	checkDataset(errs, p+".ioc", tc.IOC.Dataset, TCIOCSeverities)
	oneOf(errs, p+".ioc.types", tc.IOC.Types, TCIOCTypes)
	if time.Duration(tc.IOC.InitialInterval) > TCIOCMaxInitialInterval {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s.ioc.initial_interval: %s is longer than the 6 months the IOC API serves; capped to 4380h", p, tc.IOC.InitialInterval))
		tc.IOC.InitialInterval = Duration(TCIOCMaxInitialInterval)
	}
	checkDataset(errs, p+".alert", tc.Alert.Dataset, TCAlertSeverities)
	oneOf(errs, p+".alert.types", tc.Alert.Types, TCAlertTypes)
	if tc.Alert.Enabled && time.Duration(tc.Alert.Interval) <= time.Hour {
		add("%s.alert.interval: %s is too short; the alert API needs an interval longer than 1h (default 4h)", p, tc.Alert.Interval)
	}
	checkDataset(errs, p+".vulnerability", tc.Vulnerability.Dataset, TCCVESeverities)
	if tc.Retry.MaxAttempts < 1 || tc.Retry.MaxAttempts > 20 {
		add("%s.retry.max_attempts: %d is out of range (allowed: 1 to 20)", p, tc.Retry.MaxAttempts)
	}
	if tc.Retry.MaxBackoff < Duration(time.Second) {
		add("%s.retry.max_backoff: must be at least 1s", p)
	}
}

func checkDataset(errs *[]string, p string, d Dataset, severities []string) {
	if d.Interval < Duration(time.Minute) {
		*errs = append(*errs, fmt.Sprintf("%s.interval: %s is too short (at least 1m)", p, d.Interval))
	}
	if d.InitialInterval <= 0 {
		*errs = append(*errs, fmt.Sprintf("%s.initial_interval: must be positive (e.g. 720h)", p))
	}
	oneOf(errs, p+".severities", d.Severities, severities)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https URL (e.g. https://api.intsights.com)", s)
	}
	if u.User != nil {
		return errors.New("must not carry credentials; use account_id and api_key")
	}
	return nil
}

// LogLevel returns the configured slog level.
func (l Log) LogLevel() slog.Level {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(l.Level))
	return lv
}

// Duration is a time.Duration that also accepts a whole number of days
// ("5d"), as Elastic's settings are written.
type Duration time.Duration

func (d *Duration) decodeScalar(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String formats the duration in days when it is a whole number of days.
func (d Duration) String() string {
	td := time.Duration(d)
	if td > 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// ParseDuration parses Go durations ("90m", "1h30m") and whole days ("5d").
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseInt(n, 10, 64)
		if err == nil && days >= 0 && days < 100000 {
			return time.Duration(days) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (e.g. 30s, 15m, 4h, 5d)", s)
	}
	return d, nil
}

// Secret is a configuration value that must never be printed: String,
// GoString, slog and JSON all give "[redacted]".
type Secret struct{ v string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v} }

// Value returns the secret itself, for the one place that sends it.
func (s Secret) Value() string { return s.v }

func (s Secret) String() string               { return s.redacted() }
func (s Secret) GoString() string             { return s.redacted() }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(s.redacted()) }
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.redacted())), nil }
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }

func (s Secret) redacted() string {
	if s.v == "" {
		return ""
	}
	return "[redacted]"
}

func (s *Secret) decodeScalar(v string) error { s.v = v; return nil }
