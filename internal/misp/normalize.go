package misp

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

// The datasets (ECS event.dataset).
const (
	// DatasetAttributes holds the attributes of a MISP instance, read with
	// POST /attributes/restSearch, as Elastic's ti_misp integration names
	// the data stream that reads them.
	DatasetAttributes = "ti_misp.threat_attributes"
	// DatasetFeed holds the attributes of the events of MISP feeds. Elastic
	// reads no feeds; the name follows its scheme.
	DatasetFeed = "ti_misp.feed"
)

// Constants of the ECS documents, as Elastic's ingest pipeline (package
// ti_misp, threat_attributes data stream) writes them.
const (
	ecsVersion   = "8.11.0"
	provider     = "misp"
	instanceFeed = "MISP" // threat.feed.name of the instance's documents
	tagPreserve  = "preserve_original_event"
	kindError    = "pipeline_error"
	roleReporter = "reporting_user"
)

// The tags Elastic's stream adds by default, and vigil's for feeds.
var (
	DefaultTags     = []string{"forwarded", "misp-threat_attributes"}
	DefaultFeedTags = []string{"forwarded", "misp-feed"}
)

var (
	categoryThreat = []string{"threat"}
	typeIndicator  = []string{"indicator"}
)

// NormalizeOptions configure a Normalizer.
type NormalizeOptions = ecs.NormalizeOptions

// hashTypes are the MISP attribute types Elastic maps to
// threat.indicator.file.hash.<type>.
var hashTypes = map[string]bool{
	"md5": true, "impfuzzy": true, "imphash": true, "pehash": true, "sha1": true, "sha224": true,
	"sha256": true, "sha3-224": true, "sha3-256": true, "sha3-384": true, "sha3-512": true,
	"sha384": true, "sha512": true, "sha512/224": true, "sha512/256": true, "ssdeep": true,
	"tlsh": true, "vhash": true,
}

// Normalizer turns MISP attributes into the ECS documents Elastic's ti_misp
// integration (threat_attributes data stream) indexes: Attribute for an
// element of /attributes/restSearch's response.Attribute, Event for a feed's
// <uuid>.json, whose attributes get their event's fields as restSearch
// would give them.
//
// Each document's Key is the attribute's uuid, the key of Elastic's latest
// transform. ExpiresAt follows Elastic's rule: when decay scores come with
// the attribute and at least half of them say decayed, 2 minutes before the
// ingest time; otherwise ioc_expiration_duration after the later of the
// attribute's timestamp and last_seen. A feed's attributes count the time
// vigil fetched their event as well: a feed is a curated list its publisher
// still serves, and a static one (the quickstart's) would otherwise be
// expired as soon as it is read. An attribute marked deleted expires at the
// ingest time, so that it leaves the live view.
//
// It keeps its parsers and buffers between calls, so it is not safe for
// concurrent use; use one per goroutine.
//
// Differences from Elastic, all deliberate:
//   - threat.indicator.name is set to the indicator's value (Elastic sets
//     none), so that the live view can be listed and matched by it.
//   - ip-src and ip-dst attributes holding an IPv6 address get
//     threat.indicator.type ipv6-addr (Elastic: ipv4-addr); an address that
//     is neither an IP nor a CIDR is an error (Elastic's index rejects it).
//   - email attributes (the generic type) get threat.indicator.email.address
//     as email-src and email-dst do.
//   - A URL that does not parse keeps url.original and url.full (Elastic
//     loses the value).
//   - first_seen and last_seen may be ISO 8601 as well as microseconds
//     since the epoch (Elastic fails on ISO 8601).
//   - regkey|value gives registry.value the text after the "|".
//   - filename|sha3-256 (and the other hash types with a "-") writes
//     file.hash.sha3-256 (Elastic: file.hash.sha3).
//   - threat.indicator.marking.tlp lists each level once.
//   - Processing goes on after a failure: every error is reported and the
//     rest of the record is still mapped; any error makes the record a
//     pipeline error, kept in the raw store only.
//   - Empty strings are dropped, as in every vigil document.
type Normalizer struct {
	opts   NormalizeOptions
	expDur time.Duration
	expErr error

	p      fastjson.Parser // the record of Attribute
	pe     fastjson.Parser // the event of Event
	doc    ecs.Doc
	sub    ecs.Doc   // misp.event or misp.object being built
	fields fieldList // the fields of misp.attribute, misp.event or misp.object

	errs   []string
	tags   []string
	tlp    []string
	strs   []string
	raw    []byte // event.original of a feed attribute
	attrJS []byte
	objJS  []byte // misp.object
	key    string
	typ    string
	feed   string // threat.feed.name
	isFeed bool
	ctx    eventContext
	ts     time.Time // the last attribute's timestamp
}

// eventContext is what an attribute's document takes from its event: the
// encoded misp.event, organization.id, user.email, scanner_stats and the
// event's tags (feeds only).
type eventContext struct {
	js          []byte
	orgID       string
	email       string
	analysis    int64
	hasAnalysis bool
	tags        []string
}

