package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// lookup is how a rule looks an event value up in the index.
type lookup uint8

const (
	lookupIP       lookup = iota // addresses, in host entries and CIDR ranges
	lookupHash                   // file hashes
	lookupURL                    // URLs
	lookupRegistry               // Windows registry paths
	lookupEmail                  // e-mail addresses
	lookupCVE                    // CVE ids of the vulnerability view
	lookupDomain                 // domains and their parent domains
)

// Rule is a built-in detection rule.
type Rule struct {
	// ID is the rule's short, stable id: the key of detection.rules.<id>
	// in the configuration, and the alerts' rule.id.
	ID string
	// Name is the alerts' rule.name: Elastic's prebuilt rule's name for
	// the rules that follow one.
	Name string
	// Fields are the event fields the rule matches by default.
	Fields []string
	// Indicator says what the fields are matched against.
	Indicator string
	// Severity and RiskScore are those of Elastic's prebuilt rule, written
	// to kibana.alert.severity and kibana.alert.risk_score.
	Severity  string
	RiskScore float64
	// ElasticRuleID is the rule_id of the Elastic prebuilt rule this rule
	// follows, written to kibana.alert.rule.rule_id; empty for vigil's own.
	ElasticRuleID string
	// Exclude names a field whose presence makes the rule skip an event.
	Exclude string

	lookup lookup
}

// builtin is the rule table. Names, fields, severities and risk scores
// follow Elastic's prebuilt rules (detection-rules, rules/threat_intel).
var builtin = []Rule{
	{
		ID: "ip", Name: "Threat Intel IP Address Indicator Match",
		Fields:    []string{"source.ip", "destination.ip"},
		Indicator: "threat.indicator.ip (addresses and CIDR ranges)",
		Severity:  "critical", RiskScore: 99, ElasticRuleID: "0c41e478-5263-4c69-8f9e-7dfd2c22da64",
		lookup: lookupIP,
	},
	{
		ID: "hash", Name: "Threat Intel Hash Indicator Match",
		Fields: []string{
			"file.hash.md5", "file.hash.sha1", "file.hash.sha256",
			"dll.hash.md5", "dll.hash.sha1", "dll.hash.sha256",
			"process.hash.md5", "process.hash.sha1", "process.hash.sha256",
		},
		Indicator: "threat.indicator.file.hash.*",
		Severity:  "critical", RiskScore: 99, ElasticRuleID: "aab184d3-72b3-4639-b242-6597c99d8bca",
		lookup: lookupHash,
	},
	{
		ID: "url", Name: "Threat Intel URL Indicator Match",
		Fields:    []string{"url.full", "url.original"},
		Indicator: "threat.indicator.url.full and url.original",
		Severity:  "critical", RiskScore: 99, ElasticRuleID: "f3e22c8b-ea47-45d1-b502-b57b6de950b3",
		lookup: lookupURL,
	},
	{
		ID: "registry", Name: "Threat Intel Windows Registry Indicator Match",
		Fields:    []string{"registry.path"},
		Indicator: "threat.indicator.registry.path",
		Severity:  "critical", RiskScore: 99, ElasticRuleID: "a61809f3-fb5b-465c-8bff-23a8a068ac60",
		lookup: lookupRegistry,
	},
	{
		ID: "email", Name: "Threat Intel Email Indicator Match",
		Fields:    []string{"email.from.address", "email.to.address", "email.sender.address", "email.reply_to.address"},
		Indicator: "threat.indicator.email.address",
		Severity:  "high", RiskScore: 73, ElasticRuleID: "fcf18de8-ad7d-4d01-b3f7-a11d5b3883af",
		lookup: lookupEmail,
	},
	{
		ID: "cve", Name: "Rapid7 Threat Command CVEs Correlation",
		Fields:    []string{"vulnerability.id"},
		Indicator: "vulnerability.id of the vulnerability view",
		Severity:  "high", RiskScore: 73, ElasticRuleID: "3a657da0-1df2-11ef-a327-f661ea17fbcc",
		Exclude: "rapid7.tc.vulnerability.id",
		lookup:  lookupCVE,
	},
	{
		ID: "domain", Name: "vigil Domain Indicator Match",
		Fields:    []string{"url.domain", "dns.question.name", "destination.domain"},
		Indicator: "threat.indicator.url.domain of domain-name indicators, and their subdomains",
		Severity:  "high", RiskScore: 73,
		lookup: lookupDomain,
	},
}

// Rules returns the built-in rules, in order.
func Rules() []Rule {
	out := make([]Rule, len(builtin))
	for i, r := range builtin {
		r.Fields = slices.Clone(r.Fields)
		out[i] = r
	}
	return out
}

// RuleIDs returns the built-in rules' ids, in order.
func RuleIDs() []string {
	ids := make([]string, len(builtin))
	for i, r := range builtin {
		ids[i] = r.ID
	}
	return ids
}

// RuleConfig configures one rule.
type RuleConfig struct {
	Enabled bool
	// Actions names connectors for this rule's alerts, besides
	// Config.Actions.
	Actions []string
	// Mappings are event fields the rule matches besides its own.
	Mappings []string
}

// Config configures an Engine.
type Config struct {
	// Actions names the connectors every alert goes to.
	Actions []string
	// Rules configures rules by id; a rule that is not listed is enabled,
	// with its own fields only.
	Rules map[string]RuleConfig
	// SuppressionWindow is how long the same (rule, event, indicator)
	// raises no second alert; 0 turns suppression off.
	SuppressionWindow time.Duration
	// SuppressionMax bounds the (rule, event, indicator) triples
	// remembered; when more were raised within the window, the oldest are
	// forgotten first. 0 means DefaultSuppressionMax.
	SuppressionMax int
	// IndicatorCache is how many matched indicator documents are kept in
	// memory; 0 means DefaultIndicatorCache.
	IndicatorCache int
}

// Defaults of Config.
const (
	DefaultSuppressionMax = 1 << 20
	DefaultIndicatorCache = 1 << 14
)

// activeRule is an enabled rule with its configuration.
type activeRule struct {
	Rule
	fields  []string // its own, then the extra mappings
	actions []string
}

// compileRules returns the enabled rules.
func compileRules(cfg Config) ([]*activeRule, error) {
	for id := range cfg.Rules {
		if !slices.Contains(RuleIDs(), id) {
			return nil, fmt.Errorf("detect: unknown rule id %q (rule ids: %s)", id, strings.Join(RuleIDs(), ", "))
		}
	}
	var out []*activeRule
	for _, r := range Rules() {
		rc, ok := cfg.Rules[r.ID]
		if ok && !rc.Enabled {
			continue
		}
		a := &activeRule{Rule: r, fields: r.Fields}
		for _, m := range rc.Mappings {
			if m == "" || strings.Contains(m, "..") || strings.HasPrefix(m, ".") || strings.HasSuffix(m, ".") {
				return nil, fmt.Errorf("detect: rule %s: mapping %q is not a dotted field name", r.ID, m)
			}
			if !slices.Contains(a.fields, m) {
				a.fields = append(a.fields, m)
			}
		}
		for _, n := range append(slices.Clone(cfg.Actions), rc.Actions...) {
			if !slices.Contains(a.actions, n) {
				a.actions = append(a.actions, n)
			}
		}
		out = append(out, a)
	}
	return out, nil
}
