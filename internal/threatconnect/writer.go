package threatconnect

import (
	"strconv"
	"time"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// jsonWriter is the ecs.JSONWriter the fast path of Indicator writes with,
// with the methods for the values scanIndicator takes.
type jsonWriter struct{ ecs.JSONWriter }

// rawIn writes the JSON text js, unless it is empty, after keys, which
// open one object, as `"a":{"b":`.
func (w *jsonWriter) rawIn(b []byte, keys string, js []byte) []byte {
	if len(js) == 0 {
		return b
	}
	return append(append(w.Key(b, keys), js...), '}')
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
	return w.Time(b, k, t.Truncate(time.Millisecond), dates)
}

// scalar writes v at k as Doc.Value writes a scalar: null and "" are left
// out, numbers are written as Elasticsearch writes them back.
func (w *jsonWriter) scalar(b []byte, k string, v sval) []byte {
	switch v.k {
	case kString:
		return w.Str(b, k, v.s)
	case kTrue:
		return append(w.Key(b, k), "true"...)
	case kFalse:
		return append(w.Key(b, k), "false"...)
	case kNumber:
		had, mark := w.Has, len(b)
		b, ok := ecs.AppendNumber(w.Key(b, k), v.s)
		return w.Keep(b, ok, mark, had)
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
	if !w.Has {
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
		return append(w.Key(b, k), "true"...)
	}
	return append(w.Key(b, k), "false"...)
}

// long writes a converted long at k.
func (w *jsonWriter) long(b []byte, k string, v optLong) []byte {
	if !v.ok {
		return b
	}
	return strconv.AppendInt(w.Key(b, k), v.v, 10)
}

// double writes a converted double at k as Doc.Float.
func (w *jsonWriter) double(b []byte, k string, v optDouble) []byte {
	if !v.ok {
		return b
	}
	if x := int64(v.v); float64(x) == v.v && x > -1e7 && x < 1e7 && x != 0 {
		// Most: an integer, which Java writes with ".0".
		return append(strconv.AppendInt(w.Key(b, k), x, 10), '.', '0')
	}
	had, mark := w.Has, len(b)
	b, ok := ecs.AppendJavaFloat64(w.Key(b, k), v.v)
	return w.Keep(b, ok, mark, had)
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
	b := w.Raw(nil, `"category":`, []byte(`["threat"]`))
	b = w.Str(b, `"dataset":`, n.opts.Dataset)
	l.eventHead = string(b)
	w.Has = false
	b = nil
	if !n.opts.Ingested.IsZero() {
		b = append(w.Key(nil, `"ingested":`), '"')
		b = append(ecs.AppendTime(b, n.opts.Ingested, ecs.TimeLayoutSeconds), '"')
	}
	b = w.Str(b, `"kind":`, "enrichment")
	l.eventTail = string(w.Key(b, `"original":`))
	w.Has = false
	l.tags = string(w.Strs(nil, `"tags":`, n.opts.Tags))
	w.Has = false
	l.expiration = string(w.Str(nil, `"expiration_duration":`, n.opts.ExpirationDuration))
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
	var s, s2 ecs.Section
	b := append(n.opts.Arena.OpenOr(n.fast.wbuf), '{')
	b = w.Time(b, `"@timestamp":`, o.ts, dates)
	b = w.Lit(b, `"ecs":{"version":"`+ecsVersion+`"}`)
	b, s = w.Open(b, `"email":{`)
	if len(n.emailFrom) > 0 {
		b, s2 = w.Open(b, `"from":{`)
		b = w.Strs(b, `"address":`, n.emailFrom)
		b = w.Close(b, s2, "}")
	}
	b = w.scalar(b, `"subject":`, f[fSubject])
	if len(n.emailTo) > 0 {
		b, s2 = w.Open(b, `"to":{`)
		b = w.Strs(b, `"address":`, n.emailTo)
		b = w.Close(b, s2, "}")
	}
	b = w.Close(b, s, "}")

	b, s = w.Open(b, `"event":{`)
	b = w.Lit(b, lits.eventHead)
	b = w.scalar(b, `"id":`, f[fSummary])
	b = w.Lit(b, lits.eventTail)
	b = ecs.AppendString(b, o.raw)
	b = append(b, `,"type":["indicator"]}`...)

	b, s = w.Open(b, `"observer":{`)
	b = w.scalar(b, `"hostname":`, f[fHostName])
	b = w.Close(b, s, "}")
	b, s = w.Open(b, `"os":{`)
	b = w.Strs(b, `"family":`, n.osFamily)
	b = w.Close(b, s, "}")
	b, s = w.Open(b, `"related":{`)
	b = w.Strs(b, `"hash":`, n.relHash)
	b = w.Strs(b, `"hosts":`, n.relHosts)
	b = w.Strs(b, `"ip":`, n.relIP)
	b = w.Strs(b, `"user":`, n.relUser)
	b = w.Close(b, s, "}")
	b = w.Lit(b, lits.tags)

	b, s = w.Open(b, `"threat":{`)
	b, s2 = w.Open(b, `"indicator":{`)
	if o.hasAS {
		b = strconv.AppendInt(w.Key(b, `"as":{"number":`), o.asNumber, 10)
		b = append(b, '}')
	}
	b = w.Str(b, `"confidence":`, o.confidence)
	b = w.scalar(b, `"description":`, f[fDescription])
	if o.address != "" {
		b = ecs.AppendString(w.Key(b, `"email":{"address":`), o.address)
		b = append(b, '}')
	}
	if o.isFile {
		var s3, s4 ecs.Section
		b, s3 = w.Open(b, `"file":{`)
		b, s4 = w.Open(b, `"hash":{`)
		b = w.Str(b, `"md5":`, o.md5)
		b = w.Str(b, `"sha1":`, o.sha1)
		b = w.Str(b, `"sha256":`, o.sha256)
		b = w.Close(b, s4, "}")
		if o.hasFileSize {
			b = strconv.AppendInt(w.Key(b, `"size":`), o.fileSize, 10)
		}
		b = w.Close(b, s3, "}")
	}
	b = w.Time(b, `"first_seen":`, o.firstSeen, dates)
	if o.tcType == "Address" {
		b = w.Str(b, `"ip":`, o.ip)
	}
	b = w.Time(b, `"last_seen":`, o.lastSeen, dates)
	if len(n.tlp) > 0 {
		b = append(w.Key(b, `"marking":{`), `"tlp":`...)
		b = append(b, '[')
		for i, t := range n.tlp {
			if i > 0 {
				b = append(b, ',')
			}
			b = ecs.AppendString(b, t)
		}
		b = append(b, "]}"...)
	}
	b = w.Time(b, `"modified_at":`, o.extModified, dates)
	b = w.Lit(b, `"provider":"`+provider+`"`)
	b = w.Strs(b, `"reference":`, n.refs)
	if o.isRegistry {
		var s3 ecs.Section
		b, s3 = w.Open(b, `"registry":{`)
		var s4 ecs.Section
		b, s4 = w.Open(b, `"data":{`)
		b = w.scalar(b, `"type":`, f[fValueType])
		b = w.Close(b, s4, "}")
		b = w.scalar(b, `"path":`, f[fKeyName])
		b = w.scalar(b, `"value":`, f[fValueName])
		b = w.Close(b, s3, "}")
	}
	if o.indType != "" {
		if o.indList {
			b = append(ecs.AppendString(append(w.Key(b, `"type":`), '['), o.indType), ']')
		} else {
			b = w.Str(b, `"type":`, o.indType)
		}
	}
	var s3 ecs.Section
	b, s3 = w.Open(b, `"url":{`)
	if o.tcType == "Host" {
		b = w.Str(b, `"domain":`, o.hostName)
	}
	if o.isURL {
		b = w.scalar(b, `"original":`, f[fText])
	}
	b = w.Close(b, s3, "}")
	b = w.Close(b, s2, "}")
	b, s2 = w.Open(b, `"technique":{`)
	b = w.Strs(b, `"id":`, n.techID)
	b = w.Strs(b, `"name":`, n.techName)
	b = w.Close(b, s2, "}")
	b = w.Close(b, s, "}")

	b, s = w.Open(b, `"threat_connect":{"indicator":{`)
	b, s2 = w.Open(b, `"active":{`)
	b = w.boolean(b, `"locked":`, o.activeLocked)
	b = w.boolean(b, `"value":`, o.active)
	b = w.Close(b, s2, "}")
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
	b = w.Time(b, `"date_added":`, o.dateAdded, dates)
	b = w.Time(b, `"deleted_at":`, o.deletedAt, dates)
	b = w.scalar(b, `"description":`, f[fDescription])
	b = w.boolean(b, `"dns_active":`, o.dnsActive)
	b = w.scalar(b, `"dns_resolution":`, f[fDNSResolution])
	b = w.scalar(b, `"enrichment":`, f[fEnrichment])
	b = w.Lit(b, lits.expiration)
	b, s2 = w.Open(b, `"external":{"date":{`)
	b = w.Time(b, `"added":`, o.extAdded, dates)
	b = w.Time(b, `"expires":`, o.extExpires, dates)
	b = w.Close(b, s2, "}}")
	if !o.extModified.IsZero() {
		b = ecs.AppendTimeValue(w.Key(b, `"external_last":{"modified":`), o.extModified, dates)
		b = append(b, '}')
	}
	b = w.boolean(b, `"false_positive_reported_by_user":`, o.fpByUser)
	b = w.long(b, `"false_positives":`, o.fpCount)
	b = w.scalar(b, `"file_actions":`, f[fFileActions])
	b = w.scalar(b, `"file_occurrences":`, f[fFileOccurrences])
	b = w.Time(b, `"first_seen":`, o.firstSeen, dates)
	b = w.scalar(b, `"generic_custom_indicator_values":`, f[fGenericValues])
	b = w.scalar(b, `"geo_location":`, f[fGeoLocation])
	b = w.scalar(b, `"hashtag":`, f[fHashtag])
	b = w.scalar(b, `"host_name":`, f[fHostName])
	b = n.writeString(&w, b, `"id":`, f[fID])
	b = w.scalar(b, `"investigation_links":`, f[fInvestigationLinks])
	b = w.Str(b, `"ip":`, o.ip)
	b = w.scalar(b, `"key_name":`, f[fKeyName])
	b = w.Time(b, `"last_false_positive":`, o.lastFP, dates)
	b = w.Time(b, `"last_modified":`, o.modified, dates)
	b = w.Time(b, `"last_seen":`, o.lastSeen, dates)
	b = w.scalar(b, `"legacy_link":`, f[fLegacyLink])
	b = w.Str(b, `"md5":`, o.md5)
	b = w.scalar(b, `"mutex":`, f[fMutex])
	b = w.scalar(b, `"observations":`, f[fObservations])
	b, s2 = w.Open(b, `"owner":{`)
	b = n.writeString(&w, b, `"id":`, f[fOwnerID])
	b = w.scalar(b, `"name":`, f[fOwnerName])
	b = w.Close(b, s2, "}")
	b = w.boolean(b, `"private_flag":`, o.privateFlag)
	b = w.double(b, `"rating":`, o.rating)
	b = w.rawIn(b, `"security_labels":{"data":`, n.fast.labels)
	b = w.Str(b, `"sha1":`, o.sha1)
	b = w.Str(b, `"sha256":`, o.sha256)
	b = n.writeString(&w, b, `"size":`, f[fSize])
	b = w.scalar(b, `"source":`, f[fSource])
	b = w.scalar(b, `"subject":`, f[fSubject])
	b = w.scalar(b, `"summary":`, f[fSummary])
	b = w.rawIn(b, `"tags":{"data":`, n.fast.tags)
	b = w.scalar(b, `"text":`, f[fText])
	b, s2 = w.Open(b, `"threat_assess":{`)
	b = w.double(b, `"confidence":`, o.taConfidence)
	b = w.double(b, `"rating":`, o.taRating)
	b, s3 = w.Open(b, `"score":{`)
	b = w.long(b, `"false_positive":`, o.taScoreFP)
	b = w.long(b, `"observed":`, o.taScoreObserved)
	b = w.long(b, `"value":`, o.taScore)
	b = w.Close(b, s3, "}")
	b = w.Close(b, s2, "}")
	b = w.scalar(b, `"tracked_users":`, f[fTrackedUsers])
	b = w.scalar(b, `"type":`, f[fType])
	b = w.scalar(b, `"user_agent_string":`, f[fUserAgent])
	b, s2 = w.Open(b, `"value":{`)
	b = w.scalar(b, `"name":`, f[fValueName])
	b = w.scalar(b, `"type":`, f[fValueType])
	b = w.Close(b, s2, "}")
	b = w.scalar(b, `"web_link":`, f[fWebLink])
	b = w.scalar(b, `"who_is":`, f[fWhoIs])
	b = w.boolean(b, `"whois_active":`, o.whoisActive)
	b = w.Close(b, s, "}}")

	b, s = w.Open(b, `"user":{`)
	b = w.Str(b, `"domain":`, o.userDomain)
	b = w.Str(b, `"email":`, o.address)
	b = w.Str(b, `"name":`, o.userName)
	b = w.Close(b, s, "}")
	b, s = w.Open(b, `"user_agent":{`)
	b = w.scalar(b, `"original":`, f[fUserAgent])
	b = w.Close(b, s, "}")
	n.fast.wbuf = append(b, '}')
}

// writeString writes v at k as putString: converted to a string, numbers
// as Java prints them.
func (n *Normalizer) writeString(w *jsonWriter, b []byte, k string, v sval) []byte {
	switch v.k {
	case kNumber:
		return w.Str(b, k, ecs.B2S(n.javaNumberS(v.s)))
	case kTrue:
		return w.Str(b, k, "true")
	case kFalse:
		return w.Str(b, k, "false")
	}
	return w.scalar(b, k, v)
}
