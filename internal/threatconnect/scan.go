package threatconnect

import (
	"net/netip"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
)

// The fast path of Indicator: scanIndicator makes one pass over a "plain"
// record (the form the v3 API serves) that validates it and takes its
// values as byte ranges, without fastjson's parse into pointerful values;
// fastIndicator works the values out and writeIndicator writes the
// document directly, in the byte order n.doc would encode it. Anything the
// fast path does not vouch for goes to the general path (fastjson and
// n.doc), which stays the reference: FuzzIndicatorScan checks that the two
// give the same Document.

// kind is the type of a scanned value.
type kind uint8

const (
	kMissing kind = iota // the record has no such member
	kNull
	kString // s is the text between the quotes: it has no escapes
	kNumber // s is the number's text, a valid JSON number
	kTrue
	kFalse
)

// sval is a scalar member of a record as scanIndicator took it: s points
// into the record.
type sval struct {
	s string
	k kind
}

// null reports whether v is missing or null, which Elastic treats alike.
func (v sval) null() bool { return v.k <= kNull }

// present reports whether v is neither missing, null nor "".
func (v sval) present() bool { return v.k > kNull && (v.k != kString || v.s != "") }

// str returns v's string, if v is a string.
func (v sval) str() (string, bool) { return v.s, v.k == kString }

// The scalar members of an indicator the fast path takes, indexes of
// plainFields.v. Members not listed here (the sub-collections) are
// scanned by their own code.
const (
	fActive = iota
	fActiveLocked
	fAddress
	fASNumber
	fArtifacts
	fCases
	fBlock
	fConfidence
	fCustomAssoc
	fDateAdded
	fDescription
	fDNSActive
	fDNSResolution
	fEnrichment
	fExtAdded
	fExtExpires
	fExtModified
	fFPByUser
	fFPCount
	fFileActions
	fFileOccurrences
	fFirstSeen
	fGenericValues
	fGeoLocation
	fHashtag
	fHostName
	fID
	fInvestigationLinks
	fIP
	fKeyName
	fLastFP
	fLastModified
	fLastSeen
	fLegacyLink
	fMD5
	fMutex
	fObservations
	fOwnerID
	fOwnerName
	fPrivateFlag
	fRating
	fSHA1
	fSHA256
	fSize
	fSource
	fSubject
	fSummary
	fText
	fTAConfidence
	fTARating
	fTAScore
	fTAScoreFP
	fTAScoreObserved
	fTrackedUsers
	fType
	fUserAgent
	fValueName
	fValueType
	fWebLink
	fWhoIs
	fWhoisActive
	numScalars
)

// The members with an object value, after the scalars.
const (
	fLabels = numScalars + iota
	fTags
	fGroups
	fAssocIndicators
	fAttributes
)

