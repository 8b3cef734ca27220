package ecs

import (
	"testing"

	"github.com/valyala/fastjson"
)

// BenchmarkSubDoc writes an array element's object as the normalizers do:
// a few single-key fields in the record's order, then encodes it.
func BenchmarkSubDoc(b *testing.B) {
	var p fastjson.Parser
	v, err := p.Parse(`{"id":"6650a1b2c3d4e5f60718293a","name":"Vigil Test Feed","confidenceLevel":2}`)
	if err != nil {
		b.Fatal(err)
	}
	o, _ := v.Object()
	var d Doc
	var out []byte
	b.ReportAllocs()
	for b.Loop() {
		d.Reset()
		o.Visit(func(k []byte, e *fastjson.Value) {
			key := b2s(k)
			if key == "confidenceLevel" {
				key = "confidence"
			}
			d.Value(key, e)
		})
		out = d.AppendJSON(out[:0])
	}
}

var benchPaths = func() []*Path {
	var ps []*Path
	for _, s := range []string{"@timestamp", "ecs.version", "event.category", "event.dataset", "event.kind",
		"event.module", "event.type", "rapid7.tc.ioc.severity", "rapid7.tc.ioc.status", "rapid7.tc.ioc.type",
		"rapid7.tc.ioc.value", "tags", "threat.indicator.ip", "threat.indicator.name", "threat.indicator.type"} {
		ps = append(ps, NewPath(s))
	}
	return ps
}()

// BenchmarkPathFields writes 15 short string fields at Paths, in order:
// the cost of a field apart from its value.
func BenchmarkPathFields(b *testing.B) {
	var d Doc
	var out []byte
	for b.Loop() {
		d.Reset()
		for _, p := range benchPaths {
			d.At(p).Str("Active")
		}
		out = d.AppendJSON(out[:0])
	}
}

// benchRecord is a typical raw IOC record, as event.original holds it.
const benchRecord = `{"value":"198.51.100.23","type":"IpAddresses","status":"Active","severity":"Low","score":13.26086956521739,"lastUpdateDate":"2024-05-30T08:15:42.123Z","lastSeen":"2024-05-29T22:00:00.000Z","firstSeen":"2024-05-01T10:00:00.000Z","geolocation":"NL","relatedMalware":["remcos"],"relatedCampaigns":[],"relatedThreatActors":[],"reportedFeeds":[{"id":"6650a1b2c3d4e5f60718293a","name":"Vigil Test Feed","confidenceLevel":2}],"whitelisted":false,"tags":["Test"]}`

// BenchmarkAppendStringRecord escapes a raw JSON record as a string, as
// event.original is written: a quote every few bytes.
func BenchmarkAppendStringRecord(b *testing.B) {
	out := make([]byte, 0, 1024)
	b.SetBytes(int64(len(benchRecord)))
	for b.Loop() {
		out = AppendString(out[:0], benchRecord)
	}
}
