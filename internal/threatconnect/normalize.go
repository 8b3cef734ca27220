package threatconnect

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
)

// DatasetIndicator is the dataset (ECS event.dataset) of ThreatConnect
// indicators, as Elastic's ti_threatconnect integration names it.
const DatasetIndicator = "ti_threatconnect.indicator"

// Constants of the ECS documents, as Elastic's ingest pipeline (package
// ti_threatconnect 2.x) writes them.
const (
	ecsVersion  = "8.11.0"
	provider    = "ThreatConnect"
	tagPreserve = "preserve_original_event"
	kindError   = "pipeline_error"
)

// defaultTags are the tags Elastic's stream adds by default.
var defaultTags = []string{"forwarded", "threatconnect-indicator"}

var (
	categoryThreat = []string{"threat"}
	typeIndicator  = []string{"indicator"}
	typeDeletion   = []string{"indicator", "deletion"}
	ecsTLPs        = []string{"WHITE", "CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"}
)

// NormalizeOptions configure a Normalizer.
type NormalizeOptions = ecs.NormalizeOptions

// Normalizer turns raw ThreatConnect v3 indicators (one element of "data"
// each, as the API returns them) into the ECS documents Elastic's
// ti_threatconnect integration (2.x) indexes, and deleted-indicator records
// into tombstones.
//
// It keeps its parser and buffers between calls, so it is not safe for
// concurrent use; use one per goroutine.
//
// Differences from Elastic, all deliberate:
//   - Host, ASN and CIDR indicators get threat.indicator.type domain-name,
//     autonomous-system and ipv4-addr/ipv6-addr (Elastic sets none), and a
//     Host gets threat.indicator.url.domain, so that they can be matched.
//   - Processing goes on after a failure: every error is reported, and the
//     rest of the record is still mapped (Elastic stops at the first
//     processor that fails without an on_failure handler).
//   - An indicator without lastModified is an error when an expiration
//     duration is configured: its expiry cannot be computed (Elastic keeps
//     it for ever).
//   - A non-numeric confidence is an error (Elastic's script fails too).
//   - event.kind of a failed record is "pipeline_error" (Elastic appends it
//     to "enrichment", making a list).
type Normalizer struct {
	opts   NormalizeOptions
	expDur time.Duration
	expErr error

	p    fastjson.Parser
	doc  ecs.Doc
	sub  ecs.Doc // an element of a sub-collection
	sub2 ecs.Doc // an element of a collection inside an element
	num  []byte  // scratch for number text
	raw  []byte  // scratch for a number's raw text
	tmp  []byte  // scratch for a renamed value
	arr  []byte  // scratch for an array being built
	arr2 []byte  // scratch for an array inside an element

	// The sub-collections, built before the document is written.
	groups, indicators, attributes, labels, tags []byte

	errs     []string
	docTags  []string
	modified time.Time // lastModified of the last record, zero if none

	// Values gathered for lists; they may point into the parser's buffer.
	relUser, relHash, relHosts, relIP []string
	grpFirst, grpLast, grpUser        []string
	attFirst, attLast, attUser        []string
	emailTo, emailFrom                []string
	osFamily, techID, techName        []string
	tlp, refs                         []string
	one                               []string
	key, typ                          string // Document.Key and Type, copied by encode

	fast fastState // Indicator's fast path, see scan.go
	ebuf []byte    // the encoded document, with an arena
}

// NewNormalizer returns a Normalizer with the given options. An invalid
// ExpirationDuration is not an error here: every record then fails with a
// message naming the value, as in Elastic.
func NewNormalizer(opts NormalizeOptions) *Normalizer {
	n := &Normalizer{opts: opts}
	if opts.ExpirationDuration != "" {
		n.expDur, _, n.expErr = ecs.ParseExpiration(opts.ExpirationDuration)
	}
	return n
}

// Modified returns the lastModified of the last indicator normalized (the
// deletion time of the last deleted record), or the zero time when it had
// none or it did not parse.
func (n *Normalizer) Modified() time.Time { return n.modified }

// b2s views b as a string without copying; the string must not outlive the
// parser's current record.
func b2s(b []byte) string { return ecs.B2S(b) }

func (n *Normalizer) errorf(format string, args ...any) {
	n.errs = append(n.errs, fmt.Sprintf(format, args...))
}

// reset prepares the Normalizer for a record.
func (n *Normalizer) reset() {
	n.doc.Reset()
	n.errs = n.errs[:0]
	n.docTags = append(n.docTags[:0], n.opts.Tags...)
	n.modified = time.Time{}
	n.key, n.typ = "", ""
	for _, l := range []*[]string{&n.relUser, &n.relHash, &n.relHosts, &n.relIP, &n.grpFirst, &n.grpLast, &n.grpUser,
		&n.attFirst, &n.attLast, &n.attUser, &n.emailTo, &n.emailFrom, &n.osFamily, &n.techID, &n.techName, &n.tlp, &n.refs} {
		*l = (*l)[:0]
	}
	n.groups, n.indicators, n.attributes, n.labels, n.tags = n.groups[:0], n.indicators[:0], n.attributes[:0], n.labels[:0], n.tags[:0]
}

// parse parses raw and returns its object, or nil when raw is not a JSON
// object, having recorded the error.
func (n *Normalizer) parse(raw []byte) *fastjson.Object {
	if len(raw) == 0 {
		n.errorf("record is empty")
		return nil
	}
	v, err := n.p.ParseBytes(raw)
	if err != nil {
		msg, _, _ := strings.Cut(err.Error(), "; unparsed tail")
		msg, _, _ = strings.Cut(msg, "; unexpected tail")
		n.errorf("record is not valid JSON: %s", strings.TrimPrefix(msg, "cannot parse JSON: "))
		return nil
	}
	o, err := v.Object()
	if err != nil {
		n.errorf("record is not a JSON object but %s", v.Type())
		return nil
	}
	return o
}

// finalTags returns the tags, with preserve_original_event added when the
// record failed, as Elastic's failure handlers add it.
func (n *Normalizer) finalTags() []string {
	if len(n.errs) > 0 {
		n.docTags = appendUnique(n.docTags, tagPreserve)
	}
	return n.docTags
}

// encode encodes the document into doc.Source, sets doc.Error, Key and Type
// and returns doc.
func (n *Normalizer) encode(doc *vigil.Document) vigil.Document {
	if len(n.errs) > 0 {
		doc.Error = strings.Join(n.errs, "; ")
	}
	if n.opts.Arena != nil {
		n.ebuf = n.doc.AppendJSON(n.ebuf[:0])
		return n.inArena(doc, n.ebuf, false)
	}
	// One allocation holds the Source and copies of Key and Type, which
	// may still point into the parser's buffer. The Source's capacity ends
	// before them, so appending to it cannot overwrite them.
	extra := len(n.key) + len(n.typ)
	buf := n.doc.AppendJSON(make([]byte, 0, n.doc.SizeHint()+extra))
	if cap(buf)-len(buf) < extra {
		buf = append(make([]byte, 0, len(buf)+extra), buf...)
	}
	srcLen := len(buf)
	doc.Source = buf[:srcLen:srcLen]
	doc.Key, doc.Type = "", ""
	if n.key != "" {
		start := len(buf)
		buf = append(buf, n.key...)
		doc.Key = b2s(buf[start:])
	}
	if n.typ != "" {
		start := len(buf)
		buf = append(buf, n.typ...)
		doc.Type = b2s(buf[start:])
	}
	return *doc
}

