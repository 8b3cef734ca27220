// Package matchertest generates deterministic, realistic indicator sets for
// the matcher's tests and benchmarks and for the bench/ scripts.
//
// A Generator is a pure function of its Config: Item(i) returns the same
// indicator for the same i on every run and every machine, so a benchmark
// can build an index of items 0..n-1 and then probe it with hits (items
// again, or subdomains of their domains) and misses without keeping the
// set in memory.
package matchertest

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

// Mix gives the share of each kind of indicator, in parts of the sum.
type Mix [matcher.NumKinds]float64

// DefaultMix is the realistic mix of the detection benchmarks: 35 % IPv4,
// 5 % IPv6, 3 % CIDR, 20 % domains, 15 % URLs, 15 % file hashes, 5 %
// e-mail addresses, 1 % registry paths and 1 % CVE ids.
func DefaultMix() Mix {
	var m Mix
	m[matcher.KindIPv4] = 35
	m[matcher.KindIPv6] = 5
	m[matcher.KindCIDR] = 3
	m[matcher.KindDomain] = 20
	m[matcher.KindURL] = 15
	m[matcher.KindHash] = 15
	m[matcher.KindEmail] = 5
	m[matcher.KindRegistry] = 1
	m[matcher.KindCVE] = 1
	return m
}

// Config configures a Generator.
type Config struct {
	Seed uint64
	Mix  Mix
	// Now is the reference time: 10 % of the indicators expire within the
	// hour after it, the rest 30 to 90 days after it.
	Now time.Time
}

