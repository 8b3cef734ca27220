package threatconnect

import (
	"net/netip"
	"strconv"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// The fast path for the associations (associatedGroups,
// associatedIndicators, attributes). An element's members go to the slots
// of an elemSpec, which lists what buildGroups, buildIndicators and
// buildAttributes make of them in the order a Doc sorts them; the element
// is then written in that order. A member the spec does not list, an
// object where it does not expect one, or a value the general path would
// report as an error, refuses the record.

// conv is how a member's value is written.
type conv uint8

const (
	cValue   conv = iota // as it is, cleaned (Doc.Value)
	cString              // as a string (putString)
	cDate                // a date, left out when it does not parse (subDate)
	cBool                // a boolean (elemBool)
	cLong                // a long (toLong)
	cDouble              // a double (toDouble)
	cIP                  // an IP address (toIP)
	cDrop                // removed
	cSpecial             // an object or array the scanner built, in elemState.special
)

// slot is one field of an element.
type slot struct {
	key   string // `"name":`
	group string // the object it is in, `"owner":{`, or ""
	conv  conv
}

// elemSpec is a kind of element: its fields in the order they are
// written, and the slot of each member key, -1 for one it refuses.
type elemSpec struct {
	slots []slot
	index func(key string) int
}

// elemState is an element being scanned. fastState keeps one for each
// level: elements of a collection, of a group's attributes, and a
// createdBy.
type elemState struct {
	vals    [40]sval
	seen    uint64
	special [2][]byte // the JSON of cSpecial slots, by their order
}

// set stores v in slot i, refusing a duplicate.
func (e *elemState) set(i int, v sval) bool {
	if e.seen&(1<<i) != 0 {
		return false
	}
	e.seen |= 1 << i
	e.vals[i] = v
	return true
}

var indicatorSpec = elemSpec{
	slots: []slot{
		{`"locked":`, `"active":{`, cBool}, {`"value":`, `"active":{`, cBool},
		{`"address":`, "", cValue}, {`"as_number":`, "", cValue}, {`"block":`, "", cValue},
		{`"confidence":`, "", cLong}, {`"date_added":`, "", cDate}, {`"description":`, "", cValue},
		{`"dns_active":`, "", cBool}, {`"first_seen":`, "", cDate}, {`"hashtag":`, "", cValue},
		{`"host_name":`, "", cValue}, {`"id":`, "", cString}, {`"ip":`, "", cIP},
		{`"key_name":`, "", cValue}, {`"last_modified":`, "", cDate}, {`"last_seen":`, "", cDate},
		{`"legacy_link":`, "", cValue}, {`"md5":`, "", cValue}, {`"mutex":`, "", cValue},
		{`"id":`, `"owner":{`, cString}, {`"name":`, `"owner":{`, cValue},
		{`"private_flag":`, "", cBool}, {`"rating":`, "", cDouble},
		{`"sha1":`, "", cValue}, {`"sha256":`, "", cValue}, {`"size":`, "", cString},
		{`"subject":`, "", cValue}, {`"summary":`, "", cValue}, {`"text":`, "", cValue},
		{`"type":`, "", cValue}, {`"user_agent_string":`, "", cValue},
		{`"name":`, `"value":{`, cValue}, {`"type":`, `"value":{`, cValue},
		{`"web_link":`, "", cValue}, {`"whois_active":`, "", cBool},
	},
	index: func(key string) int {
		switch key {
		case "activeLocked":
			return 0
		case "active":
			return 1
		case "address":
			return 2
		case "AS Number":
			return 3
		case "Block":
			return 4
		case "confidence":
			return 5
		case "dateAdded":
			return 6
		case "description":
			return 7
		case "dnsActive":
			return 8
		case "firstSeen":
			return 9
		case "Hashtag":
			return 10
		case "hostName":
			return 11
		case "id":
			return 12
		case "ip":
			return 13
		case "Key Name":
			return 14
		case "lastModified":
			return 15
		case "lastSeen":
			return 16
		case "legacyLink":
			return 17
		case "md5":
			return 18
		case "Mutex":
			return 19
		case "ownerId":
			return 20
		case "ownerName":
			return 21
		case "privateFlag":
			return 22
		case "rating":
			return 23
		case "sha1":
			return 24
		case "sha256":
			return 25
		case "size":
			return 26
		case "Subject":
			return 27
		case "summary":
			return 28
		case "text":
			return 29
		case "type":
			return 30
		case "User Agent String":
			return 31
		case "Value Name":
			return 32
		case "Value Type":
			return 33
		case "webLink":
			return 34
		case "whoisActive":
			return 35
		}
		return -1
	},
}

// The members of a group that are not written, or not as a slot.
const (
	gTo = 100 + iota
	gFrom
	gCreatedBy
	gAttributes
)

var groupSpec = elemSpec{
	slots: []slot{
		{`"attributes":`, "", cSpecial}, {`"created_by":`, "", cSpecial},
		{`"date_added":`, "", cDate}, {`"down_vote_count":`, "", cValue}, {`"event_date":`, "", cDate},
		{`"id":`, "", cString}, {`"last_modified":`, "", cDate}, {`"legacy_link":`, "", cValue},
		{`"name":`, "", cValue}, {`"id":`, `"owner":{`, cString}, {`"name":`, `"owner":{`, cValue},
		{`"type":`, "", cValue}, {`"up_vote_count":`, "", cValue}, {`"web_link":`, "", cValue},
		{"", "", cDrop}, // userName
	},
	index: func(key string) int {
		switch key {
		case "attributes":
			return gAttributes
		case "createdBy":
			return gCreatedBy
		case "dateAdded":
			return 2
		case "downVoteCount":
			return 3
		case "eventDate":
			return 4
		case "id":
			return 5
		case "lastModified":
			return 6
		case "legacyLink":
			return 7
		case "name":
			return 8
		case "ownerId":
			return 9
		case "ownerName":
			return 10
		case "type":
			return 11
		case "upVoteCount":
			return 12
		case "webLink":
			return 13
		case "userName":
			return 14
		case "to":
			return gTo
		case "from":
			return gFrom
		}
		return -1
	},
}

var attributeSpec = elemSpec{
	slots: []slot{
		{`"created_by":`, "", cSpecial}, {`"date_added":`, "", cDate}, {`"default":`, "", cBool},
		{`"id":`, "", cString}, {`"last_modified":`, "", cDate}, {`"pinned":`, "", cBool},
		{`"type":`, "", cValue}, {`"value":`, "", cValue}, {"", "", cDrop}, // userName
	},
	index: func(key string) int {
		switch key {
		case "dateAdded":
			return 1
		case "default":
			return 2
		case "id":
			return 3
		case "lastModified":
			return 4
		case "pinned":
			return 5
		case "type":
			return 6
		case "value":
			return 7
		case "userName":
			return 8
		case "createdBy":
			return gCreatedBy
		}
		return -1
	},
}

// groupAttributeSpec: groupAttributes keeps the members by their keys, but
// dateAdded, default, id, lastModified, pinned and source.
var groupAttributeSpec = elemSpec{
	slots: []slot{
		{`"createdBy":`, "", cSpecial}, {`"type":`, "", cValue}, {`"value":`, "", cValue},
		{"", "", cDrop}, {"", "", cDrop}, {"", "", cDrop}, {"", "", cDrop}, {"", "", cDrop}, {"", "", cDrop},
	},
	index: func(key string) int {
		switch key {
		case "type":
			return 1
		case "value":
			return 2
		case "dateAdded":
			return 3
		case "default":
			return 4
		case "id":
			return 5
		case "lastModified":
			return 6
		case "pinned":
			return 7
		case "source":
			return 8
		case "createdBy":
			return gCreatedBy
		}
		return -1
	},
}

// The members of createdBy.
const (
	uFirstName = iota
	uID
	uLastName
	uOwner
	uPseudonym
	uUserName
)

var createdBySpec = elemSpec{
	slots: []slot{
		{`"first_name":`, "", cValue}, {`"id":`, "", cString}, {`"last_name":`, "", cValue},
		{`"owner":`, "", cValue}, {`"pseudonym":`, "", cValue}, {`"user_name":`, "", cValue},
	},
	index: func(key string) int {
		switch key {
		case "firstName":
			return uFirstName
		case "id":
			return uID
		case "lastName":
			return uLastName
		case "owner":
			return uOwner
		case "pseudonym":
			return uPseudonym
		case "userName":
			return uUserName
		}
		return -1
	},
}

// elemScanner scans an element of a kind into an elemState; it returns
// the index after the element.
type elemScanner func(n *Normalizer, s string, i int, e *elemState) (int, bool)

// scanElems scans the elements of a {"data": [...]} wrapper at s[i:] with
// scan and writes them with spec to dst, as buildArrayIn does.
// e holds each element in turn.
func (n *Normalizer) scanElems(s string, i int, spec *elemSpec, e *elemState, dst *[]byte, scan elemScanner) (int, bool) {
	*dst = (*dst)[:0]
	return n.scanCollection(s, i, func(n *Normalizer, s string, i int) (int, bool) {
		e.seen = 0
		e.special[0], e.special[1] = e.special[0][:0], e.special[1][:0]
		end, ok := scan(n, s, i, e)
		if !ok {
			return 0, false
		}
		b, mark := openElem(*dst)
		var w jsonWriter
		if b, ok = n.writeElem(&w, b, spec, e); !ok {
			return 0, false
		}
		*dst = w.closeElem(b, mark)
		return end, true
	})
}

// closeElems ends an array scanElems built.
func closeElems(b []byte) []byte {
	if len(b) > 0 {
		b = append(b, ']')
	}
	return b
}

// scanMembers scans the object at s[i:] into e with spec: scalars into
// their slots; other members (index >= 100) go to other.
func (n *Normalizer) scanMembers(s string, i int, spec *elemSpec, e *elemState, other func(idx int, i int) (int, bool)) (int, bool) {
	return scanObject(s, i, func(key string, i int) (int, bool) {
		idx := spec.index(key)
		switch {
		case idx < 0:
			return 0, false
		case idx >= 100:
			return other(idx, i)
		}
		v, next, ok := n.fast.scalar(s, i)
		return next, ok && e.set(idx, v)
	})
}

// writeElem writes the slots of e in spec's order.
func (n *Normalizer) writeElem(w *jsonWriter, b []byte, spec *elemSpec, e *elemState) ([]byte, bool) {
	var sec ecs.Section
	group := ""
	special := 0
	for i := range spec.slots {
		sl := &spec.slots[i]
		if sl.conv == cSpecial {
			b = w.Raw(b, sl.key, e.special[special])
			special++
			continue
		}
		if e.seen&(1<<i) == 0 || sl.conv == cDrop {
			continue
		}
		if sl.group != group {
			if group != "" {
				b = w.Close(b, sec, "}")
			}
			if group = sl.group; group != "" {
				b, sec = w.Open(b, group)
			}
		}
		v := e.vals[i]
		switch sl.conv {
		case cValue:
			b = w.scalar(b, sl.key, v)
		case cString:
			b = n.writeString(w, b, sl.key, v)
		case cDate:
			b = w.date(b, sl.key, v, &n.fast.dates)
		case cBool:
			if !v.null() {
				x, ok := boolS(v)
				if !ok {
					return nil, false
				}
				b = w.boolean(b, sl.key, x)
			}
		case cLong:
			if !v.null() {
				x, ok := n.longS(v)
				if !ok {
					return nil, false
				}
				b = strconv.AppendInt(w.Key(b, sl.key), x, 10)
			}
		case cDouble:
			if !v.null() {
				x, ok := n.doubleS(v)
				if !ok {
					return nil, false
				}
				b = w.double(b, sl.key, optDouble{x, true})
			}
		case cIP:
			if !v.null() {
				ip, ok := v.str()
				if _, err := netip.ParseAddr(ip); !ok || err != nil {
					return nil, false
				}
				b = w.Str(b, sl.key, ip)
			}
		}
	}
	if group != "" {
		b = w.Close(b, sec, "}")
	}
	return b, true
}

// scanCreatedBy scans an element's createdBy object at s[i:] into dst as
// createdBy writes it, collecting the names.
func (n *Normalizer) scanCreatedBy(s string, i int, dst *[]byte, first, last, user *[]string) (int, bool) {
	e := &n.fast.elems[2]
	e.seen = 0
	end, ok := n.scanMembers(s, i, &createdBySpec, e, nil)
	if !ok {
		return 0, false
	}
	for _, u := range [...]struct {
		i    int
		list *[]string
	}{{uFirstName, first}, {uLastName, last}, {uUserName, user}} {
		if e.seen&(1<<u.i) != 0 {
			*u.list = appendUnique(*u.list, n.renderS(e.vals[u.i]))
		}
	}
	var w jsonWriter
	b, ok := n.writeElem(&w, append((*dst)[:0], '{'), &createdBySpec, e)
	if !ok {
		return 0, false
	}
	if w.Has {
		*dst = append(b, '}')
	} else {
		*dst = b[:0]
	}
	return end, true
}

// scanGroup scans an element of associatedGroups.data as buildGroups
// builds it.
func scanGroup(n *Normalizer, s string, i int, e *elemState) (int, bool) {
	var seen int
	return n.scanMembers(s, i, &groupSpec, e, func(idx, i int) (int, bool) {
		if seen&(1<<(idx-100)) != 0 {
			return 0, false
		}
		seen |= 1 << (idx - 100)
		switch idx {
		case gCreatedBy:
			return n.scanCreatedBy(s, i, &e.special[1], &n.grpFirst, &n.grpLast, &n.grpUser)
		case gAttributes:
			end, ok := n.scanElems(s, i, &groupAttributeSpec, &n.fast.elems[1], &e.special[0], scanGroupAttribute)
			e.special[0] = closeElems(e.special[0])
			return end, ok
		}
		v, next, ok := n.fast.scalar(s, i)
		if idx == gTo {
			n.emailTo = appendUnique(n.emailTo, n.renderS(v))
		} else {
			n.emailFrom = appendUnique(n.emailFrom, n.renderS(v))
		}
		return next, ok
	})
}

// scanGroupAttribute scans an element of a group's attributes.data as
// groupAttributes builds it.
func scanGroupAttribute(n *Normalizer, s string, i int, e *elemState) (int, bool) {
	return n.scanMembers(s, i, &groupAttributeSpec, e, func(_, i int) (int, bool) {
		if len(e.special[0]) > 0 {
			return 0, false // a duplicate
		}
		b, next, ok := n.fast.cleanObject(e.special[0][:0], s, i)
		e.special[0] = b
		return next, ok
	})
}

// scanAssocIndicator scans an element of associatedIndicators.data as
// buildIndicators builds it.
func scanAssocIndicator(n *Normalizer, s string, i int, e *elemState) (int, bool) {
	return n.scanMembers(s, i, &indicatorSpec, e, nil)
}

// scanAttribute scans an element of attributes.data as buildAttributes
// builds it.
func scanAttribute(n *Normalizer, s string, i int, e *elemState) (int, bool) {
	seen := false
	return n.scanMembers(s, i, &attributeSpec, e, func(_, i int) (int, bool) {
		if seen {
			return 0, false
		}
		seen = true
		return n.scanCreatedBy(s, i, &e.special[0], &n.attFirst, &n.attLast, &n.attUser)
	})
}

// cleanObject appends the object of scalars at s[i:] to dst cleaned, as
// ecs.AppendClean does (nothing when nothing is left), and returns the
// index after it. Duplicate keys are refused.
func (fs *fastState) cleanObject(dst []byte, s string, i int) ([]byte, int, bool) {
	dst, c := openItems(dst, '{')
	from := len(fs.keys)
	end, ok := scanObject(s, i, func(key string, i int) (int, bool) {
		for _, k := range fs.keys[from:] {
			if k == key {
				return 0, false
			}
		}
		fs.keys = append(fs.keys, key)
		v, next, ok := fs.scalar(s, i)
		if !ok {
			return 0, false
		}
		dst = append(ecs.AppendString(c.next(dst), key), ':')
		dst, ok = appendCleanScalar(dst, v)
		dst = c.keep(dst, ok)
		return next, true
	})
	fs.keys = fs.keys[:from]
	if !ok {
		return dst[:c.start], 0, false
	}
	dst, _ = c.close(dst, '}')
	return dst, end, true
}