// inArena sets doc.Source to the document in the arena: a copy of src, or,
// inPlace, the one src ends after Open's page (ecs.Arena.OpenOr, Close).
// It sets doc.Key and doc.Type to copies of n.key and n.typ there, and
// returns doc.
func (n *Normalizer) inArena(doc *vigil.Document, src []byte, inPlace bool) vigil.Document {
	a := n.opts.Arena
	doc.Source = a.Place(src, inPlace)
	doc.Key, doc.Type = a.String(n.key), a.String(n.typ)
	return *doc
}

// appendUnique appends s unless it is empty or already in list, as
// Elastic's append processor with allow_duplicates false does (empty values
// are removed by its clean-up at the end).
func appendUnique(list []string, s string) []string {
	if s == "" {
		return list
	}
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// ---- Values ------------------------------------------------------------------

// isNull reports whether v is missing or JSON null, which Elastic treats
// alike.
func isNull(v *fastjson.Value) bool { return ecs.IsNull(v) }

// present reports whether v is neither missing, null nor "", the condition
// of most of Elastic's processors.
func present(v *fastjson.Value) bool {
	if isNull(v) {
		return false
	}
	if v.Type() == fastjson.TypeString {
		b, _ := v.StringBytes()
		return len(b) > 0
	}
	return true
}

// str returns v's string, if v is a string.
func str(v *fastjson.Value) (string, bool) { return ecs.Str(v) }

func object(v *fastjson.Value) *fastjson.Object { return ecs.Object(v) }

func array(v *fastjson.Value) ([]*fastjson.Value, bool) { return ecs.Array(v) }

// javaNumber returns the number v as Elasticsearch writes back a number it
// parsed, in n.num. The string is valid until the next call.
func (n *Normalizer) javaNumber(v *fastjson.Value) string {
	n.raw = v.MarshalTo(n.raw[:0])
	n.num, _ = ecs.AppendNumber(n.num[:0], b2s(n.raw))
	return b2s(n.num)
}

// render returns v as a Mustache template in an Elastic pipeline renders
// it: strings as they are, numbers and booleans as Java prints them, and
// nothing for null, objects and arrays. Numbers are copied, so the string
// stays valid while the record is.
func (n *Normalizer) render(v *fastjson.Value) string {
	if v == nil {
		return ""
	}
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := str(v)
		return s
	case fastjson.TypeNumber:
		return strings.Clone(n.javaNumber(v))
	case fastjson.TypeTrue:
		return "true"
	case fastjson.TypeFalse:
		return "false"
	}
	return ""
}

// display returns v for an error message.
func (n *Normalizer) display(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := str(v)
		return s
	case fastjson.TypeNull:
		return "null"
	case fastjson.TypeObject, fastjson.TypeArray:
		return truncate(string(v.MarshalTo(nil)), 100)
	}
	return n.render(v)
}

// parseDate parses v as Elastic's date processor with format ISO8601 does,
// to the millisecond.
func parseDate(v *fastjson.Value) (time.Time, bool) {
	if s, ok := str(v); ok {
		if t, ok := ecs.ParseTime(s); ok {
			return t.Truncate(time.Millisecond), true
		}
	}
	return time.Time{}, false
}

// date parses the date field named name; a failure is recorded as an error.
func (n *Normalizer) date(name string, v *fastjson.Value) (time.Time, bool) {
	if t, ok := parseDate(v); ok {
		return t, true
	}
	n.errorf("%s: unable to parse date [%s]", name, n.display(v))
	return time.Time{}, false
}

