package config

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Detection configures detection: the built-in rules, where their alerts
// go, and alert suppression.
type Detection struct {
	// Actions names the connectors that every rule's alerts go to.
	Actions []string `yaml:"actions"`
	// SuppressionWindow is how long the same (rule, event, indicator)
	// triple raises no second alert.
	SuppressionWindow Duration `yaml:"suppression_window"`
	// Rules holds one block per built-in rule, keyed by the rule's id.
	Rules DetectionRules `yaml:"rules"`
	// Inputs configures the HTTP event inputs of serve (inputs.go).
	Inputs DetectionInputs `yaml:"inputs"`
	// Retrohunt configures retro-hunts (internal/config/retrohunt.go).
	Retrohunt Retrohunt `yaml:"retrohunt"`
}

// DetectionRules has one block per built-in rule. The YAML keys are the
// rules' ids (internal/detect); a key that is not a rule id is an error
// that lists the ids.
type DetectionRules struct {
	IP       DetectionRule `yaml:"ip"`
	Hash     DetectionRule `yaml:"hash"`
	URL      DetectionRule `yaml:"url"`
	Registry DetectionRule `yaml:"registry"`
	Email    DetectionRule `yaml:"email"`
	CVE      DetectionRule `yaml:"cve"`
	Domain   DetectionRule `yaml:"domain"`
}

// DetectionRule configures one built-in rule.
type DetectionRule struct {
	Enabled bool `yaml:"enabled"`
	// Actions names connectors that this rule's alerts go to, besides
	// detection.actions.
	Actions []string `yaml:"actions"`
	// Mappings are event fields (dotted ECS names) matched by the rule
	// besides its own.
	Mappings []string `yaml:"mappings"`
}

// DefaultSuppressionWindow is the default of detection.suppression_window.
const DefaultSuppressionWindow = time.Hour

// DefaultDetection returns the detection block's defaults: every rule on,
// no actions, a one-hour suppression window.
func DefaultDetection() Detection {
	on := DetectionRule{Enabled: true}
	return Detection{
		SuppressionWindow: Duration(DefaultSuppressionWindow),
		Rules:             DetectionRules{IP: on, Hash: on, URL: on, Registry: on, Email: on, CVE: on, Domain: on},
		Inputs:            DefaultDetectionInputs(),
		Retrohunt:         DefaultRetrohunt(),
	}
}

// DetectionRuleIDs lists the rule ids, the keys of detection.rules, in
// order.
var DetectionRuleIDs = []string{"ip", "hash", "url", "registry", "email", "cve", "domain"}

// Rule returns the block of the rule with the given id.
func (r *DetectionRules) Rule(id string) (*DetectionRule, bool) {
	switch id {
	case "ip":
		return &r.IP, true
	case "hash":
		return &r.Hash, true
	case "url":
		return &r.URL, true
	case "registry":
		return &r.Registry, true
	case "email":
		return &r.Email, true
	case "cve":
		return &r.CVE, true
	case "domain":
		return &r.Domain, true
	}
	return nil, false
}

func (d *Detection) validate(errs *[]string) {
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	checkNames(errs, "detection.actions", d.Actions)
	if d.SuppressionWindow < 0 {
		add("detection.suppression_window: must not be negative (0 turns suppression off; default 1h)")
	}
	d.Retrohunt.validate(errs)
	for _, id := range DetectionRuleIDs {
		r, _ := d.Rules.Rule(id)
		p := "detection.rules." + id
		checkNames(errs, p+".actions", r.Actions)
		for i, m := range r.Mappings {
			if err := checkFieldName(m); err != nil {
				add("%s.mappings[%d]: %v", p, i, err)
			}
		}
	}
}

// checkNames checks a list of connector names: not empty, no spaces, no
// repeats.
func checkNames(errs *[]string, path string, names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		switch {
		case strings.TrimSpace(n) == "":
			*errs = append(*errs, fmt.Sprintf("%s[%d]: must not be empty (a connector name)", path, i))
		case strings.IndexFunc(n, unicode.IsSpace) >= 0:
			*errs = append(*errs, fmt.Sprintf("%s[%d]: %q has a space; connector names have none", path, i, n))
		case seen[n]:
			*errs = append(*errs, fmt.Sprintf("%s[%d]: %q is listed twice", path, i, n))
		}
		seen[n] = true
	}
}

// checkFieldName checks a dotted ECS field name such as "client.ip".
func checkFieldName(f string) error {
	if f == "" {
		return fmt.Errorf("must not be empty (an event field such as client.ip)")
	}
	if strings.IndexFunc(f, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == '*' }) >= 0 {
		return fmt.Errorf("%q is not a field name: no spaces, control characters or wildcards (e.g. client.ip)", f)
	}
	for _, part := range strings.Split(f, ".") {
		if part == "" {
			return fmt.Errorf("%q is not a field name: empty part between dots (e.g. client.ip)", f)
		}
	}
	return nil
}