// fieldIndex returns the index of the member key, or -1 for a member the
// fast path does not take.
func fieldIndex(key string) int {
	switch key {
	case "active":
		return fActive
	case "activeLocked":
		return fActiveLocked
	case "address":
		return fAddress
	case "AS Number":
		return fASNumber
	case "associatedArtifacts":
		return fArtifacts
	case "associatedCases":
		return fCases
	case "associatedGroups":
		return fGroups
	case "associatedIndicators":
		return fAssocIndicators
	case "attributes":
		return fAttributes
	case "Block":
		return fBlock
	case "confidence":
		return fConfidence
	case "customAssociations":
		return fCustomAssoc
	case "dateAdded":
		return fDateAdded
	case "description":
		return fDescription
	case "dnsActive":
		return fDNSActive
	case "dnsResolution":
		return fDNSResolution
	case "enrichment":
		return fEnrichment
	case "externalDateAdded":
		return fExtAdded
	case "externalDateExpires":
		return fExtExpires
	case "externalLastModified":
		return fExtModified
	case "falsePositiveReportedByUser":
		return fFPByUser
	case "falsePositives":
		return fFPCount
	case "fileActions":
		return fFileActions
	case "fileOccurrences":
		return fFileOccurrences
	case "firstSeen":
		return fFirstSeen
	case "genericCustomIndicatorValues":
		return fGenericValues
	case "geoLocation":
		return fGeoLocation
	case "Hashtag":
		return fHashtag
	case "hostName":
		return fHostName
	case "id":
		return fID
	case "investigationLinks":
		return fInvestigationLinks
	case "ip":
		return fIP
	case "Key Name":
		return fKeyName
	case "lastFalsePositive":
		return fLastFP
	case "lastModified":
		return fLastModified
	case "lastSeen":
		return fLastSeen
	case "legacyLink":
		return fLegacyLink
	case "md5":
		return fMD5
	case "Mutex":
		return fMutex
	case "observations":
		return fObservations
	case "ownerId":
		return fOwnerID
	case "ownerName":
		return fOwnerName
	case "privateFlag":
		return fPrivateFlag
	case "rating":
		return fRating
	case "securityLabels":
		return fLabels
	case "sha1":
		return fSHA1
	case "sha256":
		return fSHA256
	case "size":
		return fSize
	case "source":
		return fSource
	case "Subject":
		return fSubject
	case "summary":
		return fSummary
	case "tags":
		return fTags
	case "text":
		return fText
	case "threatAssessConfidence":
		return fTAConfidence
	case "threatAssessRating":
		return fTARating
	case "threatAssessScore":
		return fTAScore
	case "threatAssessScoreFalsePositive":
		return fTAScoreFP
	case "threatAssessScoreObserved":
		return fTAScoreObserved
	case "trackedUsers":
		return fTrackedUsers
	case "type":
		return fType
	case "User Agent String":
		return fUserAgent
	case "Value Name":
		return fValueName
	case "Value Type":
		return fValueType
	case "webLink":
		return fWebLink
	case "whoIs":
		return fWhoIs
	case "whoisActive":
		return fWhoisActive
	}
	return -1
}

// plainFields are the members of a record scanIndicator took.
type plainFields struct {
	v    [numScalars]sval
	seen [2]uint64 // bit i: member i was seen (duplicates are refused)
}

// see marks member i seen and reports whether it was not seen before.
func (f *plainFields) see(i int) bool {
	w, bit := i/64, uint64(1)<<(i%64)
	if f.seen[w]&bit != 0 {
		return false
	}
	f.seen[w] |= bit
	return true
}

// fastState is what the fast path keeps between records.
type fastState struct {
	f        plainFields
	labels   []byte   // security_labels.data, encoded
	tags     []byte   // tags.data, encoded
	wbuf     []byte   // the document, see writeIndicator
	num      []byte   // scratch for a number's text
	arena    []byte   // strings made for the record: unescaped, lowercased
	keys     []string // the keys of the objects being scanned, see cleanObject
	elems    [3]elemState
	dates    ecs.DateCache
	lits     indicatorLits
	disabled bool // tests: Indicator always takes the general path
}

// scanIndicator scans the record s into n.fast.f, n.fast.labels,
// n.fast.tags and n.tlp, n.techID, n.techName and n.osFamily. It reports
// false for anything it does not vouch for: a member the fast path does
// not know, a duplicate member, an escape in a string, an object or array
// where the pipeline keeps a value as it is, an element of an unexpected
// shape; the record then goes to fastjson, and what was filled is garbage.
func (n *Normalizer) scanIndicator(s string) bool {
	f := &n.fast.f
	f.seen = [2]uint64{}
	f.v = [numScalars]sval{}
	n.fast.labels, n.fast.tags, n.fast.arena = n.fast.labels[:0], n.fast.tags[:0], n.fast.arena[:0]
	n.fast.keys = n.fast.keys[:0]
	i, empty, ok := ecs.StartObject(s)
	if !ok || empty {
		return ok
	}
	for {
		key, next, ok := ecs.ScanKey(s, i)
		if !ok {
			return false
		}
		i = next
		idx := fieldIndex(key)
		if idx < 0 || !f.see(idx) {
			return false
		}
		switch {
		case idx < numScalars:
			var v sval
			if v, i, ok = n.fast.scalar(s, i); !ok {
				return false
			}
			f.v[idx] = v
		case idx == fLabels:
			if i, ok = n.scanCollection(s, i, (*Normalizer).scanLabel); !ok {
				return false
			}
			n.fast.labels = closeElems(n.fast.labels)
		case idx == fTags:
			if i, ok = n.scanCollection(s, i, (*Normalizer).scanTag); !ok {
				return false
			}
			n.fast.tags = closeElems(n.fast.tags)
		case idx == fGroups:
			if i, ok = n.scanElems(s, i, &groupSpec, &n.fast.elems[0], &n.groups, scanGroup); !ok {
				return false
			}
			n.groups = closeElems(n.groups)
		case idx == fAssocIndicators:
			if i, ok = n.scanElems(s, i, &indicatorSpec, &n.fast.elems[0], &n.indicators, scanAssocIndicator); !ok {
				return false
			}
			n.indicators = closeElems(n.indicators)
		default:
			if i, ok = n.scanElems(s, i, &attributeSpec, &n.fast.elems[0], &n.attributes, scanAttribute); !ok {
				return false
			}
			n.attributes = closeElems(n.attributes)
		}
		var done bool
		if i, done, ok = ecs.NextItem(s, i, '}'); !ok || done {
			return ok && ecs.SkipSpace(s, i) == len(s)
		}
	}
}

