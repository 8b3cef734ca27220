package mispfeed_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/mispfeed"
)

// TestTypeTable is the project's own copy of what MISP pairs: each type's
// default category is among its allowed ones, e-mail senders are not
// "External analysis", and every published ECS type has a MISP type.
func TestTypeTable(t *testing.T) {
	want := map[string]string{
		"domain": "Network activity", "url": "Network activity", "ip-dst": "Network activity",
		"email-src": "Payload delivery", "md5": "Payload delivery", "sha1": "Payload delivery", "sha256": "Payload delivery",
	}
	if len(mispfeed.Types) != len(want) {
		t.Fatalf("%d types", len(mispfeed.Types))
	}
	ecs := map[string]bool{}
	for _, ty := range mispfeed.Types {
		if want[ty.Type] != ty.Category || !slices.Contains(ty.Allowed, ty.Category) {
			t.Errorf("%s: category %q, allowed %v", ty.Type, ty.Category, ty.Allowed)
		}
		if ty.Type == "email-src" && slices.Contains(ty.Allowed, "External analysis") {
			t.Error("email-src is not allowed in External analysis")
		}
		for _, e := range strings.Split(ty.ECS, ", ") {
			ecs[e] = true
		}
	}
	for _, e := range config.MISPPublishedTypes {
		if !ecs[e] {
			t.Errorf("published ECS type %s has no MISP type", e)
		}
	}
}

// TestTypeTableAgainstDescribeTypes checks the table against MISP's own
// describeTypes.json.
func TestTypeTableAgainstDescribeTypes(t *testing.T) {
	dir := mispReference(t)
	if dir == "" {
		t.Skip("../shared/reference/misp is absent: the type table is checked against the project's copy only")
	}
	_, dt := loadReference(t)
	r := dt.Result
	for _, ty := range mispfeed.Types {
		d, ok := r.SaneDefaults[ty.Type]
		if !ok || d.DefaultCategory != ty.Category || d.ToIDs != 1 {
			t.Errorf("%s: describeTypes defaults %+v", ty.Type, d)
		}
		var allowed []string
		for cat, types := range r.CategoryTypeMappings {
			if slices.Contains(types, ty.Type) {
				allowed = append(allowed, cat)
			}
		}
		slices.Sort(allowed)
		own := slices.Sorted(slices.Values(ty.Allowed))
		if !slices.Equal(allowed, own) {
			t.Errorf("%s: allowed in %v, the table says %v", ty.Type, allowed, own)
		}
	}
}

// TestUUIDs checks the UUIDv5 derivations, with misp.md's test vector.
func TestUUIDs(t *testing.T) {
	if got := mispfeed.AttributeUUID("6cd1aa97-b555-54a3-b92f-1d13c14deb06", "domain", "login-update.example"); got != "90097629-7f5f-5a65-a606-a0d15187e8e4" {
		t.Fatalf("attribute UUID %s", got)
	}
	a := mispfeed.EventUUID("SOC MISP", "all", "2025-03-14")
	if a != mispfeed.EventUUID("SOC MISP", "all", "2025-03-14") || !uuidRule.MatchString(a) || a[14] != '5' {
		t.Fatalf("event UUID %s", a)
	}
	for _, other := range []string{
		mispfeed.EventUUID("SOC MISP", "all", "2025-03-15"),
		mispfeed.EventUUID("SOC MISP2", "all", "2025-03-14"),
		mispfeed.EventUUID("SOC MISP", "phish", "2025-03-14"),
	} {
		if other == a {
			t.Fatal("UUIDs collide")
		}
	}
	// An attribute's UUID differs between events (MISP wants them unique).
	if mispfeed.AttributeUUID(a, "url", "x") == mispfeed.AttributeUUID(mispfeed.EventUUID("d", "g", "2025-03-14"), "url", "x") {
		t.Fatal("attribute UUIDs collide across events")
	}
}

// TestCheckerCatches makes sure the feed checker fails what it should, so
// that the pull tests cannot pass by checking nothing.
func TestCheckerCatches(t *testing.T) {
	c := newFeedChecker(t)
	good := `{"Event":{"uuid":"6cd1aa97-b555-54a3-b92f-1d13c14deb06","info":"g - 2025-03-14","date":"2025-03-14","analysis":"2","threat_level_id":"1","published":true,"timestamp":"1741948200","publish_timestamp":"1741948200","Orgc":{"name":"o","uuid":"0d6f2a8e-51c4-4b7a-9e3d-2f1a6c5b8e90"},"Tag":[],"Attribute":[{"uuid":"90097629-7f5f-5a65-a606-a0d15187e8e4","type":"domain","category":"Network activity","value":"login-update.example","to_ids":true,"timestamp":"1741948200","comment":"","first_seen":"2025-03-01T08:00:00+00:00","last_seen":"2025-03-14T09:30:00+00:00","deleted":false,"disable_correlation":false}]}}`
	if err := c.check("event", "6cd1aa97-b555-54a3-b92f-1d13c14deb06.json", []byte(good)); err != nil {
		t.Fatalf("good event: %v", err)
	}
	bad := []struct{ name, from, to, want string }{
		{"number", `"threat_level_id":"1"`, `"threat_level_id":1`, "number"},
		{"category", `"category":"Network activity"`, `"category":"Attribution"`, "category"},
		{"empty", `"Attribute":[{`, `"Attribute":[],"x":[{`, "no attribute"},
		{"seen order", `"first_seen":"2025-03-01`, `"first_seen":"2025-03-20`, "first_seen"},
		{"bad value", `"value":"login-update.example"`, `"value":"login update"`, "domain"},
		{"uuid", `"uuid":"6cd1aa97-b555-54a3-b92f-1d13c14deb06"`, `"uuid":"6cd1aa97-b555-74a3-b92f-1d13c14deb06"`, "uuid"},
	}
	for _, b := range bad {
		if err := c.check("event", "6cd1aa97-b555-54a3-b92f-1d13c14deb06.json", []byte(strings.Replace(good, b.from, b.to, 1))); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v", b.name, err)
		}
	}
	if c.schema != nil {
		err := c.check("event", "6cd1aa97-b555-54a3-b92f-1d13c14deb06.json", []byte(strings.Replace(good, `"published":true`, `"published":true,"protected":false`, 1)))
		if err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("an unknown event field passed the schema: %v", err)
		}
		// The schema takes a real feed event (PyMISP's test file).
		b, err := os.ReadFile(filepath.Join(mispReference(t), "pymisp", "57c4445b-c548-4654-af0b-4be3950d210f.json"))
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		inst, _ := json.Marshal(doc)
		if err := c.schema.Validate(mustInstance(t, inst)); err != nil {
			t.Fatalf("CIRCL's event against the schema: %v", err)
		}
	}
	if err := c.check("manifest", "manifest.json", []byte(`{"x":{"info":"i","timestamp":1}}`)); err == nil ||
		!strings.Contains(err.Error(), "not a UUID") || !strings.Contains(err.Error(), "lacks Orgc") || !strings.Contains(err.Error(), "number 1") {
		t.Errorf("bad manifest: %v", err)
	}
}
