package importer

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/ecs"
)

// Dataset is the dataset (ECS event.dataset) of imported documents.
const Dataset = "vigil.import"

// SourceName is the source of the pages an import writes.
const SourceName = "import"

// ecsVersion is the ECS version of the documents, as the sources write it.
const ecsVersion = "8.11.0"

// The fields of an imported document, in the order they are written (the
// order ecs.Doc sorts them in, so documents are streamed, never sorted).
var (
	pTimestamp         = ecs.NewPath("@timestamp")
	pECSVersion        = ecs.NewPath("ecs.version")
	pEventCategory     = ecs.NewPath("event.category")
	pEventDataset      = ecs.NewPath("event.dataset")
	pEventIngested     = ecs.NewPath("event.ingested")
	pEventKind         = ecs.NewPath("event.kind")
	pEventType         = ecs.NewPath("event.type")
	pRelatedHash       = ecs.NewPath("related.hash")
	pRelatedIP         = ecs.NewPath("related.ip")
	pTags              = ecs.NewPath("tags")
	pFeedName          = ecs.NewPath("threat.feed.name")
	pASNumber          = ecs.NewPath("threat.indicator.as.number")
	pConfidence        = ecs.NewPath("threat.indicator.confidence")
	pDescription       = ecs.NewPath("threat.indicator.description")
	pEmailAddress      = ecs.NewPath("threat.indicator.email.address")
	pFirstSeen         = ecs.NewPath("threat.indicator.first_seen")
	pIP                = ecs.NewPath("threat.indicator.ip")
	pLastSeen          = ecs.NewPath("threat.indicator.last_seen")
	pName              = ecs.NewPath("threat.indicator.name")
	pPort              = ecs.NewPath("threat.indicator.port")
	pProvider          = ecs.NewPath("threat.indicator.provider")
	pRegistryHive      = ecs.NewPath("threat.indicator.registry.hive")
	pRegistryKey       = ecs.NewPath("threat.indicator.registry.key")
	pRegistryPath      = ecs.NewPath("threat.indicator.registry.path")
	pType              = ecs.NewPath("threat.indicator.type")
	pURL               = ecs.NewURLPaths("threat.indicator.url")
	pURLDomain         = ecs.NewPath("threat.indicator.url.domain")
	pURLFull           = ecs.NewPath("threat.indicator.url.full")
	pURLOriginal       = ecs.NewPath("threat.indicator.url.original")
	pDeletedAt         = ecs.NewPath("vigil.import.deleted_at")
	pExpiration        = ecs.NewPath("vigil.import.expiration_duration")
	pImportFile        = ecs.NewPath("vigil.import.file")
	pVulnDescription   = ecs.NewPath("vulnerability.description")
	pVulnEnumeration   = ecs.NewPath("vulnerability.enumeration")
	pVulnID            = ecs.NewPath("vulnerability.id")
	categoryThreat     = []byte(`["threat"]`)
	categoryThreatVuln = []byte(`["threat","vulnerability"]`)
	typeIndicator      = []byte(`["indicator"]`)
)

// hashPaths are the threat.indicator.file.hash fields.
var hashPaths = map[string]*ecs.Path{
	"md5":    ecs.NewPath("threat.indicator.file.hash.md5"),
	"sha1":   ecs.NewPath("threat.indicator.file.hash.sha1"),
	"sha256": ecs.NewPath("threat.indicator.file.hash.sha256"),
	"sha384": ecs.NewPath("threat.indicator.file.hash.sha384"),
	"sha512": ecs.NewPath("threat.indicator.file.hash.sha512"),
}

// record is one line of a list: a value and what the line says about it.
type record struct {
	value       string // as read, trimmed
	typ         string // the type given for this record ("" to detect)
	provider    string
	confidence  string
	description string
	tags        []string
	firstSeen   time.Time
	lastSeen    time.Time
}

// builder builds the documents of one file's records into a page.
type builder struct {
	file     string        // the file's base name, vigil.import.file
	provider string        // default provider
	typ      string        // forced type ("" to detect)
	expStr   string        // ioc_expiration_duration as configured
	expDur   time.Duration // parsed
	now      time.Time     // the import's time: event.ingested, and @timestamp of undated records
	ingested []byte        // event.ingested, encoded
	norm     normalizer
	doc      ecs.Doc
	one      []string
}

func (b *builder) start(file string, now time.Time) {
	b.file = file
	b.now = now.UTC().Truncate(time.Millisecond)
	b.ingested = append(ecs.AppendTime(append(b.ingested[:0], '"'), b.now, ecs.TimeLayoutSeconds), '"')
}

// parse detects or checks the type of rec's value.
func (b *builder) parse(rec *record) (value, error) {
	typ := rec.typ
	if typ == "" {
		typ = b.typ
	}
	if typ == "" {
		return b.norm.detect(rec.value)
	}
	return b.norm.normalize(typ, rec.value)
}