// scalar scans the scalar at s[i:] and returns it and the index after
// it; an object or an array is refused. A string with escapes is
// unescaped into fs.arena, as fastjson unescapes it.
func (fs *fastState) scalar(s string, i int) (v sval, next int, ok bool) {
	if i >= len(s) {
		return v, 0, false
	}
	switch s[i] {
	case '"':
		end := ecs.IndexStringEnd(s[i+1:])
		if end < 0 {
			return v, 0, false
		}
		if s[i+1+end] != '"' {
			return fs.unescape(s, i+1, i+1+end)
		}
		return sval{s[i+1 : i+1+end], kString}, i + 2 + end, true
	case 't':
		return sval{k: kTrue}, i + 4, ecs.HasAt(s, i, "true")
	case 'f':
		return sval{k: kFalse}, i + 5, ecs.HasAt(s, i, "false")
	case 'n':
		return sval{k: kNull}, i + 4, ecs.HasAt(s, i, "null")
	case '{', '[':
		return v, 0, false
	}
	j := i
	for j < len(s) && ecs.NumberByte(s[j]) {
		j++
	}
	return sval{s[i:j], kNumber}, j, ecs.ValidNumber(s[i:j])
}

// unescape unescapes the string whose text starts at s[start:] and has
// its first escape at s[esc], into fs.arena, and returns it and the index
// after its closing quote. It takes the escapes fastjson decodes, \uXXXX
// outside the surrogates included, and refuses the others, which fastjson
// keeps as they are. The strings already in fs.arena stay valid: it is
// only appended to while a record is scanned.
func (fs *fastState) unescape(s string, start, esc int) (sval, int, bool) {
	b := fs.arena
	from := len(b)
	b = append(b, s[start:esc]...)
	i := esc
	for {
		// s[i] is '\\'.
		if i+1 >= len(s) {
			return sval{}, 0, false
		}
		switch c := s[i+1]; c {
		case '"', '\\', '/':
			b = append(b, c)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			if len(s)-i < 6 {
				return sval{}, 0, false
			}
			r := rune(0)
			for _, h := range []byte(s[i+2 : i+6]) {
				switch {
				case h >= '0' && h <= '9':
					r = r<<4 | rune(h-'0')
				case h >= 'a' && h <= 'f':
					r = r<<4 | rune(h-'a'+10)
				case h >= 'A' && h <= 'F':
					r = r<<4 | rune(h-'A'+10)
				default:
					return sval{}, 0, false
				}
			}
			if utf16.IsSurrogate(r) {
				return sval{}, 0, false
			}
			b = utf8.AppendRune(b, r)
			i += 4
		default:
			return sval{}, 0, false
		}
		i += 2
		end := ecs.IndexStringEnd(s[i:])
		if end < 0 {
			return sval{}, 0, false
		}
		b = append(b, s[i:i+end]...)
		if i += end; s[i] == '"' {
			fs.arena = b
			return sval{b2s(b[from:]), kString}, i + 1, true
		}
	}
}