// NewNormalizer returns a Normalizer with the given options. An invalid
// ExpirationDuration is not an error here: every record then fails with a
// message naming the value.
func NewNormalizer(opts NormalizeOptions) *Normalizer {
	n := &Normalizer{opts: opts}
	if opts.ExpirationDuration != "" {
		n.expDur, _, n.expErr = ecs.ParseExpiration(opts.ExpirationDuration)
	}
	return n
}

// b2s views b as a string without copying; the string must not outlive the
// buffer.
func b2s(b []byte) string { return ecs.B2S(b) }

// Timestamp returns the timestamp of the last attribute normalized, or the
// zero time when it had none or it did not parse.
func (n *Normalizer) Timestamp() time.Time { return n.ts }

func (n *Normalizer) errorf(format string, args ...any) {
	n.errs = append(n.errs, fmt.Sprintf(format, args...))
}

func (n *Normalizer) dataset(def string) string {
	if n.opts.Dataset != "" {
		return n.opts.Dataset
	}
	return def
}

// Attribute normalizes one attribute as /attributes/restSearch returns it
// (with its Event, Object and Tag), into dataset DatasetAttributes.
func (n *Normalizer) Attribute(raw []byte) vigil.Document {
	n.isFeed, n.feed = false, instanceFeed
	n.errs = n.errs[:0]
	n.ctx = eventContext{js: n.ctx.js[:0], tags: n.ctx.tags[:0]}
	n.objJS = n.objJS[:0]
	v, err := n.p.ParseBytes(raw)
	var o *fastjson.Object
	if err != nil {
		n.errorf("record is not valid JSON: %s", jsonError(err))
	} else if o, err = v.Object(); err != nil {
		n.errorf("record is not a JSON object but %s", v.Type())
	}
	var tags *fastjson.Value
	if o != nil {
		n.buildEvent(o.Get("Event"))
		n.buildObject(o.Get("Object"), true)
		tags = o.Get("Tag")
	}
	return n.attribute(raw, o, tags, DatasetAttributes)
}

// Event normalizes the attributes of one feed event file ({"Event":{…}}, as
// PyMISP's feed generator writes it; a {"response":[{"Event":…}]} wrapper
// and a bare event are accepted too), the event's own and those of its
// objects, into dataset DatasetFeed, calling emit with each document; the
// Document's Source is emit's to keep. feed is the configured feed's name,
// written as threat.feed.name. It returns the event's uuid and the number
// of documents emitted. An event file that cannot be read gives one
// document, a pipeline error carrying the file.
func (n *Normalizer) Event(raw []byte, feed string, emit func(vigil.Document)) (uuid string, docs int) {
	n.isFeed, n.feed = true, feed
	n.errs = n.errs[:0]
	n.ctx = eventContext{js: n.ctx.js[:0], tags: n.ctx.tags[:0]}
	n.objJS = n.objJS[:0]
	ev, problem := n.eventOf(raw)
	if ev == nil {
		n.errorf("event file: %s", problem)
		emit(n.attribute(raw, nil, nil, DatasetFeed))
		return "", 1
	}
	uuid = string(ev.GetStringBytes("uuid"))
	n.buildEvent(ev)
	evErrs := len(n.errs) // the event's errors go to each attribute's
	evTags := ev.Get("Tag")
	if evTags == nil {
		evTags = ev.Get("tag")
	}
	n.ctx.tags = appendTagNames(n.ctx.tags, evTags)
	objErrs := evErrs
	do := func(a *fastjson.Value) {
		n.errs = n.errs[:objErrs]
		n.raw = a.MarshalTo(n.raw[:0])
		o, _ := a.Object()
		var tags *fastjson.Value
		if o == nil {
			n.errorf("attribute is not a JSON object but %s", a.Type())
		} else {
			tags = o.Get("Tag")
		}
		emit(n.attribute(n.raw, o, tags, DatasetFeed))
		docs++
	}
	for _, a := range ev.GetArray("Attribute") {
		do(a)
	}
	for _, obj := range ev.GetArray("Object") {
		n.errs = n.errs[:evErrs]
		n.buildObject(obj, false)
		objErrs = len(n.errs)
		for _, a := range obj.GetArray("Attribute") {
			do(a)
		}
	}
	return uuid, docs
}

// eventOf returns the event object of a feed event file, or nil and what is
// wrong with the file.
func (n *Normalizer) eventOf(raw []byte) (*fastjson.Value, string) {
	v, err := n.pe.ParseBytes(raw)
	if err != nil {
		return nil, "not valid JSON: " + jsonError(err)
	}
	if r := v.Get("response"); r != nil {
		v = r
	}
	if a, err := v.Array(); err == nil {
		if len(a) != 1 {
			return nil, fmt.Sprintf("a list of %d events, want one event", len(a))
		}
		v = a[0]
	}
	if e := v.Get("Event"); e != nil {
		v = e
	}
	if v.Type() != fastjson.TypeObject {
		return nil, fmt.Sprintf("the event is %s, want an object", v.Type())
	}
	if len(v.GetStringBytes("uuid")) == 0 {
		return nil, `the event has no "uuid"`
	}
	return v, ""
}

// jsonError returns fastjson's message without its long tail.
func jsonError(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "; unparsed tail")
	msg, _, _ = strings.Cut(msg, "; unexpected tail")
	return strings.TrimPrefix(msg, "cannot parse JSON: ")
}

