package mispfeed

import (
	"cmp"
	"crypto/sha1"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
)

// A pull encodes one attribute per new IOC, 50,000 at a time; these
// append them without reflection or intermediate strings. The bytes are
// those json.Marshal writes of the Attribute (FuzzAppendCandidate holds
// them to it).

// appendCandidate appends the candidate's attribute, with its UUID in the
// event and the event's timestamp ts.
func appendCandidate(dst []byte, c *candidate, uuid, ts string) []byte {
	dst = append(dst, `{"uuid":`...)
	dst = appendJSONString(dst, uuid)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, c.Type)
	dst = append(dst, `,"category":`...)
	dst = appendJSONString(dst, category(c.Type))
	dst = append(dst, `,"value":`...)
	dst = appendJSONString(dst, c.Value)
	dst = append(dst, `,"to_ids":true,"timestamp":`...)
	dst = appendJSONString(dst, ts)
	dst = append(dst, `,"comment":"`...)
	dst = c.appendComment(dst)
	dst = append(dst, '"')
	if !c.FirstSeen.IsZero() {
		// The layout's text is plain ASCII: nothing to escape.
		dst = append(dst, `,"first_seen":"`...)
		dst = c.FirstSeen.AppendFormat(dst, seenLayout)
		dst = append(dst, `","last_seen":"`...)
		dst = c.LastSeen.AppendFormat(dst, seenLayout)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"deleted":false,"disable_correlation":false`...)
	dst = c.appendTags(dst)
	return append(dst, '}')
}

// appendComment appends the enrichment summed up in one line, for MISP's
// attribute list, as the inside of a JSON string: the sources, the
// confidence, the severity, the alerts and the campaigns, separated by
// "; ", with control characters as spaces.
func (e *enrichment) appendComment(dst []byte) []byte {
	n := 0
	part := func(prefix string, texts ...string) {
		if n > 0 {
			dst = append(dst, "; "...)
		}
		n++
		dst = append(dst, prefix...)
		for i, t := range texts {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendText(dst, t, false)
		}
	}
	if len(e.Sources) > 0 {
		part("", e.Sources...)
	}
	switch {
	case e.Confidence != "" && e.SourceConfidence != "":
		part("confidence ", e.Confidence)
		dst = append(dst, " ("...)
		dst = appendText(dst, e.SourceConfidence, false)
		dst = append(dst, ')')
	case e.Confidence != "":
		part("confidence ", e.Confidence)
	case e.SourceConfidence != "":
		part("confidence ", e.SourceConfidence)
	}
	if e.Severity != "" {
		part("severity ", e.Severity)
	}
	if len(e.Alerts) > 0 {
		part("alerts ", e.Alerts...)
	}
	if len(e.Campaigns) > 0 {
		part("campaigns ", e.Campaigns...)
	}
	return dst
}

// eachTag calls fn with each attribute tag of the enrichment, in a fixed
// order: source, confidence, severity, alerts, user tags, system tags,
// threat actors, malware families, campaigns, TLP. A machine tag is
// ns="value" (ns is "" for the others); its value is made safe by
// tagValue, and an empty one makes no tag.
func (e *enrichment) eachTag(fn func(ns, value, colour string)) {
	machine := func(ns string, values ...string) {
		for _, v := range values {
			if v := tagValue(v); v != "" {
				fn(ns, v, "")
			}
		}
	}
	machine("vigil:source", e.Sources...)
	machine("vigil:source-confidence", e.SourceConfidence)
	if e.Confidence != "" {
		machine("vigil:confidence", strings.ToLower(e.Confidence))
	}
	if e.Severity != "" {
		machine("vigil:severity", strings.ToLower(e.Severity))
	}
	machine("vigil:alert-id", e.Alerts...)
	machine("", e.UserTags...)
	machine("vigil:system-tag", e.SystemTags...)
	machine("misp-galaxy:threat-actor", e.ThreatActors...)
	machine("misp-galaxy:malpedia", e.Malware...)
	machine("vigil:campaign", e.Campaigns...)
	if r := tlpRank(e.TLP); r > 0 {
		fn("", "tlp:"+tlpLevels[r], tlpColours[tlpLevels[r]])
	}
}

// appendTags appends the attribute's "Tag" list (eachTag), if it has tags.
func (e *enrichment) appendTags(dst []byte) []byte {
	n := 0
	e.eachTag(func(ns, value, colour string) {
		if n == 0 {
			dst = append(dst, `,"Tag":[{"name":"`...)
		} else {
			dst = append(dst, `,{"name":"`...)
		}
		n++
		if ns != "" {
			dst = append(dst, ns...)
			dst = append(dst, `=\"`...)
			dst = appendText(dst, value, false)
			dst = append(dst, `\""`...)
		} else {
			dst = appendText(dst, value, false)
			dst = append(dst, '"')
		}
		if colour != "" {
			dst = append(dst, `,"colour":"`...)
			dst = append(dst, colour...)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	})
	if n > 0 {
		dst = append(dst, ']')
	}
	return dst
}

