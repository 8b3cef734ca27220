package tcfake

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeLayout is the layout of the API's dates, in records and in query
// parameters.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Feed is one entry of an IOC's reportedFeeds.
type Feed struct {
	ID              string
	Name            string
	ConfidenceLevel int
}

// IOC is one IOC record as the API serves it.
type IOC struct {
	Value               string
	Type                string // IpAddresses, Urls, Domains, Hashes, Emails
	Status              string // Active, Retired
	Severity            string // High, Medium, Low, PendingEnrichment
	Score               *float64
	LastUpdateDate      time.Time
	LastSeen            time.Time // zero: not sent
	FirstSeen           time.Time // zero: not sent
	Geolocation         string    // "": not sent
	RelatedMalware      []string
	RelatedCampaigns    []string
	RelatedThreatActors []string
	ReportedFeeds       []Feed
	Whitelisted         bool
	Tags                []string
	// Raw, when set, is served verbatim instead of the fields above (it
	// must be valid JSON, of any type). Type, Severity and LastUpdateDate
	// still decide whether it matches a request; a zero LastUpdateDate
	// matches every window.
	Raw []byte
}

// Score returns a pointer to v, for IOC.Score.
func Score(v float64) *float64 { return &v }

// AppendJSON appends the record as the API serializes it.
func (r *IOC) AppendJSON(b []byte) []byte {
	if r.Raw != nil {
		return append(b, r.Raw...)
	}
	b = append(b, `{"value":`...)
	b = appendString(b, r.Value)
	b = append(b, `,"type":`...)
	b = appendString(b, r.Type)
	b = append(b, `,"status":`...)
	b = appendString(b, r.Status)
	b = append(b, `,"severity":`...)
	b = appendString(b, r.Severity)
	b = append(b, `,"score":`...)
	if r.Score == nil {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendFloat(b, *r.Score, 'f', -1, 64)
	}
	b = appendTimeField(b, "lastUpdateDate", r.LastUpdateDate)
	b = appendTimeField(b, "lastSeen", r.LastSeen)
	b = appendTimeField(b, "firstSeen", r.FirstSeen)
	if r.Geolocation != "" {
		b = append(b, `,"geolocation":`...)
		b = appendString(b, r.Geolocation)
	}
	b = appendStrings(b, "relatedMalware", r.RelatedMalware)
	b = appendStrings(b, "relatedCampaigns", r.RelatedCampaigns)
	b = appendStrings(b, "relatedThreatActors", r.RelatedThreatActors)
	b = append(b, `,"reportedFeeds":[`...)
	for i, f := range r.ReportedFeeds {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, f.ID)
		b = append(b, `,"name":`...)
		b = appendString(b, f.Name)
		b = append(b, `,"confidenceLevel":`...)
		b = strconv.AppendInt(b, int64(f.ConfidenceLevel), 10)
		b = append(b, '}')
	}
	b = append(b, `],"whitelisted":`...)
	b = strconv.AppendBool(b, r.Whitelisted)
	b = appendStrings(b, "tags", r.Tags)
	return append(b, '}')
}

// MarshalJSON returns AppendJSON's output.
func (r IOC) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

func (r *IOC) meta() meta {
	return meta{updated: millis(r.LastUpdateDate), typ: r.Type, sev: r.Severity}
}

// CVE is one CVE record as the API serves it.
type CVE struct {
	ID                  string // cveId
	Severity            string // Critical, High, Medium, Low
	PublishedDate       time.Time
	UpdateDate          time.Time
	CVSSScore           float64
	IntsightsScore      int
	MentionsAmount      int
	FirstMentionDate    string // a date or "N/A"
	LastMentionDate     string
	ExploitAvailability bool
	VulnerabilityOrigin []string
	RelatedMalware      []string
	RelatedCampaigns    []string
	RelatedThreatActors []string
	CPE                 string // one cpe entry's Value; "": none
	// Raw, when set, is served verbatim instead of the fields above.
	// Severity and UpdateDate still decide whether it matches.
	Raw []byte
}

// AppendJSON appends the record as the API serializes it.
func (r *CVE) AppendJSON(b []byte) []byte {
	if r.Raw != nil {
		return append(b, r.Raw...)
	}
	b = append(b, `{"cveId":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"cpe":[`...)
	if r.CPE != "" {
		b = append(b, `{"Title":"Product","Value":`...)
		b = appendString(b, r.CPE)
		b = append(b, `,"VendorProduct":"vendor product","Range":{"VersionStartIncluding":"1.0.0","VersionEndIncluding":"4.0.0","VersionStartExcluding":"","VersionEndExcluding":""}}`...)
	}
	b = append(b, ']')
	b = appendTimeField(b, "publishedDate", r.PublishedDate)
	b = appendTimeField(b, "updateDate", r.UpdateDate)
	b = append(b, `,"severity":`...)
	b = appendString(b, r.Severity)
	b = append(b, `,"intsightsScore":`...)
	b = strconv.AppendInt(b, int64(r.IntsightsScore), 10)
	b = append(b, `,"cvssScore":`...)
	b = strconv.AppendFloat(b, r.CVSSScore, 'f', -1, 64)
	b = append(b, `,"mentionsAmount":`...)
	b = strconv.AppendInt(b, int64(r.MentionsAmount), 10)
	b = append(b, `,"mentionsPerSource":{"SocialMedia":0,"PasteSite":0,"HackingForum":`...)
	b = strconv.AppendInt(b, int64(r.MentionsAmount), 10)
	b = append(b, `,"InstantMessage":0,"DarkWeb":0,"CodeRepositories":0,"Exploit":0,"ClearWebCyberBlogs":0}`...)
	b = append(b, `,"firstMentionDate":`...)
	b = appendString(b, orNA(r.FirstMentionDate))
	b = append(b, `,"lastMentionDate":`...)
	b = appendString(b, orNA(r.LastMentionDate))
	b = append(b, `,"exploitAvailability":`...)
	b = strconv.AppendBool(b, r.ExploitAvailability)
	b = appendStrings(b, "vulnerabilityOrigin", r.VulnerabilityOrigin)
	b = appendStrings(b, "relatedMalware", r.RelatedMalware)
	b = appendStrings(b, "relatedCampaigns", r.RelatedCampaigns)
	b = appendStrings(b, "relatedThreatActors", r.RelatedThreatActors)
	return append(b, '}')
}

