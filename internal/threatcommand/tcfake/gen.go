package tcfake

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"time"
)

// IOCSet is a set of IOC records, indexed from 0: explicit (IOCRecords) or
// generated on demand (GenerateIOCs).
type IOCSet interface {
	Len() int
	IOC(i int) IOC
	iocMeta(i int) meta
	appendIOC(b []byte, i int) []byte
}

// CVESet is a set of CVE records: explicit (CVERecords) or generated on
// demand (GenerateCVEs).
type CVESet interface {
	Len() int
	CVE(i int) CVE
	cveMeta(i int) meta
	appendCVE(b []byte, i int) []byte
}

// IOCRecords returns a set of the given records.
func IOCRecords(recs ...IOC) IOCSet { return iocList(recs) }

type iocList []IOC

func (l iocList) Len() int                         { return len(l) }
func (l iocList) IOC(i int) IOC                    { return l[i] }
func (l iocList) iocMeta(i int) meta               { return l[i].meta() }
func (l iocList) appendIOC(b []byte, i int) []byte { return l[i].AppendJSON(b) }

// CVERecords returns a set of the given records.
func CVERecords(recs ...CVE) CVESet { return cveList(recs) }

type cveList []CVE

func (l cveList) Len() int                         { return len(l) }
func (l cveList) CVE(i int) CVE                    { return l[i] }
func (l cveList) cveMeta(i int) meta               { return l[i].meta() }
func (l cveList) appendCVE(b []byte, i int) []byte { return l[i].AppendJSON(b) }

// GenOptions configures a generated set.
type GenOptions struct {
	N    int    // number of records
	Seed uint64 // the same seed gives the same records
	// From and To bound the records' update dates, which are spread over
	// the window in no date order (a permutation of the indexes).
	// Zero: DefaultTo and 30 days before it.
	From, To time.Time
}

// DefaultTo is the end of a generated set's window when none is given.
var DefaultTo = time.Date(2024, 6, 15, 0, 0, 0, 0, time.UTC)

func (o GenOptions) window() (from, span int64) {
	to := o.To
	if to.IsZero() {
		to = DefaultTo
	}
	f := o.From
	if f.IsZero() {
		f = to.Add(-30 * 24 * time.Hour)
	}
	from, span = f.UnixMilli(), to.UnixMilli()-f.UnixMilli()
	if span < 0 {
		span = 0
	}
	return from, span
}

// ---- Deterministic randomness -------------------------------------------

// mix is splitmix64's finalizer: a bijection of uint64.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// rng is a splitmix64 stream seeded per record.
type rng struct{ s uint64 }

