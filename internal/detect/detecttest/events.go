// Package detecttest generates deterministic ECS events for detection's
// tests and benchmarks and for the bench/ scripts: about 600 bytes each,
// of the kinds a SIEM sees (network flows, DNS, HTTP, files, e-mail,
// registry, vulnerability findings), with a share of them carrying a value
// of a matchertest indicator set.
//
// Like matchertest, an Events is a pure function of its Config: Append(i)
// gives the same bytes for the same i on every run.
package detecttest

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ti/vigil/internal/matcher"
	"github.com/vigil-ti/vigil/internal/matcher/matchertest"
)

// Config configures Events.
type Config struct {
	// Indicators is the indicator set hits are drawn from, and N how many
	// of its items (0..N-1) are indexed.
	Indicators *matchertest.Generator
	N          uint64
	// HitRate is the share of events that carry an indicator's value.
	HitRate float64
	Seed    uint64
	// Now is the time of event 0; events are 1 ms apart.
	Now time.Time
}

// Events generates events.
type Events struct {
	cfg     Config
	hitCut  uint64
	popular []string // destination domains most events go to
	dests   []string // destination addresses most events go to
}

// New returns the events of cfg.
func New(cfg Config) *Events {
	e := &Events{cfg: cfg, hitCut: uint64(cfg.HitRate * (1 << 32))}
	for j := range uint64(10000) {
		e.popular = append(e.popular, cfg.Indicators.Miss(matcher.KindDomain, 1<<40+j))
		r := rng{s: j ^ 0xde57}
		e.dests = append(e.dests, string(appendIP10(nil, &r)))
	}
	return e
}

// rng is a splitmix64 stream.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (r *rng) intn(n int) int { return int((r.next() >> 32) * uint64(n) >> 32) }

// Hit reports whether event i carries an indicator value.
func (e *Events) Hit(i uint64) bool {
	r := e.rng(i)
	return r.next()>>32 < e.hitCut
}

func (e *Events) rng(i uint64) rng {
	r := rng{s: e.cfg.Seed*0x2545f4914f6cdd1d ^ 0xe7e7<<48 ^ i}
	r.next()
	return r
}

// Event kinds.
const (
	kindFlow = iota
	kindDNS
	kindHTTP
	kindFile
	kindEmail
	kindRegistry
	kindVuln
)

// kindOf draws an event kind: 45 % flows, 20 % DNS, 17 % HTTP, 12 %
// files, 3 % e-mail, 2 % registry, 1 % vulnerability findings.
func kindOf(r *rng) int {
	switch n := r.intn(100); {
	case n < 45:
		return kindFlow
	case n < 65:
		return kindDNS
	case n < 82:
		return kindHTTP
	case n < 94:
		return kindFile
	case n < 97:
		return kindEmail
	case n < 99:
		return kindRegistry
	}
	return kindVuln
}

// hitKind returns the event kind that carries a value of indicator kind k.
func hitKind(k matcher.Kind) int {
	switch k {
	case matcher.KindIPv4, matcher.KindIPv6, matcher.KindCIDR:
		return kindFlow
	case matcher.KindDomain:
		return kindDNS
	case matcher.KindURL:
		return kindHTTP
	case matcher.KindHash:
		return kindFile
	case matcher.KindEmail:
		return kindEmail
	case matcher.KindRegistry:
		return kindRegistry
	}
	return kindVuln
}