// DefaultConfig returns seed 1, DefaultMix and Now 2025-06-01T00:00:00Z.
func DefaultConfig() Config {
	return Config{Seed: 1, Mix: DefaultMix(), Now: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
}

// Generator derives indicators from their index. It is immutable and safe
// for concurrent use.
type Generator struct {
	cfg Config
	cum [matcher.NumKinds]uint64 // cumulative thresholds out of 1<<32
}

// New returns a Generator for cfg.
func New(cfg Config) *Generator {
	g := &Generator{cfg: cfg}
	var sum float64
	for _, w := range cfg.Mix {
		sum += w
	}
	var acc float64
	for k, w := range cfg.Mix {
		acc += w
		g.cum[k] = uint64(acc / sum * (1 << 32))
	}
	g.cum[matcher.NumKinds-1] = 1 << 32
	return g
}

// Config returns the Generator's configuration.
func (g *Generator) Config() Config { return g.cfg }

// rng is a splitmix64 stream.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a number in [0, n).
func (r *rng) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

// chance returns true with probability pct/100.
func (r *rng) chance(pct int) bool { return r.intn(100) < pct }

func (g *Generator) rng(stream, i uint64) rng {
	r := rng{s: g.cfg.Seed*0x2545f4914f6cdd1d ^ stream<<56 ^ i}
	r.next()
	return r
}

const (
	streamItems = iota + 1
	streamMisses
)

// Item returns indicator i, with Ref i (truncated to 32 bits).
func (g *Generator) Item(i uint64) matcher.Indicator {
	r := g.rng(streamItems, i)
	k := g.kind(&r)
	ind := matcher.Indicator{Ref: uint32(i), Type: typeOf[k], Value: value(&r, k)}
	if r.chance(10) {
		ind.ExpiresAt = g.cfg.Now.Add(time.Duration(r.intn(3600)) * time.Second)
	} else {
		ind.ExpiresAt = g.cfg.Now.Add(30*24*time.Hour + time.Duration(r.intn(60*24*3600))*time.Second)
	}
	if ind.Type == matcher.TypeIPv4 && strings.Contains(ind.Value, ":") {
		ind.Type = matcher.TypeIPv6
	}
	return ind
}

// Kind returns the kind of indicator i.
func (g *Generator) Kind(i uint64) matcher.Kind {
	r := g.rng(streamItems, i)
	return g.kind(&r)
}

func (g *Generator) kind(r *rng) matcher.Kind {
	u := r.next() >> 32
	for k, c := range g.cum {
		if u < c {
			return matcher.Kind(k)
		}
	}
	return matcher.NumKinds - 1
}

// Miss returns the j-th value of kind k drawn from a stream the items do
// not use: it looks like an indicator but is, except by rare chance (an
// IPv4 address, say), not one of them.
func (g *Generator) Miss(k matcher.Kind, j uint64) string {
	r := g.rng(streamMisses, j)
	if k == matcher.KindCIDR {
		k = matcher.KindIPv4 // an address to look up
	}
	return value(&r, k)
}

var typeOf = [matcher.NumKinds]string{
	matcher.KindIPv4:     matcher.TypeIPv4,
	matcher.KindIPv6:     matcher.TypeIPv6,
	matcher.KindCIDR:     matcher.TypeIPv4,
	matcher.KindDomain:   matcher.TypeDomain,
	matcher.KindURL:      matcher.TypeURL,
	matcher.KindHash:     matcher.TypeFile,
	matcher.KindEmail:    matcher.TypeEmail,
	matcher.KindRegistry: matcher.TypeRegistry,
	matcher.KindCVE:      matcher.TypeVulnerability,
}

var words = [...]string{
	"account", "alpha", "apex", "atlas", "auth", "blue", "bolt", "bright", "cargo", "cedar",
	"cloud", "coral", "crest", "delta", "drive", "echo", "ember", "falcon", "fast", "fiber",
	"forge", "frost", "gate", "global", "green", "harbor", "helix", "iron", "jade", "key",
	"lake", "login", "lunar", "maple", "metro", "micro", "nexus", "north", "nova", "oak",
	"office", "omega", "orbit", "pay", "pixel", "polar", "portal", "prime", "pulse", "quick",
	"rapid", "river", "secure", "shield", "signal", "silver", "smart", "solar", "spark", "star",
	"stone", "sync", "update", "vault", "verify", "wave", "web", "zen",
}

var tlds = [...]string{"com", "net", "org", "info", "biz", "io", "ru", "cn", "top", "xyz", "online", "site", "co.uk", "de"}

var subdomains = [...]string{"www", "mail", "cdn", "login", "secure", "api", "update", "portal", "m", "dl"}

var runKeys = [...]string{
	`SOFTWARE\Microsoft\Windows\CurrentVersion\Run`,
	`SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce`,
	`SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon`,
	`SOFTWARE\Microsoft\Windows NT\CurrentVersion\Image File Execution Options`,
	`SYSTEM\CurrentControlSet\Services`,
	`Software\Classes\CLSID`,
}

var hives = [...]string{"HKLM", "HKLM", "HKLM", "HKEY_LOCAL_MACHINE", "HKCU", "HKCU", "HKEY_CURRENT_USER", "HKU"}

func word(r *rng) string { return words[r.intn(len(words))] }

func domain(r *rng) string {
	var b strings.Builder
	if r.chance(30) {
		b.WriteString(subdomains[r.intn(len(subdomains))])
		b.WriteByte('.')
	}
	b.WriteString(word(r))
	if r.chance(50) {
		b.WriteByte('-')
	}
	b.WriteString(word(r))
	b.WriteString(strconv.Itoa(r.intn(100000)))
	b.WriteByte('.')
	b.WriteString(tlds[r.intn(len(tlds))])
	return b.String()
}

func ipv4(r *rng) netip.Addr {
	for {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], uint32(r.next()))
		switch {
		case a[0] == 0, a[0] == 10, a[0] == 127, a[0] >= 224:
			continue
		}
		return netip.AddrFrom4(a)
	}
}

func ipv6(r *rng) netip.Addr {
	var a [16]byte
	binary.BigEndian.PutUint64(a[:8], r.next())
	binary.BigEndian.PutUint64(a[8:], r.next())
	a[0] = 0x20 | a[0]&0x0f // 2000::/4, global unicast
	if r.chance(50) {
		clear(a[8:14]) // many hosts have short interface ids
	}
	return netip.AddrFrom16(a)
}