// ---- Event and object --------------------------------------------------------

// buildEvent encodes misp.event into n.ctx.js and gathers what the
// attribute documents take from the event, as Elastic's pipeline maps
// misp.attribute.Event: the timestamps become dates; distribution,
// attribute_count and threat_level_id longs; analysis goes to
// threat.indicator.scanner_stats, org_id to organization.id and
// event_creator_email to user.email. A feed event's attributes, objects,
// tags and other lists are left out; Orgc becomes orgc.
func (n *Normalizer) buildEvent(v *fastjson.Value) {
	n.ctx.js = n.buildSub(v, n.ctx.js, func(s *fieldList, key string, v *fastjson.Value) {
		switch key {
		case "timestamp", "publish_timestamp", "sighting_timestamp":
			n.putUnix(s, "Event."+key, key, v)
		case "distribution", "attribute_count", "threat_level_id":
			n.putLong(s, "Event."+key, key, v)
		case "analysis":
			if isNull(v) {
				return
			}
			if x, ok := toLong(v); ok {
				n.ctx.analysis, n.ctx.hasAnalysis = x, true
			} else {
				n.errorf("Event.analysis: unable to convert [%s] to long", display(v))
			}
		case "org_id":
			n.ctx.orgID = render(v)
		case "event_creator_email":
			n.ctx.email = render(v)
		case "Attribute", "Object", "Tag", "tag", "Galaxy", "EventReport", "ShadowAttribute",
			"RelatedEvent", "Sighting", "CryptographicKey", "Analyst", "Note", "Opinion", "Relationship":
			if !n.isFeed {
				s.Value(key, v)
			}
		case "Orgc", "orgc":
			s.Value("orgc", v)
		case "Org":
			s.Value("org", v)
		default:
			s.Value(key, v)
		}
	})
}

// buildObject encodes misp.object into n.objJS as Elastic's pipeline maps
// misp.attribute.Object: meta-category becomes meta_category, the
// timestamp a date and distribution a long; its attributes (withAttrs)
// become misp.object.attribute, each with its timestamp as a date.
func (n *Normalizer) buildObject(v *fastjson.Value, withAttrs bool) {
	n.objJS = n.buildSub(v, n.objJS, func(s *fieldList, key string, v *fastjson.Value) {
		switch key {
		case "meta-category":
			s.Value("meta_category", v)
		case "timestamp":
			n.putUnix(s, "Object.timestamp", key, v)
		case "distribution":
			n.putLong(s, "Object.distribution", key, v)
		case "Attribute":
			if withAttrs {
				n.objectAttributes(s, v)
			}
		case "ObjectReference":
		default:
			s.Value(key, v)
		}
	})
}

// buildSub encodes the object v into dst[:0] with field called for each of
// its members; dst is left empty when v is not an object.
func (n *Normalizer) buildSub(v *fastjson.Value, dst []byte, field func(s *fieldList, key string, v *fastjson.Value)) []byte {
	o := object(v)
	if o == nil {
		return dst[:0]
	}
	f := &n.fields
	f.reset()
	o.Visit(func(k []byte, v *fastjson.Value) { field(f, b2s(k), v) })
	n.sub.Reset()
	f.write(&n.sub, "")
	return n.sub.AppendJSON(dst[:0])
}

// fieldList gathers the fields of an object whose members come in no
// particular order, to write them sorted: an ecs.Doc that gets its fields
// in order writes them as they come instead of sorting them at the end.
type fieldList struct {
	fs []field
}

type fieldKind uint8

const (
	kindValue fieldKind = iota
	kindStr
	kindTime
	kindInt
	kindBool
	kindRaw
)

type field struct {
	key  string
	kind fieldKind
	v    *fastjson.Value
	s    string
	raw  []byte
	t    time.Time
	i    int64
}

func (f *fieldList) reset() { f.fs = f.fs[:0] }

func (f *fieldList) Value(key string, v *fastjson.Value) {
	if !isNull(v) {
		f.fs = append(f.fs, field{key: key, kind: kindValue, v: v})
	}
}
func (f *fieldList) Str(key, s string) { f.fs = append(f.fs, field{key: key, kind: kindStr, s: s}) }
func (f *fieldList) Time(key string, t time.Time) {
	f.fs = append(f.fs, field{key: key, kind: kindTime, t: t})
}
func (f *fieldList) Int(key string, x int64) {
	f.fs = append(f.fs, field{key: key, kind: kindInt, i: x})
}
func (f *fieldList) Bool(key string, b bool) {
	var x int64
	if b {
		x = 1
	}
	f.fs = append(f.fs, field{key: key, kind: kindBool, i: x})
}
func (f *fieldList) Raw(key string, js []byte) {
	f.fs = append(f.fs, field{key: key, kind: kindRaw, raw: js})
}

