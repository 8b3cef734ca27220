package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Feeds holds the feeds vigil publishes. A nil block is not configured.
type Feeds struct {
	MISP *MISPFeeds `yaml:"misp"`
}

// MISPFeeds configures the MISP feeds: IOC groups that MISP instances
// ("devices") pull over HTTP, as a MISP feed of format "MISP Feed".
type MISPFeeds struct {
	// Org is the creator organisation (Event.Orgc) of every published
	// event.
	Org MISPOrg `yaml:"org"`
	// AdminToken guards the device API (/api/v1/devices) as a bearer
	// token; empty turns the API off.
	AdminToken Secret `yaml:"admin_token"`
	// Actions names the connectors that the devices' "no pull for 48
	// hours" warnings go to; empty: those of detection.actions.
	Actions    []string     `yaml:"actions"`
	Groups     []MISPGroup  `yaml:"groups"`
	Devices    []MISPDevice `yaml:"devices"`
	groupIndex map[string]int
}

// MISPOrg names the organisation MISP files the events under. MISP finds
// an organisation by its UUID, or creates it.
type MISPOrg struct {
	Name string `yaml:"name"`
	// UUID defaults to a UUIDv5 of Name, so that it stays the same
	// across restarts without being configured.
	UUID string `yaml:"uuid"`
}

// MISPGroup is an IOC group: a named selection of the live indicators. A
// filter left out (empty) selects everything; a filter with several values
// selects an indicator that has any of them; an indicator must pass every
// filter given.
type MISPGroup struct {
	Name string `yaml:"name"`
	// Types are ECS threat.indicator.type values (ECSIndicatorTypes).
	Types []string `yaml:"types"`
	// Providers are threat.indicator.provider values (case-insensitive).
	Providers []string `yaml:"providers"`
	// Datasets are event.dataset values.
	Datasets []string `yaml:"datasets"`
	// MinConfidence is the lowest threat.indicator.confidence selected:
	// Low, Medium or High ("None" selects every indicator).
	MinConfidence string `yaml:"min_confidence"`
	// Tags are indicator tags (case-insensitive).
	Tags []string `yaml:"tags"`
}

// MISPDevice is a MISP instance that pulls groups, known by its HTTP basic
// auth credentials.
type MISPDevice struct {
	Name     string   `yaml:"name"`
	Username string   `yaml:"username"`
	Password Secret   `yaml:"password"`
	Limit    int      `yaml:"limit"`
	Groups   []string `yaml:"groups"`
}

// DefaultMISPLimit is a device's default limit: the most IOCs one manifest
// lists (Rapid7 Threat Command's MISP device limit).
const DefaultMISPLimit = 50000

// DefaultMISPOrgName is the default creator organisation of the events.
const DefaultMISPOrgName = "vigil"

// MaxMISPDeviceName is the longest device name, in characters.
const MaxMISPDeviceName = 50

// ECSIndicatorTypes are the values ECS expects in threat.indicator.type
// (the STIX 2.1 cyber observable names).
var ECSIndicatorTypes = []string{
	"autonomous-system", "artifact", "directory", "domain-name", "email-addr", "file",
	"ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "port", "process", "software", "url",
	"user-account", "windows-registry-key", "x509-certificate",
}

// MISPPublishedTypes are the ECS indicator types a MISP feed carries (as
// MISP domain, url, ip-dst, email-src and md5/sha1/sha256).
var MISPPublishedTypes = []string{"domain-name", "url", "ipv4-addr", "ipv6-addr", "email-addr", "file"}

// ECSConfidences are the values of threat.indicator.confidence, lowest
// first ("Not Specified" ranks with "None").
var ECSConfidences = []string{"None", "Low", "Medium", "High"}