// appendJSONString appends s as a JSON string, escaped as json.Marshal
// escapes it.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendText(dst, s, true)
	return append(dst, '"')
}

// appendText appends s as the inside of a JSON string, escaped as
// json.Marshal escapes it: quote and backslash, the HTML characters <, >
// and &, U+2028 and U+2029, an invalid UTF-8 byte as U+FFFD. Control
// characters are escaped when escapeControls is set, and are spaces
// otherwise, where invalid bytes become U+FFFD itself (what strings.Map
// makes of them, before json.Marshal).
func appendText(dst []byte, s string, escapeControls bool) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && (escapeControls || c != 0x7f) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case !escapeControls && (c < ' ' || c == 0x7f):
				dst = append(dst, ' ')
			case c == '\b':
				dst = append(dst, '\\', 'b')
			case c == '\f':
				dst = append(dst, '\\', 'f')
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			if escapeControls {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// encodeAttributes encodes the candidates as attributes of the event with
// UUID event, at timestamp now (Unix seconds), on GOMAXPROCS goroutines,
// and returns them sorted (CompareAttributes), as the store inserts them
// fastest. The bodies are cut from chunks of 1 MiB.
func encodeAttributes(cands []*candidate, event string, now int64) ([]StoredAttribute, error) {
	ev, err := uuid.Parse(event)
	if err != nil {
		return nil, fmt.Errorf("misp: event UUID %q: %w", event, err)
	}
	ts := unixString(now)
	out := make([]StoredAttribute, len(cands))
	workers := max(min(runtime.GOMAXPROCS(0), len(cands)/1000), 1)
	var wg sync.WaitGroup
	panics := make([]any, workers)
	for w := range workers {
		part := cands[w*len(cands)/workers : (w+1)*len(cands)/workers]
		dst := out[w*len(cands)/workers:]
		wg.Go(func() {
			defer func() { panics[w] = recover() }()
			var scratch, arena []byte
			for i, c := range part {
				var u uuid.UUID
				u, scratch = attributeUUID(ev, c.Type, c.Value, scratch)
				if cap(arena)-len(arena) < 4<<10 {
					arena = make([]byte, 0, 1<<20)
				}
				start := len(arena)
				arena = appendCandidate(arena, c, u.String(), ts)
				dst[i] = StoredAttribute{Type: c.Type, Value: c.Value, Body: arena[start:len(arena):len(arena)]}
			}
			slices.SortFunc(dst[:len(part)], CompareAttributes)
		})
	}
	wg.Wait()
	for _, p := range panics {
		if p != nil {
			panic(p) // here, where net/http recovers it
		}
	}
	if workers == 1 {
		return out, nil
	}
	// Merge the workers' sorted runs.
	runs := make([][]StoredAttribute, workers)
	for w := range runs {
		runs[w] = out[w*len(cands)/workers : (w+1)*len(cands)/workers]
	}
	merged := make([]StoredAttribute, 0, len(out))
	for len(merged) < len(out) {
		best := -1
		for w, r := range runs {
			if len(r) > 0 && (best < 0 || CompareAttributes(r[0], runs[best][0]) < 0) {
				best = w
			}
		}
		merged = append(merged, runs[best][0])
		runs[best] = runs[best][1:]
	}
	return merged, nil
}

// CompareAttributes orders attributes by type, then value: the order the
// store keeps them in, and the order encodeAttributes returns them in.
func CompareAttributes(a, b StoredAttribute) int {
	return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.Value, b.Value))
}

// attributeUUID is AttributeUUID with the event's UUID parsed: UUIDv5 of
// "type|value" under it. buf is scratch space, returned for reuse.
func attributeUUID(event uuid.UUID, typ, value string, buf []byte) (uuid.UUID, []byte) {
	buf = append(buf[:0], event[:]...)
	buf = append(buf, typ...)
	buf = append(buf, '|')
	buf = append(buf, value...)
	sum := sha1.Sum(buf)
	var u uuid.UUID
	copy(u[:], sum[:])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u, buf
}