// scanCollection scans a {"data": [...]} wrapper at s[i:], passing each
// element, which must be an object, to elem. A nil elem takes only a
// wrapper that gives nothing: null, {}, {"data":null} or {"data":[]}.
func (n *Normalizer) scanCollection(s string, i int, elem func(n *Normalizer, s string, i int) (int, bool)) (int, bool) {
	if ecs.HasAt(s, i, "null") {
		return i + 4, true
	}
	if i >= len(s) || s[i] != '{' {
		return 0, false
	}
	i = ecs.SkipSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return i + 1, true
	}
	key, i, ok := ecs.ScanKey(s, i)
	if !ok || key != "data" {
		return 0, false
	}
	switch {
	case ecs.HasAt(s, i, "null"):
		i += 4
	case i < len(s) && s[i] == '[':
		i = ecs.SkipSpace(s, i+1)
		if i < len(s) && s[i] == ']' {
			i++
			break
		}
		if elem == nil {
			return 0, false
		}
		for {
			if i >= len(s) || s[i] != '{' {
				return 0, false
			}
			if i, ok = elem(n, s, i); !ok {
				return 0, false
			}
			var done bool
			if i, done, ok = ecs.NextItem(s, i, ']'); !ok {
				return 0, false
			}
			if done {
				break
			}
		}
	default:
		return 0, false
	}
	i, done, ok := ecs.NextItem(s, i, '}')
	return i, ok && done // a member besides data: refused
}

// scanObject scans the object at s[i:], calling member for each member
// with the index of its value; member returns the index after the value.
// Objects without members are refused, as are duplicate keys, which
// member must refuse.
func scanObject(s string, i int, member func(key string, i int) (int, bool)) (int, bool) {
	if i >= len(s) || s[i] != '{' {
		return 0, false
	}
	i = ecs.SkipSpace(s, i+1)
	for {
		key, next, ok := ecs.ScanKey(s, i)
		if !ok {
			return 0, false
		}
		if i, ok = member(key, next); !ok {
			return 0, false
		}
		var done bool
		if i, done, ok = ecs.NextItem(s, i, '}'); !ok || done {
			return i, ok
		}
	}
}

// The members of a security label, as bits.
const (
	lID = 1 << iota
	lName
	lColor
	lOwner
	lDescription
	lDateAdded
)

// scanLabel scans an element of securityLabels.data and appends it to
// n.fast.labels as buildLabels writes it, and its TLP to n.tlp.
func (n *Normalizer) scanLabel(s string, i int) (int, bool) {
	var seen int
	var name, date sval
	end, ok := scanObject(s, i, func(key string, i int) (int, bool) {
		var bit int
		switch key {
		case "id":
			bit = lID
		case "name":
			bit = lName
		case "color":
			bit = lColor
		case "owner":
			bit = lOwner
		case "description":
			bit = lDescription
		case "dateAdded":
			bit = lDateAdded
		default:
			return 0, false
		}
		if seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		v, next, ok := n.fast.scalar(s, i)
		switch bit {
		case lName:
			name = v
		case lDateAdded:
			date = v
		}
		return next, ok
	})
	if !ok {
		return 0, false
	}
	if !name.null() {
		label, ok := name.str()
		if !ok {
			return 0, false // an error in the general path
		}
		if tlp, ok := tlpOf(label); ok {
			n.tlp = append(n.tlp, tlp)
		}
	}
	b, mark := openElem(n.fast.labels)
	var w jsonWriter
	b = w.date(b, `"date_added":`, date, &n.fast.dates)
	b = w.scalar(b, `"name":`, name)
	n.fast.labels = w.closeElem(b, mark)
	return end, true
}

// tlpOf returns the TLP of a label "TLP:<tlp>[:...]" as buildLabels reads it.
func tlpOf(label string) (string, bool) {
	if len(label) < 4 || label[:4] != "TLP:" {
		return "", false
	}
	tlp := label[4:]
	for j := 0; j < len(tlp); j++ {
		if tlp[j] == ':' {
			tlp = tlp[:j]
			break
		}
	}
	for _, t := range ecsTLPs {
		if tlp == t {
			return t, true
		}
	}
	return "", false
}

// The members of a tag, as bits.
const (
	tID = 1 << iota
	tName
	tTechniqueID
	tTactics
	tPlatforms
	tLastUsed
	tDescription
	tOwner
)

