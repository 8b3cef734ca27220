package mispfeed

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/matcher"
)

// value is one MISP attribute value an indicator document gives.
type value struct {
	Type  string // MISP type
	Value string
}

// enrichment is what an indicator document says about its IOC, as MISP
// users look for it (misp.md section 7). Each list is kept in first-seen
// order without case-insensitive repeats.
type enrichment struct {
	Timestamp        time.Time // the newest @timestamp: recency, for the limit
	FirstSeen        time.Time
	LastSeen         time.Time
	ThreatLevel      int    // from the severity: 1 high … 4 undefined
	Severity         string // as the source writes it
	TLP              string // threat.indicator.marking.tlp
	Confidence       string // threat.indicator.confidence (the ECS scale)
	SourceConfidence string // the source's own 0-100 score
	Sources          []string
	Alerts           []string
	UserTags         []string
	SystemTags       []string
	ThreatActors     []string
	Malware          []string
	Campaigns        []string
}

// Where sources keep what ECS has no field for. Each enrichment reads ECS
// first, then these; a source that lacks one simply leaves it out.
var (
	pathSeverityTC      = []string{"rapid7", "tc", "ioc", "severity"}
	pathScoreTC         = []string{"rapid7", "tc", "ioc", "score"}
	pathRelatedTC       = []string{"rapid7", "tc", "ioc", "related"}
	pathRatingTCN       = []string{"threat_connect", "indicator", "rating"}
	pathConfidenceTCN   = []string{"threat_connect", "indicator", "confidence"}
	pathDateAddedTCN    = []string{"threat_connect", "indicator", "date_added"}
	pathTagsTCN         = []string{"threat_connect", "indicator", "tags", "data"}
	pathGroupsTCN       = []string{"threat_connect", "indicator", "associated_groups", "data"}
	pathAlertRelatedIOC = []string{"rapid7", "tc", "alert", "related_iocs"}
)

// plumbingTags are top-level tags that integrations add to every document
// of a dataset (Elastic's defaults); they say nothing about the IOC.
var plumbingTags = map[string]bool{
	"forwarded": true, "preserve_original_event": true,
	"rapid7-threat-command-ioc": true, "threatconnect-indicator": true,
}

// indicatorTypes returns threat.indicator.type, a string or a list.
func indicatorTypes(v *fastjson.Value) []string {
	return texts(v.Get("threat", "indicator", "type"))
}

// texts returns a string, or the strings of a list (numbers and
// booleans as their text).
func texts(v *fastjson.Value) []string {
	if v == nil {
		return nil
	}
	if v.Type() == fastjson.TypeArray {
		var out []string
		for _, e := range v.GetArray() {
			if s, ok := scalar(e); ok {
				out = append(out, s)
			}
		}
		return out
	}
	if s, ok := scalar(v); ok {
		return []string{s}
	}
	return nil
}

func scalar(v *fastjson.Value) (string, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		s := string(bytes.TrimSpace(v.GetStringBytes()))
		return s, s != ""
	case fastjson.TypeNumber:
		f := v.GetFloat64()
		return strconv.FormatFloat(f, 'f', -1, 64), true
	case fastjson.TypeTrue:
		return "true", true
	case fastjson.TypeFalse:
		return "false", true
	}
	return "", false
}

// first returns the first text (as texts reads them) of the first path
// that has one.
func first(v *fastjson.Value, paths ...[]string) string {
	for _, p := range paths {
		x := v.Get(p...)
		if x == nil {
			continue
		}
		if x.Type() != fastjson.TypeArray {
			if s, ok := scalar(x); ok {
				return s
			}
			continue
		}
		for _, e := range x.GetArray() {
			if s, ok := scalar(e); ok {
				return s
			}
		}
	}
	return ""
}

// confidenceRank orders threat.indicator.confidence: None and Not Specified
// (and no confidence) rank lowest.
func confidenceRank(s string) int {
	switch strings.ToLower(s) {
	case "low":
		return 1
	case "medium":
		return 2
	case "high":
		return 3
	}
	return 0
}