// javaParseFloat parses s as Java's Double.parseDouble does, for the finite
// values JSON can carry.
func javaParseFloat(s string) (float64, bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	if k := len(s) - 1; k > 0 {
		switch s[k] {
		case 'f', 'F', 'd', 'D':
			s = s[:k]
		}
	}
	if s == "" || strings.IndexByte(s, '_') >= 0 {
		return 0, false
	}
	if c := s[len(s)-1]; c != '.' && (c < '0' || c > '9') && !strings.ContainsAny(s, "pP") {
		return 0, false // "inf", "nan" and the like
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// toDouble converts v as Elastic's convert processor does to "double".
func (n *Normalizer) toDouble(v *fastjson.Value) (float64, bool) {
	switch v.Type() {
	case fastjson.TypeNumber:
		return javaParseFloat(n.javaNumber(v))
	case fastjson.TypeString:
		s, _ := str(v)
		return javaParseFloat(s)
	}
	return 0, false
}

// toLong converts v as Elastic's convert processor does to "long".
func (n *Normalizer) toLong(v *fastjson.Value) (int64, bool) {
	var s string
	switch v.Type() {
	case fastjson.TypeNumber:
		s = n.javaNumber(v)
	case fastjson.TypeString:
		s, _ = str(v)
	default:
		return 0, false
	}
	return parseLong(s)
}

func parseLong(s string) (int64, bool) { return ecs.ParseLong(s) }

// toBool converts v as Elastic's convert processor does to "boolean".
func toBool(v *fastjson.Value) (bool, bool) { return ecs.ToBool(v) }

// toIP converts v as Elastic's convert processor does to "ip".
func toIP(v *fastjson.Value) (string, bool) {
	s, ok := str(v)
	if !ok {
		return "", false
	}
	if _, err := netip.ParseAddr(s); err != nil {
		return "", false
	}
	return s, true
}

// putString writes v at path of d converted to a string, as Elastic's
// convert processor does: numbers as Java prints them. Objects and arrays
// are kept as they are.
func (n *Normalizer) putString(d *ecs.Doc, path string, v *fastjson.Value) {
	if isNull(v) {
		return
	}
	switch v.Type() {
	case fastjson.TypeNumber:
		d.Str(path, n.javaNumber(v))
	case fastjson.TypeTrue:
		d.Str(path, "true")
	case fastjson.TypeFalse:
		d.Str(path, "false")
	default:
		d.Value(path, v)
	}
}

// subDate writes the date v at path of an element; a failure drops it
// silently, as the element processors' failure handlers do.
func subDate(d *ecs.Doc, path string, v *fastjson.Value) {
	if t, ok := parseDate(v); ok {
		d.Time(path, t)
	}
}

// lowerHash returns a hash value lowercased (2.x), or records an error.
func (n *Normalizer) lowerHash(name string, v *fastjson.Value) string {
	if isNull(v) {
		return ""
	}
	s, ok := str(v)
	if !ok {
		n.errorf("%s: [%s] is not a string, cannot lowercase it", name, n.display(v))
		return ""
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}

// ---- Indicators -----------------------------------------------------------------

// fields are the members of an indicator the pipeline handles by name.
// Members it does not name are dropped, as Elastic removes what is left of
// the record.
type fields struct {
	active, activeLocked, address, asNumber, artifacts, cases, groups, assocIndicators *fastjson.Value
	attributes, block, confidence, customAssoc, dateAdded, description, dnsActive      *fastjson.Value
	dnsResolution, enrichment, extAdded, extExpires, extModified, fpByUser, fpCount    *fastjson.Value
	fileActions, fileOccurrences, firstSeen, genericValues, geoLocation, hashtag       *fastjson.Value
	hostName, id, investigationLinks, ip, keyName, lastFP, lastModified, lastSeen      *fastjson.Value
	legacyLink, md5, mutex, observations, ownerID, ownerName, privateFlag, rating      *fastjson.Value
	securityLabels, sha1, sha256, size, source, subject, summary, tags, text           *fastjson.Value
	taConfidence, taRating, taScore, taScoreFP, taScoreObserved, trackedUsers, typ     *fastjson.Value
	userAgent, valueName, valueType, webLink, whoIs, whoisActive                       *fastjson.Value
}

func (f *fields) slot(key string) **fastjson.Value {
	switch key {
	case "active":
		return &f.active
	case "activeLocked":
		return &f.activeLocked
	case "address":
		return &f.address
	case "AS Number":
		return &f.asNumber
	case "associatedArtifacts":
		return &f.artifacts
	case "associatedCases":
		return &f.cases
	case "associatedGroups":
		return &f.groups
	case "associatedIndicators":
		return &f.assocIndicators
	case "attributes":
		return &f.attributes
	case "Block":
		return &f.block
	case "confidence":
		return &f.confidence
	case "customAssociations":
		return &f.customAssoc
	case "dateAdded":
		return &f.dateAdded
	case "description":
		return &f.description
	case "dnsActive":
		return &f.dnsActive
	case "dnsResolution":
		return &f.dnsResolution
	case "enrichment":
		return &f.enrichment
	case "externalDateAdded":
		return &f.extAdded
	case "externalDateExpires":
		return &f.extExpires
	case "externalLastModified":
		return &f.extModified
	case "falsePositiveReportedByUser":
		return &f.fpByUser
	case "falsePositives":
		return &f.fpCount
	case "fileActions":
		return &f.fileActions
	case "fileOccurrences":
		return &f.fileOccurrences
	case "firstSeen":
		return &f.firstSeen
	case "genericCustomIndicatorValues":
		return &f.genericValues
	case "geoLocation":
		return &f.geoLocation
	case "Hashtag":
		return &f.hashtag
	case "hostName":
		return &f.hostName
	case "id":
		return &f.id
	case "investigationLinks":
		return &f.investigationLinks
	case "ip":
		return &f.ip
	case "Key Name":
		return &f.keyName
	case "lastFalsePositive":
		return &f.lastFP
	case "lastModified":
		return &f.lastModified
	case "lastSeen":
		return &f.lastSeen
	case "legacyLink":
		return &f.legacyLink
	case "md5":
		return &f.md5
	case "Mutex":
		return &f.mutex
	case "observations":
		return &f.observations
	case "ownerId":
		return &f.ownerID
	case "ownerName":
		return &f.ownerName
	case "privateFlag":
		return &f.privateFlag
	case "rating":
		return &f.rating
	case "securityLabels":
		return &f.securityLabels
	case "sha1":
		return &f.sha1
	case "sha256":
		return &f.sha256
	case "size":
		return &f.size
	case "source":
		return &f.source
	case "Subject":
		return &f.subject
	case "summary":
		return &f.summary
	case "tags":
		return &f.tags
	case "text":
		return &f.text
	case "threatAssessConfidence":
		return &f.taConfidence
	case "threatAssessRating":
		return &f.taRating
	case "threatAssessScore":
		return &f.taScore
	case "threatAssessScoreFalsePositive":
		return &f.taScoreFP
	case "threatAssessScoreObserved":
		return &f.taScoreObserved
	case "trackedUsers":
		return &f.trackedUsers
	case "type":
		return &f.typ
	case "User Agent String":
		return &f.userAgent
	case "Value Name":
		return &f.valueName
	case "Value Type":
		return &f.valueType
	case "webLink":
		return &f.webLink
	case "whoIs":
		return &f.whoIs
	case "whoisActive":
		return &f.whoisActive
	}
	return nil
}

// Indicator normalizes one indicator (an element of "data" of
// GET /v3/indicators).
//
// A record of the form the API serves, without errors, takes a fast path
// (fastIndicator, in scan.go) that gives the same Document. Otherwise it
// first works out every value (recording every error), then writes the
// fields in sorted order, so that the document needs no sorting when it is
// encoded.
func (n *Normalizer) Indicator(raw []byte) vigil.Document {
	if doc, ok := n.fastIndicator(raw); ok {
		return doc
	}
	doc := vigil.Document{Dataset: n.dataset(), View: vigil.ViewIndicators}
	n.reset()
	o := n.parse(raw)
	var f fields
	if o != nil {
		o.Visit(func(k []byte, v *fastjson.Value) {
			if s := f.slot(b2s(k)); s != nil && *s == nil {
				*s = v
			}
		})
	}

	// Dates. A date that does not parse is an error.
	modified := n.dateOf("lastModified", f.lastModified)
	n.modified = modified
	ts := modified
	if ts.IsZero() {
		ts = n.opts.Ingested.Truncate(time.Millisecond)
	}
	doc.Timestamp = ts.UTC()
	var deletedAt time.Time
	if o != nil && n.opts.ExpirationDuration != "" {
		switch {
		case n.expErr != nil:
			n.errorf("ioc_expiration_duration: %v", n.expErr)
		case !modified.IsZero():
			deletedAt = modified.Add(n.expDur)
		case !present(f.lastModified):
			n.errorf("lastModified is missing: the indicator's expiry (lastModified + %s) cannot be computed", n.opts.ExpirationDuration)
		}
	}
	doc.ExpiresAt = deletedAt
	dateAdded := n.dateOf("dateAdded", f.dateAdded)
	extAdded := n.dateOf("externalDateAdded", f.extAdded)
	extExpires := n.dateOf("externalDateExpires", f.extExpires)
	extModified := n.dateOf("externalLastModified", f.extModified)
	firstSeen := n.dateOf("firstSeen", f.firstSeen)
	lastFP := n.dateOf("lastFalsePositive", f.lastFP)
	lastSeen := n.dateOf("lastSeen", f.lastSeen)

	// The address: user.name and user.domain.
	var userName, userDomain, address string
	if !isNull(f.address) {
		if s, ok := str(f.address); ok {
			address = s
			if i := strings.IndexByte(s, '@'); i >= 0 {
				userName, userDomain = s[:i], s[i+1:]
				n.relUser = appendUnique(n.relUser, userName)
			}
		} else {
			n.errorf("address: [%s] is not a string", n.display(f.address))
		}
	}

	// The sub-collections, which also feed related.user, email.*, os.family
	// and threat.technique.*.
	n.buildGroups(f.groups)
	n.buildIndicators(f.assocIndicators)
	n.buildAttributes(f.attributes)
	n.buildLabels(f.securityLabels)
	n.buildTags(f.tags)
	for _, l := range [][]string{n.grpFirst, n.grpLast, n.grpUser, n.attFirst, n.attLast, n.attUser} {
		for _, u := range l {
			n.relUser = appendUnique(n.relUser, u)
		}
	}

	// Type, value fields and hashes.
	tcType, _ := str(f.typ)
	var ip string
	if present(f.ip) {
		var ok bool
		if ip, ok = toIP(f.ip); ok {
			n.relIP = appendUnique(n.relIP, ip)
		} else {
			n.errorf("ip: '%s' is not an IP string literal", n.display(f.ip))
		}
	} else if tcType == "Address" {
		n.errorf("ip: an Address indicator has no ip")
	}
	isFile := strings.Contains(tcType, "File")
	isURL := strings.Contains(tcType, "URL")
	isRegistry := strings.Contains(tcType, "Registry Key")
	indType, indList := n.indicatorType(tcType, ip, f.block)
	md5 := n.lowerHash("md5", f.md5)
	sha1 := n.lowerHash("sha1", f.sha1)
	sha256 := n.lowerHash("sha256", f.sha256)
	n.relHash = appendUnique(n.relHash, md5)
	n.relHash = appendUnique(n.relHash, sha1)
	if !isNull(f.md5) { // Elastic gates the sha256 on md5
		n.relHash = appendUnique(n.relHash, sha256)
	}
	hostName := n.render(f.hostName)
	n.relHosts = appendUnique(n.relHosts, hostName)
	n.refs = appendUnique(n.refs, n.render(f.legacyLink))
	n.refs = appendUnique(n.refs, n.render(f.webLink))
	var asNumber int64
	var hasAS bool
	if present(f.asNumber) {
		asNumber, hasAS = n.asNumber(f.asNumber)
	}
	confidence, hasConfidence := n.confidence(f.confidence)
	var fileSize int64
	var hasFileSize bool
	if isFile && present(f.size) {
		fileSize, hasFileSize = n.toLong(f.size)
	}
	active := n.boolOf("active", f.active)
	activeLocked := n.boolOf("activeLocked", f.activeLocked)
	dnsActive := n.boolOf("dnsActive", f.dnsActive)
	fpByUser := n.boolOf("falsePositiveReportedByUser", f.fpByUser)
	privateFlag := n.boolOf("privateFlag", f.privateFlag)
	whoisActive := n.boolOf("whoisActive", f.whoisActive)
	confLong := n.longOf("confidence", f.confidence)
	fpCount := n.longOf("falsePositives", f.fpCount)
	taScore := n.longOf("threatAssessScore", f.taScore)
	taScoreFP := n.longOf("threatAssessScoreFalsePositive", f.taScoreFP)
	taScoreObserved := n.longOf("threatAssessScoreObserved", f.taScoreObserved)
	rating := n.doubleOf("rating", f.rating)
	taConfidence := n.doubleOf("threatAssessConfidence", f.taConfidence)
	taRating := n.doubleOf("threatAssessRating", f.taRating)
	n.key = n.render(f.summary)
	n.typ = indType

	// Write the fields, in sorted order.
	d := &n.doc
	d.Time("@timestamp", doc.Timestamp)
	d.Str("ecs.version", ecsVersion)
	d.Strs("email.from.address", n.emailFrom)
	n.copy("email.subject", f.subject)
	d.Strs("email.to.address", n.emailTo)
	if len(n.errs) > 0 {
		d.Strs("error.message", n.errs)
	}
	d.Strs("event.category", categoryThreat)
	d.Str("event.dataset", n.opts.Dataset)
	n.copy("event.id", f.summary)
	if !n.opts.Ingested.IsZero() {
		d.TimeLayout("event.ingested", n.opts.Ingested, ecs.TimeLayoutSeconds)
	}
	if len(n.errs) > 0 {
		d.Str("event.kind", kindError)
	} else {
		d.Str("event.kind", "enrichment")
	}
	d.Str("event.original", b2s(raw))
	d.Strs("event.type", typeIndicator)
	n.copy("observer.hostname", f.hostName)
	d.Strs("os.family", n.osFamily)
	d.Strs("related.hash", n.relHash)
	d.Strs("related.hosts", n.relHosts)
	d.Strs("related.ip", n.relIP)
	d.Strs("related.user", n.relUser)
	d.Strs("tags", n.finalTags())

	if hasAS {
		d.Int("threat.indicator.as.number", asNumber)
	}
	if hasConfidence {
		d.Str("threat.indicator.confidence", confidence)
	}
	n.copy("threat.indicator.description", f.description)
	d.Str("threat.indicator.email.address", address)
	if isFile {
		d.Str("threat.indicator.file.hash.md5", md5)
		d.Str("threat.indicator.file.hash.sha1", sha1)
		d.Str("threat.indicator.file.hash.sha256", sha256)
		if hasFileSize {
			d.Int("threat.indicator.file.size", fileSize)
		}
	}
	d.Time("threat.indicator.first_seen", firstSeen)
	if tcType == "Address" {
		d.Str("threat.indicator.ip", ip)
	}
	d.Time("threat.indicator.last_seen", lastSeen)
	d.Strs("threat.indicator.marking.tlp", n.tlp)
	d.Time("threat.indicator.modified_at", extModified)
	d.Str("threat.indicator.provider", provider)
	d.Strs("threat.indicator.reference", n.refs)
	if isRegistry {
		n.copy("threat.indicator.registry.data.type", f.valueType)
		n.copy("threat.indicator.registry.path", f.keyName)
		n.copy("threat.indicator.registry.value", f.valueName)
	}
	if indType != "" {
		if indList {
			n.one = append(n.one[:0], indType)
			d.Strs("threat.indicator.type", n.one)
		} else {
			d.Str("threat.indicator.type", indType)
		}
	}
	if tcType == "Host" {
		d.Str("threat.indicator.url.domain", hostName)
	}
	if isURL {
		n.copy("threat.indicator.url.original", f.text)
	}
	d.Strs("threat.technique.id", n.techID)
	d.Strs("threat.technique.name", n.techName)

	const p = "threat_connect.indicator."
	activeLocked.put(d, p+"active.locked")
	active.put(d, p+"active.value")
	n.put(p+"address", f.address)
	n.put(p+"as_number", f.asNumber)
	n.put(p+"associated_artifacts", f.artifacts)
	n.put(p+"associated_cases", f.cases)
	d.Raw(p+"associated_groups.data", n.groups)
	d.Raw(p+"associated_indicators.data", n.indicators)
	d.Raw(p+"attributes.data", n.attributes)
	n.put(p+"block", f.block)
	confLong.put(d, p+"confidence")
	n.put(p+"custom_associations", f.customAssoc)
	d.Time(p+"date_added", dateAdded)
	d.Time(p+"deleted_at", deletedAt)
	n.put(p+"description", f.description)
	dnsActive.put(d, p+"dns_active")
	n.put(p+"dns_resolution", f.dnsResolution)
	n.put(p+"enrichment", f.enrichment)
	d.Str(p+"expiration_duration", n.opts.ExpirationDuration)
	d.Time(p+"external.date.added", extAdded)
	d.Time(p+"external.date.expires", extExpires)
	d.Time(p+"external_last.modified", extModified)
	fpByUser.put(d, p+"false_positive_reported_by_user")
	fpCount.put(d, p+"false_positives")
	n.put(p+"file_actions", f.fileActions)
	n.put(p+"file_occurrences", f.fileOccurrences)
	d.Time(p+"first_seen", firstSeen)
	n.put(p+"generic_custom_indicator_values", f.genericValues)
	n.put(p+"geo_location", f.geoLocation)
	n.put(p+"hashtag", f.hashtag)
	n.put(p+"host_name", f.hostName)
	n.putString(d, p+"id", f.id)
	n.put(p+"investigation_links", f.investigationLinks)
	d.Str(p+"ip", ip)
	n.put(p+"key_name", f.keyName)
	d.Time(p+"last_false_positive", lastFP)
	d.Time(p+"last_modified", modified)
	d.Time(p+"last_seen", lastSeen)
	n.put(p+"legacy_link", f.legacyLink)
	d.Str(p+"md5", md5)
	n.put(p+"mutex", f.mutex)
	n.put(p+"observations", f.observations)
	n.putString(d, p+"owner.id", f.ownerID)
	n.put(p+"owner.name", f.ownerName)
	privateFlag.put(d, p+"private_flag")
	rating.put(d, p+"rating")
	d.Raw(p+"security_labels.data", n.labels)
	d.Str(p+"sha1", sha1)
	d.Str(p+"sha256", sha256)
	n.putString(d, p+"size", f.size)
	n.put(p+"source", f.source)
	n.put(p+"subject", f.subject)
	n.put(p+"summary", f.summary)
	d.Raw(p+"tags.data", n.tags)
	n.put(p+"text", f.text)
	taConfidence.put(d, p+"threat_assess.confidence")
	taRating.put(d, p+"threat_assess.rating")
	taScoreFP.put(d, p+"threat_assess.score.false_positive")
	taScoreObserved.put(d, p+"threat_assess.score.observed")
	taScore.put(d, p+"threat_assess.score.value")
	n.put(p+"tracked_users", f.trackedUsers)
	n.put(p+"type", f.typ)
	n.put(p+"user_agent_string", f.userAgent)
	n.put(p+"value.name", f.valueName)
	n.put(p+"value.type", f.valueType)
	n.put(p+"web_link", f.webLink)
	n.put(p+"who_is", f.whoIs)
	whoisActive.put(d, p+"whois_active")

	d.Str("user.domain", userDomain)
	d.Str("user.email", address)
	d.Str("user.name", userName)
	n.copy("user_agent.original", f.userAgent)
	return n.encode(&doc)
}

// optBool, optLong and optDouble are converted values, set when ok.
type (
	optBool struct {
		v, ok bool
	}
	optLong struct {
		v  int64
		ok bool
	}
	optDouble struct {
		v  float64
		ok bool
	}
)

func (o optBool) put(d *ecs.Doc, path string) {
	if o.ok {
		d.Bool(path, o.v)
	}
}

func (o optLong) put(d *ecs.Doc, path string) {
	if o.ok {
		d.Int(path, o.v)
	}
}

func (o optDouble) put(d *ecs.Doc, path string) {
	if o.ok {
		d.Float(path, o.v)
	}
}

// boolOf converts v as Elastic's convert processor does to "boolean"; a
// failure is an error named name.
func (n *Normalizer) boolOf(name string, v *fastjson.Value) optBool {
	if isNull(v) {
		return optBool{}
	}
	b, ok := toBool(v)
	if !ok {
		n.errorf("%s: [%s] is not a boolean value, cannot convert to boolean", name, n.display(v))
	}
	return optBool{b, ok}
}

// longOf converts v to a long; a failure is an error named name.
func (n *Normalizer) longOf(name string, v *fastjson.Value) optLong {
	if isNull(v) {
		return optLong{}
	}
	x, ok := n.toLong(v)
	if !ok {
		n.errorf("%s: unable to convert [%s] to long", name, n.display(v))
	}
	return optLong{x, ok}
}

// doubleOf converts v to a double; a failure is an error named name.
func (n *Normalizer) doubleOf(name string, v *fastjson.Value) optDouble {
	if isNull(v) {
		return optDouble{}
	}
	f, ok := n.toDouble(v)
	if !ok {
		n.errorf("%s: unable to convert [%s] to double", name, n.display(v))
	}
	return optDouble{f, ok}
}

// dateOf parses the date field named name, which may be missing or empty;
// a failure is an error.
func (n *Normalizer) dateOf(name string, v *fastjson.Value) time.Time {
	if !present(v) {
		return time.Time{}
	}
	t, _ := n.date(name, v)
	return t
}

func (n *Normalizer) dataset() string {
	if n.opts.Dataset != "" {
		return n.opts.Dataset
	}
	return DatasetIndicator
}

// put writes v at path of the document as Elastic keeps a copied or renamed
// value: nulls and empty values are dropped, numbers are written as
// Elasticsearch writes them back.
func (n *Normalizer) put(path string, v *fastjson.Value) { n.doc.Value(path, v) }

// copy writes v at path as Elastic's set processor with copy_from and
// ignore_empty_value does: like put, for a value that is present.
func (n *Normalizer) copy(path string, v *fastjson.Value) {
	if present(v) {
		n.doc.Value(path, v)
	}
}

// indicatorType returns threat.indicator.type and whether Elastic writes it
// as a list. Elastic's rules come first; vigil adds Host, ASN and CIDR.
func (n *Normalizer) indicatorType(tcType, ip string, block *fastjson.Value) (string, bool) {
	switch {
	case strings.Contains(tcType, "File"):
		return "file", true
	case strings.Contains(tcType, "URL"):
		return "url", true
	case strings.Contains(tcType, "EmailAddress"):
		return "email-addr", true
	case strings.Contains(tcType, "Mutex"):
		return "mutex", true
	case strings.Contains(tcType, "Registry Key"):
		return "windows-registry-key", true
	case tcType == "Address":
		switch {
		case strings.IndexByte(ip, '.') >= 0:
			return "ipv4-addr", false
		case strings.IndexByte(ip, ':') >= 0:
			return "ipv6-addr", false
		}
		return "", false
	case tcType == "Host":
		return "domain-name", true
	case tcType == "ASN":
		return "autonomous-system", true
	case tcType == "CIDR":
		return cidrType(n.render(block)), true
	}
	return "", false
}

// cidrType returns the ECS type of a CIDR block: the IP version of its
// prefix, or of what it looks like when it does not parse.
func cidrType(block string) string {
	if p, err := netip.ParsePrefix(block); err == nil {
		if p.Addr().Is4() {
			return "ipv4-addr"
		}
		return "ipv6-addr"
	}
	switch {
	case strings.IndexByte(block, ':') >= 0:
		return "ipv6-addr"
	case strings.IndexByte(block, '.') >= 0:
		return "ipv4-addr"
	}
	return ""
}

// asNumber reads "AS Number" as Elastic does: letters become spaces, the
// rest is trimmed and converted to a long.
func (n *Normalizer) asNumber(v *fastjson.Value) (int64, bool) {
	s, ok := str(v)
	if !ok {
		if v.Type() == fastjson.TypeNumber {
			if x, ok := n.toLong(v); ok {
				return x, true
			}
		}
		n.errorf("AS Number: [%s] is not a string", n.display(v))
		return 0, false
	}
	var b []byte
	b = n.tmp[:0]
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			c = ' '
		}
		b = append(b, c)
	}
	n.tmp = b
	t := strings.TrimFunc(b2s(b), func(r rune) bool { return r <= ' ' })
	if x, ok := parseLong(t); ok {
		return x, true
	}
	n.errorf("AS Number: unable to convert [%s] to long", t)
	return 0, false
}

// confidence maps confidence to threat.indicator.confidence as Elastic's
// script does: 0 Not Specified, over 1 and under 40 Low, 40 to under 70
// Medium, 70 to 100 High, anything else (1 included) None.
func (n *Normalizer) confidence(v *fastjson.Value) (string, bool) {
	if isNull(v) {
		return "", false
	}
	if v.Type() != fastjson.TypeNumber {
		n.errorf("confidence: [%s] is not a number, cannot map it to threat.indicator.confidence", n.display(v))
		return "", false
	}
	return confidenceOf(n.javaNumber(v))
}

// collection returns the data array of a {"data": [...]} wrapper. A
// missing, null or empty wrapper gives nothing; data that is not an array
// is an error.
func (n *Normalizer) collection(name string, v *fastjson.Value) []*fastjson.Value {
	o := object(v)
	if o == nil {
		return nil
	}
	data := o.Get("data")
	if isNull(data) {
		return nil
	}
	a, ok := array(data)
	if !ok {
		n.errorf("%s.data: [%s] is not an array", name, n.display(data))
	}
	return a
}

// buildArray encodes the elements of a into dst, each object element
// rewritten by elem into n.sub; other elements are kept cleaned. Empty
// elements are left out; nothing is written when nothing is left.
func (n *Normalizer) buildArray(dst []byte, a []*fastjson.Value, elem func(i int, sub *ecs.Doc, o *fastjson.Object)) []byte {
	return n.buildArrayIn(&n.sub, dst, a, elem)
}

// buildArrayIn is buildArray with sub as the scratch document, for arrays
// nested inside an element that n.sub is building.
func (n *Normalizer) buildArrayIn(sub *ecs.Doc, dst []byte, a []*fastjson.Value, elem func(i int, sub *ecs.Doc, o *fastjson.Object)) []byte {
	dst, c := openItems(dst, '[')
	for i, e := range a {
		dst = c.next(dst)
		if o := object(e); o != nil {
			sub.Reset()
			elem(i, sub, o)
			if sub.Len() == 0 {
				dst = c.keep(dst, false)
				continue
			}
			dst = c.keep(sub.AppendJSON(dst), true)
			continue
		}
		var ok bool
		dst, ok = ecs.AppendClean(dst, e)
		dst = c.keep(dst, ok)
	}
	dst, _ = c.close(dst, ']')
	return dst
}

// createdBy writes an element's createdBy as created_by, collecting the
// names for related.user.
func (n *Normalizer) createdBy(sub *ecs.Doc, v *fastjson.Value, first, last, user *[]string) {
	o := object(v)
	if o == nil {
		sub.Value("createdBy", v)
		return
	}
	o.Visit(func(k []byte, v *fastjson.Value) {
		switch key := b2s(k); key {
		case "firstName":
			sub.Value("created_by.first_name", v)
			*first = appendUnique(*first, n.render(v))
		case "lastName":
			sub.Value("created_by.last_name", v)
			*last = appendUnique(*last, n.render(v))
		case "userName":
			sub.Value("created_by.user_name", v)
			*user = appendUnique(*user, n.render(v))
		case "id":
			if !isNull(v) {
				n.putString(sub, "created_by.id", v)
			}
		case "owner":
			sub.Value("created_by.owner", v)
		case "pseudonym":
			sub.Value("created_by.pseudonym", v)
		default:
			sub.Value(sub.Join("createdBy", key), v)
		}
	})
}

// elemBool converts an element's boolean in place; a failure drops it and
// is an error.
func (n *Normalizer) elemBool(sub *ecs.Doc, coll string, i int, key, path string, v *fastjson.Value) {
	if isNull(v) {
		return
	}
	if b, ok := toBool(v); ok {
		sub.Bool(path, b)
		return
	}
	n.errorf("%s.data[%d].%s: [%s] is not a boolean value, cannot convert to boolean", coll, i, key, n.display(v))
}

// buildGroups builds associated_groups.data.
func (n *Normalizer) buildGroups(v *fastjson.Value) {
	a := n.collection("associatedGroups", v)
	if len(a) == 0 {
		return
	}
	n.groups = n.buildArray(n.groups[:0], a, func(i int, sub *ecs.Doc, o *fastjson.Object) {
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch key := b2s(k); key {
			case "createdBy":
				n.createdBy(sub, v, &n.grpFirst, &n.grpLast, &n.grpUser)
			case "assignments":
				n.assignments(sub, v)
			case "attributes":
				n.groupAttributes(sub, v)
			case "to":
				n.emailTo = appendUnique(n.emailTo, n.render(v))
			case "from":
				n.emailFrom = appendUnique(n.emailFrom, n.render(v))
			case "userName":
				// Elastic removes it.
			case "dateAdded":
				subDate(sub, "date_added", v)
			case "documentDateAdded":
				subDate(sub, "document.date_added", v)
			case "documentType":
				sub.Value("document.type", v)
			case "downVoteCount":
				sub.Value("down_vote_count", v)
			case "dueDate":
				subDate(sub, "due_date", v)
			case "emailDate":
				subDate(sub, "email_date", v)
			case "escalationDate":
				subDate(sub, "escalation_date", v)
			case "eventDate":
				subDate(sub, "event_date", v)
			case "externalDateAdded":
				subDate(sub, "external.date.added", v)
			case "externalDateExpires":
				subDate(sub, "external.date.expires", v)
			case "externalLastModified":
				subDate(sub, "external.last_modified", v)
			case "fileName":
				sub.Value("file.name", v)
			case "fileSize":
				if !isNull(v) {
					n.putString(sub, "file.size", v)
				}
			case "fileText":
				sub.Value("file.text", v)
			case "fileType":
				sub.Value("file.type", v)
			case "firstSeen":
				subDate(sub, "first_seen", v)
			case "generatedReport":
				n.elemBool(sub, "associatedGroups", i, key, "generated_report", v)
			case "id":
				if !isNull(v) {
					n.putString(sub, "id", v)
				}
			case "lastModified":
				subDate(sub, "last_modified", v)
			case "lastSeen":
				subDate(sub, "last_seen", v)
			case "legacyLink":
				sub.Value("legacy_link", v)
			case "malware":
				n.elemBool(sub, "associatedGroups", i, key, "malware", v)
			case "ownerId":
				if !isNull(v) {
					n.putString(sub, "owner.id", v)
				}
			case "ownerName":
				sub.Value("owner.name", v)
			case "publishDate":
				subDate(sub, "publish_date", v)
			case "reminderDate":
				subDate(sub, "reminder_date", v)
			case "scoreBreakdown":
				sub.Value("score_breakdown", v)
			case "scoreIncludesBody":
				n.elemBool(sub, "associatedGroups", i, key, "score_includes_body", v)
			case "upVote":
				n.elemBool(sub, "associatedGroups", i, key, "up_vote", v)
			case "upVoteCount":
				sub.Value("up_vote_count", v)
			case "webLink":
				sub.Value("web_link", v)
			default:
				sub.Value(key, v)
			}
		})
	})
}