// CheckMISPDeviceName checks the device name rule: 1 to 50 letters, spaces,
// digits and underscores.
func CheckMISPDeviceName(name string) error {
	ok := strings.TrimSpace(name) != "" && len([]rune(name)) <= MaxMISPDeviceName
	for _, r := range name {
		if !(r == ' ' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("device name %q is not allowed: a device name is up to %d letters, spaces, digits and underscores (A-Z, a-z, 0-9, ' ', '_'), not only spaces", name, MaxMISPDeviceName)
	}
	return nil
}

// CheckMISPGroupName checks the group name rule: 1 to 64 letters, digits,
// '-', '_' and '.', starting with a letter or a digit, because the name is
// a path segment of the feed URL (/misp/{group}/).
func CheckMISPGroupName(name string) error {
	ok := name != "" && len(name) <= 64
	for i, r := range name {
		alnum := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !alnum && (i == 0 || r != '-' && r != '_' && r != '.') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("group name %q is not allowed: a group name is part of the feed URL, so it is 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or a digit", name)
	}
	return nil
}

// CheckMISPUsername checks a device's basic auth user name.
func CheckMISPUsername(u string) error {
	if u == "" || strings.ContainsAny(u, ":\r\n") || strings.TrimSpace(u) != u {
		return fmt.Errorf("username %q is not allowed: HTTP basic auth needs a non-empty user name without ':' or surrounding spaces", u)
	}
	return nil
}

// Group returns the group named name.
func (m *MISPFeeds) Group(name string) (MISPGroup, bool) {
	if i, ok := m.groupIndex[name]; ok {
		return m.Groups[i], true
	}
	for _, g := range m.Groups { // a MISPFeeds not built by Parse
		if g.Name == name {
			return g, true
		}
	}
	return MISPGroup{}, false
}

// GroupNames lists the configured groups, in configuration order.
func (m *MISPFeeds) GroupNames() []string {
	out := make([]string, len(m.Groups))
	for i, g := range m.Groups {
		out[i] = g.Name
	}
	return out
}

// applyMISPDefaults sets the defaults of the list items the file gives:
// a device without a limit key gets DefaultMISPLimit (a limit written as 0
// stays 0, and is rejected).
func (c *Config) applyMISPDefaults(root *yaml.Node) {
	if c.Feeds.MISP == nil && findKey(root, "feeds", "misp") != nil {
		c.Feeds.MISP = &MISPFeeds{} // "misp:" with no value is configured too
	}
	m := c.Feeds.MISP
	if m == nil {
		return
	}
	if m.Org.Name == "" {
		m.Org.Name = DefaultMISPOrgName
	}
	devs := findKey(root, "feeds", "misp", "devices")
	for i := range m.Devices {
		if devs == nil || devs.Kind != yaml.SequenceNode || i >= len(devs.Content) || findKey(devs.Content[i], "limit") == nil {
			m.Devices[i].Limit = DefaultMISPLimit
		}
	}
}

func (m *MISPFeeds) validate(errs *[]string, c *Config, o Options) {
	const p = "feeds.misp"
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	if strings.ContainsAny(m.Org.Name, "\r\n") {
		add("%s.org.name: must be one line", p)
	}
	if m.Org.UUID != "" && !isUUID(m.Org.UUID) {
		add("%s.org.uuid: %q is not a UUID (e.g. 0d6f2a8e-51c4-4b7a-9e3d-2f1a6c5b8e90); leave it out to derive one from org.name", p, m.Org.UUID)
	}
	checkNames(errs, p+".actions", m.Actions)
	m.groupIndex = map[string]int{}
	for i, g := range m.Groups {
		gp := fmt.Sprintf("%s.groups[%d]", p, i)
		if err := CheckMISPGroupName(g.Name); err != nil {
			add("%s.name: %v", gp, err)
		} else if j, dup := m.groupIndex[g.Name]; dup {
			add("%s.name: group %q is already defined at %s.groups[%d]", gp, g.Name, p, j)
		} else {
			m.groupIndex[g.Name] = i
		}
		oneOf(errs, gp+".types", g.Types, ECSIndicatorTypes)
		for _, t := range g.Types {
			if slices.Contains(ECSIndicatorTypes, t) && !slices.Contains(MISPPublishedTypes, t) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s.types: %q has no MISP type vigil publishes (published: %s); the group carries none of them", gp, t, strings.Join(MISPPublishedTypes, ", ")))
			}
		}
		if g.MinConfidence != "" && !slices.Contains(ECSConfidences, g.MinConfidence) {
			add("%s.min_confidence: %q is not allowed (allowed, case-sensitive: %s)", gp, g.MinConfidence, strings.Join(ECSConfidences, ", "))
		}
	}
	names := map[string]int{}
	users := map[string]int{}
	for i, d := range m.Devices {
		dp := fmt.Sprintf("%s.devices[%d]", p, i)
		if err := CheckMISPDeviceName(d.Name); err != nil {
			add("%s.name: %v", dp, err)
		} else if j, dup := names[d.Name]; dup {
			add("%s.name: device %q is already defined at %s.devices[%d]", dp, d.Name, p, j)
		} else {
			names[d.Name] = i
		}
		if !o.ReadOnly || d.Username != "" {
			if err := CheckMISPUsername(d.Username); err != nil {
				add("%s.username: %v", dp, err)
			} else if j, dup := users[d.Username]; dup {
				add("%s.username: %q is already the username of %s.devices[%d]; each device needs its own", dp, d.Username, p, j)
			} else {
				users[d.Username] = i
			}
		}
		if !o.ReadOnly && d.Password.Value() == "" {
			add("%s.password: required (the device's basic auth password; use ${ENV} so it need not sit in the file)", dp)
		}
		if d.Limit <= 0 {
			add("%s.limit: %d is not allowed: the most IOCs a manifest lists must be positive (default %d)", dp, d.Limit, DefaultMISPLimit)
		}
		if len(d.Groups) == 0 {
			add("%s.groups: required: the groups the device may pull (defined: %s)", dp, m.definedGroups())
		}
		seen := map[string]bool{}
		for j, g := range d.Groups {
			switch {
			case seen[g]:
				add("%s.groups[%d]: %q is listed twice", dp, j, g)
			case !m.hasGroup(g):
				add("%s.groups[%d]: no group %q is defined under %s.groups (defined: %s)", dp, j, g, p, m.definedGroups())
			}
			seen[g] = true
		}
	}
}

func (m *MISPFeeds) hasGroup(name string) bool {
	_, ok := m.Group(name)
	return ok
}

func (m *MISPFeeds) definedGroups() string {
	if len(m.Groups) == 0 {
		return "none"
	}
	return strings.Join(m.GroupNames(), ", ")
}

// isUUID reports whether s is a UUID in its canonical text form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
				return false
			}
		}
	}
	return true
}