// scanTag scans an element of tags.data and appends it to n.fast.tags as
// buildTags writes it, and what it gives to n.techID, n.techName and
// n.osFamily.
func (n *Normalizer) scanTag(s string, i int) (int, bool) {
	var seen int
	var name, technique, lastUsed sval
	var tactics string // the data array's text, or "" for none
	end, ok := scanObject(s, i, func(key string, i int) (int, bool) {
		var bit int
		switch key {
		case "id":
			bit = tID
		case "name":
			bit = tName
		case "techniqueId":
			bit = tTechniqueID
		case "tactics":
			bit = tTactics
		case "platforms":
			bit = tPlatforms
		case "lastUsed":
			bit = tLastUsed
		case "description":
			bit = tDescription
		case "owner":
			bit = tOwner
		default:
			return 0, false
		}
		if seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		switch bit {
		case tTactics:
			start, end, next, ok := n.fast.list(s, i)
			if ok {
				tactics = s[start:end]
			}
			return next, ok
		case tPlatforms:
			start, end, next, ok := n.fast.list(s, i)
			for it := start + 1; ok && end > start; {
				var p sval
				if p, it, ok = n.fast.nextListItem(s, it); !ok || p.k == kMissing {
					break
				}
				n.osFamily = appendUnique(n.osFamily, n.renderS(p))
			}
			return next, ok
		}
		v, next, ok := n.fast.scalar(s, i)
		switch bit {
		case tName:
			name = v
		case tTechniqueID:
			technique = v
		case tLastUsed:
			lastUsed = v
		}
		return next, ok
	})
	if !ok {
		return 0, false
	}
	if !technique.null() {
		if r := n.renderS(name); r != "" {
			n.techName = append(n.techName, r)
		}
		n.techID = appendUnique(n.techID, n.renderS(technique))
	}
	b, mark := openElem(n.fast.tags)
	var w jsonWriter
	b = w.date(b, `"last_used":`, lastUsed, &n.fast.dates)
	b = w.scalar(b, `"name":`, name)
	if tactics != "" {
		had, at := w.Has, len(b)
		b, ok = n.appendCleanList(w.Key(b, `"tactics":`), tactics)
		b = w.Keep(b, ok, at, had)
	}
	if !technique.null() {
		var sec ecs.Section
		b, sec = w.Open(b, `"technique":{`)
		b = w.scalar(b, `"id":`, technique)
		b = w.Close(b, sec, "}")
	}
	n.fast.tags = w.closeElem(b, mark)
	return end, true
}

// list scans, at s[i:], null or an object {"count": <scalar>, "data":
// <null or an array of scalars>} (the form of a tag's tactics and
// platforms), and returns where the data array's text starts and ends
// (start == end for none), and the index after the value.
func (fs *fastState) list(s string, i int) (start, end, next int, ok bool) {
	if ecs.HasAt(s, i, "null") {
		return 0, 0, i + 4, true
	}
	var hasData bool
	var seen int
	next, ok = scanObject(s, i, func(key string, i int) (int, bool) {
		switch key {
		case "count":
			if seen&1 != 0 {
				return 0, false
			}
			seen |= 1
			_, next, ok := fs.scalar(s, i)
			return next, ok
		case "data":
			if seen&2 != 0 {
				return 0, false
			}
			seen |= 2
			hasData = true
			if ecs.HasAt(s, i, "null") {
				return i + 4, true
			}
			if i >= len(s) || s[i] != '[' {
				return 0, false
			}
			start = i
			j := ecs.SkipSpace(s, i+1)
			if j < len(s) && s[j] == ']' {
				end = j + 1
				return end, true
			}
			for {
				var ok bool
				if _, j, ok = fs.scalar(s, j); !ok {
					return 0, false
				}
				var done bool
				if j, done, ok = ecs.NextItem(s, j, ']'); !ok {
					return 0, false
				}
				if done {
					end = j
					return j, true
				}
			}
		}
		return 0, false
	})
	// Without data, the general path keeps the whole object: refused.
	return start, end, next, ok && hasData
}