func value(r *rng, k matcher.Kind) string {
	switch k {
	case matcher.KindIPv4:
		return ipv4(r).String()
	case matcher.KindIPv6:
		return ipv6(r).String()
	case matcher.KindCIDR:
		// Narrow ranges, as feeds list them: /20–/31 IPv4, /32–/64 IPv6.
		if r.chance(80) {
			return netip.PrefixFrom(ipv4(r), 20+r.intn(12)).Masked().String()
		}
		return netip.PrefixFrom(ipv6(r), 32+r.intn(33)).Masked().String()
	case matcher.KindDomain:
		return domain(r)
	case matcher.KindURL:
		var b strings.Builder
		switch n := r.intn(100); {
		case n < 65:
			b.WriteString("https://")
		case n < 95:
			b.WriteString("http://")
		}
		b.WriteString(domain(r))
		if r.chance(5) {
			b.WriteString(":8080")
		}
		b.WriteByte('/')
		b.WriteString(word(r))
		b.WriteByte('/')
		b.WriteString(word(r))
		b.WriteString(strconv.Itoa(r.intn(1000)))
		b.WriteString(".php?id=")
		b.WriteString(strconv.Itoa(r.intn(1000000)))
		return b.String()
	case matcher.KindHash:
		var seed [8]byte
		binary.LittleEndian.PutUint64(seed[:], r.next())
		var h []byte
		switch n := r.intn(100); {
		case n < 33:
			s := md5.Sum(seed[:])
			h = s[:]
		case n < 60:
			s := sha1.Sum(seed[:])
			h = s[:]
		case n < 97:
			s := sha256.Sum256(seed[:])
			h = s[:]
		case n < 98:
			s := sha512.Sum384(seed[:])
			h = s[:]
		default:
			s := sha512.Sum512(seed[:])
			h = s[:]
		}
		s := hex.EncodeToString(h)
		if r.chance(5) {
			s = strings.ToUpper(s)
		}
		return s
	case matcher.KindEmail:
		return word(r) + "." + word(r) + strconv.Itoa(r.intn(10000)) + "@" + domain(r)
	case matcher.KindRegistry:
		return hives[r.intn(len(hives))] + `\` + runKeys[r.intn(len(runKeys))] + `\` + word(r) + strconv.Itoa(r.intn(100000))
	case matcher.KindCVE:
		return fmt.Sprintf("CVE-%d-%d", 1999+r.intn(27), 1000+r.intn(60000))
	}
	panic(fmt.Sprintf("matchertest: kind %v", k))
}

// Subdomain returns a subdomain of domain, two labels deeper.
func Subdomain(domain string, j uint64) string {
	r := rng{s: j}
	return subdomains[r.intn(len(subdomains))] + ".a" + strconv.Itoa(r.intn(100)) + "." + domain
}

// Document returns item i as a live ECS document shaped like the documents
// of vigil's normalizers (about 1.5 KB, the median of the Threat Command
// indicator documents): the vendor record in event.original and under a
// vendor object, and the value in the threat.indicator field of its type;
// or a vulnerability document.
func (g *Generator) Document(i uint64) vigil.Document {
	ind := g.Item(i)
	r := g.rng(streamItems, i^0xd0c)
	feed := "Bench Feed " + strconv.Itoa(r.intn(20))
	score := r.intn(101)
	d := vigil.Document{
		Dataset:   "ti_bench.ioc",
		View:      vigil.ViewIndicators,
		Key:       ind.Value,
		Type:      ind.Type,
		Timestamp: g.cfg.Now.Add(-time.Hour),
		ExpiresAt: ind.ExpiresAt,
	}
	updated := g.cfg.Now.Add(-time.Duration(r.intn(86400)) * time.Second).Format("2006-01-02T15:04:05.000Z")
	record := map[string]any{
		"value":               ind.Value,
		"type":                ind.Type,
		"status":              "Active",
		"severity":            "Medium",
		"score":               score,
		"lastUpdateDate":      updated,
		"lastSeen":            updated,
		"firstSeen":           "2025-05-01T10:00:00.000Z",
		"relatedMalware":      []string{word(&r)},
		"relatedCampaigns":    []string{},
		"relatedThreatActors": []string{},
		"reportedFeeds":       []map[string]any{{"id": hex.EncodeToString([]byte(feed))[:24], "name": feed, "confidenceLevel": 2}},
		"whitelisted":         false,
		"tags":                []string{word(&r), word(&r)},
	}
	original := string(mustJSON(record))
	ti := map[string]any{
		"type":        ind.Type,
		"name":        ind.Value,
		"provider":    []string{feed},
		"confidence":  "Medium",
		"first_seen":  "2025-05-01T10:00:00.000Z",
		"last_seen":   updated,
		"modified_at": updated,
	}
	related := map[string]any{}
	switch ind.Type {
	case matcher.TypeIPv4, matcher.TypeIPv6:
		ti["ip"] = ind.Value
		ti["geo"] = map[string]any{"country_iso_code": "NL"}
		related["ip"] = []string{ind.Value}
	case matcher.TypeDomain:
		ti["url"] = map[string]any{"domain": ind.Value}
	case matcher.TypeURL:
		ti["url"] = map[string]any{"full": ind.Value, "original": ind.Value, "path": "/x", "extension": "php"}
	case matcher.TypeFile:
		algo := map[int]string{32: "md5", 40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}[len(ind.Value)]
		ti["file"] = map[string]any{"hash": map[string]any{algo: strings.ToLower(ind.Value)}}
		related["hash"] = []string{strings.ToLower(ind.Value)}
	case matcher.TypeEmail:
		ti["email"] = map[string]any{"address": ind.Value}
	case matcher.TypeRegistry:
		ti["registry"] = map[string]any{"path": ind.Value}
	case matcher.TypeVulnerability:
		d.Dataset = "ti_bench.vulnerability"
		d.View = vigil.ViewVulnerabilities
		d.Type = "High"
		d.Source = mustJSON(map[string]any{
			"@timestamp": updated,
			"ecs":        map[string]any{"version": "8.11.0"},
			"event": map[string]any{
				"kind": "event", "category": []string{"threat", "vulnerability"}, "type": []string{"indicator"},
				"dataset": "ti_bench.vulnerability", "original": original,
			},
			"bench": map[string]any{"vulnerability": record},
			"vulnerability": map[string]any{
				"id": ind.Value, "enumeration": "CVE", "classification": "CVSS",
				"score": map[string]any{"base": 7.5}, "severity": "High",
			},
		})
		return d
	}
	d.Source = mustJSON(map[string]any{
		"@timestamp": updated,
		"ecs":        map[string]any{"version": "8.11.0"},
		"event": map[string]any{
			"kind": "enrichment", "category": []string{"threat"}, "type": []string{"indicator"},
			"dataset": "ti_bench.ioc", "module": "ti_bench", "risk_score": float64(score), "original": original,
			"ingested": g.cfg.Now.Format(time.RFC3339),
		},
		"bench":   map[string]any{"ioc": record},
		"related": related,
		"tags":    []string{"forwarded", "bench-ioc"},
		"threat":  map[string]any{"indicator": ti},
	})
	return d
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Store returns an embedded store in tb's temporary directory, at the
// generator's time, whose live view holds items 0..n-1 as Documents
// (written in pages of 5,000 and merged), closed when tb ends.
func (g *Generator) Store(tb testing.TB, n int) *sqlite.DB {
	ctx := tb.Context()
	db, err := sqlite.Open(ctx, tb.TempDir(), sqlite.Options{Clock: vigil.ClockFunc(g.cfg.Now.UTC)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	const page = 5000
	docs := make([]vigil.Document, 0, page)
	for i := range n {
		docs = append(docs, g.Document(uint64(i)))
		if len(docs) == page || i == n-1 {
			if _, err := db.WritePage(ctx, vigil.Page{Source: "bench", Dataset: docs[0].Dataset, Docs: docs}); err != nil {
				tb.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	if err := db.Sync(ctx); err != nil {
		tb.Fatal(err)
	}
	return db
}
