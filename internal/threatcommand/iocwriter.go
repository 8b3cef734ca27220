package threatcommand

import (
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// jsonWriter writes a JSON document whose keys are known ahead, in the
// order they sort in: the fast path of IOC writes with it the document
// that n.doc would encode, without a Doc's bookkeeping. Objects are opened
// as they come and taken back when nothing was written in them, as a Doc
// leaves out empty objects.
//
// The document is a slice its methods take and return, which the caller
// keeps in a local variable: while the GC marks, every store of a pointer
// to memory that may be the heap, as w.b = append(w.b, ...) would be,
// costs a write barrier.
type jsonWriter struct {
	has bool // the innermost open object has a member
}

// section is an object open in a jsonWriter, to close.
type section struct {
	mark int  // where its key starts, with the comma before it
	had  bool // the object around it had a member
}

// open opens the objects keys names, `"a":{"b":{`.
func (w *jsonWriter) open(b []byte, keys string) ([]byte, section) {
	s := section{len(b), w.has}
	if w.has {
		b = append(b, ',')
	}
	w.has = false
	return append(b, keys...), s
}

// close closes the objects of s with closers, one '}' each, or takes them
// back when nothing was written in them.
func (w *jsonWriter) close(b []byte, s section, closers string) []byte {
	if !w.has {
		w.has = s.had
		return b[:s.mark]
	}
	return append(b, closers...)
}

// key writes k, `"name":`.
func (w *jsonWriter) key(b []byte, k string) []byte {
	if w.has {
		b = append(b, ',')
	}
	w.has = true
	return append(b, k...)
}

// str writes the string s at k, as Setter.Str: an empty s is left out.
func (w *jsonWriter) str(b []byte, k, s string) []byte {
	if s == "" {
		return b
	}
	return ecs.AppendString(w.key(b, k), s)
}

// raw writes the JSON text js at k, as Setter.Raw, for js that is empty or
// a value that is not empty.
func (w *jsonWriter) raw(b []byte, k string, js []byte) []byte {
	if len(js) == 0 {
		return b
	}
	return append(w.key(b, k), js...)
}

// strs writes list at k as Setter.Strs: empty strings are left out, and a
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

// str1 writes the list of s at k, as Setter.Strs of []string{s}.
func (w *jsonWriter) str1(b []byte, k, s string) []byte {
	if s == "" {
		return b
	}
	return append(ecs.AppendString(append(w.key(b, k), '['), s), ']')
}

// time writes t at k, as Setter.Time: a zero t is left out.
func (w *jsonWriter) time(b []byte, k string, t time.Time, dates *ecs.DateCache) []byte {
	if t.IsZero() {
		return b
	}
	return ecs.AppendTimeValue(w.key(b, k), t, dates)
}

// val writes v, which scanIOC vouched for, at k, as putVal.
func (w *jsonWriter) val(b []byte, k string, v val) []byte {
	switch v.kind {
	case fastjson.TypeString:
		return w.str(b, k, v.s)
	case fastjson.TypeTrue:
		return append(w.key(b, k), "true"...)
	case fastjson.TypeFalse:
		return append(w.key(b, k), "false"...)
	case fastjson.TypeNumber, fastjson.TypeArray, fastjson.TypeObject:
		had, mark := w.has, len(b)
		b, ok := appendCleanRaw(w.key(b, k), v)
		if !ok {
			w.has = had
			return b[:mark]
		}
		return b
	}
	return b
}

// lit writes js, a member or members encoded ahead, unless it is empty.
func (w *jsonWriter) lit(b []byte, js string) []byte {
	if len(js) == 0 {
		return b
	}
	if w.has {
		b = append(b, ',')
	}
	w.has = true
	return append(b, js...)
}

// timeText writes t at k as time does, t being the date text, which is
// copied when it is t as Doc.Time writes it: most dates of records are.
func (w *jsonWriter) timeText(b []byte, k string, t time.Time, text string, dates *ecs.DateCache) []byte {
	if t.IsZero() {
		return b
	}
	b = w.key(b, k)
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
		b, _ := w.open(nil, `"event":{`)
		b = w.raw(b, `"category":`, categoryThreat)
		b = w.str(b, `"dataset":`, n.opts.Dataset)
		b = w.raw(b, `"ingested":`, n.ingested)
		b = w.str(b, `"kind":`, kind)
		b = w.str(b, `"module":`, eventModule)
		return string(w.key(b, `"original":`))
	}
	l.eventOK, l.eventErr = event("enrichment"), event(kindError)
	if ts := n.timestampOf(time.Time{}); !ts.IsZero() {
		l.ingestedTS = string(ecs.AppendTimeValue(nil, ts, nil))
	}
	var w jsonWriter
	l.expiration = string(w.str(nil, `"expiration_duration":`, n.opts.ExpirationDuration))
	w.has = false
	if tags := w.strs(nil, `"tags":`, n.opts.Tags); len(tags) > 0 {
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
// jsonWriter).
func (n *Normalizer) writeIOC(o *iocOut) {
	lits := n.iocLits()
	f, iv, sc := o.f, o.iv, &o.sc
	var w jsonWriter
	b := append(n.wbuf[:0], '{')
	switch {
	case !o.modified.IsZero(): // o.ts is o.modified
		b = w.timeText(b, `"@timestamp":`, o.ts, f.lastUpdate.s, &n.dates)
	case len(lits.ingestedTS) > 0:
		b = append(w.key(b, `"@timestamp":`), lits.ingestedTS...)
	}
	b = w.lit(b, ecsMember)
	var s section
	if len(n.errs) > 0 {
		b, s = w.open(b, `"error":{`)
		b = w.strs(b, `"message":`, n.errs)
		b = w.close(b, s, "}")
		b = w.lit(b, lits.eventErr)
	} else {
		b = w.lit(b, lits.eventOK)
	}
	b = ecs.AppendString(b, o.raw)
	if sc.hasRisk {
		had, mark := w.has, len(b)
		var ok bool
		if b, ok = ecs.AppendJavaFloat32(w.key(b, `"risk_score":`), sc.risk); !ok {
			b, w.has = b[:mark], had
		}
	}
	b = append(b, `,"type":["indicator"]}`...)

	b, s = w.open(b, `"rapid7":{"tc":{"ioc":{`)
	b = w.time(b, `"deleted_at":`, o.del, &n.dates)
	b = w.lit(b, lits.expiration)
	if iv.hash != "" && iv.hashPath == nil {
		var s2 section
		b, s2 = w.open(b, `"file":{`)
		b = w.str(b, `"hash":`, iv.hash)
		b = w.close(b, s2, "}")
	}
	b = w.val(b, `"first_seen":`, f.firstSeen)
	b = w.val(b, `"geolocation":`, f.geolocation)
	b = w.val(b, `"last_seen":`, f.lastSeen)
	b = w.val(b, `"last_update_date":`, f.lastUpdate)
	b, s2 := w.open(b, `"related":{`)
	b = w.val(b, `"campaigns":`, f.campaigns)
	b = w.val(b, `"malware":`, f.malware)
	b = w.val(b, `"threat_actors":`, f.threatActors)
	b = w.close(b, s2, "}")
	if o.hasFeeds {
		b = w.raw(b, `"reported_feeds":`, n.arr)
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
		b = w.str(b, `"whitelisted":`, n.renderVal(v))
	}
	b = w.close(b, s, "}}}")

	if iv.hash != "" || iv.ip != "" {
		b, s = w.open(b, `"related":{`)
		b = w.str1(b, `"hash":`, iv.hash)
		b = w.str1(b, `"ip":`, iv.ip)
		b = w.close(b, s, "}")
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
		b = w.strs(b, `"tags":`, tags)
	}

	b, s = w.open(b, `"threat":{"indicator":{`)
	switch {
	case sc.confidence != "":
		b = w.str(b, `"confidence":`, sc.confidence)
	case sc.confRaw:
		b = n.writeScore(&w, b, `"confidence":`, f.score)
	}
	if iv.email != "" {
		b, s2 = w.open(b, `"email":{`)
		b = w.str(b, `"address":`, iv.email)
		b = w.close(b, s2, "}")
	}
	if iv.hashPath != nil {
		b, s2 = w.open(b, `"file":{"hash":{`)
		b = w.str(b, iv.hashKey, iv.hash)
		b = w.close(b, s2, "}}")
	}
	b = w.timeText(b, `"first_seen":`, o.firstSeen, f.firstSeen.s, &n.dates)
	if !f.geolocation.null() {
		b, s2 = w.open(b, `"geo":{`)
		b = w.val(b, `"country_iso_code":`, f.geolocation)
		b = w.close(b, s2, "}")
	}
	b = w.str(b, `"ip":`, iv.ip)
	b = w.timeText(b, `"last_seen":`, o.lastSeen, f.lastSeen.s, &n.dates)
	b = w.timeText(b, `"modified_at":`, o.modified, f.lastUpdate.s, &n.dates)
	b = w.str(b, `"name":`, iv.name)
	b = w.strs(b, `"provider":`, n.strs)
	b = w.str(b, `"type":`, iv.indicatorType)
	b, s2 = w.open(b, `"url":{`)
	if iv.isURL {
		u := &iv.url
		b = w.str(b, `"domain":`, u.Domain)
		b = w.str(b, `"extension":`, u.Extension)
		b = w.str(b, `"fragment":`, u.Fragment)
		b = w.str(b, `"full":`, u.Original)
		b = w.str(b, `"original":`, u.Original)
		b = w.str(b, `"password":`, u.Password)
		b = w.str(b, `"path":`, u.Path)
		if u.Port >= 0 {
			b = strconv.AppendInt(w.key(b, `"port":`), int64(u.Port), 10)
		}
		b = w.str(b, `"query":`, u.Query)
		b = w.str(b, `"scheme":`, u.Scheme)
		b = w.str(b, `"user_info":`, u.UserInfo)
		b = w.str(b, `"username":`, u.Username)
	} else {
		b = w.str(b, `"domain":`, iv.domain)
	}
	b = w.close(b, s2, "}")
	b = w.close(b, s, "}}")
	n.wbuf = append(b, '}')
}

// writeScore writes the score at k to w as putScore does.
func (n *Normalizer) writeScore(w *jsonWriter, b []byte, k string, score val) []byte {
	if len(n.scoreNum) > 0 && score.kind == fastjson.TypeNumber {
		return w.raw(b, k, n.scoreNum)
	}
	return w.val(b, k, score)
}