// assignments writes a group's assignments, with assignments.data[].user.id
// as a string.
func (n *Normalizer) assignments(sub *ecs.Doc, v *fastjson.Value) {
	o := object(v)
	if o == nil {
		sub.Value("assignments", v)
		return
	}
	o.Visit(func(k []byte, v *fastjson.Value) {
		key := b2s(k)
		a, ok := array(v)
		if key != "data" || !ok {
			sub.Value(sub.Join("assignments", key), v)
			return
		}
		n.arr2 = n.buildArrayIn(&n.sub2, n.arr2[:0], a, func(_ int, sub2 *ecs.Doc, eo *fastjson.Object) {
			eo.Visit(func(k []byte, v *fastjson.Value) {
				key := b2s(k)
				uo := object(v)
				if key != "user" || uo == nil {
					sub2.Value(key, v)
					return
				}
				uo.Visit(func(k []byte, v *fastjson.Value) {
					if b2s(k) == "id" && !isNull(v) {
						n.putString(sub2, "user.id", v)
						return
					}
					sub2.Value(sub2.Join("user", b2s(k)), v)
				})
			})
		})
		if len(n.arr2) > 0 {
			sub.Raw("assignments.data", n.arr2)
		}
		n.arr2 = n.arr2[:0]
	})
}

