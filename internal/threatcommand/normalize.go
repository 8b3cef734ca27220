package threatcommand

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

// The datasets (ECS event.dataset) of the three Threat Command streams.
const (
	DatasetIOC           = "ti_rapid7_threat_command.ioc"
	DatasetAlert         = "ti_rapid7_threat_command.alert"
	DatasetVulnerability = "ti_rapid7_threat_command.vulnerability"
)

// Constants of the ECS documents, as Elastic's ingest pipelines (package
// ti_rapid7_threat_command 2.x) write them.
const (
	ecsVersion  = "8.11.0"
	eventModule = "ti_rapid7_threat_command"
	tagPreserve = "preserve_original_event"
	kindError   = "pipeline_error"
	alertRefURL = "https://dashboard.ti.insight.rapid7.com/#/threat-command/alerts/?search="
	vulnRefURL  = "https://dashboard.ti.insight.rapid7.com/#/risk-analyzer/vulnerabilities?search="
)

var (
	// Encoded as Doc.Strs encodes them.
	categoryThreat     = []byte(`["threat"]`)
	categoryThreatVuln = []byte(`["threat","vulnerability"]`)
	typeIndicator      = []byte(`["indicator"]`)
)

// The fields the normalizer writes, compiled once (see ecs.Path).
var (
	pTimestamp      = ecs.NewPath("@timestamp")
	pECSVersion     = ecs.NewPath("ecs.version")
	pErrorMessage   = ecs.NewPath("error.message")
	pEventCategory  = ecs.NewPath("event.category")
	pEventDataset   = ecs.NewPath("event.dataset")
	pEventID        = ecs.NewPath("event.id")
	pEventIngested  = ecs.NewPath("event.ingested")
	pEventKind      = ecs.NewPath("event.kind")
	pEventModule    = ecs.NewPath("event.module")
	pEventOriginal  = ecs.NewPath("event.original")
	pEventReference = ecs.NewPath("event.reference")
	pEventRiskScore = ecs.NewPath("event.risk_score")
	pEventType      = ecs.NewPath("event.type")
	pTags           = ecs.NewPath("tags")

	// IOCs.
	pTCIOCDeletedAt             = ecs.NewPath("rapid7.tc.ioc.deleted_at")
	pTCIOCExpirationDuration    = ecs.NewPath("rapid7.tc.ioc.expiration_duration")
	pTCIOCFileHash              = ecs.NewPath("rapid7.tc.ioc.file.hash")
	pTCIOCFirstSeen             = ecs.NewPath("rapid7.tc.ioc.first_seen")
	pTCIOCGeolocation           = ecs.NewPath("rapid7.tc.ioc.geolocation")
	pTCIOCLastSeen              = ecs.NewPath("rapid7.tc.ioc.last_seen")
	pTCIOCLastUpdateDate        = ecs.NewPath("rapid7.tc.ioc.last_update_date")
	pTCIOCRelatedCampaigns      = ecs.NewPath("rapid7.tc.ioc.related.campaigns")
	pTCIOCRelatedMalware        = ecs.NewPath("rapid7.tc.ioc.related.malware")
	pTCIOCRelatedThreatActors   = ecs.NewPath("rapid7.tc.ioc.related.threat_actors")
	pTCIOCReportedFeeds         = ecs.NewPath("rapid7.tc.ioc.reported_feeds")
	pTCIOCScore                 = ecs.NewPath("rapid7.tc.ioc.score")
	pTCIOCSeverity              = ecs.NewPath("rapid7.tc.ioc.severity")
	pTCIOCStatus                = ecs.NewPath("rapid7.tc.ioc.status")
	pTCIOCTags                  = ecs.NewPath("rapid7.tc.ioc.tags")
	pTCIOCType                  = ecs.NewPath("rapid7.tc.ioc.type")
	pTCIOCValue                 = ecs.NewPath("rapid7.tc.ioc.value")
	pTCIOCWhitelisted           = ecs.NewPath("rapid7.tc.ioc.whitelisted")
	pRelatedHash                = ecs.NewPath("related.hash")
	pRelatedIP                  = ecs.NewPath("related.ip")
	pIndicatorConfidence        = ecs.NewPath("threat.indicator.confidence")
	pIndicatorEmailAddress      = ecs.NewPath("threat.indicator.email.address")
	pIndicatorFirstSeen         = ecs.NewPath("threat.indicator.first_seen")
	pIndicatorGeoCountryISOCode = ecs.NewPath("threat.indicator.geo.country_iso_code")
	pIndicatorIP                = ecs.NewPath("threat.indicator.ip")
	pIndicatorLastSeen          = ecs.NewPath("threat.indicator.last_seen")
	pIndicatorModifiedAt        = ecs.NewPath("threat.indicator.modified_at")
	pIndicatorName              = ecs.NewPath("threat.indicator.name")
	pIndicatorProvider          = ecs.NewPath("threat.indicator.provider")
	pIndicatorType              = ecs.NewPath("threat.indicator.type")
	pIndicatorURL               = ecs.NewURLPaths("threat.indicator.url")
	pIndicatorURLDomain         = ecs.NewPath("threat.indicator.url.domain")

	// Alerts.
	pTCAlertAssignees                = ecs.NewPath("rapid7.tc.alert.assignees")
	pTCAlertAssets                   = ecs.NewPath("rapid7.tc.alert.assets")
	pTCAlertDetailsDescription       = ecs.NewPath("rapid7.tc.alert.details.description")
	pTCAlertDetailsImages            = ecs.NewPath("rapid7.tc.alert.details.images")
	pTCAlertDetailsSeverity          = ecs.NewPath("rapid7.tc.alert.details.severity")
	pTCAlertDetailsSourceDate        = ecs.NewPath("rapid7.tc.alert.details.source.date")
	pTCAlertDetailsSourceEmail       = ecs.NewPath("rapid7.tc.alert.details.source.email")
	pTCAlertDetailsSourceLeakName    = ecs.NewPath("rapid7.tc.alert.details.source.leak_name")
	pTCAlertDetailsSourceNetworkType = ecs.NewPath("rapid7.tc.alert.details.source.network_type")
	pTCAlertDetailsSourceType        = ecs.NewPath("rapid7.tc.alert.details.source.type")
	pTCAlertDetailsSourceURL         = ecs.NewPath("rapid7.tc.alert.details.source.url")
	pTCAlertDetailsSubtype           = ecs.NewPath("rapid7.tc.alert.details.subtype")
	pTCAlertDetailsTags              = ecs.NewPath("rapid7.tc.alert.details.tags")
	pTCAlertDetailsTitle             = ecs.NewPath("rapid7.tc.alert.details.title")
	pTCAlertDetailsType              = ecs.NewPath("rapid7.tc.alert.details.type")
	pTCAlertFoundDate                = ecs.NewPath("rapid7.tc.alert.found_date")
	pTCAlertID                       = ecs.NewPath("rapid7.tc.alert.id")
	pTCAlertIsClosed                 = ecs.NewPath("rapid7.tc.alert.is_closed")
	pTCAlertIsFlagged                = ecs.NewPath("rapid7.tc.alert.is_flagged")
	pTCAlertRelatedIOCs              = ecs.NewPath("rapid7.tc.alert.related_iocs")
	pTCAlertRelatedThreatIDs         = ecs.NewPath("rapid7.tc.alert.related_threat_ids")
	pTCAlertTakedownStatus           = ecs.NewPath("rapid7.tc.alert.takedown_status")
	pTCAlertUpdateDate               = ecs.NewPath("rapid7.tc.alert.update_date")

	// Vulnerabilities.
	pTCVulnCPE                   = ecs.NewPath("rapid7.tc.vulnerability.cpe")
	pTCVulnCVSSScore             = ecs.NewPath("rapid7.tc.vulnerability.cvss_score")
	pTCVulnExploitAvailability   = ecs.NewPath("rapid7.tc.vulnerability.exploit_availability")
	pTCVulnID                    = ecs.NewPath("rapid7.tc.vulnerability.id")
	pTCVulnIntsightsScore        = ecs.NewPath("rapid7.tc.vulnerability.intsights_score")
	pTCVulnMentionFirstDate      = ecs.NewPath("rapid7.tc.vulnerability.mention.first_date")
	pTCVulnMentionLastDate       = ecs.NewPath("rapid7.tc.vulnerability.mention.last_date")
	pTCVulnMentionsTotal         = ecs.NewPath("rapid7.tc.vulnerability.mentions.total")
	pTCVulnOrigin                = ecs.NewPath("rapid7.tc.vulnerability.origin")
	pTCVulnPublishedDate         = ecs.NewPath("rapid7.tc.vulnerability.published_date")
	pTCVulnRelatedCampaigns      = ecs.NewPath("rapid7.tc.vulnerability.related.campaigns")
	pTCVulnRelatedMalware        = ecs.NewPath("rapid7.tc.vulnerability.related.malware")
	pTCVulnRelatedThreatActors   = ecs.NewPath("rapid7.tc.vulnerability.related.threat_actors")
	pTCVulnSeverity              = ecs.NewPath("rapid7.tc.vulnerability.severity")
	pTCVulnUpdateDate            = ecs.NewPath("rapid7.tc.vulnerability.update_date")
	pVulnerabilityClassification = ecs.NewPath("vulnerability.classification")
	pVulnerabilityEnumeration    = ecs.NewPath("vulnerability.enumeration")
	pVulnerabilityID             = ecs.NewPath("vulnerability.id")
	pVulnerabilityReference      = ecs.NewPath("vulnerability.reference")
	pVulnerabilityScannerVendor  = ecs.NewPath("vulnerability.scanner.vendor")
	pVulnerabilityScoreBase      = ecs.NewPath("vulnerability.score.base")
	pVulnerabilitySeverity       = ecs.NewPath("vulnerability.severity")
)