// write sorts the fields by key and adds them to d, under prefix ("" for
// none). A key given twice keeps its last value.
func (f *fieldList) write(d *ecs.Doc, prefix string) {
	fs := f.fs
	for i := 1; i < len(fs); i++ { // insertion sort: a dozen fields, mostly in order
		for j := i; j > 0 && fs[j].key < fs[j-1].key; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
	for i := range fs {
		x := &fs[i]
		if p := attributePaths[x.key]; p != nil && prefix == attributePrefix {
			x.set(d.At(p)) // compiled: faster than a dotted path
			continue
		}
		path := x.key
		if prefix != "" {
			path = d.Join(prefix, x.key)
		}
		switch x.kind {
		case kindValue:
			d.Value(path, x.v)
		case kindStr:
			d.Str(path, x.s)
		case kindTime:
			d.Time(path, x.t)
		case kindInt:
			d.Int(path, x.i)
		case kindBool:
			d.Bool(path, x.i == 1)
		case kindRaw:
			d.Raw(path, x.raw)
		}
	}
}

func (x *field) set(s ecs.Setter) {
	switch x.kind {
	case kindValue:
		s.Value(x.v)
	case kindStr:
		s.Str(x.s)
	case kindTime:
		s.Time(x.t)
	case kindInt:
		s.Int(x.i)
	case kindBool:
		s.Bool(x.i == 1)
	case kindRaw:
		s.Raw(x.raw)
	}
}

// attributePrefix holds the attribute's own fields.
const attributePrefix = "misp.attribute"

// attributePaths are the compiled paths of the attribute fields MISP sends.
var attributePaths = map[string]*ecs.Path{}

func init() {
	for _, k := range []string{"category", "comment", "data", "decay_score", "decayed", "decayed_at", "deleted",
		"disable_correlation", "distribution", "event_id", "event_uuid", "first_seen", "id", "last_seen",
		"object_id", "object_relation", "sharing_group_id", "to_ids", "type", "uuid", "value"} {
		attributePaths[k] = ecs.NewPath(attributePrefix + "." + k)
	}
}

// objectAttributes writes an object's attributes as "attribute", each with
// its timestamp as a date when it parses (Elastic ignores a failure).
func (n *Normalizer) objectAttributes(s *fieldList, v *fastjson.Value) {
	a, ok := array(v)
	if !ok {
		s.Value("attribute", v)
		return
	}
	b := n.attrJS[:0]
	b = append(b, '[')
	count := 0
	for _, e := range a {
		eo := object(e)
		if eo == nil {
			var ok bool
			mark := len(b)
			if count > 0 {
				b = append(b, ',')
			}
			if b, ok = ecs.AppendClean(b, e); ok {
				count++
			} else {
				b = b[:mark]
			}
			continue
		}
		if count > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		fields := 0
		eo.Visit(func(k []byte, v *fastjson.Value) {
			mark := len(b)
			if fields > 0 {
				b = append(b, ',')
			}
			b = ecs.AppendString(b, b2s(k))
			b = append(b, ':')
			ok := false
			if b2s(k) == "timestamp" {
				if t, good := parseUnix(v); good {
					b = append(b, '"')
					b = ecs.AppendTime(b, t, ecs.TimeLayout)
					b = append(b, '"')
					ok = true
				}
			}
			if !ok {
				b, ok = ecs.AppendClean(b, v)
			}
			if ok {
				fields++
			} else {
				b = b[:mark]
			}
		})
		b = append(b, '}')
		count++
	}
	b = append(b, ']')
	n.attrJS = b
	if count > 0 {
		s.Raw("attribute", b)
	}
}

// putUnix writes v at path of s as a date, read as seconds since the epoch
// (Elastic's date format UNIX); a failure is an error named name.
func (n *Normalizer) putUnix(s *fieldList, name, path string, v *fastjson.Value) {
	if isNull(v) {
		return
	}
	if t, ok := parseUnix(v); ok {
		s.Time(path, t)
	} else {
		n.errorf("%s: unable to parse date [%s]", name, display(v))
	}
}

// putLong writes v at path of s converted to a long, as Elastic's convert
// processor does; a failure is an error named name.
func (n *Normalizer) putLong(s *fieldList, name, path string, v *fastjson.Value) {
	if isNull(v) {
		return
	}
	if x, ok := toLong(v); ok {
		s.Int(path, x)
	} else {
		n.errorf("%s: unable to convert [%s] to long", name, display(v))
	}
}

// ---- Attribute --------------------------------------------------------------------

// Paths of the fields every attribute document may have.
var (
	pTimestamp       = ecs.NewPath("@timestamp")
	pECSVersion      = ecs.NewPath("ecs.version")
	pErrorMessage    = ecs.NewPath("error.message")
	pEventCategory   = ecs.NewPath("event.category")
	pEventDataset    = ecs.NewPath("event.dataset")
	pEventIngested   = ecs.NewPath("event.ingested")
	pEventKind       = ecs.NewPath("event.kind")
	pEventOriginal   = ecs.NewPath("event.original")
	pEventType       = ecs.NewPath("event.type")
	pMISPEvent       = ecs.NewPath("misp.event")
	pMISPObject      = ecs.NewPath("misp.object")
	pOrganizationID  = ecs.NewPath("organization.id")
	pTags            = ecs.NewPath("tags")
	pFeedName        = ecs.NewPath("threat.feed.name")
	pASNumber        = ecs.NewPath("threat.indicator.as.number")
	pEmailAddress    = ecs.NewPath("threat.indicator.email.address")
	pEmailSubject    = ecs.NewPath("threat.indicator.email.subject")
	pFileName        = ecs.NewPath("threat.indicator.file.name")
	pFirstSeen       = ecs.NewPath("threat.indicator.first_seen")
	pIP              = ecs.NewPath("threat.indicator.ip")
	pLastSeen        = ecs.NewPath("threat.indicator.last_seen")
	pMAC             = ecs.NewPath("threat.indicator.mac")
	pMarkingTLP      = ecs.NewPath("threat.indicator.marking.tlp")
	pName            = ecs.NewPath("threat.indicator.name")
	pPort            = ecs.NewPath("threat.indicator.port")
	pProvider        = ecs.NewPath("threat.indicator.provider")
	pRegistryKey     = ecs.NewPath("threat.indicator.registry.key")
	pRegistryValue   = ecs.NewPath("threat.indicator.registry.value")
	pScannerStats    = ecs.NewPath("threat.indicator.scanner_stats")
	pIndicatorType   = ecs.NewPath("threat.indicator.type")
	pURLDomain       = ecs.NewPath("threat.indicator.url.domain")
	pURLExtension    = ecs.NewPath("threat.indicator.url.extension")
	pURLFragment     = ecs.NewPath("threat.indicator.url.fragment")
	pURLFull         = ecs.NewPath("threat.indicator.url.full")
	pURLOriginal     = ecs.NewPath("threat.indicator.url.original")
	pURLPassword     = ecs.NewPath("threat.indicator.url.password")
	pURLPath         = ecs.NewPath("threat.indicator.url.path")
	pURLPort         = ecs.NewPath("threat.indicator.url.port")
	pURLQuery        = ecs.NewPath("threat.indicator.url.query")
	pURLScheme       = ecs.NewPath("threat.indicator.url.scheme")
	pURLUserInfo     = ecs.NewPath("threat.indicator.url.user_info")
	pURLUsername     = ecs.NewPath("threat.indicator.url.username")
	pUserEmail       = ecs.NewPath("user.email")
	pUserRoles       = ecs.NewPath("user.roles")
	hashPathPrefix   = "threat.indicator.file.hash."
	hashPaths        = map[string]*ecs.Path{}
	reporterRoleList = []string{roleReporter}
)

func init() {
	for t := range hashTypes {
		hashPaths[t] = ecs.NewPath(hashPathPrefix + t)
	}
}

// indicator is what an attribute's type and value map to.
type indicator struct {
	typ      string // threat.indicator.type
	name     string // threat.indicator.name
	hashPath *ecs.Path
	hashKey  string // the dotted path of a hash type without a Path
	hash     string
	fileName string
	url      ecs.URLParts
	isURL    bool
	domain   string
	ip       string
	port     int64
	hasPort  bool
	email    string
	subject  string
	regKey   string
	regValue string
	asNumber int64
	hasAS    bool
	mac      string
}

// attribute writes one attribute's document. o is the attribute (nil when
// the record is not an object), tags its Tag list. The event's and object's
// encodings are in n.ctx and n.objJS.
func (n *Normalizer) attribute(raw []byte, o *fastjson.Object, tags *fastjson.Value, defDataset string) vigil.Document {
	doc := vigil.Document{Dataset: n.dataset(defDataset), View: vigil.ViewIndicators}
	ingested := n.opts.Ingested.Truncate(time.Millisecond).UTC()
	var (
		typeV, valueV, tsV, firstV, lastV, deletedV, uuidV, decayV *fastjson.Value
	)
	if o != nil {
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch b2s(k) {
			case "type":
				typeV = v
			case "value":
				valueV = v
			case "timestamp":
				tsV = v
			case "first_seen":
				firstV = v
			case "last_seen":
				lastV = v
			case "deleted":
				deletedV = v
			case "uuid":
				uuidV = v
			case "decay_score":
				decayV = v
			}
		})
	}

	// Dates and expiry.
	var ts time.Time
	if o != nil {
		switch {
		case isNull(tsV):
			n.errorf("timestamp is missing: the attribute's expiry cannot be computed")
		default:
			var ok bool
			if ts, ok = parseUnix(tsV); !ok {
				n.errorf("timestamp: unable to parse date [%s]", display(tsV))
			}
		}
	}
	firstSeen, firstText := n.seen("first_seen", firstV)
	lastSeen, lastText := n.seen("last_seen", lastV)
	doc.Timestamp, n.ts = ts, ts
	if ts.IsZero() {
		doc.Timestamp = ingested
	}
	decayed, decayedAt := n.expiry(decayV, ts, lastSeen, ingested)
	deleted, _ := toBool(deletedV)
	if deleted && o != nil && (decayedAt.IsZero() || ingested.Before(decayedAt)) {
		decayed, decayedAt = true, ingested
	}
	doc.ExpiresAt = decayedAt

	// Type and value.
	typ, _ := str(typeV)
	var ind indicator
	value, valueIsStr := str(valueV)
	if typ != "" && !isNull(valueV) {
		if !valueIsStr {
			n.errorf("value: [%s] is not a string", display(valueV))
			ind.typ = typeOf(typ)
		} else {
			ind = n.mapValue(typ, value)
		}
	} else if typ != "" {
		ind.typ = typeOf(typ)
	}
	n.key = render(uuidV)
	if o != nil && n.key == "" {
		n.errorf("uuid is missing: the attribute cannot be keyed")
	}
	n.typ = ind.typ

	// Tags and TLP.
	n.tags = append(n.tags[:0], n.opts.Tags...)
	n.tlp = n.tlp[:0]
	n.strs = appendTagNames(n.strs[:0], tags)
	if n.isFeed {
		n.strs = append(n.strs, n.ctx.tags...)
	}
	for _, t := range n.strs {
		n.tags = appendUnique(n.tags, t)
		if rest, ok := strings.CutPrefix(t, "tlp:"); ok {
			n.tlp = appendUnique(n.tlp, strings.ToUpper(rest))
		}
	}
	if len(n.errs) > 0 {
		n.tags = appendUnique(n.tags, tagPreserve)
	}

	// misp.attribute.
	s := &n.fields
	s.reset()
	if o != nil {
		o.Visit(func(k []byte, v *fastjson.Value) {
			switch key := b2s(k); key {
			case "Event", "Tag", "Object", "timestamp":
			case "value":
				if ind.typ == "" {
					s.Value(key, v)
				}
			case "distribution":
				n.putLong(s, "distribution", key, v)
			case "first_seen":
				s.Str(key, firstText)
			case "last_seen":
				s.Str(key, lastText)
			default:
				s.Value(key, v)
			}
		})
		if !decayedAt.IsZero() {
			s.Bool("decayed", decayed)
			s.Time("decayed_at", decayedAt)
		}
	}

	// Write the document, in sorted order.
	d := &n.doc
	d.Reset()
	d.At(pTimestamp).Time(doc.Timestamp)
	d.At(pECSVersion).Str(ecsVersion)
	if len(n.errs) > 0 {
		d.At(pErrorMessage).Strs(n.errs)
	}
	d.At(pEventCategory).Strs(categoryThreat)
	d.At(pEventDataset).Str(doc.Dataset)
	if !n.opts.Ingested.IsZero() {
		d.At(pEventIngested).TimeLayout(n.opts.Ingested, ecs.TimeLayoutSeconds)
	}
	if len(n.errs) > 0 {
		d.At(pEventKind).Str(kindError)
	} else {
		d.At(pEventKind).Str("enrichment")
	}
	d.At(pEventOriginal).Str(b2s(raw))
	d.At(pEventType).Strs(typeIndicator)
	s.write(d, attributePrefix)
	d.At(pMISPEvent).Raw(n.ctx.js)
	d.At(pMISPObject).Raw(n.objJS)
	d.At(pOrganizationID).Str(n.ctx.orgID)
	d.At(pTags).Strs(n.tags)
	d.At(pFeedName).Str(n.feed)
	if ind.hasAS {
		d.At(pASNumber).Int(ind.asNumber)
	}
	d.At(pEmailAddress).Str(ind.email)
	d.At(pEmailSubject).Str(ind.subject)
	if ind.hashPath != nil {
		d.At(ind.hashPath).Str(ind.hash)
	} else if ind.hashKey != "" {
		d.Str(ind.hashKey, ind.hash)
	}
	d.At(pFileName).Str(ind.fileName)
	d.At(pFirstSeen).Time(firstSeen)
	d.At(pIP).Str(ind.ip)
	d.At(pLastSeen).Time(lastSeen)
	d.At(pMAC).Str(ind.mac)
	d.At(pMarkingTLP).Strs(n.tlp)
	d.At(pName).Str(ind.name)
	if ind.hasPort {
		d.At(pPort).Int(ind.port)
	}
	d.At(pProvider).Str(provider)
	d.At(pRegistryKey).Str(ind.regKey)
	d.At(pRegistryValue).Str(ind.regValue)
	if n.ctx.hasAnalysis {
		d.At(pScannerStats).Int(n.ctx.analysis)
	}
	d.At(pIndicatorType).Str(ind.typ)
	if ind.isURL {
		u := &ind.url
		d.At(pURLDomain).Str(u.Domain)
		d.At(pURLExtension).Str(u.Extension)
		d.At(pURLFragment).Str(u.Fragment)
		d.At(pURLFull).Str(u.Original)
		d.At(pURLOriginal).Str(u.Original)
		d.At(pURLPassword).Str(u.Password)
		d.At(pURLPath).Str(u.Path)
		if u.Port >= 0 {
			d.At(pURLPort).Int(int64(u.Port))
		}
		d.At(pURLQuery).Str(u.Query)
		d.At(pURLScheme).Str(u.Scheme)
		d.At(pURLUserInfo).Str(u.UserInfo)
		d.At(pURLUsername).Str(u.Username)
	} else {
		d.At(pURLDomain).Str(ind.domain)
	}
	if n.ctx.email != "" {
		d.At(pUserEmail).Str(n.ctx.email)
		d.At(pUserRoles).Strs(reporterRoleList)
	}
	return n.encode(&doc)
}