// nextListItem returns the element of an array of scalars scanList took
// whose text starts at or after s[i:] (after '[' or a value), and the
// index after it; a missing value at the end.
func (fs *fastState) nextListItem(s string, i int) (sval, int, bool) {
	i = ecs.SkipSpace(s, i)
	if i < len(s) && s[i] == ',' {
		i = ecs.SkipSpace(s, i+1)
	}
	if i >= len(s) || s[i] == ']' {
		return sval{}, i, true
	}
	return fs.scalar(s, i)
}

// appendCleanList appends the array of scalars list cleaned, as
// ecs.AppendClean does, and reports false, appending nothing, when nothing
// is left.
func (n *Normalizer) appendCleanList(dst []byte, list string) ([]byte, bool) {
	dst, c := openItems(dst, '[')
	for i := 1; ; {
		v, next, ok := n.fast.nextListItem(list, i)
		if !ok || v.k == kMissing {
			break
		}
		i = next
		dst, ok = appendCleanScalar(c.next(dst), v)
		dst = c.keep(dst, ok)
	}
	return c.close(dst, ']')
}

// appendCleanScalar is ecs.AppendClean for a scanned scalar.
func appendCleanScalar(dst []byte, v sval) ([]byte, bool) {
	switch v.k {
	case kString:
		if v.s == "" {
			return dst, false
		}
		return ecs.AppendString(dst, v.s), true
	case kNumber:
		return ecs.AppendNumber(dst, v.s)
	case kTrue:
		return append(dst, "true"...), true
	case kFalse:
		return append(dst, "false"...), true
	}
	return dst, false
}

// renderS is render for a scanned scalar; numbers are copied.
func (n *Normalizer) renderS(v sval) string {
	switch v.k {
	case kString:
		return v.s
	case kNumber:
		return string(n.javaNumberS(v.s))
	case kTrue:
		return "true"
	case kFalse:
		return "false"
	}
	return ""
}

// javaNumberS is javaNumber for a number's text: the text as Elasticsearch
// writes it back, in n.fast.num, or empty when it does not fit a double.
func (n *Normalizer) javaNumberS(s string) []byte {
	n.fast.num, _ = ecs.AppendNumber(n.fast.num[:0], s)
	return n.fast.num
}