// NormalizeOptions configure a Normalizer.
type NormalizeOptions = ecs.NormalizeOptions

// Normalizer turns raw Threat Command records (one IOC, alert or CVE
// object each, as the API returns them) into ECS documents that match what
// Elastic's ti_rapid7_threat_command integration indexes, field for field.
//
// It keeps its parser and buffers between calls, so it is not safe for
// concurrent use; use one per goroutine.
//
// Differences from Elastic, all deliberate:
//   - An email IOC gets threat.indicator.name = the address (Elastic's
//     condition never matches), and sha384 and sha512 IOCs get the hash as
//     name, so that they can be keyed.
//   - labels.is_ioc_transform_source is not written.
//   - A record that is not a JSON object, and an IOC whose type is not one of
//     Urls, Domains, IpAddresses, Emails or Hashes, is a pipeline error
//     (Elastic indexes a near-empty document). The type is matched without
//     regard to case for Urls too.
//   - A retired IOC with no lastUpdateDate expires at the ingest time
//     (Elastic fails the record).
//   - A non-string IOC value, which Elastic sometimes copies, is an error.
//   - A failed record has event.kind "pipeline_error" (Elastic appends it,
//     making ["enrichment", "pipeline_error"]); error.message is a list, as
//     Elastic's append makes it.
//   - JSON is parsed leniently (fastjson): odd escapes and raw control
//     characters in strings are accepted; an invalid number is dropped.
//   - Numbers copied from the record keep their text when it is a plain
//     decimal ("31.73913043478261", "1.50"); Elasticsearch rewrites
//     non-shortest forms ("1.50" → 1.5). Exponents are rewritten as Java
//     does ("1e2" → 100.0).
//   - event.ingested is written to the second, as Fleet's final pipeline
//     does.
//   - Elastic's uri_parts up to 8.x is followed for url.extension (text
//     after the last '.' of the path), as the pipeline tests expect.
type Normalizer struct {
	opts   NormalizeOptions
	expDur time.Duration
	expErr error

	p        fastjson.Parser
	doc      ecs.Doc
	sub      ecs.Doc
	buf      []byte // scratch for one raw value
	arr      []byte // scratch for an array being built
	num      []byte // scratch for number text
	raw      []byte // scratch for a number's raw text
	scoreNum []byte // the IOC score as Java prints it, see iocScore
	ingested []byte // event.ingested, encoded; empty without an ingest time
	typ      string // Document.Type still in the parser's buffer, copied by encode
	tags     []string
	strs     []string
	one      []string // a one-element list
	errs     []string
	members  []member   // IOC members Elastic does not know
	clean    []byte     // scratch for a value putVal cleans
	feeds    []feedItem // the elements of reportedFeeds, see scanVal
	noScan   bool       // tests: IOC always parses with fastjson
	noWriter bool       // tests: IOC always writes with n.doc
	wbuf     []byte     // the document of an IOC scanIOC took, see writeIOC
	ebuf     []byte     // the encoded document, with an arena
	dates    ecs.DateCache
	lits     iocLits
	elem     []member // the members of an array element, see buildArray
}

// NewNormalizer returns a Normalizer with the given options. An invalid
// ExpirationDuration is not an error here: every IOC that needs it then
// fails with a message naming the value, as in Elastic.
func NewNormalizer(opts NormalizeOptions) *Normalizer {
	n := &Normalizer{opts: opts}
	if !opts.Ingested.IsZero() {
		// event.ingested is the same in every document: encode it once, as
		// Doc.TimeLayout would.
		n.ingested = append(ecs.AppendTime([]byte{'"'}, opts.Ingested, ecs.TimeLayoutSeconds), '"')
	}
	if opts.ExpirationDuration != "" {
		n.expDur, _, n.expErr = ecs.ParseExpiration(opts.ExpirationDuration)
	}
	return n
}

// b2s views b as a string without copying; the string must not outlive the
// parser's current record.
func b2s(b []byte) string { return ecs.B2S(b) }