// groupAttributes writes a group's attributes as the list of its
// attributes.data, each without dateAdded, default, id, lastModified, pinned
// and source (Elastic 1.11+).
func (n *Normalizer) groupAttributes(sub *ecs.Doc, v *fastjson.Value) {
	o := object(v)
	if o == nil {
		return // Elastic sets [] when there is no attributes.data; cleaned away
	}
	data := o.Get("data")
	a, ok := array(data)
	if !ok {
		sub.Value("attributes", data)
		return
	}
	n.arr2 = n.buildArrayIn(&n.sub2, n.arr2[:0], a, func(_ int, sub2 *ecs.Doc, eo *fastjson.Object) {
		eo.Visit(func(k []byte, v *fastjson.Value) {
			switch key := b2s(k); key {
			case "dateAdded", "default", "id", "lastModified", "pinned", "source":
			default:
				sub2.Value(key, v)
			}
		})
	})
	if len(n.arr2) > 0 {
		sub.Raw("attributes", n.arr2)
	}
	n.arr2 = n.arr2[:0]
}

// renameIndicatorKey is the key map Elastic's script applies, at every
// depth, to associated indicators.
func renameIndicatorKey(k string) string {
	switch k {
	case "AS Number":
		return "as_number"
	case "hostName":
		return "host_name"
	case "Hashtag":
		return "hashtag"
	case "Key Name":
		return "key_name"
	case "legacyLink":
		return "legacy_link"
	case "Mutex":
		return "mutex"
	case "Subject":
		return "subject"
	case "User Agent String":
		return "user_agent_string"
	case "webLink":
		return "web_link"
	}
	return k
}