// seen parses first_seen or last_seen: microseconds since the epoch (a
// string of digits or a number), as Elastic reads them, or ISO 8601. It
// returns the time (to the millisecond) and the text misp.attribute keeps:
// the microseconds cut to milliseconds, as Elastic's script leaves them, or
// the ISO 8601 text as given. A value that is neither is an error.
func (n *Normalizer) seen(name string, v *fastjson.Value) (time.Time, string) {
	if isNull(v) {
		return time.Time{}, ""
	}
	var s string
	switch v.Type() {
	case fastjson.TypeString:
		s, _ = str(v)
	case fastjson.TypeNumber:
		s = string(v.MarshalTo(nil))
	default:
		n.errorf("%s: unable to parse date [%s]", name, display(v))
		return time.Time{}, ""
	}
	if s == "" {
		return time.Time{}, ""
	}
	if digits(s) {
		if len(s) > 3 {
			s = s[:len(s)-3]
		}
		ms, err := strconv.ParseInt(s, 10, 64)
		if err == nil && ms > -62135596800000 && ms < 253402300800000 {
			return time.UnixMilli(ms).UTC(), s
		}
	} else if t, ok := ecs.ParseTime(s); ok {
		return t.Truncate(time.Millisecond), s
	}
	n.errorf("%s: unable to parse date [%s]", name, s)
	return time.Time{}, ""
}

