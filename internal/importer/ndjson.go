package importer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// ndjsonReader reads ECS indicator documents, one JSON object a line.
type ndjsonReader struct {
	p      fastjson.Parser
	leaves []leaf
}

// leaf is a field of a document that is not an object, at its dotted path.
type leaf struct {
	path string
	v    *fastjson.Value
}

// maxDepth is how deep documents are flattened; deeper objects are kept
// whole.
const maxDepth = 32

// Paths of the fields an ECS indicator document is read by.
const (
	fTimestamp  = "@timestamp"
	fType       = "threat.indicator.type"
	fName       = "threat.indicator.name"
	fIP         = "threat.indicator.ip"
	fURLFull    = "threat.indicator.url.full"
	fURLOrig    = "threat.indicator.url.original"
	fDomain     = "threat.indicator.url.domain"
	fEmail      = "threat.indicator.email.address"
	fRegistry   = "threat.indicator.registry.path"
	fHashPrefix = "threat.indicator.file.hash."
	fModified   = "threat.indicator.modified_at"
	fLastSeen   = "threat.indicator.last_seen"
	fFirstSeen  = "threat.indicator.first_seen"
	fProvider   = "threat.indicator.provider"
	fFeedName   = "threat.feed.name"
	fECSVersion = "ecs.version"
	fKind       = "event.kind"
	fCategory   = "event.category"
	fEventType  = "event.type"
	fIndicator  = "threat.indicator."
)

// build reads one document and builds it into p.
func (r *ndjsonReader) build(b *builder, line []byte, p *page) error {
	v, err := r.p.ParseBytes(line)
	if err != nil {
		msg, _, _ := strings.Cut(err.Error(), "; unparsed tail")
		return fmt.Errorf("not valid JSON: %s", strings.TrimPrefix(msg, "cannot parse JSON: "))
	}
	if v.Type() != fastjson.TypeObject {
		return fmt.Errorf("not a JSON object but %s: want one ECS indicator document a line", v.Type())
	}
	d := &b.doc
	d.Reset()
	r.leaves = r.leaves[:0]
	r.flatten(d, "", v, 0)
	get := func(path string) *fastjson.Value {
		var found *fastjson.Value
		for i := range r.leaves {
			if r.leaves[i].path == path {
				found = r.leaves[i].v
			}
		}
		return found
	}
	indicator := false
	for i := range r.leaves {
		if strings.HasPrefix(r.leaves[i].path, fIndicator) {
			indicator = true
			break
		}
	}
	if !indicator {
		return errors.New("not an ECS indicator document: it has no threat.indicator field")
	}

	// The type: given, or that of the typed field present.
	typ := ""
	if t := get(fType); t != nil {
		s, ok := stringOf(t)
		if !ok {
			return fmt.Errorf("%s: want a string, got %s", fType, t.Type())
		}
		if typ, err = ParseType(s, true); err != nil {
			return fmt.Errorf("%s: %w", fType, err)
		}
		if typ == TypeVulnerability {
			return fmt.Errorf("%s: %q is not an indicator type (import CVE ids from a text or CSV list)", fType, s)
		}
	}
	field, raw := r.typedValue(typ)
	if typ == "" && field != "" {
		typ = typeOfField(field)
	}
	if raw == "" {
		if n := get(fName); n != nil {
			raw, _ = stringOf(n)
			raw = strings.TrimSpace(raw)
			field = ""
		}
	}
	if raw == "" {
		return errors.New("no indicator value: want threat.indicator.name or the field of its type (ip, url.full, url.domain, file.hash.*, email.address, registry.path)")
	}
	var val value
	if typ == "" {
		val, err = b.norm.detect(raw)
		if err == nil && val.typ == TypeVulnerability {
			err = fmt.Errorf("%q is a CVE id, not an indicator (import CVE ids from a text or CSV list)", raw)
		}
	} else {
		val, err = b.norm.normalize(typ, raw)
	}
	if err != nil {
		return err
	}

	// The timestamp: the document's, or the indicator's dates, or now.
	var ts time.Time
	for _, f := range [...]string{fTimestamp, fModified, fLastSeen, fFirstSeen} {
		fv := get(f)
		if fv == nil {
			continue
		}
		s, _ := stringOf(fv)
		t, ok := ecs.ParseTime(s)
		if !ok {
			return fmt.Errorf("%s: %s is not an ISO 8601 date", f, fv)
		}
		if ts.IsZero() {
			ts = t
		}
	}
	if ts.IsZero() {
		ts = b.now
	}
	ts = ts.UTC().Truncate(time.Millisecond)
	deleted := ts.Add(b.expDur)

	// Fill in what is missing, then what import always sets.
	if get(fTimestamp) == nil {
		d.At(pTimestamp).Time(ts)
	}
	if get(fECSVersion) == nil {
		d.At(pECSVersion).Str(ecsVersion)
	}
	if get(fKind) == nil {
		d.At(pEventKind).Str("enrichment")
	}
	if get(fCategory) == nil {
		d.At(pEventCategory).Raw(categoryThreat)
	}
	if get(fEventType) == nil {
		d.At(pEventType).Raw(typeIndicator)
	}
	if get(fName) == nil {
		d.At(pName).Str(val.name)
	}
	if get(fProvider) == nil {
		d.At(pProvider).Str(b.provider)
	}
	if get(fFeedName) == nil {
		d.At(pFeedName).Str(b.provider)
	}
	if field == "" {
		// The value came from the name: write it in its type's field too.
		switch val.typ {
		case TypeIPv4, TypeIPv6:
			d.At(pIP).Str(val.name)
		case TypeDomain:
			d.At(pURLDomain).Str(val.domain)
		case TypeURL:
			d.At(pURLFull).Str(val.url.Original)
			d.At(pURLOriginal).Str(val.url.Original)
		case TypeEmail:
			d.At(pEmailAddress).Str(val.name)
		case TypeFile:
			d.At(hashPaths[val.hashField]).Str(val.name)
		case TypeRegistry:
			d.At(pRegistryPath).Str(val.name)
		}
	}
	d.At(pType).Str(val.typ)
	d.At(pEventDataset).Str(Dataset)
	d.At(pEventIngested).Raw(b.ingested)
	d.At(pDeletedAt).Time(deleted)
	d.At(pExpiration).Str(b.expStr)
	d.At(pImportFile).Str(b.file)
	p.add(d, &val, ts, deleted)
	return nil
}

