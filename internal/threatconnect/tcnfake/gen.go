package tcnfake

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Types lists ThreatConnect's twelve indicator types.
var Types = []string{
	"Address", "EmailAddress", "File", "Host", "URL", "ASN", "CIDR",
	"Email Subject", "Hashtag", "Mutex", "Registry Key", "User Agent",
}

// GenOptions configures Generate.
type GenOptions struct {
	N    int    // number of indicators
	Seed uint64 // the same seed gives the same indicators
	// From and To bound lastModified, which is a whole second drawn
	// uniformly: a window of fewer seconds than N gives many indicators
	// the same lastModified. Zero To: DefaultTo; zero From: 30 days
	// before To.
	From, To time.Time
	// Associations adds associated groups (with attributes), associated
	// indicators and attributes to most indicators.
	Associations bool
	// FirstID is the id of indicator 0 (0: 2^53 - 10, so that the ids
	// cross 2^53 and a float64 decoder would lose some).
	FirstID int64
	// Offset numbers the indicators from Offset instead of 0, so that a
	// large set can be generated in chunks with unique summaries.
	Offset int
}

// DefaultTo is the end of a generated window when none is given.
var DefaultTo = time.Date(2024, 6, 15, 0, 0, 0, 0, time.UTC)

var (
	words     = []string{"login", "secure", "update", "account", "mail", "cdn", "files", "portal", "verify", "support", "billing", "auth", "cloud", "docs", "pay"}
	tlds      = []string{"com", "net", "org", "info", "xyz", "ru", "top", "io", "biz", "co"}
	owners    = []string{"Demo Organization", "Common Community", "Abuse.ch Source"}
	labels    = []string{"TLP:WHITE", "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED", "Confidential"}
	tagNames  = []string{"phishing", "c2", "botnet", "malspam", "scanner", "ransomware"}
	platforms = []string{"Windows", "Linux", "macOS", "Office 365"}
	tactics   = []string{"Impact", "Collection", "Execution", "Persistence"}
	groupType = []string{"Incident", "Adversary", "Report", "Email", "Campaign"}
	users     = []User{
		{ID: 69, UserName: "analyst.one@example.com", FirstName: "Ana", LastName: "Lyst"},
		{ID: 70, UserName: "api-user", FirstName: "Api", LastName: "User"},
	}
)

// Generate returns o.N indicators of all twelve types (in turn), with
// unique summaries.
func Generate(o GenOptions) []Indicator {
	to := o.To
	if to.IsZero() {
		to = DefaultTo
	}
	from := o.From
	if from.IsZero() {
		from = to.Add(-30 * 24 * time.Hour)
	}
	span := int64(to.Sub(from) / time.Second)
	if span < 0 {
		span = 0
	}
	first := o.FirstID
	if first == 0 {
		first = 1<<53 - 10
	}
	out := make([]Indicator, o.N)
	for k := range out {
		i := o.Offset + k
		r := rand.New(rand.NewPCG(o.Seed, uint64(i)))
		ind := Indicator{
			ID:           first + int64(i),
			Type:         Types[i%len(Types)],
			OwnerID:      int64(51 + r.IntN(3)),
			DateAdded:    from.Add(-time.Duration(r.IntN(1000)) * time.Hour),
			LastModified: from.Add(time.Duration(r.Int64N(span+1)) * time.Second),
			Rating:       float64(r.IntN(6)),
			Confidence:   r.IntN(101),
			ThreatScore:  r.IntN(1000),
		}
		ind.OwnerName = owners[ind.OwnerID-51]
		if r.IntN(3) == 0 {
			ind.Description = "generated " + strings.ToLower(ind.Type) + " indicator " + fmt.Sprint(i)
		}
		ind.Summary, ind.Values = values(r, ind.Type, i)
		if r.IntN(2) == 0 {
			ind.SecurityLabels = []string{labels[r.IntN(len(labels))]}
		}
		for k := range r.IntN(4) {
			t := Tag{ID: int64(1000 + k), Name: tagNames[r.IntN(len(tagNames))], LastUsed: ind.LastModified}
			if r.IntN(2) == 0 {
				t.TechniqueID = fmt.Sprintf("T%d", 1000+r.IntN(600))
				t.Name = "technique-" + t.TechniqueID
				t.Platforms = platforms[:1+r.IntN(len(platforms))]
				t.Tactics = tactics[r.IntN(len(tactics)):]
			}
			ind.Tags = append(ind.Tags, t)
		}
		if o.Associations {
			associate(r, &ind, i)
		}
		out[k] = ind
	}
	return out
}