func isScalar(v *fastjson.Value) bool {
	t := v.Type()
	return t != fastjson.TypeObject && t != fastjson.TypeArray
}

// items is an array or object being appended cleaned, as ecs.AppendClean
// does: an item that gives nothing is taken back, and so is the whole
// when no item is left.
type items struct {
	start int // where the array or object starts
	mark  int // where the item being appended starts, with its comma
	count int // the items kept
}

// openItems opens an array or object in dst with opener, '[' or '{'.
func openItems(dst []byte, opener byte) ([]byte, items) {
	return append(dst, opener), items{start: len(dst)}
}

// next starts an item: a comma before all but the first.
func (c *items) next(dst []byte) []byte {
	c.mark = len(dst)
	if c.count > 0 {
		dst = append(dst, ',')
	}
	return dst
}

// keep keeps the item next started when ok, or else takes it back.
func (c *items) keep(dst []byte, ok bool) []byte {
	if !ok {
		return dst[:c.mark]
	}
	c.count++
	return dst
}

// close closes the array or object with closer, or takes it back when no
// item was kept, and reports whether one was.
func (c *items) close(dst []byte, closer byte) ([]byte, bool) {
	if c.count == 0 {
		return dst[:c.start], false
	}
	return append(dst, closer), true
}

// appendRenamed appends v cleaned (as ecs.AppendClean), with the keys of
// every object inside renamed by renameIndicatorKey, and a scalar under
// "location" moved to "location_value".
func appendRenamed(dst []byte, v *fastjson.Value) ([]byte, bool) {
	switch v.Type() {
	case fastjson.TypeArray:
		a, _ := v.Array()
		dst, c := openItems(dst, '[')
		for _, e := range a {
			var ok bool
			dst, ok = appendRenamed(c.next(dst), e)
			dst = c.keep(dst, ok)
		}
		return c.close(dst, ']')
	case fastjson.TypeObject:
		o, _ := v.Object()
		dst, c := openItems(dst, '{')
		o.Visit(func(k []byte, e *fastjson.Value) {
			key := renameIndicatorKey(b2s(k))
			if key == "location" && isScalar(e) {
				key = "location_value"
			}
			dst = append(ecs.AppendString(c.next(dst), key), ':')
			var ok bool
			dst, ok = appendRenamed(dst, e)
			dst = c.keep(dst, ok)
		})
		return c.close(dst, '}')
	}
	return ecs.AppendClean(dst, v)
}