// selects reports whether a group's filters select an indicator document.
func selects(g *config.MISPGroup, dataset string, v *fastjson.Value) bool {
	if len(g.Datasets) > 0 && !containsFold(g.Datasets, dataset, false) {
		return false
	}
	if len(g.Types) > 0 && !anyIn(g.Types, indicatorTypes(v), false) {
		return false
	}
	if g.MinConfidence != "" && confidenceRank(first(v, []string{"threat", "indicator", "confidence"})) < confidenceRank(g.MinConfidence) {
		return false
	}
	if len(g.Providers) > 0 && !anyIn(g.Providers, texts(v.Get("threat", "indicator", "provider")), true) {
		return false
	}
	if len(g.Tags) > 0 {
		user, system := tagsOf(v)
		if !anyIn(g.Tags, user, true) && !anyIn(g.Tags, system, true) {
			return false
		}
	}
	return true
}

func containsFold(list []string, s string, fold bool) bool {
	for _, x := range list {
		if x == s || fold && strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func anyIn(want, have []string, fold bool) bool {
	for _, h := range have {
		if containsFold(want, h, fold) {
			return true
		}
	}
	return false
}

// tagsOf returns an indicator's user tags (the top-level tags less the
// integrations' own, and ThreatConnect's tags) and system tags
// (ThreatConnect's ATT&CK technique tags, which ThreatConnect applies).
func tagsOf(v *fastjson.Value) (user, system []string) {
	for _, t := range texts(v.Get("tags")) {
		if !plumbingTags[strings.ToLower(t)] {
			user = appendUnique(user, t)
		}
	}
	for _, t := range v.GetArray(pathTagsTCN...) {
		name, ok := scalar(orNull(t.Get("name")))
		if !ok {
			continue
		}
		if t.Get("technique", "id") != nil {
			system = appendUnique(system, name)
		} else {
			user = appendUnique(user, name)
		}
	}
	return user, system
}

var nullValue = fastjson.MustParse("null")

func orNull(v *fastjson.Value) *fastjson.Value {
	if v == nil {
		return nullValue
	}
	return v
}

// appendUnique appends s unless the list has it already (case-insensitive).
func appendUnique(list []string, s ...string) []string {
	for _, x := range s {
		x = strings.TrimSpace(x)
		if x != "" && !containsFold(list, x, true) {
			list = append(list, x)
		}
	}
	return list
}

// values returns the MISP values an indicator document gives: one for a
// domain, URL, IP address or e-mail address, one per md5, sha1 and sha256
// of a file. A value MISP would reject is an error that names it; the
// document's other values are still returned.
func values(v *fastjson.Value, key string) ([]value, error) {
	ind := v.Get("threat", "indicator")
	if ind == nil {
		return nil, errors.New("no threat.indicator")
	}
	or := func(paths ...[]string) string {
		if s := first(ind, paths...); s != "" {
			return s
		}
		return strings.TrimSpace(key)
	}
	for _, typ := range indicatorTypes(v) {
		switch typ {
		case "domain-name":
			d := matcher.NormalizeDomain(or([]string{"url", "domain"}))
			if !validDomain.MatchString(d) {
				return nil, fmt.Errorf("domain %q is not a domain name MISP accepts", d)
			}
			return []value{{"domain", d}}, nil
		case "url":
			u := or([]string{"url", "original"}, []string{"url", "full"})
			if u == "" {
				return nil, errors.New("url indicator has no URL")
			}
			if strings.ContainsFunc(u, isSpaceOrControl) {
				return nil, fmt.Errorf("url %q has white space or a control character", u)
			}
			return []value{{"url", u}}, nil
		case "ipv4-addr", "ipv6-addr":
			s := or([]string{"ip"})
			ip, err := canonicalIP(s)
			if err != nil {
				return nil, err
			}
			return []value{{"ip-dst", ip}}, nil
		case "email-addr":
			e := matcher.NormalizeEmail(or([]string{"email", "address"}))
			if !validEmail.MatchString(e) {
				return nil, fmt.Errorf("e-mail address %q is not one MISP accepts", e)
			}
			return []value{{"email-src", e}}, nil
		case "file":
			return fileValues(ind, key)
		}
	}
	return nil, fmt.Errorf("threat.indicator.type %v has no MISP type in the feed (published: %s)", indicatorTypes(v), strings.Join(config.MISPPublishedTypes, ", "))
}

func fileValues(ind *fastjson.Value, key string) ([]value, error) {
	var out []value
	var bad []string
	for _, h := range []string{"md5", "sha1", "sha256"} {
		s := first(ind, []string{"file", "hash", h})
		if s == "" {
			continue
		}
		s = matcher.NormalizeHash(s)
		if !isHexLen(s, hashLen[h]) {
			bad = append(bad, fmt.Sprintf("%s %q is not %d hexadecimal digits", h, s, hashLen[h]))
			continue
		}
		out = append(out, value{h, s})
	}
	if len(out) == 0 && len(bad) == 0 {
		// No hash field: the name, when it is one of the three.
		s := matcher.NormalizeHash(key)
		for _, h := range []string{"md5", "sha1", "sha256"} {
			if isHexLen(s, hashLen[h]) {
				return []value{{h, s}}, nil
			}
		}
		return nil, fmt.Errorf("file indicator %q has no md5, sha1 or sha256", key)
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return out, nil
}

var hashLen = map[string]int{"md5": 32, "sha1": 40, "sha256": 64}

func isHexLen(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// MISP's own value rules (MispAttribute validation): a domain is labels
// with a top-level label of two characters or more; an e-mail address has
// an @ followed by a dot.
var (
	validDomain = regexp.MustCompile(`(?i)^[\p{L}\p{N}._-]+\.[\p{L}\p{N}-]{2,}$`)
	validEmail  = regexp.MustCompile(`^.[^\s]*@.*\..*$`)
)

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

// canonicalIP returns an address or a CIDR range as MISP stores it: IPv6
// compressed, and a /32 or /128 range as its address.
func canonicalIP(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String(), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", fmt.Errorf("ip %q is not an IP address or CIDR range", s)
	}
	if p.IsSingleIP() {
		return p.Addr().Unmap().String(), nil
	}
	return p.Masked().String(), nil
}

// enrich reads an indicator document's enrichment.
func enrich(v *fastjson.Value) enrichment {
	var e enrichment
	ind := v.Get("threat", "indicator")
	e.Timestamp = parseTime(first(v, []string{"@timestamp"}))
	e.FirstSeen = parseTime(first(ind, []string{"first_seen"}))
	if e.FirstSeen.IsZero() {
		e.FirstSeen = parseTime(first(v, pathDateAddedTCN))
	}
	e.LastSeen = parseTime(first(ind, []string{"last_seen"}, []string{"modified_at"}))
	if e.LastSeen.IsZero() {
		e.LastSeen = e.Timestamp
	}
	if e.FirstSeen.IsZero() {
		e.FirstSeen = e.LastSeen
	}
	if e.LastSeen.Before(e.FirstSeen) {
		e.FirstSeen, e.LastSeen = e.LastSeen, e.FirstSeen
	}
	e.Severity = severity(v)
	e.ThreatLevel = threatLevel(e.Severity)
	e.TLP = first(ind, []string{"marking", "tlp"})
	e.Confidence = first(ind, []string{"confidence"})
	if s := first(v, pathScoreTC, pathConfidenceTCN); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			e.SourceConfidence = strconv.FormatFloat(float64(int64(f+0.5)), 'f', -1, 64)
		}
	}
	e.Sources = appendUnique(e.Sources, texts(ind.Get("provider"))...)
	e.Sources = appendUnique(e.Sources, texts(v.Get("threat", "feed", "name"))...)
	e.UserTags, e.SystemTags = tagsOf(v)
	if rel := v.Get(pathRelatedTC...); rel != nil {
		e.ThreatActors = appendUnique(e.ThreatActors, texts(rel.Get("threat_actors"))...)
		e.Malware = appendUnique(e.Malware, texts(rel.Get("malware"))...)
		e.Campaigns = appendUnique(e.Campaigns, texts(rel.Get("campaigns"))...)
	}
	e.ThreatActors = appendUnique(e.ThreatActors, texts(v.Get("threat", "group", "name"))...)
	e.Malware = appendUnique(e.Malware, texts(v.Get("threat", "software", "name"))...)
	for _, g := range v.GetArray(pathGroupsTCN...) {
		name, ok := scalar(orNull(g.Get("name")))
		if !ok {
			continue
		}
		switch first(g, []string{"type"}) {
		case "Adversary", "Intrusion Set":
			e.ThreatActors = appendUnique(e.ThreatActors, name)
		case "Malware":
			e.Malware = appendUnique(e.Malware, name)
		case "Campaign":
			e.Campaigns = appendUnique(e.Campaigns, name)
		}
	}
	return e
}

// severity is the source's severity of an indicator: Threat Command's, or
// ThreatConnect's threat rating.
func severity(v *fastjson.Value) string {
	if s := first(v, pathSeverityTC); s != "" {
		return s
	}
	if r, err := strconv.ParseFloat(first(v, pathRatingTCN), 64); err == nil {
		return ratingSeverity(r)
	}
	return ""
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// ratingSeverity maps ThreatConnect's threat rating (0 to 5 "skulls":
// suspicious, low, moderate, high, critical) to a severity.
func ratingSeverity(r float64) string {
	switch {
	case r >= 4:
		return "High"
	case r >= 3:
		return "Medium"
	case r >= 1:
		return "Low"
	}
	return ""
}

// threatLevel maps a severity to MISP's threat_level_id.
func threatLevel(severity string) int {
	switch strings.ToLower(severity) {
	case "critical", "high":
		return threatHigh
	case "medium":
		return threatMedium
	case "low":
		return threatLow
	}
	return threatUndefined
}

// merge folds another document's enrichment of the same IOC into e.
func (e *enrichment) merge(o *enrichment) {
	if o.Timestamp.After(e.Timestamp) {
		e.Timestamp = o.Timestamp
	}
	if !o.FirstSeen.IsZero() && (e.FirstSeen.IsZero() || o.FirstSeen.Before(e.FirstSeen)) {
		e.FirstSeen = o.FirstSeen
	}
	if o.LastSeen.After(e.LastSeen) {
		e.LastSeen = o.LastSeen
	}
	if o.ThreatLevel < e.ThreatLevel {
		e.ThreatLevel, e.Severity = o.ThreatLevel, o.Severity
	}
	if tlpRank(o.TLP) > tlpRank(e.TLP) {
		e.TLP = o.TLP
	}
	if confidenceRank(o.Confidence) > confidenceRank(e.Confidence) {
		e.Confidence = o.Confidence
	}
	if e.SourceConfidence == "" {
		e.SourceConfidence = o.SourceConfidence
	}
	e.Sources = appendUnique(e.Sources, o.Sources...)
	e.Alerts = appendUnique(e.Alerts, o.Alerts...)
	e.UserTags = appendUnique(e.UserTags, o.UserTags...)
	e.SystemTags = appendUnique(e.SystemTags, o.SystemTags...)
	e.ThreatActors = appendUnique(e.ThreatActors, o.ThreatActors...)
	e.Malware = appendUnique(e.Malware, o.Malware...)
	e.Campaigns = appendUnique(e.Campaigns, o.Campaigns...)
}

// tagValue makes s safe inside a machine tag's quotes: no quote, backslash
// or control character (MISP's tag syntax and Elastic's indexing both trip
// on them).
func tagValue(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		switch {
		case r == '"' || r == '\\':
			return -1
		case r < ' ' || r == 0x7f:
			return ' '
		}
		return r
	}, s))
}