// MarshalJSON returns AppendJSON's output.
func (r CVE) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

func (r *CVE) meta() meta {
	return meta{updated: millis(r.UpdateDate), sev: r.Severity}
}

func orNA(s string) string {
	if s == "" {
		return "N/A"
	}
	return s
}

// Alert is one alert: its list attributes and its complete form.
type Alert struct {
	ID         string
	UpdateDate time.Time
	FoundDate  time.Time
	Severity   string // High, Medium, Low
	Type       string // AttackIndication, DataLeakage, Phishing, BrandSecurity, ExploitableData, vip
	SubType    string
	Title      string
	Closed     bool
	Assets     []string // domain assets
	// Raw, when set, is served verbatim by get-complete-alert. The other
	// fields still decide whether the alert is listed.
	Raw []byte
}

// AppendJSON appends the complete alert as get-complete-alert serializes it.
func (a *Alert) AppendJSON(b []byte) []byte {
	if a.Raw != nil {
		return append(b, a.Raw...)
	}
	b = append(b, `{"_id":`...)
	b = appendString(b, a.ID)
	b = appendTimeField(b, "FoundDate", a.FoundDate)
	b = append(b, `,"Details":{"Title":`...)
	b = appendString(b, a.Title)
	b = append(b, `,"Type":`...)
	b = appendString(b, a.Type)
	b = append(b, `,"SubType":`...)
	b = appendString(b, a.SubType)
	b = append(b, `,"Severity":`...)
	b = appendString(b, a.Severity)
	b = append(b, `,"Tags":[{"Name":"Default Detection Rule","CreatedBy":"ProfilingRule","_id":"1al3p6789zxcvbnmas8a8q60"}],"Source":{"Type":"WHOIS servers","NetworkType":"ClearWeb","URL":"http://example.com","Date":null},"Images":[],"Description":"A suspicious domain was found."}`...)
	b = append(b, `,"Assignees":[],"Assets":[`...)
	for i, v := range a.Assets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Type":"Domains","Value":`...)
		b = appendString(b, v)
		b = append(b, '}')
	}
	b = append(b, `],"TakedownStatus":"NotSent","IsFlagged":false`...)
	b = appendTimeField(b, "UpdateDate", a.UpdateDate)
	b = appendStrings(b, "RelatedIocs", a.Assets)
	b = append(b, `,"RelatedThreatIDs":[],"Closed":{"IsClosed":`...)
	b = strconv.AppendBool(b, a.Closed)
	return append(b, `}}`...)
}

// MarshalJSON returns AppendJSON's output.
func (a Alert) MarshalJSON() ([]byte, error) { return a.AppendJSON(nil), nil }

// ---- JSON helpers ------------------------------------------------------

// meta is what filtering needs of a record.
type meta struct {
	updated int64 // Unix milliseconds; 0: unknown, matches every window
	typ     string
	sev     string
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// appendTime appends t as a quoted TimeLayout date; by hand, since
// generated pages format three dates per record.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, TimeLayout)
		return append(b, '"')
	}
	h, mi, s := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(b, '"',
		byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(mo)/10), byte('0'+int(mo)%10), '-', byte('0'+d/10), byte('0'+d%10), 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10), '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}

func appendTimeField(b []byte, name string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return appendTime(b, t)
}

func appendStrings(b []byte, name string, ss []string) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Malformed IOC records, ready for InjectIOCRecords: valid JSON that a
// normalizer must report rather than ingest.
const (
	MalformedNotObject = `42`
	MalformedBadIP     = `{"value":"999.1.2.3","type":"IpAddresses","status":"Active","severity":"High","score":50,"lastUpdateDate":"2024-06-01T10:00:00.000Z","lastSeen":"2024-06-01T09:00:00.000Z","firstSeen":"2024-05-01T09:00:00.000Z","relatedMalware":[],"relatedCampaigns":[],"relatedThreatActors":[],"reportedFeeds":[{"id":"5b68306df84f7c8696047fdd","name":"Test Feed","confidenceLevel":2}],"whitelisted":false,"tags":[]}`
	MalformedBadDate   = `{"value":"bad-date.example","type":"Domains","status":"Active","severity":"Low","score":10,"lastUpdateDate":"yesterday","lastSeen":"2024-06-01T09:00:00.000Z","firstSeen":"2024-05-01T09:00:00.000Z","relatedMalware":[],"relatedCampaigns":[],"relatedThreatActors":[],"reportedFeeds":[],"whitelisted":false,"tags":[]}`
)
