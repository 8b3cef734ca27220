package threatcommand

import (
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// jsonWriter is the ecs.JSONWriter the fast path of IOC writes with the
// document that n.doc would encode, without a Doc's bookkeeping, with the
// methods for the values scanIOC takes.
type jsonWriter struct{ ecs.JSONWriter }

// str1 writes the list of s at k, as Setter.Strs of []string{s}.
func (w *jsonWriter) str1(b []byte, k, s string) []byte {
	if s == "" {
		return b
	}
	return append(ecs.AppendString(append(w.Key(b, k), '['), s), ']')
}

// val writes v, which scanIOC vouched for, at k, as putVal.
func (w *jsonWriter) val(b []byte, k string, v val) []byte {
	switch v.kind {
	case fastjson.TypeString:
		return w.Str(b, k, v.s)
	case fastjson.TypeTrue:
		return append(w.Key(b, k), "true"...)
	case fastjson.TypeFalse:
		return append(w.Key(b, k), "false"...)
	case fastjson.TypeNumber, fastjson.TypeArray, fastjson.TypeObject:
		had, mark := w.Has, len(b)
		b, ok := appendCleanRaw(w.Key(b, k), v)
		return w.Keep(b, ok, mark, had)
	}
	return b
}

// timeText writes t at k as time does, t being the date text, which is
// copied when it is t as Doc.Time writes it: most dates of records are.
func (w *jsonWriter) timeText(b []byte, k string, t time.Time, text string, dates *ecs.DateCache) []byte {
	if t.IsZero() {
		return b
	}
	b = w.Key(b, k)
	if isTimeLayout(text) {
		b = append(b, '"')
		b = append(b, text...)
		return append(b, '"')
	}
	return ecs.AppendTimeValue(b, t, dates)
}

// isTimeLayout reports whether s, a date ecs.ParseTime took, has the form
// of ecs.TimeLayout, in which Doc.Time writes what it parses to.
func isTimeLayout(s string) bool {
	return len(s) == len(ecs.TimeLayout) && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
		s[16] == ':' && s[19] == '.' && s[23] == 'Z' && isDigits(s[20:23])
}

// isDigits reports whether s is all ASCII digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// iocLits are the parts of an IOC document that depend only on the
// options, encoded once, by a jsonWriter, for writeIOC.
type iocLits struct {
	done bool
	// `"event":{"category":...,"original":`, the members before
	// event.original, with event.kind "enrichment" and "pipeline_error".
	eventOK, eventErr string
	ingestedTS        string // @timestamp at the ingest time, `"..."`, or empty
	expiration        string // `"expiration_duration":"..."`, or empty
	tags              string // `"tags":["...","..."` of the configured tags, or empty
}

// ecsMember is ecs.version, encoded.
const ecsMember = `"ecs":{"version":"` + ecsVersion + `"}`

// iocLits returns n's iocLits, encoding them the first time.
func (n *Normalizer) iocLits() *iocLits {
	l := &n.lits
	if l.done {
		return l
	}
	event := func(kind string) string {
		var w jsonWriter
		b, _ := w.Open(nil, `"event":{`)
		b = w.Raw(b, `"category":`, categoryThreat)
		b = w.Str(b, `"dataset":`, n.opts.Dataset)
		b = w.Raw(b, `"ingested":`, n.ingested)
		b = w.Str(b, `"kind":`, kind)
		b = w.Str(b, `"module":`, eventModule)
		return string(w.Key(b, `"original":`))
	}
	l.eventOK, l.eventErr = event("enrichment"), event(kindError)
	if ts := n.timestampOf(time.Time{}); !ts.IsZero() {
		l.ingestedTS = string(ecs.AppendTimeValue(nil, ts, nil))
	}
	var w jsonWriter
	l.expiration = string(w.Str(nil, `"expiration_duration":`, n.opts.ExpirationDuration))
	w.Has = false
	if tags := w.Strs(nil, `"tags":`, n.opts.Tags); len(tags) > 0 {
		l.tags = string(tags[:len(tags)-1]) // without the ']'
	}
	l.done = true
	return l
}

// iocOut is what IOC worked out for a record, to write.
type iocOut struct {
	f                                      *iocFields
	raw                                    string
	ts, modified, firstSeen, lastSeen, del time.Time
	iv                                     *iocValue
	sc                                     iocScore
	hasFeeds                               bool
}

// writeIOC writes the document of an IOC record scanIOC took to n.w, as
// IOC writes it to n.doc, with the same keys and values in the same
// order: the two must agree byte for byte (see FuzzIOCScan). Such a record
// has only the members iocFields holds, and all of them raw.
//
// It writes in a local slice, stored back in n.wbuf at the end (see
// ecs.JSONWriter).
func (n *Normalizer) writeIOC(o *iocOut) {
	lits := n.iocLits()
	f, iv, sc := o.f, o.iv, &o.sc
	var w jsonWriter
	b := append(n.opts.Arena.OpenOr(n.wbuf), '{')
	switch {
	case !o.modified.IsZero(): // o.ts is o.modified
		b = w.timeText(b, `"@timestamp":`, o.ts, f.lastUpdate.s, &n.dates)
	case len(lits.ingestedTS) > 0:
		b = append(w.Key(b, `"@timestamp":`), lits.ingestedTS...)
	}
	b = w.Lit(b, ecsMember)
	var s ecs.Section
	if len(n.errs) > 0 {
		b, s = w.Open(b, `"error":{`)
		b = w.Strs(b, `"message":`, n.errs)
		b = w.Close(b, s, "}")
		b = w.Lit(b, lits.eventErr)
	} else {
		b = w.Lit(b, lits.eventOK)
	}
	b = ecs.AppendString(b, o.raw)
	if sc.hasRisk {
		had, mark := w.Has, len(b)
		var ok bool
		b, ok = ecs.AppendJavaFloat32(w.Key(b, `"risk_score":`), sc.risk)
		b = w.Keep(b, ok, mark, had)
	}
	b = append(b, `,"type":["indicator"]}`...)

	b, s = w.Open(b, `"rapid7":{"tc":{"ioc":{`)
	b = w.Time(b, `"deleted_at":`, o.del, &n.dates)
	b = w.Lit(b, lits.expiration)
	if iv.hash != "" && iv.hashPath == nil {
		var s2 ecs.Section
		b, s2 = w.Open(b, `"file":{`)
		b = w.Str(b, `"hash":`, iv.hash)
		b = w.Close(b, s2, "}")
	}
	b = w.val(b, `"first_seen":`, f.firstSeen)
	b = w.val(b, `"geolocation":`, f.geolocation)
	b = w.val(b, `"last_seen":`, f.lastSeen)
	b = w.val(b, `"last_update_date":`, f.lastUpdate)
	b, s2 := w.Open(b, `"related":{`)
	b = w.val(b, `"campaigns":`, f.campaigns)
	b = w.val(b, `"malware":`, f.malware)
	b = w.val(b, `"threat_actors":`, f.threatActors)
	b = w.Close(b, s2, "}")
	if o.hasFeeds {
		b = w.Raw(b, `"reported_feeds":`, n.arr)
	} else if f.reportedFeeds.kind != fastjson.TypeArray {
		b = w.val(b, `"reported_feeds":`, f.reportedFeeds)
	}
	b = n.writeScore(&w, b, `"score":`, f.score)
	b = w.val(b, `"severity":`, f.severity)
	b = w.val(b, `"status":`, f.status)
	b = w.val(b, `"tags":`, f.tags)
	b = w.val(b, `"type":`, f.typ)
	b = w.val(b, `"value":`, f.value)
	switch v := f.whitelisted; v.kind {
	case fastjson.TypeNull:
	case fastjson.TypeObject, fastjson.TypeArray:
		b = w.val(b, `"whitelisted":`, v)
	default:
		b = w.Str(b, `"whitelisted":`, n.renderVal(v))
	}
	b = w.Close(b, s, "}}}")

	if iv.hash != "" || iv.ip != "" {
		b, s = w.Open(b, `"related":{`)
		b = w.str1(b, `"hash":`, iv.hash)
		b = w.str1(b, `"ip":`, iv.ip)
		b = w.Close(b, s, "}")
	}
	if tags := n.finalTags(); len(n.errs) == 0 && len(lits.tags) > 0 {
		// The configured tags, encoded, and the record's.
		b = append(append(b, ','), lits.tags...)
		for _, t := range tags[len(n.opts.Tags):] {
			if t != "" {
				b = ecs.AppendString(append(b, ','), t)
			}
		}
		b = append(b, ']')
	} else {
		b = w.Strs(b, `"tags":`, tags)
	}

	b, s = w.Open(b, `"threat":{"indicator":{`)
	switch {
	case sc.confidence != "":
		b = w.Str(b, `"confidence":`, sc.confidence)
	case sc.confRaw:
		b = n.writeScore(&w, b, `"confidence":`, f.score)
	}
	if iv.email != "" {
		b, s2 = w.Open(b, `"email":{`)
		b = w.Str(b, `"address":`, iv.email)
		b = w.Close(b, s2, "}")
	}
	if iv.hashPath != nil {
		b, s2 = w.Open(b, `"file":{"hash":{`)
		b = w.Str(b, iv.hashKey, iv.hash)
		b = w.Close(b, s2, "}}")
	}
	b = w.timeText(b, `"first_seen":`, o.firstSeen, f.firstSeen.s, &n.dates)
	if !f.geolocation.null() {
		b, s2 = w.Open(b, `"geo":{`)
		b = w.val(b, `"country_iso_code":`, f.geolocation)
		b = w.Close(b, s2, "}")
	}
	b = w.Str(b, `"ip":`, iv.ip)
	b = w.timeText(b, `"last_seen":`, o.lastSeen, f.lastSeen.s, &n.dates)
	b = w.timeText(b, `"modified_at":`, o.modified, f.lastUpdate.s, &n.dates)
	b = w.Str(b, `"name":`, iv.name)
	b = w.Strs(b, `"provider":`, n.strs)
	b = w.Str(b, `"type":`, iv.indicatorType)
	b, s2 = w.Open(b, `"url":{`)
	if iv.isURL {
		u := &iv.url
		b = w.Str(b, `"domain":`, u.Domain)
		b = w.Str(b, `"extension":`, u.Extension)
		b = w.Str(b, `"fragment":`, u.Fragment)
		b = w.Str(b, `"full":`, u.Original)
		b = w.Str(b, `"original":`, u.Original)
		b = w.Str(b, `"password":`, u.Password)
		b = w.Str(b, `"path":`, u.Path)
		if u.Port >= 0 {
			b = strconv.AppendInt(w.Key(b, `"port":`), int64(u.Port), 10)
		}
		b = w.Str(b, `"query":`, u.Query)
		b = w.Str(b, `"scheme":`, u.Scheme)
		b = w.Str(b, `"user_info":`, u.UserInfo)
		b = w.Str(b, `"username":`, u.Username)
	} else {
		b = w.Str(b, `"domain":`, iv.domain)
	}
	b = w.Close(b, s2, "}")
	b = w.Close(b, s, "}}")
	n.wbuf = append(b, '}')
}

// writeScore writes the score at k to w as putScore does.
func (n *Normalizer) writeScore(w *jsonWriter, b []byte, k string, score val) []byte {
	if len(n.scoreNum) > 0 && score.kind == fastjson.TypeNumber {
		return w.Raw(b, k, n.scoreNum)
	}
	return w.val(b, k, score)
}