// fastIndicator is Indicator for a record scanIndicator takes and that
// has no errors. It reports false for any other record, which the general
// path then normalizes from the start.
func (n *Normalizer) fastIndicator(raw []byte) (vigil.Document, bool) {
	if n.fast.disabled {
		return vigil.Document{}, false
	}
	n.reset()
	rec := b2s(raw)
	if !n.scanIndicator(rec) {
		return vigil.Document{}, false
	}
	f := &n.fast.f.v
	o := indicatorOut{raw: rec}
	var ok bool

	// Dates: one that does not parse is an error, left to the general path.
	if o.modified, ok = dateS(f[fLastModified]); !ok {
		return vigil.Document{}, false
	}
	ts := o.modified
	if ts.IsZero() {
		ts = n.opts.Ingested.Truncate(time.Millisecond)
	}
	o.ts = ts.UTC()
	if n.opts.ExpirationDuration != "" {
		if n.expErr != nil || o.modified.IsZero() {
			return vigil.Document{}, false
		}
		o.deletedAt = o.modified.Add(n.expDur)
	}
	for _, d := range [...]struct {
		t *time.Time
		i int
	}{
		{&o.dateAdded, fDateAdded}, {&o.extAdded, fExtAdded}, {&o.extExpires, fExtExpires},
		{&o.extModified, fExtModified}, {&o.firstSeen, fFirstSeen}, {&o.lastFP, fLastFP}, {&o.lastSeen, fLastSeen},
	} {
		if *d.t, ok = dateS(f[d.i]); !ok {
			return vigil.Document{}, false
		}
	}

	if a := f[fAddress]; !a.null() {
		if o.address, ok = a.str(); !ok {
			return vigil.Document{}, false
		}
		if i := strings.IndexByte(o.address, '@'); i >= 0 {
			o.userName, o.userDomain = o.address[:i], o.address[i+1:]
			n.relUser = appendUnique(n.relUser, o.userName)
		}
	}
	for _, l := range [...][]string{n.grpFirst, n.grpLast, n.grpUser, n.attFirst, n.attLast, n.attUser} {
		for _, u := range l {
			n.relUser = appendUnique(n.relUser, u)
		}
	}

	o.tcType, _ = f[fType].str()
	if ip := f[fIP]; ip.present() {
		if o.ip, ok = ip.str(); !ok {
			return vigil.Document{}, false
		}
		if _, err := netip.ParseAddr(o.ip); err != nil {
			return vigil.Document{}, false
		}
		n.relIP = appendUnique(n.relIP, o.ip)
	} else if o.tcType == "Address" {
		return vigil.Document{}, false
	}
	o.isFile = strings.Contains(o.tcType, "File")
	o.isURL = strings.Contains(o.tcType, "URL")
	o.isRegistry = strings.Contains(o.tcType, "Registry Key")
	if o.tcType == "CIDR" {
		o.indType, o.indList = cidrType(n.renderS(f[fBlock])), true
	} else {
		o.indType, o.indList = n.indicatorType(o.tcType, o.ip, nil)
	}
	for _, h := range [...]struct {
		s *string
		i int
	}{{&o.md5, fMD5}, {&o.sha1, fSHA1}, {&o.sha256, fSHA256}} {
		if *h.s, ok = n.fast.lowerHash(f[h.i]); !ok {
			return vigil.Document{}, false
		}
	}
	n.relHash = appendUnique(n.relHash, o.md5)
	n.relHash = appendUnique(n.relHash, o.sha1)
	if !f[fMD5].null() { // Elastic gates the sha256 on md5
		n.relHash = appendUnique(n.relHash, o.sha256)
	}
	o.hostName = n.renderS(f[fHostName])
	n.relHosts = appendUnique(n.relHosts, o.hostName)
	n.refs = appendUnique(n.refs, n.renderS(f[fLegacyLink]))
	n.refs = appendUnique(n.refs, n.renderS(f[fWebLink]))
	if as := f[fASNumber]; as.present() {
		if o.asNumber, ok = n.asNumberS(as); !ok {
			return vigil.Document{}, false
		}
		o.hasAS = true
	}
	if c := f[fConfidence]; !c.null() {
		if c.k != kNumber {
			return vigil.Document{}, false
		}
		o.confidence, o.hasConfidence = confidenceOf(ecs.B2S(n.javaNumberS(c.s)))
	}
	if size := f[fSize]; o.isFile && size.present() {
		o.fileSize, o.hasFileSize = n.longS(size)
	}
	for _, b := range [...]struct {
		o *optBool
		i int
	}{
		{&o.active, fActive}, {&o.activeLocked, fActiveLocked}, {&o.dnsActive, fDNSActive},
		{&o.fpByUser, fFPByUser}, {&o.privateFlag, fPrivateFlag}, {&o.whoisActive, fWhoisActive},
	} {
		if v := f[b.i]; !v.null() {
			if *b.o, ok = boolS(v); !ok {
				return vigil.Document{}, false
			}
		}
	}
	for _, l := range [...]struct {
		o *optLong
		i int
	}{
		{&o.confLong, fConfidence}, {&o.fpCount, fFPCount}, {&o.taScore, fTAScore},
		{&o.taScoreFP, fTAScoreFP}, {&o.taScoreObserved, fTAScoreObserved},
	} {
		if v := f[l.i]; !v.null() {
			if l.o.v, ok = n.longS(v); !ok {
				return vigil.Document{}, false
			}
			l.o.ok = true
		}
	}
	for _, d := range [...]struct {
		o *optDouble
		i int
	}{{&o.rating, fRating}, {&o.taConfidence, fTAConfidence}, {&o.taRating, fTARating}} {
		if v := f[d.i]; !v.null() {
			if d.o.v, ok = n.doubleS(v); !ok {
				return vigil.Document{}, false
			}
			d.o.ok = true
		}
	}
	n.key = n.renderS(f[fSummary])
	n.typ = o.indType
	n.modified = o.modified

	n.writeIndicator(&o)
	doc := vigil.Document{
		Dataset: n.dataset(), View: vigil.ViewIndicators,
		Timestamp: o.ts, ExpiresAt: o.deletedAt,
	}
	if n.opts.Arena != nil {
		return n.inArena(&doc, n.fast.wbuf, true), true
	}
	// As encode: one allocation holds the Source and copies of Key and
	// Type, which may point into the record. It is a copy of n.fast.wbuf
	// with them appended, which make and copy make without zeroing it.
	src := append(append(n.fast.wbuf, n.key...), n.typ...)
	n.fast.wbuf = src
	buf := make([]byte, len(src))
	copy(buf, src)
	srcLen := len(src) - len(n.key) - len(n.typ)
	doc.Source = buf[:srcLen:srcLen]
	if n.key != "" {
		doc.Key = b2s(buf[srcLen : srcLen+len(n.key)])
	}
	if n.typ != "" {
		doc.Type = b2s(buf[srcLen+len(n.key):])
	}
	return doc, true
}