// digits reports whether s is an optional minus sign and decimal digits.
func digits(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// expiry returns misp.attribute.decayed and decayed_at (see Normalizer).
func (n *Normalizer) expiry(decay *fastjson.Value, ts, lastSeen, ingested time.Time) (bool, time.Time) {
	if scores, ok := array(decay); ok && len(scores) > 0 {
		count := 0
		for _, s := range scores {
			if b, ok := toBool(s.Get("decayed")); ok && b {
				count++
			}
		}
		if float64(count) >= float64(len(scores))/2 {
			return true, ingested.Add(-2 * time.Minute)
		}
	}
	if n.opts.ExpirationDuration == "" {
		return false, time.Time{}
	}
	if n.expErr != nil {
		n.errorf("ioc_expiration_duration: %v", n.expErr)
		return false, time.Time{}
	}
	if ts.IsZero() {
		return false, time.Time{}
	}
	base := ts
	if lastSeen.After(base) {
		base = lastSeen
	}
	if n.isFeed && ingested.After(base) {
		base = ingested
	}
	at := base.Add(n.expDur)
	return at.Before(ingested), at
}

// typeOf returns the threat.indicator.type Elastic gives a MISP type.
func typeOf(t string) string {
	switch {
	case hashTypes[t] || strings.HasPrefix(t, "filename"):
		return "file"
	case t == "url" || t == "link" || t == "uri":
		return "url"
	case strings.HasPrefix(t, "regkey"):
		return "windows-registry-key"
	case t == "AS":
		return "autonomous-system"
	case t == "hostname" || strings.HasPrefix(t, "domain"):
		return "domain-name"
	case t == "ip-src" || t == "ip-dst" || t == "ip-src|port" || t == "ip-dst|port":
		return "ipv4-addr"
	case strings.HasPrefix(t, "email"):
		return "email-addr"
	case t == "mac-address" || t == "mac-eui-64":
		return "mac-addr"
	case t == "mime-type":
		return "artifact"
	case t == "mutex":
		return "mutex"
	case t == "cpe":
		return "software"
	}
	return ""
}

// mapValue maps an attribute's type and value to the indicator fields, as
// Elastic's pipeline does (with the differences Normalizer lists). Errors
// are recorded.
func (n *Normalizer) mapValue(t, v string) (ind indicator) {
	ind.typ = typeOf(t)
	switch ind.typ {
	case "file":
		switch {
		case hashTypes[t]:
			ind.hashPath, ind.hash, ind.name = hashPaths[t], v, v
		case t == "filename":
			ind.fileName, ind.name = v, v
		case strings.HasPrefix(t, "filename|"):
			// Elastic names the hash field after the first word of the
			// type's second part (sha3-256 gives sha3); vigil keeps a
			// hash type it knows whole.
			ht := t[len("filename|"):]
			if !hashTypes[ht] {
				ht = word(ht)
			}
			name, hash, ok := strings.Cut(v, "|")
			if ht == "" || !ok {
				n.errorf("value: [%s] does not match %s (<file name>|<hash>)", v, t)
				return ind
			}
			ind.fileName, ind.hash, ind.name = name, hash, hash
			if ind.hashPath = hashPaths[ht]; ind.hashPath == nil {
				ind.hashKey = hashPathPrefix + ht
			}
		default:
			ind.name = v
		}
	case "url":
		ind.url = ecs.ParseURL(v)
		ind.isURL, ind.name = true, v
	case "windows-registry-key":
		if t == "regkey|value" {
			key, val, ok := strings.Cut(v, "|")
			if !ok {
				n.errorf("value: [%s] does not match regkey|value (<key>|<value>)", v)
				return ind
			}
			ind.regKey, ind.regValue, ind.name = key, val, key
		} else {
			ind.regKey, ind.name = v, v
		}
	case "autonomous-system":
		x, ok := parseLong(v)
		if !ok {
			n.errorf("value: unable to convert [%s] to long", v)
			return ind
		}
		ind.asNumber, ind.hasAS, ind.name = x, true, v
	case "domain-name":
		if t == "domain|ip" {
			dom, ip, ok := strings.Cut(v, "|")
			if !ok || !validIP(ip) {
				n.errorf("value: [%s] does not match domain|ip (<domain>|<IP address>)", v)
				return ind
			}
			ind.domain, ind.ip, ind.name = dom, ip, dom
		} else {
			ind.domain, ind.name = v, v
		}
	case "ipv4-addr":
		ip := v
		if strings.HasSuffix(t, "|port") {
			var port string
			var ok bool
			ip, port, ok = strings.Cut(v, "|")
			p, good := parseLong(port)
			if !ok || !good || !validIP(ip) {
				n.errorf("value: [%s] does not match %s (<IP address>|<port>)", v, t)
				return ind
			}
			ind.port, ind.hasPort = p, true
		} else if !validIP(ip) && !validPrefix(ip) {
			n.errorf("value: [%s] is not an IP address or CIDR block", v)
			return ind
		}
		if strings.IndexByte(ip, ':') >= 0 {
			ind.typ = "ipv6-addr"
		}
		ind.ip, ind.name = ip, ip
	case "email-addr":
		switch t {
		case "email", "email-src", "email-dst":
			ind.email, ind.name = v, v
		case "email-subject":
			ind.subject = v
		}
	case "mac-addr":
		ind.mac, ind.name = v, v
	case "artifact", "mutex", "software":
		ind.name = v
	}
	return ind
}

// word returns the leading run of word characters of s, as grok's WORD
// matches.
func word(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			i++
			continue
		}
		break
	}
	return s[:i]
}