func values(r *rand.Rand, typ string, i int) (string, []KV) {
	word := words[r.IntN(len(words))]
	tld := tlds[r.IntN(len(tlds))]
	switch typ {
	case "Address":
		if i%5 == 0 {
			ip := fmt.Sprintf("2001:db8:%x::%x", i>>16, i&0xffff)
			return ip, []KV{{"ip", ip}}
		}
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
		return ip, []KV{{"ip", ip}}
	case "EmailAddress":
		a := fmt.Sprintf("%s.%d@%s-mail.%s", word, i, word, tld)
		return a, []KV{{"address", a}}
	case "File":
		md5 := hexOf(r, 32)
		sha1 := hexOf(r, 40)
		sha256 := hexOf(r, 64)
		return md5 + " : " + sha1 + " : " + sha256, []KV{{"md5", md5}, {"sha1", sha1}, {"sha256", sha256}, {"size", int64(1 + r.IntN(1<<20))}}
	case "Host":
		h := fmt.Sprintf("%s-%d.%s.%s", word, i, words[r.IntN(len(words))], tld)
		return h, []KV{{"hostName", h}, {"dnsActive", r.IntN(2) == 0}, {"whoisActive", r.IntN(2) == 0}}
	case "URL":
		u := fmt.Sprintf("https://%s-%d.example.%s/%s/%d.php?id=%d", word, i, tld, words[r.IntN(len(words))], i, r.IntN(1000))
		return u, []KV{{"text", u}}
	case "ASN":
		a := fmt.Sprintf("ASN%d", 1000+i)
		return a, []KV{{"AS Number", a}}
	case "CIDR":
		if i%2 == 0 { // unique for i < 2^32, written as ThreatConnect writes them: no compression
			b := fmt.Sprintf("2001:db8:%x:%x:0:0:0:0/64", i>>16&0xffff, i&0xffff)
			return b, []KV{{"Block", b}}
		}
		b := fmt.Sprintf("%d.%d.%d.0/24", 20+i>>16&0x3f, i>>8&0xff, i&0xff) // unique for i < 2^22
		return b, []KV{{"Block", b}}
	case "Email Subject":
		s := fmt.Sprintf("Your %s invoice #%d", word, i)
		return s, []KV{{"Subject", s}}
	case "Hashtag":
		h := fmt.Sprintf("#%s%d", word, i)
		return h, []KV{{"Hashtag", h}}
	case "Mutex":
		m := fmt.Sprintf(`Global\%s-%d`, word, i)
		return m, []KV{{"Mutex", m}}
	case "Registry Key":
		k := fmt.Sprintf(`HKEY_CURRENT_USER\Software\%s\%d`, word, i)
		return k + " : Run : REG_SZ", []KV{{"Key Name", k}, {"Value Name", "Run"}, {"Value Type", "REG_SZ"}}
	default: // User Agent
		ua := fmt.Sprintf("Mozilla/5.0 (%s; rv:%d) Gecko/20100101", word, i)
		return ua, []KV{{"User Agent String", ua}}
	}
}

func hexOf(r *rand.Rand, n int) string {
	const digits = "0123456789ABCDEF"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

func associate(r *rand.Rand, ind *Indicator, i int) {
	for k := range r.IntN(3) {
		u := users[r.IntN(len(users))]
		g := Group{
			ID:        int64(600000 + i*3 + k),
			Type:      groupType[r.IntN(len(groupType))],
			Name:      fmt.Sprintf("Group %d-%d ", i, k),
			OwnerID:   ind.OwnerID,
			OwnerName: ind.OwnerName,
			DateAdded: ind.LastModified.Add(-time.Hour),
			CreatedBy: u,
		}
		if g.Type == "Email" {
			g.To, g.From = "victim@example.com", fmt.Sprintf("sender%d@bad.example", i)
		}
		for a := range r.IntN(3) {
			g.Attributes = append(g.Attributes, Attribute{ID: int64(1<<53 + i*10 + a), Type: "Source", Value: "https://example.com/report/" + fmt.Sprint(i), CreatedBy: u, DateAdded: g.DateAdded})
		}
		ind.Groups = append(ind.Groups, g)
	}
	for k := range r.IntN(3) {
		typ := Types[(i+k+1)%len(Types)]
		summary, vals := values(r, typ, 100000+i*3+k)
		ind.Associated = append(ind.Associated, Associated{
			ID: int64(700000 + i*3 + k), Type: typ, Summary: summary, Values: vals,
			OwnerName: ind.OwnerName, LastModified: ind.LastModified.Add(-2 * time.Hour),
			Confidence: r.IntN(101), Rating: float64(r.IntN(6)),
		})
	}
	for k := range r.IntN(3) {
		ind.Attributes = append(ind.Attributes, Attribute{
			ID: int64(800000 + i*3 + k), Type: "Description", Value: fmt.Sprintf("seen in campaign %d", k),
			CreatedBy: users[r.IntN(len(users))], DateAdded: ind.LastModified,
		})
	}
}
