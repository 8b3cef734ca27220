package mispfeed_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigil-ti/vigil/internal/mispfeed"
)

// feedChecker checks every manifest and event a fake MISP receives: always
// against the project's own rules (misp.md section 8, with the type table
// of mispfeed.Types), and, when ../shared is beside the module, against
// the MISP core format schema of the RFC and describeTypes.json.
type feedChecker struct {
	schema   *jsonschema.Schema
	types    *describeTypes
	mu       sync.Mutex
	events   int // events checked
	manifest int // manifests checked
}

// describeTypes is the part of describeTypes.json the checks use.
type describeTypes struct {
	Result struct {
		Types        []string `json:"types"`
		SaneDefaults map[string]struct {
			DefaultCategory string `json:"default_category"`
			ToIDs           int    `json:"to_ids"`
		} `json:"sane_defaults"`
		CategoryTypeMappings map[string][]string `json:"category_type_mappings"`
	} `json:"result"`
}

var reference struct {
	once   sync.Once
	schema *jsonschema.Schema
	types  *describeTypes
	err    error
}

// loadReference compiles the RFC schema and reads describeTypes.json.
func loadReference(t testing.TB) (*jsonschema.Schema, *describeTypes) {
	t.Helper()
	dir := mispReference(t)
	if dir == "" {
		return nil, nil
	}
	reference.once.Do(func() {
		f, err := os.Open(filepath.Join(dir, "misp-rfc", "misp-core-format-schema.json"))
		if err != nil {
			reference.err = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			reference.err = err
			return
		}
		// The RFC's schema has one defect that draft-04's meta-schema
		// rejects: defs.sharing_group lists "required" among its
		// properties (it is also given, correctly, beside them). Feeds
		// never carry a sharing group; drop the stray entry.
		delete(doc.(map[string]any)["defs"].(map[string]any)["sharing_group"].(map[string]any)["properties"].(map[string]any), "required")
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft4)
		if err := c.AddResource("misp-core-format-schema.json", doc); err != nil {
			reference.err = err
			return
		}
		if reference.schema, err = c.Compile("misp-core-format-schema.json"); err != nil {
			reference.err = err
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, "pymisp", "describeTypes.json"))
		if err != nil {
			reference.err = err
			return
		}
		reference.types = &describeTypes{}
		reference.err = json.Unmarshal(b, reference.types)
	})
	if reference.err != nil {
		t.Fatalf("reading ../shared/reference/misp: %v", reference.err)
	}
	return reference.schema, reference.types
}

func newFeedChecker(t testing.TB) *feedChecker {
	s, ty := loadReference(t)
	return &feedChecker{schema: s, types: ty}
}

// MISP's UUID rule with the stricter version range of older releases.
var uuidRule = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-5][0-9a-f]{3}-[089ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func (c *feedChecker) check(kind, name string, body []byte) error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(name+": "+format, args...)) }
	// Numbers are strings, as the RFC writes them.
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: not JSON: %w", name, err)
	}
	walk(doc, "", func(path string, v any) {
		if n, ok := v.(json.Number); ok {
			fail("%s is the number %s; the MISP RFC writes numbers as strings", path, n)
		}
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	switch kind {
	case "manifest":
		c.manifest++
		var m map[string]map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return fmt.Errorf("%s: not an object of events: %w", name, err)
		}
		for u, e := range m {
			if !uuidRule.MatchString(u) {
				fail("key %q is not a UUID MISP accepts", u)
			}
			for _, k := range []string{"info", "Orgc", "timestamp", "date"} {
				if _, ok := e[k]; !ok {
					fail("event %s lacks %s", u, k)
				}
			}
		}
	case "event":
		c.events++
		c.checkEvent(strings.TrimSuffix(name, ".json"), body, fail)
	}
	return errors.Join(errs...)
}