// reset prepares the Normalizer for a record.
func (n *Normalizer) reset() {
	n.doc.Reset()
	n.typ = ""
	n.errs = n.errs[:0]
	n.tags = append(n.tags[:0], n.opts.Tags...)
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
		// fastjson appends the unparsed tail, which only repeats
		// event.original.
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

// begin resets the Normalizer, writes what every record gets and parses
// raw (see parse).
func (n *Normalizer) begin(raw []byte) *fastjson.Object {
	n.reset()
	d := &n.doc
	d.At(pECSVersion).Str(ecsVersion)
	d.At(pEventModule).Str(eventModule)
	d.At(pEventOriginal).Str(b2s(raw))
	d.At(pEventDataset).Str(n.opts.Dataset)
	d.At(pEventIngested).Raw(n.ingested)
	return n.parse(raw)
}

func (n *Normalizer) errorf(format string, args ...any) {
	n.errs = append(n.errs, fmt.Sprintf(format, args...))
}

// finish writes the error fields and tags, encodes the document into doc
// and returns it.
func (n *Normalizer) finish(doc *vigil.Document) vigil.Document {
	d := &n.doc
	if len(n.errs) > 0 {
		d.At(pEventKind).Str(kindError)
		d.At(pErrorMessage).Strs(n.errs)
	}
	d.At(pTags).Strs(n.finalTags())
	return n.encode(doc)
}

// finalTags returns the tags, with preserve_original_event added when the
// record failed, as Elastic's on_failure handlers add it.
func (n *Normalizer) finalTags() []string {
	if len(n.errs) > 0 {
		n.appendTagUnique(tagPreserve)
	}
	return n.tags
}

// encode encodes the document into doc.Source, sets doc.Error and returns
// doc.
func (n *Normalizer) encode(doc *vigil.Document) vigil.Document {
	if len(n.errs) > 0 {
		doc.Error = strings.Join(n.errs, "; ")
	}
	// One allocation holds the Source and copies of Key and Type, which
	// still point into the parser's buffer. The Source's capacity ends
	// before them, so appending to it cannot overwrite them.
	if n.opts.Arena != nil {
		n.ebuf = n.doc.AppendJSON(n.ebuf[:0])
		return n.inArena(doc, n.ebuf, false)
	}
	extra := len(doc.Key) + len(n.typ)
	buf := n.doc.Encode(extra)
	if cap(buf)-len(buf) < extra {
		buf = append(make([]byte, 0, len(buf)+extra), buf...)
	}
	return n.setSource(doc, buf)
}

// inArena sets doc.Source to the document in the arena: a copy of src, or,
// inPlace, the one src ends after Open's page (ecs.Arena.OpenOr, Close).
// It copies doc.Key and n.typ (which point into buffers the normalizer
// reuses) there too, and returns doc.
func (n *Normalizer) inArena(doc *vigil.Document, src []byte, inPlace bool) vigil.Document {
	a := n.opts.Arena
	doc.Source = a.Place(src, inPlace)
	doc.Key = a.String(doc.Key)
	if n.typ != "" {
		doc.Type = a.String(n.typ)
		n.typ = ""
	}
	return *doc
}

// setSource sets doc.Source to buf, which has room for copies of doc.Key
// and n.typ after it, and copies them there; it returns doc.
func (n *Normalizer) setSource(doc *vigil.Document, buf []byte) vigil.Document {
	srcLen := len(buf)
	doc.Source = buf[:srcLen:srcLen]
	if doc.Key != "" {
		start := len(buf)
		buf = append(buf, doc.Key...)
		doc.Key = b2s(buf[start:])
	}
	if n.typ != "" {
		start := len(buf)
		buf = append(buf, n.typ...)
		doc.Type = b2s(buf[start:])
		n.typ = ""
	}
	return *doc
}

func (n *Normalizer) appendTagUnique(tag string) {
	if tag == "" {
		return
	}
	for _, t := range n.tags {
		if t == tag {
			return
		}
	}
	n.tags = append(n.tags, tag)
}

func (n *Normalizer) dataset(def string) string {
	if n.opts.Dataset != "" {
		return n.opts.Dataset
	}
	return def
}

// timestampOf returns @timestamp: t, or the ingest time when t is zero,
// to the millisecond.
func (n *Normalizer) timestampOf(t time.Time) time.Time {
	if t.IsZero() {
		t = n.opts.Ingested
	}
	if t.IsZero() {
		return time.Time{}
	}
	return truncMillis(t.UTC())
}

// truncMillis is t.Truncate(time.Millisecond) for a t without a monotonic
// clock reading, without its general division.
func truncMillis(t time.Time) time.Time {
	if ns := t.Nanosecond() % 1e6; ns != 0 {
		return t.Add(-time.Duration(ns))
	}
	return t
}

// timestamp writes @timestamp (see timestampOf) and returns it.
func (n *Normalizer) timestamp(t time.Time) time.Time {
	t = n.timestampOf(t)
	n.doc.At(pTimestamp).Time(t)
	return t
}

// isNull reports whether v is missing or JSON null, which Elastic treats
// alike.
func isNull(v *fastjson.Value) bool { return ecs.IsNull(v) }

// str returns v's string, if v is a string.
func str(v *fastjson.Value) (string, bool) { return ecs.Str(v) }

// put writes v at path of d as Elastic keeps a copied or renamed value:
// nulls and empty values are dropped, numbers are rewritten as Java writes
// them.
func (n *Normalizer) put(d *ecs.Doc, path string, v val) {
	if p := subPath(path); p != nil {
		n.putVal(d.At(p), v)
		return
	}
	// Only the fastjson path gets here: scanIOC takes only the keys
	// subPath knows.
	d.Value(path, v.v)
}

// subPath returns the keys that array elements' objects usually have,
// after renaming, compiled, and nil for others: records may make up keys,
// and compiled Paths are never freed.
func subPath(key string) *ecs.Path {
	switch key {
	case "id":
		return pSubID
	case "name":
		return pSubName
	case "confidence":
		return pSubConfidence
	case "confidenceLevel":
		return pSubConfidenceLevel
	case "type":
		return pSubType
	case "value":
		return pSubValue
	case "created_by":
		return pSubCreatedBy
	case "title":
		return pSubTitle
	case "vendor_product":
		return pSubVendorProduct
	}
	for i, r := range cpeRange {
		if key == r[1] {
			return pSubRange[i]
		}
	}
	return nil
}

var (
	pSubID              = ecs.NewPath("id")
	pSubName            = ecs.NewPath("name")
	pSubConfidence      = ecs.NewPath("confidence")
	pSubConfidenceLevel = ecs.NewPath("confidenceLevel")
	pSubType            = ecs.NewPath("type")
	pSubValue           = ecs.NewPath("value")
	pSubCreatedBy       = ecs.NewPath("created_by")
	pSubTitle           = ecs.NewPath("title")
	pSubVendorProduct   = ecs.NewPath("vendor_product")
	pSubRange           = func() (ps [len(cpeRange)]*ecs.Path) {
		for i, r := range cpeRange {
			ps[i] = ecs.NewPath(r[1])
		}
		return ps
	}()
)

// render returns v as a Mustache template in an Elastic pipeline renders
// it: strings as they are, numbers and booleans as Java prints them, and
// nothing for null, objects and arrays.
func (n *Normalizer) render(v *fastjson.Value) string { return n.renderVal(fj(v)) }

// renderVal is render for a val.
func (n *Normalizer) renderVal(v val) string {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := v.str()
		return s
	case fastjson.TypeNumber:
		return n.javaNumber(v)
	case fastjson.TypeTrue:
		return "true"
	case fastjson.TypeFalse:
		return "false"
	}
	return ""
}

// renderStable is render for a string that must survive later renders:
// numbers are copied out of the scratch buffer.
func (n *Normalizer) renderStable(v *fastjson.Value) string { return n.renderStableVal(fj(v)) }

// renderStableVal is renderStable for a val.
func (n *Normalizer) renderStableVal(v val) string {
	if v.Type() == fastjson.TypeNumber {
		return strings.Clone(n.renderVal(v))
	}
	return n.renderVal(v)
}

// javaNumber returns the number v as Java's toString prints it after
// Elasticsearch parsed it, in n.num. The string is valid until the next
// call.
func (n *Normalizer) javaNumber(v val) string {
	text := v.s // the scanner's text of the number
	if !v.raw {
		n.raw = v.v.MarshalTo(n.raw[:0])
		text = b2s(n.raw)
	}
	n.num, _ = ecs.AppendNumber(n.num[:0], text)
	return b2s(n.num)
}

// display returns v for an error message.
func (n *Normalizer) display(v val) string {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := v.str()
		return s
	case fastjson.TypeNull:
		return "null"
	case fastjson.TypeObject, fastjson.TypeArray:
		if v.raw {
			return v.s // not reached: scanIOC leaves such values to fastjson
		}
		return string(v.v.MarshalTo(nil))
	}
	return n.renderVal(v)
}

// date parses the date field named name as Elastic's date processor with
// format ISO8601 does. A failure is recorded as an error naming the field.
func (n *Normalizer) date(name string, v val) (time.Time, bool) {
	if s, ok := v.str(); ok {
		if t, ok := ecs.ParseTime(s); ok {
			return truncMillis(t), true
		}
	}
	n.errorf("%s: unable to parse date [%s]", name, n.display(v))
	return time.Time{}, false
}

// javaParseFloat parses s as Java's Float.parseFloat (bits 32) or
// Double.parseDouble (bits 64) do, for the finite values JSON can carry.
func javaParseFloat(s string, bits int) (float64, bool) {
	i, j := 0, len(s)
	for i < j && s[i] <= ' ' {
		i++
	}
	for j > i && s[j-1] <= ' ' {
		j--
	}
	s = s[i:j]
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
	f, err := strconv.ParseFloat(s, bits)
	if err != nil {
		return 0, false
	}
	return f, true
}