// flatten adds the fields of object v, under prefix, to d, and records
// them as leaves.
func (r *ndjsonReader) flatten(d *ecs.Doc, prefix string, v *fastjson.Value, depth int) {
	o, _ := v.Object()
	o.Visit(func(k []byte, c *fastjson.Value) {
		path := b2s(k)
		if prefix != "" {
			path = d.Join(prefix, path)
		}
		if c.Type() == fastjson.TypeObject && depth < maxDepth {
			r.flatten(d, path, c, depth+1)
			return
		}
		if d.Value(path, c) {
			r.leaves = append(r.leaves, leaf{path, c})
		}
	})
}

// typedValue returns the first typed indicator field present, for type typ
// ("" for any), and its value.
func (r *ndjsonReader) typedValue(typ string) (field, val string) {
	for _, f := range [...]string{fIP, fFile, fEmail, fRegistry, fURLFull, fURLOrig, fDomain} {
		if typ != "" && typeOfField(f) != typ && !(f == fIP && (typ == TypeIPv4 || typ == TypeIPv6)) {
			continue
		}
		for i := range r.leaves {
			l := &r.leaves[i]
			match := l.path == f
			if f == fFile {
				match = strings.HasPrefix(l.path, fHashPrefix)
			}
			if !match {
				continue
			}
			if s, ok := stringOf(l.v); ok && strings.TrimSpace(s) != "" {
				return f, strings.TrimSpace(s)
			}
		}
	}
	return "", ""
}

// fFile stands for every threat.indicator.file.hash.* field.
const fFile = "threat.indicator.file.hash"

func typeOfField(f string) string {
	switch f {
	case fIP:
		return TypeIPv4 // the value decides the family
	case fFile:
		return TypeFile
	case fEmail:
		return TypeEmail
	case fRegistry:
		return TypeRegistry
	case fURLFull, fURLOrig:
		return TypeURL
	case fDomain:
		return TypeDomain
	}
	return ""
}

// stringOf returns a string value, or the first string of an array.
func stringOf(v *fastjson.Value) (string, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		return b2s(v.GetStringBytes()), true
	case fastjson.TypeArray:
		for _, e := range v.GetArray() {
			if e.Type() == fastjson.TypeString {
				return b2s(e.GetStringBytes()), true
			}
		}
	}
	return "", false
}