// buildIndicators builds associated_indicators.data.
func (n *Normalizer) buildIndicators(v *fastjson.Value) {
	a := n.collection("associatedIndicators", v)
	if len(a) == 0 {
		return
	}
	const coll = "associatedIndicators"
	n.indicators = n.buildArray(n.indicators[:0], a, func(i int, sub *ecs.Doc, o *fastjson.Object) {
		o.Visit(func(k []byte, v *fastjson.Value) {
			key := b2s(k)
			switch key {
			case "size":
				if !isNull(v) {
					n.putString(sub, "size", v)
				}
			case "active":
				n.elemBool(sub, coll, i, key, "active.value", v)
			case "activeLocked":
				n.elemBool(sub, coll, i, key, "active.locked", v)
			case "confidence":
				if isNull(v) {
					return
				}
				if x, ok := n.toLong(v); ok {
					sub.Int("confidence", x)
				} else {
					n.errorf("%s.data[%d].confidence: unable to convert [%s] to long", coll, i, n.display(v))
				}
			case "dateAdded":
				subDate(sub, "date_added", v)
			case "dnsActive":
				n.elemBool(sub, coll, i, key, "dns_active", v)
			case "externalDateAdded":
				subDate(sub, "external.date.added", v)
			case "externalDateExpires":
				subDate(sub, "external.date.expires", v)
			case "externalLastModified":
				subDate(sub, "external.last_modified", v)
			case "firstSeen":
				subDate(sub, "first_seen", v)
			case "id":
				if !isNull(v) {
					n.putString(sub, "id", v)
				}
			case "ip":
				if isNull(v) {
					return
				}
				if ip, ok := toIP(v); ok {
					sub.Str("ip", ip)
				} else {
					n.errorf("%s.data[%d].ip: '%s' is not an IP string literal", coll, i, n.display(v))
				}
			case "lastModified":
				subDate(sub, "last_modified", v)
			case "lastSeen":
				subDate(sub, "last_seen", v)
			case "ownerId":
				if !isNull(v) {
					n.putString(sub, "owner.id", v)
				}
			case "ownerName":
				sub.Value("owner.name", v)
			case "privateFlag":
				n.elemBool(sub, coll, i, key, "private_flag", v)
			case "rating":
				if isNull(v) {
					return
				}
				if f, ok := n.toDouble(v); ok {
					sub.Float("rating", f)
				} else {
					n.errorf("%s.data[%d].rating: unable to convert [%s] to double", coll, i, n.display(v))
				}
			case "Block":
				n.subRenamed(sub, "block", v)
			case "Value Name":
				n.subRenamed(sub, "value.name", v)
			case "Value Type":
				n.subRenamed(sub, "value.type", v)
			case "whoisActive":
				n.elemBool(sub, coll, i, key, "whois_active", v)
			case "location":
				if isScalar(v) {
					sub.Value("location_value", v)
				} else {
					n.subRenamed(sub, "location", v)
				}
			default:
				n.subRenamed(sub, renameIndicatorKey(key), v)
			}
		})
	})
}

