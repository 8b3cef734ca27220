package threatconnect

import (
	"net/netip"
	"time"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// The fast path for the associations (associatedGroups,
// associatedIndicators, attributes): their elements are built in an
// ecs.Doc, n.sub, as buildGroups, buildIndicators and buildAttributes build
// them, but from the scanned values; anything else than scalars, and the
// objects named below, is refused.

// scanElems scans the elements of a {"data": [...]} wrapper at s[i:] with
// elem, which builds each in sub, and appends them to dst as buildArrayIn
// does.
func (n *Normalizer) scanElems(s string, i int, sub *ecs.Doc, dst *[]byte, elem func(s string, i int, sub *ecs.Doc) (int, bool)) (int, bool) {
	*dst = (*dst)[:0]
	return n.scanCollection(s, i, func(n *Normalizer, s string, i int) (int, bool) {
		sub.Reset()
		end, ok := elem(s, i, sub)
		if !ok {
			return 0, false
		}
		if sub.Len() > 0 {
			b := *dst
			if len(b) == 0 {
				b = append(b, '[')
			} else {
				b = append(b, ',')
			}
			*dst = sub.AppendJSON(b)
		}
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

// elemKeys scans the object at s[i:], refusing duplicate keys, and calls
// member for each member; member returns the index after the value.
func (n *Normalizer) elemKeys(s string, i int, member func(key string, i int) (int, bool)) (int, bool) {
	from := len(n.fast.keys)
	end, ok := scanObject(s, i, func(key string, i int) (int, bool) {
		for _, k := range n.fast.keys[from:] {
			if k == key {
				return 0, false
			}
		}
		n.fast.keys = append(n.fast.keys, key)
		return member(key, i)
	})
	n.fast.keys = n.fast.keys[:from]
	return end, ok
}

// putS writes the scalar v at path of d as Doc.Value does.
func putS(d *ecs.Doc, path string, v sval) {
	switch v.k {
	case kString:
		d.Str(path, v.s)
	case kNumber:
		d.Num(path, v.s)
	case kTrue:
		d.Bool(path, true)
	case kFalse:
		d.Bool(path, false)
	}
}

// putStringS writes v at path of d as putString does.
func (n *Normalizer) putStringS(d *ecs.Doc, path string, v sval) {
	switch v.k {
	case kNumber:
		d.Str(path, ecs.B2S(n.javaNumberS(v.s)))
	case kTrue:
		d.Str(path, "true")
	case kFalse:
		d.Str(path, "false")
	default:
		putS(d, path, v)
	}
}

// subDateS is subDate for a scanned value.
func subDateS(d *ecs.Doc, path string, v sval) {
	if v.k != kString {
		return
	}
	if t, ok := ecs.ParseTime(v.s); ok {
		d.Time(path, t.Truncate(time.Millisecond))
	}
}

// elemBoolS is elemBool for a scanned value; it reports false where
// elemBool records an error.
func elemBoolS(d *ecs.Doc, path string, v sval) bool {
	if v.null() {
		return true
	}
	b, ok := boolS(v)
	if ok {
		d.Bool(path, b.v)
	}
	return ok
}

// scanCreatedBy scans an element's createdBy at s[i:] into sub as
// createdBy does.
func (n *Normalizer) scanCreatedBy(s string, i int, sub *ecs.Doc, first, last, user *[]string) (int, bool) {
	if i >= len(s) || s[i] != '{' {
		v, next, ok := n.fast.scalar(s, i)
		if ok {
			putS(sub, "createdBy", v)
		}
		return next, ok
	}
	return n.elemKeys(s, i, func(key string, i int) (int, bool) {
		v, next, ok := n.fast.scalar(s, i)
		if !ok {
			return 0, false
		}
		switch key {
		case "firstName":
			putS(sub, "created_by.first_name", v)
			*first = appendUnique(*first, n.renderS(v))
		case "lastName":
			putS(sub, "created_by.last_name", v)
			*last = appendUnique(*last, n.renderS(v))
		case "userName":
			putS(sub, "created_by.user_name", v)
			*user = appendUnique(*user, n.renderS(v))
		case "id":
			n.putStringS(sub, "created_by.id", v)
		case "owner":
			putS(sub, "created_by.owner", v)
		case "pseudonym":
			putS(sub, "created_by.pseudonym", v)
		default:
			return 0, false
		}
		return next, true
	})
}

// scanGroup scans an element of associatedGroups.data into sub as
// buildGroups builds it.
func (n *Normalizer) scanGroup(s string, i int, sub *ecs.Doc) (int, bool) {
	return n.elemKeys(s, i, func(key string, i int) (int, bool) {
		switch key {
		case "createdBy":
			return n.scanCreatedBy(s, i, sub, &n.grpFirst, &n.grpLast, &n.grpUser)
		case "attributes":
			return n.scanGroupAttributes(s, i, sub)
		}
		v, next, ok := n.fast.scalar(s, i)
		if !ok {
			return 0, false
		}
		switch key {
		case "to":
			n.emailTo = appendUnique(n.emailTo, n.renderS(v))
		case "from":
			n.emailFrom = appendUnique(n.emailFrom, n.renderS(v))
		case "userName":
		case "dateAdded":
			subDateS(sub, "date_added", v)
		case "documentDateAdded":
			subDateS(sub, "document.date_added", v)
		case "documentType":
			putS(sub, "document.type", v)
		case "downVoteCount":
			putS(sub, "down_vote_count", v)
		case "dueDate":
			subDateS(sub, "due_date", v)
		case "emailDate":
			subDateS(sub, "email_date", v)
		case "escalationDate":
			subDateS(sub, "escalation_date", v)
		case "eventDate":
			subDateS(sub, "event_date", v)
		case "externalDateAdded":
			subDateS(sub, "external.date.added", v)
		case "externalDateExpires":
			subDateS(sub, "external.date.expires", v)
		case "externalLastModified":
			subDateS(sub, "external.last_modified", v)
		case "fileName":
			putS(sub, "file.name", v)
		case "fileSize":
			n.putStringS(sub, "file.size", v)
		case "fileText":
			putS(sub, "file.text", v)
		case "fileType":
			putS(sub, "file.type", v)
		case "firstSeen":
			subDateS(sub, "first_seen", v)
		case "generatedReport":
			ok = elemBoolS(sub, "generated_report", v)
		case "id":
			n.putStringS(sub, "id", v)
		case "lastModified":
			subDateS(sub, "last_modified", v)
		case "lastSeen":
			subDateS(sub, "last_seen", v)
		case "legacyLink":
			putS(sub, "legacy_link", v)
		case "malware":
			ok = elemBoolS(sub, "malware", v)
		case "ownerId":
			n.putStringS(sub, "owner.id", v)
		case "ownerName":
			putS(sub, "owner.name", v)
		case "publishDate":
			subDateS(sub, "publish_date", v)
		case "reminderDate":
			subDateS(sub, "reminder_date", v)
		case "scoreBreakdown":
			putS(sub, "score_breakdown", v)
		case "scoreIncludesBody":
			ok = elemBoolS(sub, "score_includes_body", v)
		case "upVote":
			ok = elemBoolS(sub, "up_vote", v)
		case "upVoteCount":
			putS(sub, "up_vote_count", v)
		case "webLink":
			putS(sub, "web_link", v)
		case "assignments":
			return 0, false
		default:
			putS(sub, key, v)
		}
		return next, ok
	})
}

// scanGroupAttributes scans a group's attributes at s[i:] into sub as
// groupAttributes does.
func (n *Normalizer) scanGroupAttributes(s string, i int, sub *ecs.Doc) (int, bool) {
	end, ok := n.scanElems(s, i, &n.sub2, &n.arr2, func(s string, i int, sub2 *ecs.Doc) (int, bool) {
		return n.elemKeys(s, i, func(key string, i int) (int, bool) {
			if i < len(s) && s[i] == '{' {
				// An object of scalars (createdBy), kept cleaned.
				start := len(n.tmp)
				b, next, ok := n.fast.cleanObject(n.tmp, s, i)
				n.tmp = b[:start]
				if ok && len(b) > start {
					switch key {
					case "dateAdded", "default", "id", "lastModified", "pinned", "source":
					default:
						sub2.Raw(key, b[start:])
					}
				}
				return next, ok
			}
			v, next, ok := n.fast.scalar(s, i)
			if ok {
				switch key {
				case "dateAdded", "default", "id", "lastModified", "pinned", "source":
				default:
					putS(sub2, key, v)
				}
			}
			return next, ok
		})
	})
	if ok {
		if n.arr2 = closeElems(n.arr2); len(n.arr2) > 0 {
			sub.Raw("attributes", n.arr2)
		}
	}
	n.arr2 = n.arr2[:0]
	return end, ok
}

// cleanObject appends the object of scalars at s[i:] to dst cleaned, as
// ecs.AppendClean does (nothing when nothing is left), and returns the
// index after it. Duplicate keys are refused.
func (fs *fastState) cleanObject(dst []byte, s string, i int) ([]byte, int, bool) {
	start := len(dst)
	dst = append(dst, '{')
	count := 0
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
		mark := len(dst)
		if count > 0 {
			dst = append(dst, ',')
		}
		dst = append(ecs.AppendString(dst, key), ':')
		if dst, ok = appendCleanScalar(dst, v); ok {
			count++
		} else {
			dst = dst[:mark]
		}
		return next, true
	})
	fs.keys = fs.keys[:from]
	if !ok {
		return dst[:start], 0, false
	}
	if count == 0 {
		return dst[:start], end, true
	}
	return append(dst, '}'), end, true
}

// scanAssocIndicator scans an element of associatedIndicators.data into
// sub as buildIndicators builds it.
func (n *Normalizer) scanAssocIndicator(s string, i int, sub *ecs.Doc) (int, bool) {
	return n.elemKeys(s, i, func(key string, i int) (int, bool) {
		v, next, ok := n.fast.scalar(s, i)
		if !ok {
			return 0, false
		}
		switch key {
		case "size":
			n.putStringS(sub, "size", v)
		case "active":
			ok = elemBoolS(sub, "active.value", v)
		case "activeLocked":
			ok = elemBoolS(sub, "active.locked", v)
		case "confidence":
			if !v.null() {
				var x int64
				if x, ok = n.longS(v); ok {
					sub.Int("confidence", x)
				}
			}
		case "dateAdded":
			subDateS(sub, "date_added", v)
		case "dnsActive":
			ok = elemBoolS(sub, "dns_active", v)
		case "externalDateAdded":
			subDateS(sub, "external.date.added", v)
		case "externalDateExpires":
			subDateS(sub, "external.date.expires", v)
		case "externalLastModified":
			subDateS(sub, "external.last_modified", v)
		case "firstSeen":
			subDateS(sub, "first_seen", v)
		case "id":
			n.putStringS(sub, "id", v)
		case "ip":
			if !v.null() {
				var ip string
				if ip, ok = v.str(); ok {
					_, err := netip.ParseAddr(ip)
					if ok = err == nil; ok {
						sub.Str("ip", ip)
					}
				}
			}
		case "lastModified":
			subDateS(sub, "last_modified", v)
		case "lastSeen":
			subDateS(sub, "last_seen", v)
		case "ownerId":
			n.putStringS(sub, "owner.id", v)
		case "ownerName":
			putS(sub, "owner.name", v)
		case "privateFlag":
			ok = elemBoolS(sub, "private_flag", v)
		case "rating":
			if !v.null() {
				var f float64
				if f, ok = n.doubleS(v); ok {
					sub.Float("rating", f)
				}
			}
		case "Block":
			putS(sub, "block", v)
		case "Value Name":
			putS(sub, "value.name", v)
		case "Value Type":
			putS(sub, "value.type", v)
		case "whoisActive":
			ok = elemBoolS(sub, "whois_active", v)
		case "location":
			putS(sub, "location_value", v)
		default:
			putS(sub, renameIndicatorKey(key), v)
		}
		return next, ok
	})
}

// scanAttribute scans an element of attributes.data into sub as
// buildAttributes builds it.
func (n *Normalizer) scanAttribute(s string, i int, sub *ecs.Doc) (int, bool) {
	return n.elemKeys(s, i, func(key string, i int) (int, bool) {
		if key == "createdBy" {
			return n.scanCreatedBy(s, i, sub, &n.attFirst, &n.attLast, &n.attUser)
		}
		v, next, ok := n.fast.scalar(s, i)
		if !ok {
			return 0, false
		}
		switch key {
		case "dateAdded":
			subDateS(sub, "date_added", v)
		case "default":
			ok = elemBoolS(sub, "default", v)
		case "lastModified":
			subDateS(sub, "last_modified", v)
		case "pinned":
			ok = elemBoolS(sub, "pinned", v)
		case "id":
			n.putStringS(sub, "id", v)
		case "userName":
		default:
			putS(sub, key, v)
		}
		return next, ok
	})
}