// toFloat converts v as Elastic's convert processor does to "float" (bits
// 32) or "double" (bits 64): Float.parseFloat(value.toString()).
func (n *Normalizer) toFloat(name string, v val, bits int) (float64, bool) {
	var f float64
	ok := false
	switch v.Type() {
	case fastjson.TypeNumber:
		// Java's text of a JSON number is one javaParseFloat takes as is.
		if js := n.javaNumber(v); js != "" {
			var err error
			f, err = strconv.ParseFloat(js, bits)
			ok = err == nil
		}
	case fastjson.TypeString:
		s, _ := v.str()
		f, ok = javaParseFloat(s, bits)
	}
	if !ok {
		typ := "double"
		if bits == 32 {
			typ = "float"
		}
		n.errorf("%s: unable to convert [%s] to %s", name, n.display(v), typ)
	}
	return f, ok
}

// toLong converts v as Elastic's convert processor does to "long".
func (n *Normalizer) toLong(name string, v *fastjson.Value) (int64, bool) {
	var s string
	switch v.Type() {
	case fastjson.TypeNumber:
		s = n.javaNumber(fj(v))
	case fastjson.TypeString:
		s, _ = str(v)
	}
	var x int64
	var err error = strconv.ErrSyntax
	switch {
	case s == "":
	case strings.HasPrefix(s, "0x"):
		x, err = strconv.ParseInt(s[2:], 16, 64)
	case strings.HasPrefix(s, "-0x"):
		x, err = strconv.ParseInt("-"+s[3:], 16, 64)
	default:
		x, err = strconv.ParseInt(s, 10, 64)
	}
	if err != nil || strings.IndexByte(s, '_') >= 0 || strings.HasPrefix(s, "0x+") || strings.HasPrefix(s, "0x-") {
		n.errorf("%s: unable to convert [%s] to long", name, n.display(fj(v)))
		return 0, false
	}
	return x, true
}

// toBool converts v as Elastic's convert processor does to "boolean".
func (n *Normalizer) toBool(name string, v *fastjson.Value) (bool, bool) {
	switch v.Type() {
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse:
		return false, true
	case fastjson.TypeString:
		s, _ := str(v)
		if strings.EqualFold(s, "true") {
			return true, true
		}
		if strings.EqualFold(s, "false") {
			return false, true
		}
	}
	n.errorf("%s: [%s] is not a boolean value, cannot convert to boolean", name, n.display(fj(v)))
	return false, false
}

// field looks up a direct member of o.
func field(o *fastjson.Object, key string) *fastjson.Value {
	if o == nil {
		return nil
	}
	return o.Get(key)
}

// object returns v as an object, or nil.
func object(v *fastjson.Value) *fastjson.Object { return ecs.Object(v) }

// renamedArray writes the array v at path of n.doc, each object element
// rewritten by elem into n.sub; other elements are kept as they are. A
// value that is not an array is written unchanged.
func (n *Normalizer) renamedArray(path *ecs.Path, v *fastjson.Value, elem func(sub *ecs.Doc, o *fastjson.Object)) {
	if v == nil || v.Type() != fastjson.TypeArray {
		n.doc.At(path).Value(v)
		return
	}
	if n.buildArray(v, elem) {
		n.doc.At(path).Raw(n.arr)
	}
}

// buildArray encodes the array v into n.arr as renamedArray describes, and
// reports whether anything is left.
func (n *Normalizer) buildArray(v *fastjson.Value, elem func(sub *ecs.Doc, o *fastjson.Object)) bool {
	a, _ := v.Array()
	n.arr = append(n.arr[:0], '[')
	count := 0
	for _, e := range a {
		mark := n.startElem(count)
		if o := object(e); o != nil {
			n.sub.Reset()
			n.elem = n.elem[:0]
			elem(&n.sub, o)
			count += n.endObjectElem(mark)
			continue
		}
		var ok bool
		if n.arr, ok = ecs.AppendClean(n.arr, e); ok {
			count++
		} else {
			n.arr = n.arr[:mark]
		}
	}
	return n.endArray(count)
}

// startElem starts an element of the array in n.arr, of which count are
// written, and returns where it starts.
func (n *Normalizer) startElem(count int) int {
	mark := len(n.arr)
	if count > 0 {
		n.arr = append(n.arr, ',')
	}
	return mark
}

// endObjectElem writes the members n.elem holds to n.arr as an object
// started at mark, and returns 1, or 0 when nothing is left.
func (n *Normalizer) endObjectElem(mark int) int {
	sortElem(n.elem)
	for _, m := range n.elem {
		n.put(&n.sub, m.key, m.v)
	}
	if n.sub.Len() == 0 {
		n.arr = n.arr[:mark]
		return 0
	}
	n.arr = n.sub.AppendJSON(n.arr)
	return 1
}

// endArray closes the array in n.arr, or empties it when it has no
// elements, and reports whether it has.
func (n *Normalizer) endArray(count int) bool {
	if count == 0 {
		n.arr = n.arr[:0]
		return false
	}
	n.arr = append(n.arr, ']')
	return true
}

// member adds a member of an array element's object, to be put in n.sub
// by buildArray.
func (n *Normalizer) member(key string, v *fastjson.Value) {
	n.elem = append(n.elem, member{key, fj(v)})
}

