package mispfake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Defaults of GenOptions.
var (
	DefaultTo   = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	DefaultFrom = DefaultTo.Add(-30 * 24 * time.Hour)
)

// GenOptions configures Generate.
type GenOptions struct {
	// Events and PerEvent are the number of events and of attributes in
	// each.
	Events, PerEvent int
	// Seed makes the data reproducible.
	Seed uint64
	// From and To bound the events' and attributes' timestamps. Zero:
	// DefaultFrom, DefaultTo.
	From, To time.Time
	// Objects puts every fifth attribute in an object (a file or domain-ip
	// object of its event).
	Objects bool
	// FirstID numbers the events and attributes from it (0: 1), so that
	// two generated sets can live in one instance.
	FirstID int64
}

// The attribute types generated, in turn, with their category and to_ids.
var genTypes = []struct {
	typ, category string
	toIDs         bool
}{
	{"ip-dst", "Network activity", true},
	{"domain", "Network activity", true},
	{"url", "Network activity", true},
	{"sha256", "Payload delivery", true},
	{"ip-src", "Network activity", true},
	{"hostname", "Network activity", true},
	{"md5", "Payload delivery", true},
	{"sha1", "Payload delivery", true},
	{"email-src", "Payload delivery", true},
	{"filename|sha256", "Payload delivery", true},
	{"ip-dst|port", "Network activity", true},
	{"domain|ip", "Network activity", true},
	{"link", "External analysis", false},
	{"text", "Other", false},
}

var genTags = [][]string{
	{"tlp:white", "type:OSINT"},
	{"tlp:green", "misp-galaxy:threat-actor=\"Example Actor\""},
	{"tlp:amber", "circl:incident-classification=\"malware\""},
	{"tlp:clear"},
}

// Generate returns o.Events events of o.PerEvent attributes each, of the
// types above in turn, with documentation-range addresses and .example
// names, unique values and UUIDs, and timestamps between From and To
// (an event's timestamp is its newest attribute's).
func Generate(o GenOptions) []Event {
	if o.From.IsZero() {
		o.From = DefaultFrom
	}
	if o.To.IsZero() {
		o.To = DefaultTo
	}
	if o.FirstID <= 0 {
		o.FirstID = 1
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x5eed))
	span := max(o.To.Sub(o.From), time.Second)
	id := o.FirstID
	events := make([]Event, o.Events)
	for i := range events {
		e := &events[i]
		e.ID = o.FirstID + int64(i)
		e.UUID = genUUID(rng)
		e.Info = fmt.Sprintf("Generated event %d", e.ID)
		e.Published = i%7 != 6
		e.Analysis = i % 3
		e.ThreatLevel = 1 + i%4
		e.OrgName, e.OrgUUID = "Example Org", "0d6f2a8e-51c4-4b7a-9e3d-2f1a6c5b8e90"
		e.Tags = genTags[i%len(genTags)]
		var obj *Object
		for j := range o.PerEvent {
			n := int(id)
			gt := genTypes[n%len(genTypes)]
			a := Attribute{
				ID: id, UUID: genUUID(rng), Type: gt.typ, Category: gt.category, ToIDs: gt.toIDs,
				Value:     genValue(gt.typ, n),
				Timestamp: o.From.Add(time.Duration(rng.Int64N(int64(span)))).Truncate(time.Second),
			}
			id++
			if n%3 == 0 {
				a.FirstSeen = a.Timestamp.Add(-72 * time.Hour)
				a.LastSeen = a.Timestamp.Add(-time.Hour)
			}
			if n%4 == 1 {
				a.Tags = []string{"kill-chain:Delivery"}
			}
			if a.Timestamp.After(e.Timestamp) {
				e.Timestamp = a.Timestamp
			}
			if o.Objects && j%5 == 4 {
				if obj == nil || len(obj.Attributes) >= 4 {
					e.Objects = append(e.Objects, Object{ID: id, UUID: genUUID(rng), Name: "file", MetaCategory: "file"})
					obj = &e.Objects[len(e.Objects)-1]
				}
				a.Relation = "indicator"
				obj.Attributes = append(obj.Attributes, a)
				if a.Timestamp.After(obj.Timestamp) {
					obj.Timestamp = a.Timestamp
				}
				continue
			}
			e.Attributes = append(e.Attributes, a)
		}
		if e.Timestamp.IsZero() {
			e.Timestamp = o.To.Truncate(time.Second)
		}
	}
	return events
}

// genUUID returns a random version 4 UUID.
func genUUID(rng *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		x := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(x >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// genValue returns the n-th value of a type: unique for every n.
func genValue(typ string, n int) string {
	sum := sha256.Sum256([]byte(fmt.Sprint("vigil-mispfake-", n)))
	h := hex.EncodeToString(sum[:])
	ip4 := func() string {
		// Beyond the 768 documentation addresses, values move to 2001:db8::/32.
		if n < 3*256*16 && n%16 == 0 {
			nets := []string{"192.0.2.", "198.51.100.", "203.0.113."}
			k := n / 16
			return fmt.Sprintf("%s%d", nets[(k/256)%3], k%256)
		}
		return ip6(n)
	}
	switch typ {
	case "ip-dst", "ip-src":
		return ip4()
	case "ip-dst|port":
		return ip4() + "|" + fmt.Sprint(1024+n%60000)
	case "domain", "hostname":
		return fmt.Sprintf("host-%d.example", n)
	case "domain|ip":
		return fmt.Sprintf("pair-%d.example|%s", n, ip6(n))
	case "url":
		return fmt.Sprintf("https://site-%d.example/path/%d/login.php?id=%d", n, n%97, n)
	case "link":
		return fmt.Sprintf("https://blog.example/report-%d.html", n)
	case "md5":
		return h[:32]
	case "sha1":
		return h[:40]
	case "sha256":
		return h
	case "filename|sha256":
		return fmt.Sprintf("dropper-%d.exe|%s", n, h)
	case "email-src":
		return fmt.Sprintf("sender-%d@mail.example", n)
	case "text":
		return fmt.Sprintf("Campaign note %d", n)
	}
	return fmt.Sprint(n)
}

func ip6(n int) string {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	for i := range 8 {
		b[15-i] = byte(n >> (8 * i))
	}
	return netip.AddrFrom16(b).String()
}