func validIP(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Zone() == ""
}

func validPrefix(s string) bool {
	_, err := netip.ParsePrefix(s)
	return err == nil
}

// appendTagNames appends the names of a Tag list, without the backslashes
// and double quotes Elastic strips from them.
func appendTagNames(dst []string, tags *fastjson.Value) []string {
	a, _ := array(tags)
	for _, t := range a {
		name, ok := str(t.Get("name"))
		if !ok || name == "" {
			continue
		}
		if strings.ContainsAny(name, `\"`) {
			name = strings.NewReplacer(`\`, "", `"`, "").Replace(name)
		}
		dst = append(dst, name)
	}
	return dst
}

// appendUnique appends s unless it is empty or already in list, as Elastic's
// append processor with allow_duplicates false does.
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

// encode encodes the document into doc.Source and sets doc.Error, Key and
// Type, copying Key and Type (which may point into a parser's buffer) into
// the Source's allocation.
func (n *Normalizer) encode(doc *vigil.Document) vigil.Document {
	if len(n.errs) > 0 {
		doc.Error = strings.Join(n.errs, "; ")
	}
	extra := len(n.key) + len(n.typ)
	buf := n.doc.Encode(extra)
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

// ---- Values ------------------------------------------------------------------------

// isNull reports whether v is missing or JSON null.
func isNull(v *fastjson.Value) bool { return ecs.IsNull(v) }

// str returns v's string, if v is a string.
func str(v *fastjson.Value) (string, bool) { return ecs.Str(v) }

func object(v *fastjson.Value) *fastjson.Object { return ecs.Object(v) }

func array(v *fastjson.Value) ([]*fastjson.Value, bool) { return ecs.Array(v) }

// render returns a string or number as text, "" for anything else.
func render(v *fastjson.Value) string {
	if v == nil {
		return ""
	}
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := str(v)
		return s
	case fastjson.TypeNumber:
		return string(v.MarshalTo(nil))
	}
	return ""
}

// display returns v for an error message.
func display(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := str(v)
		return truncate(s, 100)
	case fastjson.TypeNull:
		return "null"
	}
	return truncate(string(v.MarshalTo(nil)), 100)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// toBool converts v as Elastic's convert processor does to "boolean".
func toBool(v *fastjson.Value) (bool, bool) { return ecs.ToBool(v) }

// toLong converts a string or number as Elastic's convert processor does
// to "long".
func toLong(v *fastjson.Value) (int64, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		s, _ := str(v)
		return parseLong(s)
	case fastjson.TypeNumber:
		return parseLong(string(v.MarshalTo(nil)))
	}
	return 0, false
}

// parseLong parses s as Java's Long.decode-like conversion of Elastic's
// convert processor: decimal, or hexadecimal with 0x.
func parseLong(s string) (int64, bool) { return ecs.ParseLong(s) }

// parseUnix parses a time in seconds since the epoch, as Elastic's date
// format UNIX does: a string or a number, with an optional fraction, kept
// to the millisecond.
func parseUnix(v *fastjson.Value) (time.Time, bool) {
	var s string
	switch v.Type() {
	case fastjson.TypeString:
		s, _ = str(v)
	case fastjson.TypeNumber:
		var buf [32]byte
		s = string(v.MarshalTo(buf[:0]))
	default:
		return time.Time{}, false
	}
	if digits(s) {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < -62135596800 || sec > 253402300799 {
			return time.Time{}, false
		}
		return time.Unix(sec, 0).UTC(), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f < -62135596800 || f > 253402300799 || strings.ContainsAny(s, "xXnN_") {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(f*1000 + copysignHalf(f))).UTC(), true
}

func copysignHalf(f float64) float64 {
	if f < 0 {
		return -0.5
	}
	return 0.5
}
