package threatconnect

import (
	"strconv"
	"time"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// jsonWriter writes a JSON object whose keys come in the order a Doc
// sorts them, for the fast path of Indicator. An object is opened when its
// first member may come, and taken back when none came, as a Doc leaves out
// empty objects.
//
// The text is a slice its methods take and return, kept by the caller in a
// local variable rather than in the Normalizer, where every append would
// store a pointer (with a write barrier while the GC marks).
type jsonWriter struct {
	has bool // the innermost open object has a member
}

// section is an object a jsonWriter opened, to close.
type section struct {
	mark int  // where its key starts, with the comma before it
	had  bool // the object around it had a member
}

// open opens the object or objects keys names, as `"a":{"b":{`.
func (w *jsonWriter) open(b []byte, keys string) ([]byte, section) {
	s := section{len(b), w.has}
	if w.has {
		b = append(b, ',')
	}
	w.has = false
	return append(b, keys...), s
}

// close closes what open opened, with closers (one '}' each), or takes it
// back when nothing was written in it.
func (w *jsonWriter) close(b []byte, s section, closers string) []byte {
	if !w.has {
		w.has = s.had
		return b[:s.mark]
	}
	return append(b, closers...)
}

// key writes k, `"name":`, with the comma before it.
func (w *jsonWriter) key(b []byte, k string) []byte {
	if w.has {
		b = append(b, ',')
	}
	w.has = true
	return append(b, k...)
}

// lit writes js, members encoded ahead, unless it is empty.
func (w *jsonWriter) lit(b []byte, js string) []byte {
	if js == "" {
		return b
	}
	if w.has {
		b = append(b, ',')
	}
	w.has = true
	return append(b, js...)
}

// str writes s at k as Doc.Str: an empty s is left out.
func (w *jsonWriter) str(b []byte, k, s string) []byte {
	if s == "" {
		return b
	}
	return ecs.AppendString(w.key(b, k), s)
}

// strs writes list at k as Doc.Strs: empty strings are left out, and a
// list with nothing left.
func (w *jsonWriter) strs(b []byte, k string, list []string) []byte {
	count := 0
	for _, s := range list {
		if s == "" {
			continue
		}
		if count == 0 {
			b = append(w.key(b, k), '[')
		} else {
			b = append(b, ',')
		}
		b = ecs.AppendString(b, s)
		count++
	}
	if count > 0 {
		b = append(b, ']')
	}
	return b
}

// raw writes the JSON text js at k unless it is empty.
func (w *jsonWriter) raw(b []byte, k string, js []byte) []byte {
	if len(js) == 0 {
		return b
	}
	return append(w.key(b, k), js...)
}

// rawIn writes the JSON text js, unless it is empty, after keys, which
// open one object, as `"a":{"b":`.
func (w *jsonWriter) rawIn(b []byte, keys string, js []byte) []byte {
	if len(js) == 0 {
		return b
	}
	return append(append(w.key(b, keys), js...), '}')
}

// time writes t at k as Doc.Time: a zero t is left out.
func (w *jsonWriter) time(b []byte, k string, t time.Time, dates *ecs.DateCache) []byte {
	if t.IsZero() {
		return b
	}
	return ecs.AppendTimeValue(w.key(b, k), t, dates)
}

// date writes the date v at k as subDate does: a value that is not a date
// is left out.
func (w *jsonWriter) date(b []byte, k string, v sval, dates *ecs.DateCache) []byte {
	if v.k != kString {
		return b
	}
	t, ok := ecs.ParseTime(v.s)
	if !ok {
		return b
	}
	return w.time(b, k, t.Truncate(time.Millisecond), dates)
}

// scalar writes v at k as Doc.Value writes a scalar: null and "" are left
// out, numbers are written as Elasticsearch writes them back.
func (w *jsonWriter) scalar(b []byte, k string, v sval) []byte {
	switch v.k {
	case kString:
		return w.str(b, k, v.s)
	case kTrue:
		return append(w.key(b, k), "true"...)
	case kFalse:
		return append(w.key(b, k), "false"...)
	case kNumber:
		had, mark := w.has, len(b)
		b, ok := ecs.AppendNumber(w.key(b, k), v.s)
		return w.keep(b, ok, mark, had)
	}
	return b
}

// keep returns b when ok, or else b without what was written from mark on,
// had telling whether the object had a member before.
func (w *jsonWriter) keep(b []byte, ok bool, mark int, had bool) []byte {
	if !ok {
		w.has = had
		return b[:mark]
	}
	return b
}

// openElem starts an object element of the array being built in b, which
// is empty before the first: '[' or ',', and '{'. It returns where the
// element starts, for closeElem.
func openElem(b []byte) ([]byte, int) {
	mark := len(b)
	if mark == 0 {
		b = append(b, '[')
	} else {
		b = append(b, ',')
	}
	return append(b, '{'), mark
}

// closeElem ends the element openElem started, or takes it back when w,
// which wrote it, wrote nothing: an empty element is left out.
func (w *jsonWriter) closeElem(b []byte, mark int) []byte {
	if !w.has {
		return b[:mark]
	}
	return append(b, '}')
}

// boolean writes a converted boolean at k.
func (w *jsonWriter) boolean(b []byte, k string, v optBool) []byte {
	switch {
	case !v.ok:
		return b
	case v.v:
		return append(w.key(b, k), "true"...)
	}
	return append(w.key(b, k), "false"...)
}

// long writes a converted long at k.
func (w *jsonWriter) long(b []byte, k string, v optLong) []byte {
	if !v.ok {
		return b
	}
	return strconv.AppendInt(w.key(b, k), v.v, 10)
}

// double writes a converted double at k as Doc.Float.
func (w *jsonWriter) double(b []byte, k string, v optDouble) []byte {
	if !v.ok {
		return b
	}
	if x := int64(v.v); float64(x) == v.v && x > -1e7 && x < 1e7 && x != 0 {
		// Most: an integer, which Java writes with ".0".
		return append(strconv.AppendInt(w.key(b, k), x, 10), '.', '0')
	}
	had, mark := w.has, len(b)
	b, ok := ecs.AppendJavaFloat64(w.key(b, k), v.v)
	return w.keep(b, ok, mark, had)
}

// indicatorLits are the parts of an indicator's document that depend only
// on the options, encoded once, for writeIndicator.
type indicatorLits struct {
	done bool
	// eventHead: event.category and event.dataset; eventTail:
	// event.ingested, event.kind and the key of event.original.
	eventHead, eventTail string
	tags                 string // the configured tags, or ""
	expiration           string // expiration_duration, or ""
}

// indicatorLits returns n's indicatorLits, encoding them the first time.
func (n *Normalizer) indicatorLits() *indicatorLits {
	l := &n.fast.lits
	if l.done {
		return l
	}
	var w jsonWriter
	b := w.raw(nil, `"category":`, []byte(`["threat"]`))
	b = w.str(b, `"dataset":`, n.opts.Dataset)
	l.eventHead = string(b)
	w.has = false
	b = nil
	if !n.opts.Ingested.IsZero() {
		b = append(w.key(nil, `"ingested":`), '"')
		b = append(ecs.AppendTime(b, n.opts.Ingested, ecs.TimeLayoutSeconds), '"')
	}
	b = w.str(b, `"kind":`, "enrichment")
	l.eventTail = string(w.key(b, `"original":`))
	w.has = false
	l.tags = string(w.strs(nil, `"tags":`, n.opts.Tags))
	w.has = false
	l.expiration = string(w.str(nil, `"expiration_duration":`, n.opts.ExpirationDuration))
	l.done = true
	return l
}

// indicatorOut is what fastIndicator worked out for a record, to write.
type indicatorOut struct {
	raw                                                    string
	ts, modified, deletedAt                                time.Time
	dateAdded, extAdded, extExpires, extModified           time.Time
	firstSeen, lastFP, lastSeen                            time.Time
	tcType, ip, address, userName, userDomain              string
	indType                                                string
	indList, isFile, isRegistry, isURL                     bool
	md5, sha1, sha256, hostName, confidence                string
	asNumber, fileSize                                     int64
	hasAS, hasConfidence, hasFileSize                      bool
	active, activeLocked, dnsActive, fpByUser              optBool
	privateFlag, whoisActive                               optBool
	confLong, fpCount, taScore, taScoreFP, taScoreObserved optLong
	rating, taConfidence, taRating                         optDouble
}

// writeIndicator writes the document of a record fastIndicator took to
// n.fast.wbuf, as Indicator writes it to n.doc, with the same keys and
// values in the same order: the two must agree byte for byte (see
// FuzzIndicatorScan). Such a record has no errors, and only the members
// plainFields holds.
func (n *Normalizer) writeIndicator(o *indicatorOut) {
	lits := n.indicatorLits()
	f := &n.fast.f.v
	dates := &n.fast.dates
	var w jsonWriter
	var s, s2 section
	b := append(n.fast.wbuf[:0], '{')
	b = w.time(b, `"@timestamp":`, o.ts, dates)
	b = w.lit(b, `"ecs":{"version":"`+ecsVersion+`"}`)
	b, s = w.open(b, `"email":{`)
	if len(n.emailFrom) > 0 {
		b, s2 = w.open(b, `"from":{`)
		b = w.strs(b, `"address":`, n.emailFrom)
		b = w.close(b, s2, "}")
	}
	b = w.scalar(b, `"subject":`, f[fSubject])
	if len(n.emailTo) > 0 {
		b, s2 = w.open(b, `"to":{`)
		b = w.strs(b, `"address":`, n.emailTo)
		b = w.close(b, s2, "}")
	}
	b = w.close(b, s, "}")

	b, s = w.open(b, `"event":{`)
	b = w.lit(b, lits.eventHead)
	b = w.scalar(b, `"id":`, f[fSummary])
	b = w.lit(b, lits.eventTail)
	b = ecs.AppendString(b, o.raw)
	b = append(b, `,"type":["indicator"]}`...)

	b, s = w.open(b, `"observer":{`)
	b = w.scalar(b, `"hostname":`, f[fHostName])
	b = w.close(b, s, "}")
	b, s = w.open(b, `"os":{`)
	b = w.strs(b, `"family":`, n.osFamily)
	b = w.close(b, s, "}")
	b, s = w.open(b, `"related":{`)
	b = w.strs(b, `"hash":`, n.relHash)
	b = w.strs(b, `"hosts":`, n.relHosts)
	b = w.strs(b, `"ip":`, n.relIP)
	b = w.strs(b, `"user":`, n.relUser)
	b = w.close(b, s, "}")
	b = w.lit(b, lits.tags)

	b, s = w.open(b, `"threat":{`)
	b, s2 = w.open(b, `"indicator":{`)
	if o.hasAS {
		b = strconv.AppendInt(w.key(b, `"as":{"number":`), o.asNumber, 10)
		b = append(b, '}')
	}
	b = w.str(b, `"confidence":`, o.confidence)
	b = w.scalar(b, `"description":`, f[fDescription])
	if o.address != "" {
		b = ecs.AppendString(w.key(b, `"email":{"address":`), o.address)
		b = append(b, '}')
	}
	if o.isFile {
		var s3, s4 section
		b, s3 = w.open(b, `"file":{`)
		b, s4 = w.open(b, `"hash":{`)
		b = w.str(b, `"md5":`, o.md5)
		b = w.str(b, `"sha1":`, o.sha1)
		b = w.str(b, `"sha256":`, o.sha256)
		b = w.close(b, s4, "}")
		if o.hasFileSize {
			b = strconv.AppendInt(w.key(b, `"size":`), o.fileSize, 10)
		}
		b = w.close(b, s3, "}")
	}
	b = w.time(b, `"first_seen":`, o.firstSeen, dates)
	if o.tcType == "Address" {
		b = w.str(b, `"ip":`, o.ip)
	}
	b = w.time(b, `"last_seen":`, o.lastSeen, dates)
	if len(n.tlp) > 0 {
		b = append(w.key(b, `"marking":{`), `"tlp":`...)
		b = append(b, '[')
		for i, t := range n.tlp {
			if i > 0 {
				b = append(b, ',')
			}
			b = ecs.AppendString(b, t)
		}
		b = append(b, "]}"...)
	}
	b = w.time(b, `"modified_at":`, o.extModified, dates)
	b = w.lit(b, `"provider":"`+provider+`"`)
	b = w.strs(b, `"reference":`, n.refs)
	if o.isRegistry {
		var s3 section
		b, s3 = w.open(b, `"registry":{`)
		var s4 section
		b, s4 = w.open(b, `"data":{`)
		b = w.scalar(b, `"type":`, f[fValueType])
		b = w.close(b, s4, "}")
		b = w.scalar(b, `"path":`, f[fKeyName])
		b = w.scalar(b, `"value":`, f[fValueName])
		b = w.close(b, s3, "}")
	}
	if o.indType != "" {
		if o.indList {
			b = append(ecs.AppendString(append(w.key(b, `"type":`), '['), o.indType), ']')
		} else {
			b = w.str(b, `"type":`, o.indType)
		}
	}
	var s3 section
	b, s3 = w.open(b, `"url":{`)
	if o.tcType == "Host" {
		b = w.str(b, `"domain":`, o.hostName)
	}
	if o.isURL {
		b = w.scalar(b, `"original":`, f[fText])
	}
	b = w.close(b, s3, "}")
	b = w.close(b, s2, "}")
	b, s2 = w.open(b, `"technique":{`)
	b = w.strs(b, `"id":`, n.techID)
	b = w.strs(b, `"name":`, n.techName)
	b = w.close(b, s2, "}")
	b = w.close(b, s, "}")

	b, s = w.open(b, `"threat_connect":{"indicator":{`)
	b, s2 = w.open(b, `"active":{`)
	b = w.boolean(b, `"locked":`, o.activeLocked)
	b = w.boolean(b, `"value":`, o.active)
	b = w.close(b, s2, "}")
	b = w.scalar(b, `"address":`, f[fAddress])
	b = w.scalar(b, `"as_number":`, f[fASNumber])
	b = w.scalar(b, `"associated_artifacts":`, f[fArtifacts])
	b = w.scalar(b, `"associated_cases":`, f[fCases])
	b = w.rawIn(b, `"associated_groups":{"data":`, n.groups)
	b = w.rawIn(b, `"associated_indicators":{"data":`, n.indicators)
	b = w.rawIn(b, `"attributes":{"data":`, n.attributes)
	b = w.scalar(b, `"block":`, f[fBlock])
	b = w.long(b, `"confidence":`, o.confLong)
	b = w.scalar(b, `"custom_associations":`, f[fCustomAssoc])
	b = w.time(b, `"date_added":`, o.dateAdded, dates)
	b = w.time(b, `"deleted_at":`, o.deletedAt, dates)
	b = w.scalar(b, `"description":`, f[fDescription])
	b = w.boolean(b, `"dns_active":`, o.dnsActive)
	b = w.scalar(b, `"dns_resolution":`, f[fDNSResolution])
	b = w.scalar(b, `"enrichment":`, f[fEnrichment])
	b = w.lit(b, lits.expiration)
	b, s2 = w.open(b, `"external":{"date":{`)
	b = w.time(b, `"added":`, o.extAdded, dates)
	b = w.time(b, `"expires":`, o.extExpires, dates)
	b = w.close(b, s2, "}}")
	if !o.extModified.IsZero() {
		b = ecs.AppendTimeValue(w.key(b, `"external_last":{"modified":`), o.extModified, dates)
		b = append(b, '}')
	}
	b = w.boolean(b, `"false_positive_reported_by_user":`, o.fpByUser)
	b = w.long(b, `"false_positives":`, o.fpCount)
	b = w.scalar(b, `"file_actions":`, f[fFileActions])
	b = w.scalar(b, `"file_occurrences":`, f[fFileOccurrences])
	b = w.time(b, `"first_seen":`, o.firstSeen, dates)
	b = w.scalar(b, `"generic_custom_indicator_values":`, f[fGenericValues])
	b = w.scalar(b, `"geo_location":`, f[fGeoLocation])
	b = w.scalar(b, `"hashtag":`, f[fHashtag])
	b = w.scalar(b, `"host_name":`, f[fHostName])
	b = n.writeString(&w, b, `"id":`, f[fID])
	b = w.scalar(b, `"investigation_links":`, f[fInvestigationLinks])
	b = w.str(b, `"ip":`, o.ip)
	b = w.scalar(b, `"key_name":`, f[fKeyName])
	b = w.time(b, `"last_false_positive":`, o.lastFP, dates)
	b = w.time(b, `"last_modified":`, o.modified, dates)
	b = w.time(b, `"last_seen":`, o.lastSeen, dates)
	b = w.scalar(b, `"legacy_link":`, f[fLegacyLink])
	b = w.str(b, `"md5":`, o.md5)
	b = w.scalar(b, `"mutex":`, f[fMutex])
	b = w.scalar(b, `"observations":`, f[fObservations])
	b, s2 = w.open(b, `"owner":{`)
	b = n.writeString(&w, b, `"id":`, f[fOwnerID])
	b = w.scalar(b, `"name":`, f[fOwnerName])
	b = w.close(b, s2, "}")
	b = w.boolean(b, `"private_flag":`, o.privateFlag)
	b = w.double(b, `"rating":`, o.rating)
	b = w.rawIn(b, `"security_labels":{"data":`, n.fast.labels)
	b = w.str(b, `"sha1":`, o.sha1)
	b = w.str(b, `"sha256":`, o.sha256)
	b = n.writeString(&w, b, `"size":`, f[fSize])
	b = w.scalar(b, `"source":`, f[fSource])
	b = w.scalar(b, `"subject":`, f[fSubject])
	b = w.scalar(b, `"summary":`, f[fSummary])
	b = w.rawIn(b, `"tags":{"data":`, n.fast.tags)
	b = w.scalar(b, `"text":`, f[fText])
	b, s2 = w.open(b, `"threat_assess":{`)
	b = w.double(b, `"confidence":`, o.taConfidence)
	b = w.double(b, `"rating":`, o.taRating)
	b, s3 = w.open(b, `"score":{`)
	b = w.long(b, `"false_positive":`, o.taScoreFP)
	b = w.long(b, `"observed":`, o.taScoreObserved)
	b = w.long(b, `"value":`, o.taScore)
	b = w.close(b, s3, "}")
	b = w.close(b, s2, "}")
	b = w.scalar(b, `"tracked_users":`, f[fTrackedUsers])
	b = w.scalar(b, `"type":`, f[fType])
	b = w.scalar(b, `"user_agent_string":`, f[fUserAgent])
	b, s2 = w.open(b, `"value":{`)
	b = w.scalar(b, `"name":`, f[fValueName])
	b = w.scalar(b, `"type":`, f[fValueType])
	b = w.close(b, s2, "}")
	b = w.scalar(b, `"web_link":`, f[fWebLink])
	b = w.scalar(b, `"who_is":`, f[fWhoIs])
	b = w.boolean(b, `"whois_active":`, o.whoisActive)
	b = w.close(b, s, "}}")

	b, s = w.open(b, `"user":{`)
	b = w.str(b, `"domain":`, o.userDomain)
	b = w.str(b, `"email":`, o.address)
	b = w.str(b, `"name":`, o.userName)
	b = w.close(b, s, "}")
	b, s = w.open(b, `"user_agent":{`)
	b = w.scalar(b, `"original":`, f[fUserAgent])
	b = w.close(b, s, "}")
	n.fast.wbuf = append(b, '}')
}

// writeString writes v at k as putString: converted to a string, numbers
// as Java prints them.
func (n *Normalizer) writeString(w *jsonWriter, b []byte, k string, v sval) []byte {
	switch v.k {
	case kNumber:
		return w.str(b, k, ecs.B2S(n.javaNumberS(v.s)))
	case kTrue:
		return w.str(b, k, "true")
	case kFalse:
		return w.str(b, k, "false")
	}
	return w.scalar(b, k, v)
}
