package mispfeed

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/valyala/fastjson"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/config"
)

// LiveReader reads the live views (vigil.Store has it).
type LiveReader interface {
	Live(ctx context.Context, f vigil.LiveFilter, fn func(vigil.Document) error) error
}

// Service publishes the configured IOC groups as MISP feeds: it keeps the
// devices, answers their pulls, and warns of silent devices.
type Service struct {
	Store  Store
	Live   LiveReader
	Config *config.MISPFeeds
	Clock  vigil.Clock
	Logger *slog.Logger
	// Outbox queues the "no pull for 48 hours" warnings to Connectors,
	// one delivery per connector; nil only logs them.
	Outbox     vigil.Outbox
	Connectors []string
	// Rand is the source of runtime device credentials; crypto/rand when nil.
	Rand io.Reader

	locks sync.Map // "device id|group" → *sync.Mutex: one pull at a time
}

func (s *Service) clock() vigil.Clock {
	if s.Clock == nil {
		return vigil.SystemClock{}
	}
	return s.Clock
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// org is the creator organisation of the events.
func (s *Service) org() Org {
	o := Org{Name: s.Config.Org.Name, UUID: strings.ToLower(s.Config.Org.UUID)}
	if o.Name == "" {
		o.Name = config.DefaultMISPOrgName
	}
	if o.UUID == "" {
		o.UUID = OrgUUID(o.Name)
	}
	return o
}

// candidate is an IOC of a group that the device has not been given.
type candidate struct {
	value
	enrichment
}

// PullStats sums up one pull.
type PullStats struct {
	Group     string
	Live      int // IOCs of the group now (MISP values)
	New       int // IOCs new since the device's previous pull
	Added     int // IOCs added to the day's event (New less those past the limit)
	Dropped   int // new IOCs left out because the day's event reached the limit
	Invalid   int // indicator documents with a value MISP rejects
	FirstPull bool
}

// Pull is a device's pull of a group, made when it asks for the group's
// manifest.json: the IOCs of the group that are new since the device's
// previous pull (all of them, up to the device's limit, the first time)
// are appended to the device's event of the group for the current UTC day,
// and the group's IOC set is remembered for the next pull, with the time,
// all in one transaction. The IOCs stay in that event whatever happens
// next, so a device that dies before it downloads the events gets them
// from the same manifest entry at its next pull.
func (s *Service) Pull(ctx context.Context, dev Device, group string) (PullStats, error) {
	st := PullStats{Group: group}
	g, ok := s.Config.Group(group)
	if !ok {
		return st, fmt.Errorf("misp: no group %q is configured", group)
	}
	mu, _ := s.locks.LoadOrStore(strconv.FormatInt(dev.ID, 10)+"|"+group, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()

	now := s.clock().Now().UTC()
	prev, pulled, err := s.Store.GroupSeen(ctx, dev.ID, group)
	if err != nil {
		return st, err
	}
	st.FirstPull = !pulled
	day := dayOf(now)
	today, _, err := s.Store.DayEvent(ctx, dev.ID, group, day)
	if err != nil {
		return st, err
	}
	room := max(dev.Limit-today.Attributes, 0)
	seen, fresh, err := s.scan(ctx, &g, prev, pulled, room, &st)
	if err != nil {
		return st, err
	}
	st.Added = len(fresh)
	rec := PullRecord{Device: dev.ID, Group: group, At: now, Seen: seen, Limit: dev.Limit,
		Event: EventMeta{UUID: EventUUID(dev.Name, group, day), Day: day, ThreatLevel: threatUndefined}}
	if len(fresh) > 0 {
		if err := s.addAlerts(ctx, fresh); err != nil {
			return st, err
		}
		rec.Attributes, err = encodeAttributes(fresh, rec.Event.UUID, now.Unix())
		if err != nil {
			return st, err
		}
		for _, c := range fresh {
			rec.Event.ThreatLevel = min(rec.Event.ThreatLevel, c.ThreatLevel)
			rec.Event.TLP = max(rec.Event.TLP, tlpRank(c.TLP))
		}
	}
	if err := s.Store.RecordPull(ctx, rec); err != nil {
		return st, err
	}
	level := slog.LevelDebug
	if st.Added > 0 || st.Dropped > 0 || st.FirstPull {
		level = slog.LevelInfo
	}
	s.log().Log(ctx, level, "misp pull", "device", dev.Name, "group", group, "first", st.FirstPull,
		"live", st.Live, "new", st.New, "added", st.Added, "dropped_over_limit", st.Dropped, "invalid", st.Invalid)
	return st, nil
}

// publishedTypes are the ECS types a group's IOCs are read by: those of
// its types filter that the feed carries, or all of them.
func publishedTypes(types []string) []string {
	if len(types) == 0 {
		return config.MISPPublishedTypes
	}
	var out []string
	for _, t := range types {
		if slices.Contains(config.MISPPublishedTypes, t) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// addAlerts sets the related alert ids of the candidates: the live alerts
// that name the IOC's value (rapid7.tc.alert.related_iocs).
func (s *Service) addAlerts(ctx context.Context, cands []*candidate) error {
	// want: the first candidate of each lower-cased value, and next the
	// one after each (-1 for none): no list to allocate per candidate.
	want := make(map[string]int, len(cands))
	next := make([]int, len(cands))
	for i := len(cands) - 1; i >= 0; i-- {
		k := strings.ToLower(cands[i].Value)
		if j, ok := want[k]; ok {
			next[i] = j
		} else {
			next[i] = -1
		}
		want[k] = i
	}
	var p fastjson.Parser
	err := s.Live.Live(ctx, vigil.LiveFilter{View: vigil.ViewAlerts}, func(d vigil.Document) error {
		v, err := p.ParseBytes(d.Source)
		if err != nil {
			return nil
		}
		for _, ioc := range texts(v.Get(pathAlertRelatedIOC...)) {
			i, ok := want[strings.ToLower(ioc)]
			for ; ok && i >= 0; i = next[i] {
				cands[i].Alerts = appendUnique(cands[i].Alerts, d.Key)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("misp: read the live alerts: %w", err)
	}
	return nil
}

// eventTags are an event's tags: its group, and the most restrictive TLP
// of its attributes.
func eventTags(group string, tlp int) []Tag {
	tags := []Tag{{Name: `vigil:ioc-group="` + tagValue(group) + `"`, Colour: "#0088cc"}}
	if tlp > 0 && tlp < len(tlpLevels) {
		tags = append(tags, Tag{Name: "tlp:" + tlpLevels[tlp], Colour: tlpColours[tlpLevels[tlp]]})
	}
	return tags
}

func (s *Service) entry(e EventMeta) ManifestEntry {
	return ManifestEntry{
		Info:          e.Group + " - " + e.Day,
		Orgc:          s.org(),
		Tag:           eventTags(e.Group, e.TLP),
		Date:          e.Day,
		Analysis:      analysisComplete,
		ThreatLevelID: strconv.Itoa(e.ThreatLevel),
		Timestamp:     unixString(e.Timestamp),
	}
}

// manifestEvents are the events a device's manifest of a group lists.
func (s *Service) manifestEvents(ctx context.Context, dev Device, group string) ([]EventMeta, error) {
	events, err := s.Store.Events(ctx, dev.ID, group)
	if err != nil {
		return nil, err
	}
	return events[:WithinLimit(events, dev.Limit)], nil
}

// Manifest returns the device's manifest.json of the group: its events,
// newest first, as many as hold at most the device's limit of IOCs.
func (s *Service) Manifest(ctx context.Context, dev Device, group string) ([]byte, error) {
	events, err := s.manifestEvents(ctx, dev, group)
	if err != nil {
		return nil, err
	}
	m := make(map[string]ManifestEntry, len(events))
	for _, e := range events {
		m[e.UUID] = s.entry(e)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("misp: encode manifest: %w", err)
	}
	return b, nil
}

// ErrNoEvent is returned for an event the device's manifest of the group
// does not list.
var ErrNoEvent = errors.New("no such event")

// WriteEvent writes the device's event of the group with that UUID, in the
// MISP core format: {"Event": {…, "Attribute": […]}}.
func (s *Service) WriteEvent(ctx context.Context, w io.Writer, dev Device, group, uuid string) error {
	e, ok, err := s.Store.EventByUUID(ctx, dev.ID, group, strings.ToLower(uuid))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("misp: event %s of group %q: %w", uuid, group, ErrNoEvent)
	}
	en := s.entry(e)
	head, err := json.Marshal(EventHeader{
		UUID: e.UUID, Info: en.Info, Date: en.Date, Analysis: en.Analysis, ThreatLevelID: en.ThreatLevelID,
		Published: true, Timestamp: en.Timestamp, PublishTimestamp: en.Timestamp, Orgc: en.Orgc, Tag: en.Tag,
	})
	if err != nil {
		return fmt.Errorf("misp: encode event: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteString(`{"Event":`)
	bw.Write(head[:len(head)-1])
	bw.WriteString(`,"Attribute":[`)
	n := 0
	err = s.Store.EventAttributes(ctx, e.ID, func(a StoredAttribute) error {
		if n > 0 {
			bw.WriteByte(',')
		}
		n++
		_, err := bw.Write(a.Body)
		return err
	})
	if err != nil {
		return err
	}
	bw.WriteString("]}}")
	return bw.Flush()
}

// WriteHashes writes the device's hashes.csv of the group: one line
// "md5 of the value,event UUID" per attribute of the manifest's events.
func (s *Service) WriteHashes(ctx context.Context, w io.Writer, dev Device, group string) error {
	events, err := s.manifestEvents(ctx, dev, group)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	line := make([]byte, 0, 80)
	for _, e := range events {
		err := s.Store.EventAttributes(ctx, e.ID, func(a StoredAttribute) error {
			sum := md5.Sum([]byte(a.Value))
			line = hex.AppendEncode(line[:0], sum[:])
			line = append(line, ',')
			line = append(line, e.UUID...)
			line = append(line, '\n')
			_, err := bw.Write(line)
			return err
		})
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}

// etag is a strong entity tag of a body.
func etag(b []byte, suffix string) string {
	h := fnv.New128a()
	h.Write(b)
	return `"` + hex.EncodeToString(h.Sum(nil)) + suffix + `"`
}