// sortElem sorts the members of an element by key, keeping the order of
// equal keys, if no key has a '.': n.sub then gets them in order, and needs
// no sorting. Keys with dots nest, and n.sub sorts them.
func sortElem(ms []member) {
	for _, m := range ms {
		for i := 0; i < len(m.key); i++ { // short keys: no IndexByte call
			if m.key[i] == '.' {
				return
			}
		}
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].key < ms[j-1].key; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

// ---------------------------------------------------------------------------
// IOCs

// iocFields are the members of an IOC record the pipeline handles by name.
type iocFields struct {
	lastUpdate, firstSeen, lastSeen           val
	typ, value, status, severity, geolocation val
	score, whitelisted, tags, reportedFeeds   val
	malware, campaigns, threatActors          val
}

// slot returns the field of f that holds the member named key, and the
// shape of value scanIOC takes there, or nil for a member the pipeline
// does not know.
func (f *iocFields) slot(key string) (*val, shape) {
	switch key {
	case "lastUpdateDate":
		return &f.lastUpdate, shScalar
	case "firstSeen":
		return &f.firstSeen, shScalar
	case "lastSeen":
		return &f.lastSeen, shScalar
	case "type":
		return &f.typ, shScalar
	case "value":
		return &f.value, shScalar
	case "status":
		return &f.status, shScalar
	case "severity":
		return &f.severity, shScalar
	case "geolocation":
		return &f.geolocation, shScalar
	case "score":
		return &f.score, shScalar
	case "whitelisted":
		return &f.whitelisted, shScalar
	case "tags":
		return &f.tags, shList
	case "reportedFeeds":
		return &f.reportedFeeds, shFeeds
	case "relatedMalware":
		return &f.malware, shList
	case "relatedCampaigns":
		return &f.campaigns, shList
	case "relatedThreatActors":
		return &f.threatActors, shList
	}
	return nil, 0
}

// member is a member of a record or of an array element's object, kept
// under its (renamed) key.
type member struct {
	key string
	v   val
}

// iocValue is what the IOC's type and value map to.
type iocValue struct {
	indicatorType string // threat.indicator.type
	name          string // threat.indicator.name
	dropValue     bool   // a bad IP: Elastic removes rapid7.tc.ioc.value
	isURL         bool
	url           ecs.URLParts
	domain        string // threat.indicator.url.domain of a domain
	ip            string // threat.indicator.ip, related.ip
	email         string
	hash          string    // related.hash
	hashPath      *ecs.Path // threat.indicator.file.hash.*, or nil for rapid7.tc.ioc.file.hash
	hashKey       string    // the key of hashPath, encoded: `"md5":`
}

// iocScore is what score maps to.
type iocScore struct {
	risk       float32 // event.risk_score
	hasRisk    bool
	keep       bool   // rapid7.tc.ioc.score = the score
	confidence string // threat.indicator.confidence bucket
	confRaw    bool   // threat.indicator.confidence = the score itself
}

const iocPrefix = "rapid7.tc.ioc"

// IOC normalizes one IOC record of the IOC API v2 (an element of
// "content") for the dataset DatasetIOC.
//
// It first works out every value, then writes the fields in sorted order,
// so that the document needs no sorting when it is encoded: IOCs are the
// bulk of what vigil ingests.
func (n *Normalizer) IOC(raw []byte) vigil.Document {
	doc := vigil.Document{Dataset: n.dataset(DatasetIOC), View: vigil.ViewIndicators}
	n.reset()

	var f iocFields
	n.members = n.members[:0]
	scanned := !n.noScan && n.scanIOC(b2s(raw), &f)
	isObject := scanned
	if !isObject {
		// Not a record the scanner vouches for: fastjson parses it, and
		// reports why it is not an object.
		f = iocFields{}
		if o := n.parse(raw); o != nil {
			isObject = true
			o.Visit(func(k []byte, v *fastjson.Value) {
				slot, _ := f.slot(b2s(k))
				if slot == nil {
					n.members = append(n.members, member{b2s(k), fj(v)})
					return
				}
				if !slot.set() { // the first, as Get finds it
					*slot = fj(v)
				}
			})
		}
	}

	// Work out the values. A date that does not parse is an error and is
	// dropped from rapid7.tc.ioc too.
	var modified, firstSeen, lastSeen time.Time
	if !f.lastUpdate.null() {
		if t, ok := n.date("lastUpdateDate", f.lastUpdate); ok {
			modified = t
		} else {
			f.lastUpdate = val{}
		}
	}
	ts := n.timestampOf(modified)
	doc.Timestamp = ts
	if !f.lastSeen.null() {
		if t, ok := n.date("lastSeen", f.lastSeen); ok {
			lastSeen = t
		} else {
			f.lastSeen = val{}
		}
	}
	if !f.firstSeen.null() {
		if t, ok := n.date("firstSeen", f.firstSeen); ok {
			firstSeen = t
		} else {
			f.firstSeen = val{}
		}
	}
	iv := n.iocValue(f.typ, f.value)
	if iv.dropValue {
		f.value = val{}
	}
	sc := n.iocScore(f.score)
	if !sc.keep {
		f.score = val{}
	}
	hasFeeds := n.iocFeeds(b2s(raw), f.reportedFeeds) // n.strs: providers; n.arr: reported_feeds
	// Record tags follow the configured ones; Elastic keeps duplicates.
	if f.tags.Type() == fastjson.TypeArray {
		if f.tags.raw {
			for it := newRawIter(f.tags.s, shScalar); ; {
				t, ok := it.next()
				if !ok {
					break
				}
				if s := n.renderStableVal(t); s != "" {
					n.tags = append(n.tags, s)
				}
			}
		} else {
			a, _ := f.tags.v.Array()
			for _, t := range a {
				if s := n.renderStable(t); s != "" {
					n.tags = append(n.tags, s)
				}
			}
		}
	}
	var deletedAt time.Time
	if isObject {
		deletedAt = n.iocDeletedAt(f.status, ts, modified, lastSeen, firstSeen)
	}
	doc.ExpiresAt = deletedAt
	doc.Key = iv.name // copied by encode
	doc.Type = iv.indicatorType

	if scanned && !n.noWriter {
		n.writeIOC(&iocOut{
			f: &f, raw: b2s(raw), ts: ts, modified: modified, firstSeen: firstSeen, lastSeen: lastSeen,
			del: deletedAt, iv: &iv, sc: sc, hasFeeds: hasFeeds,
		})
		if len(n.errs) > 0 {
			doc.Error = strings.Join(n.errs, "; ")
		}
		if n.opts.Arena != nil {
			return n.inArena(&doc, n.wbuf, true)
		}
		// As Doc.Encode: one allocation, zeroed only past the copy.
		extra := len(doc.Key) + len(n.typ)
		buf := make([]byte, len(n.wbuf)+extra)
		copy(buf, n.wbuf)
		return n.setSource(&doc, buf[:len(n.wbuf)])
	}

	// Write the fields, in sorted order.
	d := &n.doc
	d.At(pTimestamp).Time(ts)
	d.At(pECSVersion).Str(ecsVersion)
	if len(n.errs) > 0 {
		d.At(pErrorMessage).Strs(n.errs)
	}
	d.At(pEventCategory).Raw(categoryThreat)
	d.At(pEventDataset).Str(n.opts.Dataset)
	d.At(pEventIngested).Raw(n.ingested)
	if len(n.errs) > 0 {
		d.At(pEventKind).Str(kindError)
	} else {
		d.At(pEventKind).Str("enrichment")
	}
	d.At(pEventModule).Str(eventModule)
	d.At(pEventOriginal).Str(b2s(raw))
	if sc.hasRisk {
		d.At(pEventRiskScore).Float32(sc.risk)
	}
	d.At(pEventType).Raw(typeIndicator)

	d.At(pTCIOCDeletedAt).Time(deletedAt)
	d.At(pTCIOCExpirationDuration).Str(n.opts.ExpirationDuration)
	if iv.hash != "" && iv.hashPath == nil {
		// Elastic leaves json.file.hash in place, so it ends up here.
		d.At(pTCIOCFileHash).Str(iv.hash)
	}
	n.putVal(d.At(pTCIOCFirstSeen), f.firstSeen)
	n.putVal(d.At(pTCIOCGeolocation), f.geolocation)
	n.putVal(d.At(pTCIOCLastSeen), f.lastSeen)
	n.putVal(d.At(pTCIOCLastUpdateDate), f.lastUpdate)
	n.putVal(d.At(pTCIOCRelatedCampaigns), f.campaigns)
	n.putVal(d.At(pTCIOCRelatedMalware), f.malware)
	n.putVal(d.At(pTCIOCRelatedThreatActors), f.threatActors)
	if hasFeeds {
		d.At(pTCIOCReportedFeeds).Raw(n.arr)
	} else if f.reportedFeeds.Type() != fastjson.TypeArray {
		n.putVal(d.At(pTCIOCReportedFeeds), f.reportedFeeds)
	}
	n.putScore(d.At(pTCIOCScore), f.score)
	n.putVal(d.At(pTCIOCSeverity), f.severity)
	n.putVal(d.At(pTCIOCStatus), f.status)
	n.putVal(d.At(pTCIOCTags), f.tags)
	n.putVal(d.At(pTCIOCType), f.typ)
	n.putVal(d.At(pTCIOCValue), f.value)
	n.iocWhitelisted(f.whitelisted)
	// Elastic renames the whole record to rapid7.tc.ioc, so members it
	// does not know are kept there. They are rare; the Doc sorts them in.
	for _, m := range n.members {
		n.put(d, d.Join(iocPrefix, m.key), m.v)
	}

	if iv.hash != "" {
		n.one = append(n.one[:0], iv.hash)
		d.At(pRelatedHash).Strs(n.one)
	}
	if iv.ip != "" {
		n.one = append(n.one[:0], iv.ip)
		d.At(pRelatedIP).Strs(n.one)
	}
	d.At(pTags).Strs(n.finalTags())

	switch {
	case sc.confidence != "":
		d.At(pIndicatorConfidence).Str(sc.confidence)
	case sc.confRaw:
		n.putScore(d.At(pIndicatorConfidence), f.score)
	}
	d.At(pIndicatorEmailAddress).Str(iv.email)
	if iv.hashPath != nil {
		d.At(iv.hashPath).Str(iv.hash)
	}
	d.At(pIndicatorFirstSeen).Time(firstSeen)
	n.putVal(d.At(pIndicatorGeoCountryISOCode), f.geolocation)
	d.At(pIndicatorIP).Str(iv.ip)
	d.At(pIndicatorLastSeen).Time(lastSeen)
	d.At(pIndicatorModifiedAt).Time(modified)
	d.At(pIndicatorName).Str(iv.name)
	d.At(pIndicatorProvider).Strs(n.strs)
	d.At(pIndicatorType).Str(iv.indicatorType)
	if iv.isURL {
		d.PutURL(pIndicatorURL, &iv.url)
	} else {
		d.At(pIndicatorURLDomain).Str(iv.domain)
	}
	return n.encode(&doc)
}

// iocValue maps the IOC's type and value. Errors are recorded.
func (n *Normalizer) iocValue(typ, value val) (iv iocValue) {
	if typ.null() {
		return iv // Elastic maps nothing and reports nothing
	}
	t, ok := typ.str()
	if !ok {
		n.errorf("type: unable to determine indicator type from [%s]", n.display(typ))
		return iv
	}
	switch {
	case strings.EqualFold(t, "Urls"):
		iv.indicatorType = "url"
	case strings.EqualFold(t, "Domains"):
		iv.indicatorType = "domain-name"
	case strings.EqualFold(t, "IpAddresses"):
		iv.indicatorType = "ipv4-addr"
	case strings.EqualFold(t, "Emails"):
		iv.indicatorType = "email-addr"
	case strings.EqualFold(t, "Hashes"):
		iv.indicatorType = "file"
	default:
		n.errorf("type: unknown IOC type [%s]: want Urls, Domains, IpAddresses, Emails or Hashes", t)
		return iv
	}
	if value.null() {
		return iv
	}
	v, ok := value.str()
	if !ok {
		n.errorf("value: expected a string, got [%s]", n.display(value))
		return iv
	}
	switch iv.indicatorType {
	case "url":
		iv.isURL = true
		iv.url = ecs.ParseURL(v)
		iv.name = v
	case "domain-name":
		iv.domain = v
		iv.name = v
	case "ipv4-addr":
		if _, err := netip.ParseAddr(v); err != nil || strings.IndexByte(v, '%') >= 0 {
			// Elastic removes the IP and the value, keeping the type.
			n.errorf("value: [%s] is not a valid IPv4 or IPv6 address", v)
			iv.dropValue = true
			return iv
		}
		if strings.IndexByte(v, ':') >= 0 {
			iv.indicatorType = "ipv6-addr"
		}
		iv.ip = v
		iv.name = v
	case "email-addr":
		iv.email = v
		iv.name = v // Elastic sets no name for emails.
	case "file":
		iv.hash = v
		if h, ok := ecs.HashField(v); ok {
			iv.hashPath, iv.hashKey = hashPaths[h], hashKeys[h]
			iv.name = v // Elastic names md5, sha1 and sha256 only.
		}
	}
	return iv
}

// hashPaths are the threat.indicator.file.hash fields.
var hashPaths = map[string]*ecs.Path{
	"md5":    ecs.NewPath("threat.indicator.file.hash.md5"),
	"sha1":   ecs.NewPath("threat.indicator.file.hash.sha1"),
	"sha256": ecs.NewPath("threat.indicator.file.hash.sha256"),
	"sha384": ecs.NewPath("threat.indicator.file.hash.sha384"),
	"sha512": ecs.NewPath("threat.indicator.file.hash.sha512"),
}

// hashKeys are the keys of hashPaths, encoded.
var hashKeys = map[string]string{
	"md5": `"md5":`, "sha1": `"sha1":`, "sha256": `"sha256":`, "sha384": `"sha384":`, "sha512": `"sha512":`,
}

// iocScore maps score to event.risk_score (a float), the confidence and
// rapid7.tc.ioc.score. Errors are recorded.
func (n *Normalizer) iocScore(score val) (sc iocScore) {
	n.scoreNum = n.scoreNum[:0]
	if score.null() {
		return sc
	}
	f32, ok := n.toFloat("score", score, 32)
	if !ok {
		return sc // Elastic removes the score
	}
	sc.risk, sc.hasRisk, sc.keep = float32(f32), true, true
	if score.Type() != fastjson.TypeNumber {
		// Elastic's bucket script fails on a string and leaves it as is.
		sc.confRaw = true
		return sc
	}
	// toFloat left the number as Java prints it in n.num.
	n.scoreNum = append(n.scoreNum[:0], n.num...)
	// The bucket of the double is that of the float unless the float fell
	// on a bound: both roundings keep the order against the bounds, which
	// both represent exactly, and a double on a bound makes the float one.
	f64 := f32
	switch f32 {
	case 0, 1, 30, 70, 100:
		f64, _ = strconv.ParseFloat(b2s(n.scoreNum), 64)
	}
	if sc.confidence = ecs.Confidence(f64); sc.confidence == "" {
		sc.confRaw = true // 0 < score < 1 falls between the buckets
	}
	return sc
}

// putScore writes the score at s as Value does, reusing the number's text
// that iocScore worked out.
func (n *Normalizer) putScore(s ecs.Setter, score val) {
	if len(n.scoreNum) > 0 && score.Type() == fastjson.TypeNumber {
		s.Raw(n.scoreNum)
		return
	}
	n.putVal(s, score)
}

// iocWhitelisted writes whitelisted converted to a string.
func (n *Normalizer) iocWhitelisted(v val) {
	switch v.Type() {
	case fastjson.TypeNull:
	case fastjson.TypeObject, fastjson.TypeArray:
		n.putVal(n.doc.At(pTCIOCWhitelisted), v)
	default:
		n.doc.At(pTCIOCWhitelisted).Str(n.renderVal(v))
	}
}

// iocFeeds puts the feed names (threat.indicator.provider) in n.strs and
// rapid7.tc.ioc.reported_feeds, with confidenceLevel renamed confidence, in
// n.arr. It reports whether there is such an array.
func (n *Normalizer) iocFeeds(rec string, v val) bool {
	n.strs = n.strs[:0]
	if v.Type() != fastjson.TypeArray {
		return false
	}
	r := feedRenamer{renaming: true}
	if v.raw {
		return n.buildRawFeeds(rec, &r)
	}
	return n.buildArray(v.v, func(sub *ecs.Doc, o *fastjson.Object) {
		r.start()
		o.Visit(func(k []byte, e *fastjson.Value) {
			v := fj(e)
			n.elem = append(n.elem, member{n.feedKey(&r, b2s(k), v), v})
		})
		r.renaming = r.renaming && r.level
	})
}

// buildRawFeeds is buildArray for reportedFeeds as scanIOC vouched for it,
// from its elements in n.feeds, in rec, the record.
func (n *Normalizer) buildRawFeeds(rec string, r *feedRenamer) bool {
	n.arr = append(n.arr[:0], '[')
	count := 0
	for i := 0; i < len(n.feeds); {
		e := n.feeds[i].val(rec)
		i++
		mark := n.startElem(count)
		if e.kind != fastjson.TypeObject {
			var ok bool
			if n.arr, ok = appendCleanRaw(n.arr, e); ok {
				count++
			} else {
				n.arr = n.arr[:mark]
			}
			continue
		}
		end := i
		for end < len(n.feeds) && n.feeds[end].isMember() {
			end++
		}
		count += n.feedElem(rec, r, n.feeds[i:end], mark)
		i = end
	}
	return n.endArray(count)
}

// feedElem writes the element of reportedFeeds whose members are items to
// n.arr, as endObjectElem does, and returns 1, or 0 when nothing is left.
// Most elements have a few members with distinct keys: it sorts and writes
// those itself, with no pointers stored to the heap.
func (n *Normalizer) feedElem(rec string, r *feedRenamer, items []feedItem, mark int) int {
	var keys [8]string // renamed
	var order [8]uint8
	r.start()
	if len(items) > len(keys) {
		n.elem = n.elem[:0]
		for _, it := range items {
			v := it.val(rec)
			n.elem = append(n.elem, member{n.feedKey(r, it.key(rec), v), v})
		}
		r.renaming = r.renaming && r.level
		n.sub.Reset()
		return n.endObjectElem(mark)
	}
	for k, it := range items {
		keys[k] = n.feedKey(r, it.key(rec), it.val(rec))
		order[k] = uint8(k)
	}
	r.renaming = r.renaming && r.level
	nk := len(items)
	for k := 1; k < nk; k++ { // stable, as sortElem
		for j := k; j > 0 && keys[order[j]] < keys[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	flat := true
	for k := range nk {
		key := keys[order[k]]
		kind := items[order[k]].kind
		if kind == uint8(fastjson.TypeArray) || kind == uint8(fastjson.TypeObject) || !plainKey(key) ||
			k > 0 && key == keys[order[k-1]] {
			flat = false
			break
		}
	}
	if !flat {
		n.elem = n.elem[:0]
		for k, it := range items {
			n.elem = append(n.elem, member{keys[k], it.val(rec)})
		}
		n.sub.Reset()
		return n.endObjectElem(mark)
	}
	written := false
	for k := range nk {
		start := len(n.arr)
		if written {
			n.arr = append(n.arr, ',', '"')
		} else {
			n.arr = append(n.arr, '{', '"')
		}
		n.arr = append(append(n.arr, keys[order[k]]...), '"', ':')
		var ok bool
		if n.arr, ok = appendCleanRaw(n.arr, items[order[k]].val(rec)); ok {
			written = true
		} else {
			n.arr = n.arr[:start]
		}
	}
	if !written {
		n.arr = n.arr[:mark]
		return 0
	}
	n.arr = append(n.arr, '}')
	return 1
}

// feedRenamer tracks the renaming of confidenceLevel in reportedFeeds:
// Elastic's foreach stops renaming at the first element without one.
type feedRenamer struct {
	renaming bool // still renaming
	rename   bool // renaming in this element
	level    bool // this element has a confidenceLevel
	name     bool // this element's name was seen
}

// start starts an element.
func (r *feedRenamer) start() { r.rename, r.level, r.name = r.renaming, false, false }

// feedKey returns the key of a member of an element of reportedFeeds,
// renamed, and collects the element's name as a provider.
func (n *Normalizer) feedKey(r *feedRenamer, key string, e val) string {
	switch key {
	case "confidenceLevel":
		r.level = true
		if r.rename {
			key = "confidence"
		}
	case "name":
		if !r.name { // the first, as Get finds it
			r.name = true
			if s := n.renderStableVal(e); s != "" {
				n.strs = append(n.strs, s)
			}
		}
	}
	return key
}

// iocDeletedAt computes rapid7.tc.ioc.deleted_at (section 5 of the API
// notes), or the zero time. Errors are recorded.
func (n *Normalizer) iocDeletedAt(status val, ts, modified, lastSeen, firstSeen time.Time) time.Time {
	if n.opts.ExpirationDuration == "" {
		return time.Time{}
	}
	if s, ok := status.str(); ok && containsRetire(s) {
		if ts.IsZero() {
			n.errorf("rapid7.tc.ioc.deleted_at: a retired IOC needs lastUpdateDate or an ingest time")
		}
		return ts
	}
	base := modified
	if base.IsZero() {
		base = lastSeen
	}
	if base.IsZero() {
		base = firstSeen
	}
	if base.IsZero() {
		n.errorf("rapid7.tc.ioc.deleted_at: no lastUpdateDate, lastSeen or firstSeen to compute the expiry from")
		return time.Time{}
	}
	if n.expErr != nil {
		n.errorf("ioc_expiration_duration: %v", n.expErr)
		return time.Time{}
	}
	return base.Add(n.expDur)
}

// containsRetire reports whether lower(s) contains "retire", as Elastic's
// script tests the status.
func containsRetire(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return strings.Contains(strings.ToLower(s), "retire")
		}
	}
	const word = "retire"
	for i := 0; i+len(word) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// latestExpiry is when an alert or CVE last updated at ts leaves its live
// view: Elastic's latest transforms keep them vigil.LatestMaxAge.
func latestExpiry(ts time.Time) time.Time {
	if ts.IsZero() {
		return time.Time{}
	}
	return ts.Add(vigil.LatestMaxAge)
}

// ---------------------------------------------------------------------------
// Alerts

// Alert normalizes one complete alert (the body of get-complete-alert) for
// the dataset DatasetAlert.
func (n *Normalizer) Alert(raw []byte) vigil.Document {
	doc := vigil.Document{Dataset: n.dataset(DatasetAlert), View: vigil.ViewAlerts}
	d := &n.doc
	o := n.begin(raw)
	d.At(pEventKind).Str("alert")
	if o == nil {
		doc.Timestamp = n.timestamp(time.Time{})
		doc.ExpiresAt = latestExpiry(doc.Timestamp)
		return n.finish(&doc)
	}

	var updated time.Time
	if v := o.Get("UpdateDate"); !isNull(v) {
		if t, ok := n.date("UpdateDate", fj(v)); ok {
			updated = t
			d.At(pTCAlertUpdateDate).Time(t)
		}
	}
	doc.Timestamp = n.timestamp(updated)
	doc.ExpiresAt = latestExpiry(doc.Timestamp)

	id := o.Get("_id")
	d.At(pTCAlertID).Value(id)
	d.At(pEventID).Value(id)
	n.buf = append(append(n.buf[:0], alertRefURL...), n.render(id)...)
	d.At(pEventReference).Str(b2s(n.buf))
	if s, ok := str(id); ok {
		doc.Key = s // copied by encode
	}

	n.renamedArray(pTCAlertAssets, o.Get("Assets"), func(sub *ecs.Doc, e *fastjson.Object) {
		e.Visit(func(k []byte, v *fastjson.Value) {
			key := b2s(k)
			switch key {
			case "Type":
				key = "type"
			case "Value":
				key = "value"
			}
			n.member(key, v)
		})
	})
	d.At(pTCAlertAssignees).Value(o.Get("Assignees"))

	if details := object(o.Get("Details")); details != nil {
		typ := details.Get("Type")
		d.At(pTCAlertDetailsType).Value(typ)
		if s, ok := str(typ); ok {
			n.typ = s // copied by encode
		}
		d.At(pTCAlertDetailsSubtype).Value(details.Get("SubType"))
		d.At(pTCAlertDetailsTitle).Value(details.Get("Title"))
		d.At(pTCAlertDetailsDescription).Value(details.Get("Description"))
		d.At(pTCAlertDetailsSeverity).Value(details.Get("Severity"))
		d.At(pTCAlertDetailsImages).Value(details.Get("Images"))
		if src := object(details.Get("Source")); src != nil {
			d.At(pTCAlertDetailsSourceType).Value(src.Get("Type"))
			d.At(pTCAlertDetailsSourceURL).Value(src.Get("URL"))
			d.At(pTCAlertDetailsSourceEmail).Value(src.Get("Email"))
			d.At(pTCAlertDetailsSourceNetworkType).Value(src.Get("NetworkType"))
			d.At(pTCAlertDetailsSourceLeakName).Value(src.Get("LeakName"))
			if v := src.Get("Date"); !isNull(v) {
				if t, ok := n.date("Details.Source.Date", fj(v)); ok {
					d.At(pTCAlertDetailsSourceDate).Time(t)
				}
			}
		}
		n.renamedArray(pTCAlertDetailsTags, details.Get("Tags"), func(sub *ecs.Doc, e *fastjson.Object) {
			e.Visit(func(k []byte, v *fastjson.Value) {
				key := b2s(k)
				switch key {
				case "CreatedBy":
					key = "created_by"
				case "Name":
					key = "name"
				case "_id":
					key = "id"
				}
				n.member(key, v)
			})
			// Each tag name joins the top-level tags, without duplicates.
			n.appendTagUnique(n.renderStable(e.Get("Name")))
		})
	}

	d.At(pTCAlertTakedownStatus).Value(o.Get("TakedownStatus"))
	d.At(pTCAlertRelatedIOCs).Value(o.Get("RelatedIocs"))
	d.At(pTCAlertRelatedThreatIDs).Value(o.Get("RelatedThreatIDs"))
	if v := o.Get("FoundDate"); !isNull(v) {
		if t, ok := n.date("FoundDate", fj(v)); ok {
			d.At(pTCAlertFoundDate).Time(t)
		}
	}
	if v := field(object(o.Get("Closed")), "IsClosed"); !isNull(v) {
		if b, ok := n.toBool("Closed.IsClosed", v); ok {
			d.At(pTCAlertIsClosed).Bool(b)
		}
	}
	if v := o.Get("IsFlagged"); !isNull(v) {
		if b, ok := n.toBool("IsFlagged", v); ok {
			d.At(pTCAlertIsFlagged).Bool(b)
		}
	}
	return n.finish(&doc)
}

// ---------------------------------------------------------------------------
// Vulnerabilities

// mentionSources maps mentionsPerSource members to their field names.
var mentionSources = [...]struct {
	key, name string
	path      *ecs.Path
}{
	{"PasteSite", "mentionsPerSource.PasteSite", ecs.NewPath("rapid7.tc.vulnerability.mentions.source.paste_site")},
	{"HackingForum", "mentionsPerSource.HackingForum", ecs.NewPath("rapid7.tc.vulnerability.mentions.source.hacking_forum")},
	{"InstantMessage", "mentionsPerSource.InstantMessage", ecs.NewPath("rapid7.tc.vulnerability.mentions.source.instant_message")},
	{"DarkWeb", "mentionsPerSource.DarkWeb", ecs.NewPath("rapid7.tc.vulnerability.mentions.source.dark_web")},
	{"ClearWebCyberBlogs", "mentionsPerSource.ClearWebCyberBlogs", ecs.NewPath("rapid7.tc.vulnerability.mentions.source.clear_web_cyber_blogs")},
	{"CodeRepositories", "mentionsPerSource.CodeRepositories", ecs.NewPath("rapid7.tc.vulnerability.mentions.source.code_repositories")},
	{"Exploit", "mentionsPerSource.Exploit", ecs.NewPath("rapid7.tc.vulnerability.mentions.source.exploit")},
	{"SocialMedia", "mentionsPerSource.SocialMedia", ecs.NewPath("rapid7.tc.vulnerability.mentions.source.social_media")},
}

// cpeRange maps the members of a CPE's Range to their new places.
var cpeRange = [...][2]string{
	{"VersionStartIncluding", "range.version.start.including"},
	{"VersionEndIncluding", "range.version.end.including"},
	{"VersionStartExcluding", "range.version.start.excluding"},
	{"VersionEndExcluding", "range.version.end.excluding"},
}

// Vulnerability normalizes one CVE record of get-cves-list (an element of
// "content") for the dataset DatasetVulnerability.
func (n *Normalizer) Vulnerability(raw []byte) vigil.Document {
	doc := vigil.Document{Dataset: n.dataset(DatasetVulnerability), View: vigil.ViewVulnerabilities}
	d := &n.doc
	o := n.begin(raw)
	d.At(pEventKind).Str("event")
	d.At(pEventCategory).Raw(categoryThreatVuln)
	d.At(pEventType).Raw(typeIndicator)
	d.At(pVulnerabilityClassification).Str("CVSS")
	d.At(pVulnerabilityEnumeration).Str("CVE")
	d.At(pVulnerabilityScannerVendor).Str("Rapid7")
	if o == nil {
		doc.Timestamp = n.timestamp(time.Time{})
		doc.ExpiresAt = latestExpiry(doc.Timestamp)
		return n.finish(&doc)
	}

	var updated time.Time
	if v := o.Get("updateDate"); !isNull(v) {
		if t, ok := n.date("updateDate", fj(v)); ok {
			updated = t
			d.At(pTCVulnUpdateDate).Time(t)
		}
	}
	doc.Timestamp = n.timestamp(updated)
	doc.ExpiresAt = latestExpiry(doc.Timestamp)

	id := o.Get("cveId")
	d.At(pTCVulnID).Value(id)
	d.At(pVulnerabilityID).Value(id)
	if s := n.render(id); s != "" {
		n.buf = append(append(n.buf[:0], vulnRefURL...), s...)
		d.At(pVulnerabilityReference).Str(b2s(n.buf))
	}
	if s, ok := str(id); ok {
		doc.Key = s // copied by encode
	}

	if v := o.Get("publishedDate"); !isNull(v) {
		if t, ok := n.date("publishedDate", fj(v)); ok {
			d.At(pTCVulnPublishedDate).Time(t)
		}
	}
	sev := o.Get("severity")
	d.At(pTCVulnSeverity).Value(sev)
	d.At(pVulnerabilitySeverity).Value(sev)
	if s, ok := str(sev); ok {
		n.typ = s // copied by encode
	}
	if v := o.Get("intsightsScore"); !isNull(v) {
		if f, ok := n.toFloat("intsightsScore", fj(v), 64); ok {
			d.At(pTCVulnIntsightsScore).Float(f)
		}
	}
	if v := o.Get("cvssScore"); !isNull(v) {
		if f, ok := n.toFloat("cvssScore", fj(v), 64); ok {
			d.At(pTCVulnCVSSScore).Float(f)
			d.At(pVulnerabilityScoreBase).Float(f)
		}
	}
	if v := o.Get("mentionsAmount"); !isNull(v) {
		if x, ok := n.toLong("mentionsAmount", v); ok {
			d.At(pTCVulnMentionsTotal).Int(x)
		}
	}
	if per := object(o.Get("mentionsPerSource")); per != nil {
		for _, m := range mentionSources {
			if v := per.Get(m.key); !isNull(v) {
				if x, ok := n.toLong(m.name, v); ok {
					d.At(m.path).Int(x)
				}
			}
		}
	}
	d.At(pTCVulnMentionFirstDate).Value(o.Get("firstMentionDate"))
	d.At(pTCVulnMentionLastDate).Value(o.Get("lastMentionDate"))
	if v := o.Get("exploitAvailability"); !isNull(v) {
		if b, ok := n.toBool("exploitAvailability", v); ok {
			d.At(pTCVulnExploitAvailability).Bool(b)
		}
	}
	d.At(pTCVulnOrigin).Value(o.Get("vulnerabilityOrigin"))
	d.At(pTCVulnRelatedThreatActors).Value(o.Get("relatedThreatActors"))
	d.At(pTCVulnRelatedMalware).Value(o.Get("relatedMalware"))
	d.At(pTCVulnRelatedCampaigns).Value(o.Get("relatedCampaigns"))
	n.renamedArray(pTCVulnCPE, o.Get("cpe"), func(sub *ecs.Doc, e *fastjson.Object) {
		e.Visit(func(k []byte, v *fastjson.Value) {
			key := b2s(k)
			switch key {
			case "Value":
				key = "value"
			case "Title":
				key = "title"
			case "VendorProduct":
				key = "vendor_product"
			case "Range":
				r := object(v)
				if r == nil {
					break
				}
				r.Visit(func(rk []byte, rv *fastjson.Value) {
					rkey := b2s(rk)
					for _, m := range cpeRange {
						if rkey == m[0] {
							n.member(m[1], rv)
							return
						}
					}
					// Members Elastic does not move stay under Range.
					n.member(sub.Join("Range", rkey), rv)
				})
				return
			}
			n.member(key, v)
		})
	})
	return n.finish(&doc)
}