// subRenamed writes v at path of an element, renamed as appendRenamed does.
func (n *Normalizer) subRenamed(sub *ecs.Doc, path string, v *fastjson.Value) {
	if isScalar(v) {
		sub.Value(path, v)
		return
	}
	var ok bool
	if n.tmp, ok = appendRenamed(n.tmp[:0], v); ok {
		sub.Raw(path, n.tmp)
	}
}

// buildAttributes builds attributes.data.
func (n *Normalizer) buildAttributes(v *fastjson.Value) {
	a := n.collection("attributes", v)
	if len(a) == 0 {
		return
	}
	n.attributes = n.buildArray(n.attributes[:0], a, func(i int, sub *ecs.Doc, o *fastjson.Object) {
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch key := b2s(k); key {
			case "createdBy":
				n.createdBy(sub, v, &n.attFirst, &n.attLast, &n.attUser)
			case "dateAdded":
				subDate(sub, "date_added", v)
			case "default":
				n.elemBool(sub, "attributes", i, key, "default", v)
			case "lastModified":
				subDate(sub, "last_modified", v)
			case "pinned":
				n.elemBool(sub, "attributes", i, key, "pinned", v)
			case "id":
				if !isNull(v) {
					n.putString(sub, "id", v)
				}
			case "userName":
				// Elastic removes it.
			default:
				sub.Value(key, v)
			}
		})
	})
}

// buildLabels builds security_labels.data and threat.indicator.marking.tlp.
func (n *Normalizer) buildLabels(v *fastjson.Value) {
	a := n.collection("securityLabels", v)
	if len(a) == 0 {
		return
	}
	for _, e := range a {
		o := object(e)
		if o == nil {
			continue
		}
		name := o.Get("name")
		if isNull(name) {
			continue
		}
		s, ok := str(name)
		if !ok {
			n.errorf("securityLabels.data: the label name [%s] is not a string", n.display(name))
			continue
		}
		// Elastic's script takes the part after the first colon of any
		// label, so "PAP:RED" would be TLP RED; vigil wants "TLP:".
		if rest, ok := strings.CutPrefix(s, "TLP:"); ok {
			tlp, _, _ := strings.Cut(rest, ":")
			for _, t := range ecsTLPs {
				if tlp == t {
					n.tlp = append(n.tlp, t)
					break
				}
			}
		}
	}
	n.labels = n.buildArray(n.labels[:0], a, func(i int, sub *ecs.Doc, o *fastjson.Object) {
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch key := b2s(k); key {
			case "dateAdded":
				subDate(sub, "date_added", v)
			case "id", "description", "color", "owner":
			default:
				sub.Value(key, v)
			}
		})
	})
}

// buildTags builds tags.data, threat.technique.*, os.family.
func (n *Normalizer) buildTags(v *fastjson.Value) {
	a := n.collection("tags", v)
	if len(a) == 0 {
		return
	}
	n.tags = n.buildArray(n.tags[:0], a, func(i int, sub *ecs.Doc, o *fastjson.Object) {
		if tid := o.Get("techniqueId"); !isNull(tid) {
			if name := n.render(o.Get("name")); name != "" {
				n.techName = append(n.techName, name) // a list: duplicates kept
			}
		}
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch key := b2s(k); key {
			case "lastUsed":
				subDate(sub, "last_used", v)
			case "techniqueId":
				sub.Value("technique.id", v)
				n.techID = appendUnique(n.techID, n.render(v))
			case "tactics":
				if to := object(v); to != nil && to.Get("data") != nil {
					sub.Value("tactics", to.Get("data"))
				} else {
					sub.Value("tactics", v)
				}
			case "platforms":
				if po := object(v); po != nil {
					if pa, ok := array(po.Get("data")); ok {
						for _, p := range pa {
							n.osFamily = appendUnique(n.osFamily, n.render(p))
						}
					}
				}
			case "id", "description", "owner":
			default:
				sub.Value(key, v)
			}
		})
	})
}

// ---- Deleted indicators ------------------------------------------------------------

// Deleted turns one record of GET /v3/indicators/deleted ({"ownerName",
// "dateAdded", "type", "summary"}) into a tombstone: a document for the same
// key as the indicator, dated at the deletion (dateAdded) so that it
// replaces the live indicator, and expiring then, so that it leaves the
// live view at once. A deletion without a date is dated at the ingest time.
func (n *Normalizer) Deleted(raw []byte) vigil.Document {
	doc := vigil.Document{Dataset: n.dataset(), View: vigil.ViewIndicators}
	n.reset()
	o := n.parse(raw)
	var summary, owner, typ, dateAdded *fastjson.Value
	if o != nil {
		summary, owner, typ, dateAdded = o.Get("summary"), o.Get("ownerName"), o.Get("type"), o.Get("dateAdded")
	}
	ingested := n.opts.Ingested.Truncate(time.Millisecond).UTC()
	deleted := ingested
	if present(dateAdded) {
		if t, ok := n.date("dateAdded", dateAdded); ok {
			deleted = t.UTC()
			n.modified = deleted
		}
	}
	if o != nil && !present(summary) {
		n.errorf("summary is missing: the deleted indicator cannot be matched")
	}
	n.key = n.render(summary)
	tcType, _ := str(typ)
	ip := ""
	if tcType == "Address" {
		ip = n.key // the summary of an Address is its ip
	}
	var block *fastjson.Value
	if tcType == "CIDR" {
		block = summary
	}
	var typList bool
	n.typ, typList = n.indicatorType(tcType, ip, block)
	doc.Timestamp = deleted
	doc.ExpiresAt = deleted
	if !ingested.IsZero() && ingested.Before(deleted) {
		doc.ExpiresAt = ingested // a deletion dated in the future must not show
	}

	d := &n.doc
	d.Time("@timestamp", deleted)
	d.Str("ecs.version", ecsVersion)
	if len(n.errs) > 0 {
		d.Strs("error.message", n.errs)
	}
	d.Str("event.action", "deleted")
	d.Strs("event.category", categoryThreat)
	d.Str("event.dataset", n.opts.Dataset)
	if present(summary) {
		n.put("event.id", summary)
	}
	if !n.opts.Ingested.IsZero() {
		d.TimeLayout("event.ingested", n.opts.Ingested, ecs.TimeLayoutSeconds)
	}
	if len(n.errs) > 0 {
		d.Str("event.kind", kindError)
	} else {
		d.Str("event.kind", "enrichment")
	}
	d.Str("event.original", b2s(raw))
	d.Strs("event.type", typeDeletion)
	d.Strs("tags", n.finalTags())
	d.Str("threat.indicator.provider", provider)
	if typList {
		n.one = append(n.one[:0], n.typ)
		d.Strs("threat.indicator.type", n.one)
	} else {
		d.Str("threat.indicator.type", n.typ)
	}
	if o != nil {
		d.Time("threat_connect.indicator.deleted_at", deleted)
	}
	n.put("threat_connect.indicator.owner.name", owner)
	n.put("threat_connect.indicator.summary", summary)
	n.put("threat_connect.indicator.type", typ)
	return n.encode(&doc)
}
