package mispfeed

import (
	"crypto/sha1"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"
)

// A pull encodes one attribute per new IOC, 50,000 at a time; these
// append them without reflection. The bytes are those json.Marshal writes
// (FuzzAppendAttribute holds them to it).

// appendAttribute appends the JSON of a, as json.Marshal(a) writes it.
func appendAttribute(dst []byte, a *Attribute) []byte {
	dst = append(dst, `{"uuid":`...)
	dst = appendJSONString(dst, a.UUID)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, a.Type)
	dst = append(dst, `,"category":`...)
	dst = appendJSONString(dst, a.Category)
	dst = append(dst, `,"value":`...)
	dst = appendJSONString(dst, a.Value)
	dst = append(dst, `,"to_ids":`...)
	dst = strconv.AppendBool(dst, a.ToIDs)
	dst = append(dst, `,"timestamp":`...)
	dst = appendJSONString(dst, a.Timestamp)
	dst = append(dst, `,"comment":`...)
	dst = appendJSONString(dst, a.Comment)
	if a.FirstSeen != "" {
		dst = append(dst, `,"first_seen":`...)
		dst = appendJSONString(dst, a.FirstSeen)
	}
	if a.LastSeen != "" {
		dst = append(dst, `,"last_seen":`...)
		dst = appendJSONString(dst, a.LastSeen)
	}
	dst = append(dst, `,"deleted":`...)
	dst = strconv.AppendBool(dst, a.Deleted)
	dst = append(dst, `,"disable_correlation":`...)
	dst = strconv.AppendBool(dst, a.DisableCorrelation)
	if len(a.Tag) > 0 {
		dst = append(dst, `,"Tag":[`...)
		for i := range a.Tag {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = appendJSONString(dst, a.Tag[i].Name)
			if a.Tag[i].Colour != "" {
				dst = append(dst, `,"colour":`...)
				dst = appendJSONString(dst, a.Tag[i].Colour)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string, escaped as json.Marshal
// escapes it: quote, backslash and control characters, the HTML
// characters <, > and &, U+2028 and U+2029; an invalid UTF-8 byte becomes
// U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
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
			dst = append(dst, `\ufffd`...)
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
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// attrEncoder encodes the attributes of one pull into the event with
// UUID event, at timestamp ts (Unix seconds as text).
type attrEncoder struct {
	event   uuid.UUID
	ts      string
	scratch []byte
	arena   []byte // the bodies, a chunk at a time
}

func newAttrEncoder(event string, now int64) (*attrEncoder, error) {
	u, err := uuid.Parse(event)
	if err != nil {
		return nil, fmt.Errorf("misp: event UUID %q: %w", event, err)
	}
	return &attrEncoder{event: u, ts: unixString(now)}, nil
}

// encode returns the candidate's attribute JSON.
func (en *attrEncoder) encode(c *candidate) []byte {
	var u uuid.UUID
	u, en.scratch = attributeUUID(en.event, c.Type, c.Value, en.scratch)
	a := c.attribute(u.String(), en.ts)
	if cap(en.arena)-len(en.arena) < 4<<10 {
		en.arena = make([]byte, 0, 1<<20)
	}
	start := len(en.arena)
	en.arena = appendAttribute(en.arena, &a)
	return en.arena[start:len(en.arena):len(en.arena)]
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
