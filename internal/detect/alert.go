package detect

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-ti/vigil"
)

// indicatorMeta is what an enrichment needs of a matched document.
type indicatorMeta struct {
	ref     uint32
	doc     DocRef
	object  []byte // the JSON object copied into enrichments[].indicator
	feed    string // threat.feed.name, or the dataset
	missing bool   // the document was not found in the store
}

// Paths of the object copied into an enrichment's indicator: as Elastic's
// rules set threat_indicator_path, threat.indicator for indicators and
// rapid7.tc.vulnerability for the CVE rule (vulnerability when a document
// has no Rapid7 object).
var metaFields = []string{"threat.indicator", "threat.feed.name", "rapid7.tc.vulnerability", "vulnerability"}

const (
	metaIndicator = iota
	metaFeed
	metaRapid7Vuln
	metaVuln
)

// metaCache keeps the metadata of recently matched Refs of one Snapshot.
type metaCache struct {
	snap *Snapshot
	m    map[uint32]*indicatorMeta
	max  int
	x    extractor
}

func (c *metaCache) get(ctx context.Context, snap *Snapshot, docs Documents, ref uint32) (*indicatorMeta, error) {
	if c.snap != snap || c.m == nil {
		c.snap, c.m = snap, make(map[uint32]*indicatorMeta)
	}
	if m, ok := c.m[ref]; ok {
		return m, nil
	}
	d, loc := snap.DocAt(ref)
	m := &indicatorMeta{ref: ref, doc: d, feed: d.Dataset}
	var src []byte
	found := false
	if at, ok := docs.(DocumentsAt); ok && loc.Valid() {
		var err error
		if src, found, err = at.LiveDocumentAt(ctx, loc); err != nil {
			return nil, errf("read matched %s %s %q: %w", d.View, d.Dataset, d.Key, err)
		}
	}
	if docs != nil && !found {
		doc, ok, err := docs.LiveDocument(ctx, d.View, d.Dataset, d.Key)
		if err != nil {
			return nil, errf("read matched %s %s %q: %w", d.View, d.Dataset, d.Key, err)
		}
		src, found = doc.Source, ok
	}
	m.missing = !found
	if found {
		c.fill(m, src)
	}
	if m.object == nil {
		m.object = []byte("{}")
	}
	if len(c.m) >= c.max {
		// Forget about an eighth, in map order (random enough).
		n := c.max/8 + 1
		for k := range c.m {
			delete(c.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	c.m[ref] = m
	return m, nil
}

// fill sets m's object and feed from the document's source.
func (c *metaCache) fill(m *indicatorMeta, src []byte) {
	if c.x.t == nil {
		c.x.t = newFieldTree(metaFields, map[string]bool{"threat.indicator": true, "rapid7.tc.vulnerability": true, "vulnerability": true})
	}
	if c.x.scan(src) != nil {
		return
	}
	var found [4][]byte
	for i := range c.x.vals {
		v := &c.x.vals[i]
		if found[v.slot] != nil {
			continue
		}
		raw := c.x.raw(v)
		if v.slot == metaFeed {
			if v.str {
				m.feed = c.x.str(v)
				found[v.slot] = raw
			}
			continue
		}
		if raw[0] == '{' {
			found[v.slot] = raw
		}
	}
	m.feed = strings.Clone(m.feed)
	obj := found[metaIndicator]
	if m.doc.View == vigil.ViewVulnerabilities {
		obj = found[metaRapid7Vuln]
		if obj == nil {
			obj = found[metaVuln]
		}
	}
	if obj != nil {
		m.object = append([]byte(nil), obj...)
	}
}

// memberScanner lists the members of JSON objects that are known to be
// valid.
type memberScanner struct {
	x extractor
}

type member struct {
	rawKey []byte // quoted, as in the source
	key    string // decoded
	val    []byte
}

// members returns the members of the object src, or nil when src is not
// one.
func (s *memberScanner) members(src []byte, dst []member) []member {
	if s.x.t == nil {
		s.x.t = newFieldTree(nil, nil)
	}
	x := &s.x
	x.src, x.err = src, nil
	i := skipWS(src, 0)
	if i >= len(src) || src[i] != '{' {
		return dst
	}
	i = skipWS(src, i+1)
	if i < len(src) && src[i] == '}' {
		return dst
	}
	for i < len(src) && src[i] == '"' {
		end, flags := x.string(i)
		if end < 0 {
			return dst
		}
		m := member{rawKey: src[i:end]}
		if flags&strEscaped != 0 {
			m.key = string(appendUnquote(nil, src[i+1:end-1]))
		} else {
			m.key = string(src[i+1 : end-1])
		}
		i = skipWS(src, end)
		if i >= len(src) || src[i] != ':' {
			return dst
		}
		i = skipWS(src, i+1)
		vend := x.value(i, -1, 1)
		if vend < 0 {
			return dst
		}
		m.val = src[i:vend]
		dst = append(dst, m)
		i = skipWS(src, vend)
		if i >= len(src) || src[i] != ',' {
			break
		}
		i = skipWS(src, i+1)
	}
	return dst
}

// elements returns the elements of the array src, or src itself when it is
// not an array.
func (s *memberScanner) elements(src []byte, dst [][]byte) [][]byte {
	x := &s.x
	x.src, x.err = src, nil
	i := skipWS(src, 0)
	if i >= len(src) || src[i] != '[' {
		return append(dst, src)
	}
	i = skipWS(src, i+1)
	for i < len(src) && src[i] != ']' {
		end := x.value(i, -1, 1)
		if end < 0 {
			break
		}
		dst = append(dst, src[i:end])
		i = skipWS(src, end)
		if i < len(src) && src[i] == ',' {
			i = skipWS(src, i+1)
		}
	}
	return dst
}

// subject returns a one-line summary of an alert: its rule and the first
// value matched.
func (s *memberScanner) subject(d *vigil.Detection) string {
	var b strings.Builder
	b.WriteString("vigil: ")
	b.WriteString(d.RuleName)
	atomic, field := "", ""
	n := 0
	for _, m := range s.members(d.Source, nil) {
		if m.key != "threat" {
			continue
		}
		for _, t := range s.members(m.val, nil) {
			if t.key != "enrichments" {
				continue
			}
			for _, en := range s.elements(t.val, nil) {
				n++
				if n > 1 {
					continue
				}
				for _, f := range s.members(en, nil) {
					if f.key != "matched" {
						continue
					}
					for _, mf := range s.members(f.val, nil) {
						switch mf.key {
						case "atomic":
							atomic, _ = strconv.Unquote(string(mf.val))
						case "field":
							field, _ = strconv.Unquote(string(mf.val))
						}
					}
				}
			}
		}
	}
	if atomic != "" {
		b.WriteString(": ")
		b.WriteString(field)
		b.WriteString(" ")
		b.WriteString(atomic)
		if n > 1 {
			b.WriteString(" and ")
			b.WriteString(strconv.Itoa(n - 1))
			b.WriteString(" more")
		}
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, b.String())
}

// Alert layout. Members of the event are kept in order, except those the
// alert sets:
//
//   - @timestamp: the time the alert was raised; the event's own moves to
//     kibana.alert.original_time, as Kibana's alerts keep it;
//   - rule.id and rule.name: the rule's (other rule.* members of the event
//     stay);
//   - threat.enrichments: the event's own enrichments, then the alert's;
//   - kibana.alert: uuid, severity, risk_score, original_time and rule
//     {name, rule_id, type}.
//
// Dotted keys at the top level that name those fields are dropped, except
// threat.enrichments, whose elements are kept.
func (e *Engine) buildAlert(line []byte, r *activeRule, ens []enrichment, id string, now time.Time) ([]byte, error) {
	ms := &e.members
	top := ms.members(line, nil)
	if len(top) == 0 && len(trimLine(line)) > 2 {
		return nil, errf("event is not an object")
	}
	var ruleObj, threatObj, kibanaObj, origTime []byte
	var oldEnrichments [][]byte
	out := make([]byte, 0, len(line)+768*len(ens)+512)
	out = append(out, `{"@timestamp":`...)
	out = appendJSONString(out, now.UTC().Format(timeFormat))
	for _, m := range top {
		switch k := m.key; {
		case k == "@timestamp":
			origTime = m.val
			continue
		case k == "rule":
			ruleObj = m.val
			continue
		case k == "threat":
			threatObj = m.val
			continue
		case k == "kibana":
			kibanaObj = m.val
			continue
		case k == "threat.enrichments":
			oldEnrichments = ms.elements(m.val, oldEnrichments)
			continue
		case k == "rule.id", k == "rule.name", k == "kibana.alert", strings.HasPrefix(k, "kibana.alert."):
			continue
		}
		out = append(out, ',')
		out = append(out, m.rawKey...)
		out = append(out, ':')
		out = append(out, m.val...)
	}
	// rule
	out = append(out, `,"rule":{`...)
	for _, m := range ms.members(ruleObj, nil) {
		if m.key != "id" && m.key != "name" {
			out = appendMember(out, m)
		}
	}
	out = append(out, `"id":`...)
	out = appendJSONString(out, r.ID)
	out = append(out, `,"name":`...)
	out = appendJSONString(out, r.Name)
	// threat
	out = append(out, `},"threat":{`...)
	for _, m := range ms.members(threatObj, nil) {
		if m.key == "enrichments" {
			oldEnrichments = ms.elements(m.val, oldEnrichments)
		} else {
			out = appendMember(out, m)
		}
	}
	out = append(out, `"enrichments":[`...)
	for i, en := range oldEnrichments {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, en...)
	}
	for i, en := range ens {
		if i > 0 || len(oldEnrichments) > 0 {
			out = append(out, ',')
		}
		out = appendEnrichment(out, &en)
	}
	// kibana
	out = append(out, `]},"kibana":{`...)
	var alertObj []byte
	for _, m := range ms.members(kibanaObj, nil) {
		if m.key == "alert" {
			alertObj = m.val
		} else {
			out = appendMember(out, m)
		}
	}
	out = append(out, `"alert":{`...)
	for _, m := range ms.members(alertObj, nil) {
		switch m.key {
		case "uuid", "severity", "risk_score", "original_time", "rule":
		default:
			out = appendMember(out, m)
		}
	}
	out = appendAlertMembers(out, r, id, origTime)
	out = append(out, `}}}`...)
	return out, nil
}

// appendAlertMembers appends the members of kibana.alert that an alert
// sets: uuid, severity, risk_score, original_time (when origTime, a JSON
// value, is not nil) and rule.
func appendAlertMembers(out []byte, r *activeRule, id string, origTime []byte) []byte {
	out = append(out, `"uuid":`...)
	out = appendJSONString(out, id)
	out = append(out, `,"severity":`...)
	out = appendJSONString(out, r.Severity)
	out = append(out, `,"risk_score":`...)
	out = strconv.AppendFloat(out, r.RiskScore, 'f', -1, 64)
	if origTime != nil {
		out = append(out, `,"original_time":`...)
		out = append(out, origTime...)
	}
	out = append(out, `,"rule":{"name":`...)
	out = appendJSONString(out, r.Name)
	if r.ElasticRuleID != "" {
		out = append(out, `,"rule_id":`...)
		out = appendJSONString(out, r.ElasticRuleID)
	}
	return append(out, `,"type":"threat_match"}`...)
}

// timeFormat is how alert times are written: UTC, milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z"

func appendMember(out []byte, m member) []byte {
	out = append(out, m.rawKey...)
	out = append(out, ':')
	out = append(out, m.val...)
	return append(out, ',')
}

// appendEnrichment writes one threat.enrichments[] entry as Kibana's
// enrich_signal_threat_matches writes it.
func appendEnrichment(out []byte, en *enrichment) []byte {
	m := en.meta
	out = append(out, `{"indicator":`...)
	out = append(out, m.object...)
	out = append(out, `,"feed":{"name":`...)
	out = appendJSONString(out, m.feed)
	out = append(out, `},"matched":{"atomic":`...)
	out = append(out, en.atomic...)
	out = append(out, `,"field":`...)
	out = appendJSONString(out, en.field)
	out = append(out, `,"id":`...)
	out = appendJSONString(out, m.doc.Key)
	out = append(out, `,"index":`...)
	out = appendJSONString(out, m.doc.Dataset)
	out = append(out, `,"type":"indicator_match_rule"}}`...)
	return out
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD.
func appendJSONString(out []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	out = append(out, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				out = append(out, '\\', c)
			case c == '\n':
				out = append(out, '\\', 'n')
			case c == '\r':
				out = append(out, '\\', 'r')
			case c == '\t':
				out = append(out, '\\', 't')
			case c < 0x20:
				out = append(out, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				out = append(out, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = append(out, "\ufffd"...)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return append(out, '"')
}

// suppressor remembers the (rule, event, indicator) triples raised within
// the window, at most max of them: the oldest are forgotten first.
type suppressor struct {
	window time.Duration
	max    int
	seen   map[[16]byte]int64 // when each triple was raised, Unix nanoseconds
	queue  []suppEntry        // in the order raised
	head   int
}

type suppEntry struct {
	key [16]byte
	at  int64
}

// suppressed reports whether key was raised within the window before now.
func (s *suppressor) suppressed(key [16]byte, now time.Time) bool {
	if s.window <= 0 {
		return false
	}
	at, ok := s.seen[key]
	return ok && now.UnixNano()-at < int64(s.window)
}

// record notes that key was raised at now.
func (s *suppressor) record(key [16]byte, now time.Time) {
	if s.window <= 0 {
		return
	}
	if s.seen == nil {
		s.seen = make(map[[16]byte]int64)
	}
	t := now.UnixNano()
	s.seen[key] = t
	s.queue = append(s.queue, suppEntry{key: key, at: t})
	for s.head < len(s.queue) {
		q := s.queue[s.head]
		if t-q.at < int64(s.window) && len(s.seen) <= s.max {
			break
		}
		if s.seen[q.key] == q.at {
			delete(s.seen, q.key)
		}
		s.head++
	}
	if s.head > 1024 && s.head*2 > len(s.queue) {
		s.queue = append(s.queue[:0], s.queue[s.head:]...)
		s.head = 0
	}
}

// Len returns how many triples are remembered.
func (s *suppressor) Len() int { return len(s.seen) }