// dateS parses the date v as dateOf does; it reports false where dateOf
// records an error.
func dateS(v sval) (time.Time, bool) {
	if !v.present() {
		return time.Time{}, true
	}
	if v.k != kString {
		return time.Time{}, false
	}
	t, ok := ecs.ParseTime(v.s)
	return t.Truncate(time.Millisecond), ok
}

// lowerHash is Normalizer.lowerHash for a scanned value, lowercasing
// ASCII in fs.arena; it reports false where lowerHash records an error.
func (fs *fastState) lowerHash(v sval) (string, bool) {
	if v.null() {
		return "", true
	}
	s, ok := v.str()
	if !ok {
		return "", false
	}
	upper := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80:
			return strings.ToLower(s), true
		case c >= 'A' && c <= 'Z':
			upper = true
		}
	}
	if !upper {
		return s, true
	}
	b := fs.arena
	from := len(b)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	fs.arena = b
	return b2s(b[from:]), true
}

// asNumberS is asNumber for a scanned value that is present; it reports
// false where asNumber records an error.
func (n *Normalizer) asNumberS(v sval) (int64, bool) {
	switch v.k {
	case kNumber:
		return parseLong(ecs.B2S(n.javaNumberS(v.s)))
	case kString:
	default:
		return 0, false
	}
	b := n.tmp[:0]
	for i := 0; i < len(v.s); i++ {
		c := v.s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			c = ' '
		}
		b = append(b, c)
	}
	n.tmp = b
	return parseLong(strings.TrimFunc(b2s(b), func(r rune) bool { return r <= ' ' }))
}

// confidenceOf maps the text of a number, as Elasticsearch writes it back,
// as confidence does.
func confidenceOf(num string) (string, bool) {
	f, ok := javaParseFloat(num)
	if !ok {
		return "", false
	}
	switch {
	case f == 0:
		return "Not Specified", true
	case f > 1 && f < 40:
		return "Low", true
	case f >= 40 && f < 70:
		return "Medium", true
	case f >= 70 && f <= 100:
		return "High", true
	}
	return "None", true
}

// smallInt returns the number text s as an integer when it is digits
// without a leading zero, at most 15 of them.
func smallInt(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 15 || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	var x int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		x = x*10 + int64(c-'0')
	}
	return x, true
}

// longS is toLong for a scanned value.
func (n *Normalizer) longS(v sval) (int64, bool) {
	switch v.k {
	case kNumber:
		if x, ok := smallInt(v.s); ok {
			return x, true
		}
		return parseLong(ecs.B2S(n.javaNumberS(v.s)))
	case kString:
		return parseLong(v.s)
	}
	return 0, false
}

// doubleS is toDouble for a scanned value.
func (n *Normalizer) doubleS(v sval) (float64, bool) {
	switch v.k {
	case kNumber:
		if x, ok := smallInt(v.s); ok {
			return float64(x), true // most: exact, as ParseFloat gives it
		}
		return javaParseFloat(ecs.B2S(n.javaNumberS(v.s)))
	case kString:
		return javaParseFloat(v.s)
	}
	return 0, false
}

// boolS is toBool for a scanned value.
func boolS(v sval) (optBool, bool) {
	switch v.k {
	case kTrue:
		return optBool{true, true}, true
	case kFalse:
		return optBool{false, true}, true
	case kString:
		switch {
		case strings.EqualFold(v.s, "true"):
			return optBool{true, true}, true
		case strings.EqualFold(v.s, "false"):
			return optBool{false, true}, true
		}
	}
	return optBool{}, false
}