func walk(v any, path string, fn func(string, any)) {
	fn(path, v)
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			walk(e, path+"."+k, fn)
		}
	case []any:
		for i, e := range x {
			walk(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

type checkedEvent struct {
	Event struct {
		UUID          string `json:"uuid"`
		Info          string `json:"info"`
		Date          string `json:"date"`
		Analysis      string `json:"analysis"`
		ThreatLevelID string `json:"threat_level_id"`
		Published     bool   `json:"published"`
		Timestamp     string `json:"timestamp"`
		Orgc          struct {
			Name, UUID string
		} `json:"Orgc"`
		Attribute []struct {
			UUID      string `json:"uuid"`
			Type      string `json:"type"`
			Category  string `json:"category"`
			Value     string `json:"value"`
			ToIDs     bool   `json:"to_ids"`
			Timestamp string `json:"timestamp"`
			FirstSeen string `json:"first_seen"`
			LastSeen  string `json:"last_seen"`
		} `json:"Attribute"`
	} `json:"Event"`
}

func (c *feedChecker) checkEvent(uuid string, body []byte, fail func(string, ...any)) {
	if c.schema != nil {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			fail("%v", err)
			return
		}
		if err := c.schema.Validate(inst); err != nil {
			fail("not valid against the MISP core format schema: %v", err)
		}
	}
	var e checkedEvent
	if err := json.Unmarshal(body, &e); err != nil {
		fail("%v", err)
		return
	}
	ev := e.Event
	if ev.UUID != uuid || !uuidRule.MatchString(ev.UUID) {
		fail("Event.uuid %q, file name %q", ev.UUID, uuid)
	}
	if len(ev.Attribute) == 0 {
		fail("an event with no attribute is published")
	}
	if !ev.Published || ev.Info == "" || strings.ContainsAny(ev.Info, "\r\n") || len(ev.Info) > 256 {
		fail("published %v, info %q", ev.Published, ev.Info)
	}
	if !slices.Contains([]string{"0", "1", "2"}, ev.Analysis) || !slices.Contains([]string{"1", "2", "3", "4"}, ev.ThreatLevelID) {
		fail("analysis %q, threat_level_id %q", ev.Analysis, ev.ThreatLevelID)
	}
	if _, err := time.Parse(time.DateOnly, ev.Date); err != nil || !strings.HasSuffix(ev.Info, " - "+ev.Date) {
		fail("date %q, info %q", ev.Date, ev.Info)
	}
	if ev.Orgc.Name == "" || !uuidRule.MatchString(ev.Orgc.UUID) {
		fail("Orgc %+v", ev.Orgc)
	}
	seen := map[string]bool{}
	for _, a := range ev.Attribute {
		where := "attribute " + a.Type + " " + a.Value
		if seen[a.UUID] || !uuidRule.MatchString(a.UUID) || a.UUID != mispfeed.AttributeUUID(ev.UUID, a.Type, a.Value) {
			fail("%s: uuid %q", where, a.UUID)
		}
		seen[a.UUID] = true
		i := slices.IndexFunc(mispfeed.Types, func(t mispfeed.MISPType) bool { return t.Type == a.Type })
		if i < 0 || mispfeed.Types[i].Category != a.Category || !a.ToIDs {
			fail("%s: category %q, to_ids %v (own table)", where, a.Category, a.ToIDs)
		}
		if err := valueRule(a.Type, a.Value); err != nil {
			fail("%s: %v", where, err)
		}
		first, err1 := time.Parse(time.RFC3339Nano, a.FirstSeen)
		last, err2 := time.Parse(time.RFC3339Nano, a.LastSeen)
		if err1 != nil || err2 != nil || last.Before(first) {
			fail("%s: first_seen %q, last_seen %q", where, a.FirstSeen, a.LastSeen)
		}
		if c.types != nil {
			r := c.types.Result
			if !slices.Contains(r.Types, a.Type) || !slices.Contains(r.CategoryTypeMappings[a.Category], a.Type) {
				fail("%s: the pair (%s, %s) is not in describeTypes.json", where, a.Category, a.Type)
			}
			if d := r.SaneDefaults[a.Type]; d.DefaultCategory != a.Category || (d.ToIDs == 1) != a.ToIDs {
				fail("%s: describeTypes.json defaults are %+v", where, d)
			}
		}
	}
}

// valueRule is MISP's value validation for the feed's types.
func valueRule(typ, v string) error {
	hex := func(n int) error {
		if !regexp.MustCompile(fmt.Sprintf(`^[0-9a-f]{%d}$`, n)).MatchString(v) {
			return fmt.Errorf("checksum has an invalid length or format (expected: %d hexadecimal characters)", n)
		}
		return nil
	}
	switch typ {
	case "md5":
		return hex(32)
	case "sha1":
		return hex(40)
	case "sha256":
		return hex(64)
	case "domain":
		if v != strings.ToLower(v) || !regexp.MustCompile(`(?i)^[A-Z0-9.\-_]+\.[A-Z0-9\-]{2,}$`).MatchString(v) {
			return errors.New("domain has an invalid format")
		}
	case "email-src":
		if v != strings.ToLower(v) || !regexp.MustCompile(`^.[^\s]*@.*\..*$`).MatchString(v) {
			return errors.New("email has an invalid format")
		}
	case "ip-dst":
		if a, err := netip.ParseAddr(v); err == nil {
			if a.String() != v {
				return errors.New("IP address is not in its compressed form")
			}
		} else if p, err := netip.ParsePrefix(v); err != nil || p.Masked().String() != v || p.IsSingleIP() {
			return errors.New("IP address has an invalid format")
		}
	case "url":
		if v == "" || strings.ContainsAny(v, " \t\r\n") {
			return errors.New("url has an invalid format")
		}
	default:
		return fmt.Errorf("type %q is not one the feed publishes", typ)
	}
	return nil
}