// Append appends event i (one JSON object, no line end) to dst.
func (e *Events) Append(dst []byte, i uint64) []byte {
	r := e.rng(i)
	hit := r.next()>>32 < e.hitCut
	kind := kindOf(&r)
	var hitVal string
	if hit {
		// A random indexed item; hashes the rules do not map (sha384,
		// sha512) are passed over.
		for {
			item := uint64(r.next() % max(e.cfg.N, 1))
			ind := e.cfg.Indicators.Item(item)
			k := e.cfg.Indicators.Kind(item)
			if k == matcher.KindHash && len(ind.Value) > 64 {
				continue
			}
			kind, hitVal = hitKind(k), ind.Value
			switch k {
			case matcher.KindCIDR:
				p := netip.MustParsePrefix(ind.Value)
				hitVal = p.Addr().Next().String()
			case matcher.KindDomain:
				if r.intn(10) == 0 {
					hitVal = matchertest.Subdomain(hitVal, item)
				}
			}
			break
		}
	}
	ts := e.cfg.Now.Add(time.Duration(i) * time.Millisecond).UTC()
	host := r.intn(500)
	dst = append(dst, `{"@timestamp":"`...)
	dst = ts.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, `","event":{"id":"`...)
	dst = appendHex(dst, r.next())
	dst = append(dst, `","kind":"event",`...)
	switch kind {
	case kindFlow:
		dst = append(dst, `"category":["network"],"type":["connection","allowed"],"dataset":"network_traffic.flow","module":"network_traffic","outcome":"success","duration":`...)
		dst = strconv.AppendInt(dst, int64(r.intn(1e9)), 10)
		dst = append(dst, `},"source":{"ip":"`...)
		dst = appendHostIP(dst, host)
		dst = append(dst, `","port":`...)
		dst = strconv.AppendInt(dst, int64(32768+r.intn(28000)), 10)
		dst = append(dst, `,"bytes":`...)
		dst = strconv.AppendInt(dst, int64(r.intn(100000)), 10)
		dst = append(dst, `},"destination":{"ip":"`...)
		if hit {
			dst = append(dst, hitVal...)
		} else {
			dst = e.appendDest(dst, &r)
		}
		dst = append(dst, `","port":443,"bytes":`...)
		dst = strconv.AppendInt(dst, int64(r.intn(1000000)), 10)
		dst = append(dst, `},"network":{"transport":"tcp","type":"ipv4","direction":"egress","community_id":"1:`...)
		dst = appendHex(dst, r.next())
		dst = append(dst, `="}`...)
	case kindDNS:
		dst = append(dst, `"category":["network"],"type":["protocol"],"dataset":"network_traffic.dns","module":"network_traffic"},"dns":{"type":"query","id":`...)
		dst = strconv.AppendInt(dst, int64(r.intn(65536)), 10)
		dst = append(dst, `,"question":{"name":"`...)
		if hit {
			dst = append(dst, hitVal...)
		} else {
			dst = append(dst, e.domain(&r)...)
		}
		dst = append(dst, `","type":"A","class":"IN"},"response_code":"NOERROR"},"source":{"ip":"`...)
		dst = appendHostIP(dst, host)
		dst = append(dst, `","port":`...)
		dst = strconv.AppendInt(dst, int64(32768+r.intn(28000)), 10)
		dst = append(dst, `},"destination":{"ip":"10.0.0.53","port":53},"network":{"transport":"udp","protocol":"dns"}`...)
	case kindHTTP:
		u := "https://" + e.domain(&r) + "/static/app" + strconv.Itoa(r.intn(1000)) + ".js?v=" + strconv.Itoa(r.intn(100))
		if hit {
			u = hitVal
		}
		dst = append(dst, `"category":["web","network"],"type":["access"],"dataset":"zscaler_zia.web","module":"zscaler_zia"},"url":{"full":"`...)
		dst = append(dst, u...)
		dst = append(dst, `","domain":"`...)
		dst = append(dst, urlHost(u)...)
		dst = append(dst, `","scheme":"https"},"http":{"request":{"method":"GET"},"response":{"status_code":200,"bytes":`...)
		dst = strconv.AppendInt(dst, int64(r.intn(1000000)), 10)
		dst = append(dst, `}},"source":{"ip":"`...)
		dst = appendHostIP(dst, host)
		dst = append(dst, `"},"destination":{"ip":"`...)
		dst = e.appendDest(dst, &r)
		dst = append(dst, `","port":443},"user_agent":{"original":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}`...)
	case kindFile:
		h := e.cfg.Indicators.Miss(matcher.KindHash, r.next())
		if hit {
			h = hitVal
		}
		field := "sha512"
		switch len(h) {
		case 32:
			field = "md5"
		case 40:
			field = "sha1"
		case 64:
			field = "sha256"
		case 96:
			field = "sha384"
		}
		dst = append(dst, `"category":["file"],"type":["creation"],"dataset":"endpoint.events.file","module":"endpoint"},"file":{"path":"C:\\Users\\user`...)
		dst = strconv.AppendInt(dst, int64(r.intn(100)), 10)
		dst = append(dst, `\\Downloads\\setup.exe","name":"setup.exe","extension":"exe","size":`...)
		dst = strconv.AppendInt(dst, int64(r.intn(1e7)), 10)
		dst = append(dst, `,"hash":{"`...)
		dst = append(dst, field...)
		dst = append(dst, `":"`...)
		dst = append(dst, h...)
		dst = append(dst, `"}},"process":{"pid":`...)
		dst = strconv.AppendInt(dst, int64(r.intn(65536)), 10)
		dst = append(dst, `,"name":"explorer.exe","executable":"C:\\Windows\\explorer.exe"}`...)
	case kindEmail:
		from := e.cfg.Indicators.Miss(matcher.KindEmail, r.next())
		if hit {
			from = hitVal
		}
		dst = append(dst, `"category":["email"],"type":["info"],"dataset":"m365_defender.event","module":"m365_defender"},"email":{"from":{"address":["`...)
		dst = append(dst, from...)
		dst = append(dst, `"]},"to":{"address":["user`...)
		dst = strconv.AppendInt(dst, int64(r.intn(5000)), 10)
		dst = append(dst, `@corp.example"]},"subject":"Invoice `...)
		dst = strconv.AppendInt(dst, int64(r.intn(100000)), 10)
		dst = append(dst, `","message_id":"<`...)
		dst = appendHex(dst, r.next())
		dst = append(dst, `@mail.example>","direction":"inbound"}`...)
	case kindRegistry:
		p := e.cfg.Indicators.Miss(matcher.KindRegistry, r.next())
		if hit {
			p = hitVal
		}
		dst = append(dst, `"category":["registry"],"type":["change"],"dataset":"endpoint.events.registry","module":"endpoint"},"registry":{"path":"`...)
		dst = append(dst, strings.ReplaceAll(p, `\`, `\\`)...)
		dst = append(dst, `","hive":"HKLM","value":"updater","data":{"type":"REG_SZ","strings":["C:\\ProgramData\\u.exe"]}},"process":{"pid":`...)
		dst = strconv.AppendInt(dst, int64(r.intn(65536)), 10)
		dst = append(dst, `,"name":"reg.exe"}`...)
	case kindVuln:
		id := "CVE-2026-" + strconv.Itoa(70000+r.intn(20000)) // outside the indicator ids
		if hit {
			id = hitVal
		}
		dst = append(dst, `"category":["vulnerability"],"type":["info"],"dataset":"tenable_io.vulnerability","module":"tenable_io"},"vulnerability":{"id":"`...)
		dst = append(dst, id...)
		dst = append(dst, `","severity":"High","scanner":{"vendor":"Tenable"},"score":{"base":8.1}},"package":{"name":"openssl","version":"3.0.2"}`...)
	}
	dst = append(dst, `,"host":{"name":"ws-`...)
	dst = strconv.AppendInt(dst, int64(host), 10)
	dst = append(dst, `","hostname":"ws-`...)
	dst = strconv.AppendInt(dst, int64(host), 10)
	dst = append(dst, `","os":{"family":"windows"}},"agent":{"type":"filebeat","id":"`...)
	dst = appendHex(dst, uint64(host)*0x9e3779b97f4a7c15)
	dst = append(dst, `"},"user":{"name":"user`...)
	dst = strconv.AppendInt(dst, int64(host), 10)
	dst = append(dst, `"},"ecs":{"version":"8.11.0"}}`...)
	return dst
}

// domain returns a destination domain that is not an indicator: 80 %
// from a popular pool, as real traffic repeats itself.
func (e *Events) domain(r *rng) string {
	if r.intn(10) < 8 {
		return e.popular[r.intn(len(e.popular))]
	}
	return e.cfg.Indicators.Miss(matcher.KindDomain, r.next())
}

// appendDest appends a destination address that is not an indicator: 80 %
// from a popular pool.
func (e *Events) appendDest(dst []byte, r *rng) []byte {
	if r.intn(10) < 8 {
		return append(dst, e.dests[r.intn(len(e.dests))]...)
	}
	return appendIP10(dst, r)
}

// appendHostIP appends the address of host h, in 10.200.0.0/16.
func appendHostIP(dst []byte, h int) []byte {
	dst = append(dst, "10.200."...)
	dst = strconv.AppendInt(dst, int64(h>>8), 10)
	dst = append(dst, '.')
	return strconv.AppendInt(dst, int64(h&0xff), 10)
}

// appendIP10 appends an address in 10.0.0.0/8, which matchertest never
// uses for indicators.
func appendIP10(dst []byte, r *rng) []byte {
	x := r.next()
	dst = append(dst, "10."...)
	dst = strconv.AppendInt(dst, int64(x&0xff), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(x>>8&0xff), 10)
	dst = append(dst, '.')
	return strconv.AppendInt(dst, int64(x>>16&0xff), 10)
}

func appendHex(dst []byte, x uint64) []byte {
	var b [8]byte
	for i := range b {
		b[i] = byte(x >> (8 * i))
	}
	return hex.AppendEncode(dst, b[:])
}

// urlHost returns the host of a URL with or without a scheme.
func urlHost(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
	}
	if i := strings.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	if i := strings.LastIndexByte(u, ':'); i >= 0 && !strings.Contains(u[i:], "]") {
		u = u[:i]
	}
	return u
}