// confidence maps a confidence column: a 0-100 score bucketed as Elastic's
// threat-intel pipelines do, or one of ECS's words in any case.
func confidence(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	for _, w := range [...]string{"Not Specified", "None", "Low", "Medium", "High"} {
		if strings.EqualFold(s, w) {
			return w, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err == nil && f >= 0 && f <= 100 {
		if c := ecs.Confidence(f); c != "" {
			return c, nil
		}
		return "Low", nil // 0 < f < 1
	}
	return "", fmt.Errorf("confidence: %q is not a score from 0 to 100 nor one of Not Specified, None, Low, Medium, High", s)
}

// build builds rec's document into p.
func (b *builder) build(rec *record, p *page) error {
	v, err := b.parse(rec)
	if err != nil {
		return err
	}
	conf, err := confidence(rec.confidence)
	if err != nil {
		return err
	}
	provider := rec.provider
	if provider == "" {
		provider = b.provider
	}
	ts := rec.lastSeen
	if ts.IsZero() {
		ts = rec.firstSeen
	}
	if ts.IsZero() {
		ts = b.now
	}
	ts = ts.UTC().Truncate(time.Millisecond)
	deleted := ts.Add(b.expDur)

	d := &b.doc
	d.Reset()
	d.At(pTimestamp).Time(ts)
	d.At(pECSVersion).Str(ecsVersion)
	vuln := v.typ == TypeVulnerability
	if vuln {
		d.At(pEventCategory).Raw(categoryThreatVuln)
	} else {
		d.At(pEventCategory).Raw(categoryThreat)
	}
	d.At(pEventDataset).Str(Dataset)
	d.At(pEventIngested).Raw(b.ingested)
	d.At(pEventKind).Str("enrichment")
	d.At(pEventType).Raw(typeIndicator)
	if v.typ == TypeFile {
		b.one = append(b.one[:0], v.name)
		d.At(pRelatedHash).Strs(b.one)
	}
	if (v.typ == TypeIPv4 || v.typ == TypeIPv6) && strings.IndexByte(v.name, '/') < 0 {
		b.one = append(b.one[:0], v.name)
		d.At(pRelatedIP).Strs(b.one)
	}
	d.At(pTags).Strs(rec.tags)
	d.At(pFeedName).Str(provider)
	if !vuln {
		b.indicator(&v, rec, conf, provider)
	}
	d.At(pDeletedAt).Time(deleted)
	d.At(pExpiration).Str(b.expStr)
	d.At(pImportFile).Str(b.file)
	if vuln {
		d.At(pVulnDescription).Str(rec.description)
		d.At(pVulnEnumeration).Str("CVE")
		d.At(pVulnID).Str(v.name)
	}
	p.add(d, &v, ts, deleted)
	return nil
}

// indicator writes the threat.indicator fields.
func (b *builder) indicator(v *value, rec *record, conf, provider string) {
	d := &b.doc
	if v.typ == TypeAS {
		d.At(pASNumber).Int(v.number)
	}
	d.At(pConfidence).Str(conf)
	d.At(pDescription).Str(rec.description)
	if v.typ == TypeEmail {
		d.At(pEmailAddress).Str(v.name)
	}
	if v.typ == TypeFile {
		d.At(hashPaths[v.hashField]).Str(v.name)
	}
	d.At(pFirstSeen).Time(rec.firstSeen)
	if v.typ == TypeIPv4 || v.typ == TypeIPv6 {
		d.At(pIP).Str(v.name)
	}
	d.At(pLastSeen).Time(rec.lastSeen)
	d.At(pName).Str(v.name)
	if v.typ == TypePort {
		d.At(pPort).Int(v.number)
	}
	d.At(pProvider).Str(provider)
	if v.typ == TypeRegistry {
		d.At(pRegistryHive).Str(hiveShort(v.hive))
		d.At(pRegistryKey).Str(v.regKey)
		d.At(pRegistryPath).Str(v.name)
	}
	d.At(pType).Str(v.typ)
	switch v.typ {
	case TypeDomain:
		d.At(pURLDomain).Str(v.domain)
	case TypeURL:
		d.PutURL(pURL, &v.url)
	}
}

// page collects documents until they are written. Their sources, keys
// and types live in one arena, reused once the page is written (the store
// copies what it keeps).
type page struct {
	docs  []vigil.Document
	arena []byte
	// expired counts the documents whose expiry had passed when they
	// were built.
	expired int
	now     time.Time
}

// add encodes d as the next document, of value v.
func (p *page) add(d *ecs.Doc, v *value, ts, expires time.Time) {
	start := len(p.arena)
	p.arena = d.AppendJSON(p.arena)
	src := p.arena[start:len(p.arena):len(p.arena)]
	view, key := vigil.ViewIndicators, ""
	if v.typ == TypeVulnerability {
		view = vigil.ViewVulnerabilities
		key = p.str(v.key)
	} else {
		ks := len(p.arena)
		p.arena = append(p.arena, v.typ...)
		p.arena = append(p.arena, ':')
		p.arena = append(p.arena, v.key...)
		key = b2s(p.arena[ks:])
	}
	if !expires.After(p.now) {
		p.expired++
	}
	p.docs = append(p.docs, vigil.Document{
		Dataset: Dataset, View: view, Key: key, Type: v.typ,
		Timestamp: ts, ExpiresAt: expires, Source: src,
	})
}

// str copies s into the arena.
func (p *page) str(s string) string {
	start := len(p.arena)
	p.arena = append(p.arena, s...)
	return b2s(p.arena[start:])
}

func (p *page) reset() {
	clear(p.docs)
	p.docs, p.arena, p.expired = p.docs[:0], p.arena[:0], 0
}

// b2s views b as a string without copying.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