func newRNG(seed uint64, i int, salt uint64) rng {
	return rng{mix(seed ^ mix(uint64(i)^salt))}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// n returns a number in [0, n).
func (r *rng) n(n int) int { return int(r.next() % uint64(n)) }

// pct returns a number in [0, 100).
func (r *rng) pct() int { return r.n(100) }

func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

func pick[T any](r *rng, list []T) T { return list[r.n(len(list))] }

// subset returns up to max consecutive elements of list without copying
// them; the result's capacity is its length, so appending to it copies.
func subset[T any](r *rng, list []T, max int) []T {
	k := r.n(max + 1)
	if k == 0 {
		return list[:0:0]
	}
	start := r.n(len(list) - k + 1)
	return list[start : start+k : start+k]
}

// perm is a permutation of [0, n): i -> (a*i + c) mod n, gcd(a, n) = 1.
type perm struct{ n, a, c uint64 }

func newPerm(n int, seed uint64) perm {
	if n <= 1 {
		return perm{n: 1}
	}
	un := uint64(n)
	a := (un*0x9e3779b9>>32 + mix(seed)%max(un/8, 1)) % un
	for a == 0 || gcd(a, un) != 1 {
		a = (a + 1) % un
	}
	return perm{n: un, a: a, c: mix(seed+1) % un}
}

func (p perm) at(i int) uint64 {
	if p.n <= 1 {
		return 0
	}
	hi, lo := bits.Mul64(p.a, uint64(i)%p.n)
	_, rem := bits.Div64(hi, lo, p.n)
	return (rem + p.c) % p.n
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// spread maps record i to a date in the window.
type spread struct {
	perm       perm
	from, span int64
}

func newSpread(o GenOptions, salt uint64) spread {
	from, span := o.window()
	return spread{perm: newPerm(o.N, o.Seed^salt), from: from, span: span}
}

// at returns the date of record i: the start of slot perm(i) of the
// window's n equal slots, plus a deterministic offset within the slot, so
// dates are distinct when the window has at least n milliseconds.
func (s spread) at(i int) time.Time {
	hi, lo := bits.Mul64(s.perm.at(i), uint64(s.span))
	q, _ := bits.Div64(hi, lo, s.perm.n)
	if slot := uint64(s.span) / s.perm.n; slot > 1 {
		q += mix(s.perm.c^uint64(i)^0x9e3779b97f4a7c15) % slot
	}
	return time.UnixMilli(s.from + int64(q)).UTC()
}

// ---- IOC generator ---------------------------------------------------------

// GenerateIOCs returns a set of o.N IOC records, each built on demand from
// o.Seed and its index, so that millions of records take no memory. The mix:
// IpAddresses (one in ten IPv6), Domains, Urls (some without a scheme),
// Hashes of every length (32, 40, 64, 96 and 128 hex digits) and Emails;
// about 5% Retired; scores with some null, 0, 100 and below 1; update dates
// spread over the window in no date order. Values are unique.
func GenerateIOCs(o GenOptions) IOCSet {
	return &iocGen{o: o, dates: newSpread(o, 0x10c)}
}

type iocGen struct {
	o     GenOptions
	dates spread
}

const iocSalt = 0x5eed10c

func (g *iocGen) Len() int { return g.o.N }

// Shares of each type, in percent, and of IPv6 among IPs.
var iocTypes = []struct {
	name  string
	share int
}{{"IpAddresses", 35}, {"Domains", 20}, {"Urls", 20}, {"Hashes", 15}, {"Emails", 10}}

func drawType(r *rng) string {
	p := r.pct()
	for _, t := range iocTypes {
		if p < t.share {
			return t.name
		}
		p -= t.share
	}
	return "Emails"
}

func drawSeverity(r *rng, levels []string, shares []int) string {
	p := r.pct()
	for k, s := range shares {
		if p < s {
			return levels[k]
		}
		p -= s
	}
	return levels[len(levels)-1]
}

var (
	iocSeverities  = []string{"High", "Medium", "Low", "PendingEnrichment"}
	iocSevShares   = []int{15, 30, 45, 10}
	cveSeverities  = []string{"Critical", "High", "Medium", "Low"}
	cveSevShares   = []int{10, 30, 40, 20}
	alertSevs      = []string{"High", "Medium", "Low"}
	alertTypes     = []string{"AttackIndication", "DataLeakage", "Phishing", "BrandSecurity", "ExploitableData", "vip"}
	alertSubTypes  = []string{"RegisteredSuspiciousDomain", "CredentialsLeakage", "ExploitableService", "BrandImpersonation"}
	words          = []string{"login", "secure", "update", "account", "mail", "cdn", "files", "portal", "verify", "support", "billing", "auth", "cloud", "docs", "pay"}
	tlds           = []string{"com", "net", "org", "info", "xyz", "ru", "top", "io", "biz", "co"}
	exts           = []string{".php", ".exe", ".jpg", ".zip", ".html", "/", ".js", ".dll", ""}
	countries      = []string{"US", "SE", "DE", "RU", "CN", "NL", "FR", "GB", "BR", "IN", "UA", "KR"}
	malware        = []string{"remcos", "emotet", "qakbot", "cobaltstrike", "agenttesla", "redline", "lokibot", "dridex", "icedid", "asyncrat"}
	campaigns      = []string{"SolarWinds", "Operation Ghost", "DarkHotel", "Winter Vivern", "ProxyLogon"}
	actors         = []string{"doppelspider", "apt28", "lazarus", "fin7", "ta505", "sandworm"}
	tagNames       = []string{"Test", "phishing", "c2", "botnet", "malspam", "scanner", "tor"}
	origins        = []string{"Qualys", "Tenable", "Rapid7", "NVD"}
	hashLens       = []int{32, 40, 64, 96, 128}
	reportedFeedsL = []Feed{
		{"5b68306df84f7c8696047fdd", "Test Feed", 2},
		{"5d2f6a0c1f3e4b0008a1b2c3", "AlienVault OTX", 2},
		{"5c1e1b8e9a7d4e0007f0a1b2", "Abuse.ch URLhaus", 3},
		{"5e8b4f2a7c6d5e0009b3c4d5", "Threat Command Research", 3},
		{"5f9a3e1b2d4c6b000ac5d6e7", "PhishTank", 1},
		{"60a1b2c3d4e5f6000bd7e8f9", "Spamhaus DROP", 3},
	}
)

func (g *iocGen) iocMeta(i int) meta {
	r := newRNG(g.o.Seed, i, iocSalt)
	typ := drawType(&r)
	sev := drawSeverity(&r, iocSeverities, iocSevShares)
	return meta{updated: g.dates.at(i).UnixMilli(), typ: typ, sev: sev}
}

// IOC returns record i. Its slices are its own.
func (g *iocGen) IOC(i int) IOC {
	rec := g.build(i)
	rec.RelatedMalware = slices.Clone(rec.RelatedMalware)
	rec.RelatedCampaigns = slices.Clone(rec.RelatedCampaigns)
	rec.RelatedThreatActors = slices.Clone(rec.RelatedThreatActors)
	rec.ReportedFeeds = slices.Clone(rec.ReportedFeeds)
	rec.Tags = slices.Clone(rec.Tags)
	return rec
}

// build returns record i; its slices share the package's read-only lists.
func (g *iocGen) build(i int) IOC {
	if i < 0 || i >= g.o.N {
		panic(fmt.Sprintf("tcfake: IOC index %d out of range [0, %d)", i, g.o.N))
	}
	r := newRNG(g.o.Seed, i, iocSalt)
	rec := IOC{
		Type:           drawType(&r), // drawn first: iocMeta relies on the order
		Severity:       drawSeverity(&r, iocSeverities, iocSevShares),
		Status:         "Active",
		LastUpdateDate: g.dates.at(i),
	}
	if r.pct() < 5 {
		rec.Status = "Retired"
	}
	id := uint64(i)
	switch rec.Type {
	case "IpAddresses":
		if r.pct() < 10 {
			rec.Value = fmt.Sprintf("2001:db8:%x:%x::%x", id>>32&0xffff, id>>16&0xffff, id&0xffff)
		} else {
			rec.Value = ipv4(id, g.o.Seed)
		}
		if r.pct() < 70 {
			rec.Geolocation = pick(&r, countries)
		}
	case "Domains":
		rec.Value = domain(&r, id)
	case "Urls":
		var host string
		if r.pct() < 20 {
			host = ipv4(id, g.o.Seed)
		} else {
			host = domain(&r, id)
		}
		path := "/" + pick(&r, words) + "/" + strconv.FormatUint(id, 36) + pick(&r, exts)
		switch p := r.pct(); {
		case p < 15: // no scheme, as the API sometimes serves
			rec.Value = host + path
		case p < 55:
			rec.Value = "http://" + host + path
		default:
			rec.Value = "https://" + host + path
		}
	case "Hashes":
		rec.Value = hash(&r, id, g.o.Seed, pick(&r, hashLens))
	default: // Emails
		rec.Value = pick(&r, words) + "." + strconv.FormatUint(id, 36) + "@" + pick(&r, words) + "-mail." + pick(&r, tlds)
	}
	switch p := r.pct(); {
	case p < 10: // null
	case p < 12:
		rec.Score = Score(0)
	case p < 14:
		rec.Score = Score(100)
	case p < 16:
		rec.Score = Score(r.float()) // between the confidence buckets
	default:
		rec.Score = Score(r.float() * 100)
	}
	sec := func(t time.Time) time.Time { return t.Truncate(time.Second) }
	rec.LastSeen = sec(rec.LastUpdateDate.Add(-time.Duration(r.n(2*24*3600)) * time.Second))
	rec.FirstSeen = sec(rec.LastSeen.Add(-time.Duration(r.n(90*24*3600)) * time.Second))
	rec.RelatedMalware = subset(&r, malware, 2)
	rec.RelatedCampaigns = subset(&r, campaigns, 1)
	rec.RelatedThreatActors = subset(&r, actors, 1)
	start, k := r.n(len(reportedFeedsL)-1), 1+r.n(2)
	rec.ReportedFeeds = reportedFeedsL[start : start+k : start+k]
	rec.Whitelisted = r.pct() < 2
	rec.Tags = subset(&r, tagNames, 2)
	return rec
}

func (g *iocGen) appendIOC(b []byte, i int) []byte {
	rec := g.build(i)
	return rec.AppendJSON(b)
}

// ipv4 maps id to a distinct IPv4 address (a bijection of 32 bits).
func ipv4(id, seed uint64) string {
	x := uint32(id) ^ uint32(seed)
	x *= 0x9e3779b1
	x ^= x >> 15
	x *= 0x85ebca6b
	x ^= x >> 13
	b := make([]byte, 0, 15)
	for k := 3; k >= 0; k-- {
		b = strconv.AppendUint(b, uint64(x>>(8*k)&0xff), 10)
		if k > 0 {
			b = append(b, '.')
		}
	}
	return string(b)
}

func domain(r *rng, id uint64) string {
	return pick(r, words) + "-" + pick(r, words) + "-" + strconv.FormatUint(id, 36) + "." + pick(r, tlds)
}

// hash returns n hex digits; the first 16 are a bijection of id, so values
// are distinct.
func hash(r *rng, id, seed uint64, n int) string {
	b := make([]byte, 0, n)
	x := mix(id ^ seed<<1)
	for k := 15; k >= 0 && len(b) < n; k-- {
		b = append(b, hexDigits[x>>(4*k)&0xf])
	}
	for len(b) < n {
		y := r.next()
		for k := 0; k < 16 && len(b) < n; k++ {
			b = append(b, hexDigits[y>>(4*k)&0xf])
		}
	}
	return string(b)
}

// ---- CVE generator ---------------------------------------------------------

// GenerateCVEs returns a set of o.N CVE records built on demand, with
// update dates spread over the window in no date order.
func GenerateCVEs(o GenOptions) CVESet {
	return &cveGen{o: o, dates: newSpread(o, 0xc7e)}
}

type cveGen struct {
	o     GenOptions
	dates spread
}

const cveSalt = 0x5eedc7e

func (g *cveGen) Len() int { return g.o.N }

func (g *cveGen) cveMeta(i int) meta {
	r := newRNG(g.o.Seed, i, cveSalt)
	return meta{updated: g.dates.at(i).UnixMilli(), sev: drawSeverity(&r, cveSeverities, cveSevShares)}
}

// CVE returns record i. Its slices are its own.
func (g *cveGen) CVE(i int) CVE {
	rec := g.build(i)
	rec.VulnerabilityOrigin = slices.Clone(rec.VulnerabilityOrigin)
	rec.RelatedMalware = slices.Clone(rec.RelatedMalware)
	rec.RelatedCampaigns = slices.Clone(rec.RelatedCampaigns)
	rec.RelatedThreatActors = slices.Clone(rec.RelatedThreatActors)
	return rec
}

// build returns record i; its slices share the package's read-only lists.
func (g *cveGen) build(i int) CVE {
	if i < 0 || i >= g.o.N {
		panic(fmt.Sprintf("tcfake: CVE index %d out of range [0, %d)", i, g.o.N))
	}
	r := newRNG(g.o.Seed, i, cveSalt)
	rec := CVE{
		Severity:   drawSeverity(&r, cveSeverities, cveSevShares),
		UpdateDate: g.dates.at(i),
	}
	rec.ID = fmt.Sprintf("CVE-%d-%d", 2015+i%10, 10000+i)
	rec.PublishedDate = rec.UpdateDate.Add(-time.Duration(1+r.n(700)) * 24 * time.Hour).Truncate(time.Minute)
	rec.CVSSScore = float64(r.n(100)+1) / 10
	rec.IntsightsScore = r.n(100)
	rec.MentionsAmount = r.n(20)
	if rec.MentionsAmount > 0 {
		rec.FirstMentionDate = rec.PublishedDate.Format(TimeLayout)
		rec.LastMentionDate = rec.UpdateDate.Format(TimeLayout)
	}
	rec.ExploitAvailability = r.pct() < 20
	rec.VulnerabilityOrigin = subset(&r, origins, 2)
	rec.RelatedMalware = subset(&r, malware, 2)
	rec.RelatedCampaigns = subset(&r, campaigns, 1)
	rec.RelatedThreatActors = subset(&r, actors, 1)
	rec.CPE = "cpe:2.3:a:" + pick(&r, words) + ":" + pick(&r, words) + ":*:*:*:*:*:*:*:*"
	return rec
}

func (g *cveGen) appendCVE(b []byte, i int) []byte {
	rec := g.build(i)
	return rec.AppendJSON(b)
}

// ---- Alert generator -------------------------------------------------------

// GenerateAlerts returns o.N alerts with distinct 24-hex-digit ids, update
// dates spread over the window in no date order, and about one in five
// closed.
func GenerateAlerts(o GenOptions) []Alert {
	dates := newSpread(o, 0xa1e)
	out := make([]Alert, o.N)
	for i := range out {
		r := newRNG(o.Seed, i, 0x5eeda1e)
		upd := dates.at(i)
		typ := pick(&r, alertTypes)
		dom := pick(&r, words) + strconv.FormatUint(uint64(i), 36) + ".example." + pick(&r, tlds)
		out[i] = Alert{
			ID:         hash(&r, uint64(i), o.Seed^0xa1e, 24),
			UpdateDate: upd,
			FoundDate:  upd.Add(-time.Duration(r.n(30*24)) * time.Hour),
			Severity:   pick(&r, alertSevs),
			Type:       typ,
			SubType:    pick(&r, alertSubTypes),
			Title:      "Suspected " + typ + " - '" + dom + "'",
			Closed:     r.pct() < 20,
			Assets:     []string{dom},
		}
	}
	return out
}
