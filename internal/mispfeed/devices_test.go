package mispfeed_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/mispfeed"
	"github.com/vigil-ti/vigil/internal/sqlite"
)

func api(t *testing.T, e *env, method, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

// TestDeviceAPI adds, lists, uses and removes a device through the API.
func TestDeviceAPI(t *testing.T) {
	e := newEnv(t, baseFeeds)
	const tok = "admin-token-123"
	cases := []struct {
		name, method, path, token, body string
		code                            int
		want                            string
	}{
		{"no token", "GET", "/api/v1/devices", "", "", 401, "Bearer"},
		{"wrong token", "GET", "/api/v1/devices", "nope", "", 401, "admin_token"},
		{"basic auth is not the token", "GET", "/api/v1/devices", "", "", 401, ""},
		{"list", "GET", "/api/v1/devices", tok, "", 200, `"name":"SOC MISP","source":"config","username":"soc","groups":["all","phish","high"],"limit":50000,"status":"red"`},
		{"bad name", "POST", "/api/v1/devices", tok, `{"name":"soc-2","groups":["all"]}`, 400, "up to 50 letters, spaces, digits and underscores"},
		{"unknown group", "POST", "/api/v1/devices", tok, `{"name":"x","groups":["nope"]}`, 400, `is defined under feeds.misp.groups (defined: all, phish, high)`},
		{"no group", "POST", "/api/v1/devices", tok, `{"name":"x"}`, 400, "needs the groups"},
		{"bad limit", "POST", "/api/v1/devices", tok, `{"name":"x","groups":["all"],"limit":-1}`, 400, "limit -1 is not allowed"},
		{"unknown field", "POST", "/api/v1/devices", tok, `{"name":"x","groups":["all"],"password":"p"}`, 400, "unknown field"},
		{"configured name", "POST", "/api/v1/devices", tok, `{"name":"small","groups":["all"]}`, 409, "configured"},
		{"remove configured", "DELETE", "/api/v1/devices/small", tok, "", 409, "remove it there"},
		{"remove unknown", "DELETE", "/api/v1/devices/nope", tok, "", 404, "not found"},
		{"wrong method", "PUT", "/api/v1/devices", tok, "", 405, ""},
		{"wrong method on one", "GET", "/api/v1/devices/small", tok, "", 405, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := api(t, e, c.method, c.path, c.token, c.body)
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.want) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, c.code, c.want)
			}
			if strings.Contains(string(body), "secret") {
				t.Fatalf("a password in the answer: %s", body)
			}
		})
	}

	// Add a device: its key is shown once, and it pulls with it.
	resp, body := api(t, e, "POST", "/api/v1/devices", tok, `{"name":"Branch Office 2","groups":["phish"],"limit":10}`)
	var added struct {
		mispfeed.DeviceStatus
		Key string `json:"key"`
	}
	if err := json.Unmarshal(body, &added); err != nil || resp.StatusCode != 201 || added.Key == "" || added.Source != "runtime" ||
		!strings.HasPrefix(added.Username, "branch_office_2-") || added.Limit != 10 || added.Status != "red" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, body := api(t, e, "POST", "/api/v1/devices", tok, `{"name":"Branch Office 2","groups":["all"]}`); resp.StatusCode != 409 {
		t.Fatalf("duplicate: %d %s", resp.StatusCode, body)
	}
	e.write(ioc("domain-name", "a.example", iocOpts{}))
	if resp, body := get(t, e.srv.URL+"/misp/phish/manifest.json", added.Username, added.Key); resp.StatusCode != 200 || len(manifestOf(t, body)) != 1 {
		t.Fatalf("runtime device pull: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, e.srv.URL+"/misp/all/manifest.json", added.Username, added.Key); resp.StatusCode != 403 {
		t.Fatalf("runtime device, other group: %d", resp.StatusCode)
	}
	if resp, _ := get(t, e.srv.URL+"/misp/phish/manifest.json", added.Username, added.Key+"x"); resp.StatusCode != 401 {
		t.Fatalf("runtime device, wrong key: %d", resp.StatusCode)
	}
	// The key is stored hashed: listed nowhere, and not in the database.
	_, list := api(t, e, "GET", "/api/v1/devices", tok, "")
	if bytes.Contains(list, []byte(added.Key)) || !bytes.Contains(list, []byte(`"name":"Branch Office 2","source":"runtime"`)) || !bytes.Contains(list, []byte(`"status":"green"`)) {
		t.Fatalf("list: %s", list)
	}
	e.close()
	if raw := dbBytes(t, e.dir); bytes.Contains(raw, []byte(added.Key)) {
		t.Fatal("the key is in the database in clear")
	}
	e.open()
	// The device survives a restart, and is removed with its state.
	if resp, _ := get(t, e.srv.URL+"/misp/phish/manifest.json", added.Username, added.Key); resp.StatusCode != 200 {
		t.Fatalf("after restart: %d", resp.StatusCode)
	}
	if resp, body := api(t, e, "DELETE", "/api/v1/devices/Branch%20Office%202", tok, ""); resp.StatusCode != 204 {
		t.Fatalf("remove: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, e.srv.URL+"/misp/phish/manifest.json", added.Username, added.Key); resp.StatusCode != 401 {
		t.Fatalf("removed device: %d", resp.StatusCode)
	}
}

// TestDeviceAPIOff: without admin_token the API answers 403.
func TestDeviceAPIOff(t *testing.T) {
	e := newEnv(t, strings.Replace(baseFeeds, "    admin_token: ${ADMIN_TOKEN}\n", "", 1))
	if resp, body := api(t, e, "GET", "/api/v1/devices", "x", ""); resp.StatusCode != 403 || !strings.Contains(string(body), "set feeds.misp.admin_token") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestConfigDevicesSync: configured devices keep their state across a
// configuration change, and leave with it when removed from the file.
func TestConfigDevicesSync(t *testing.T) {
	e := newEnv(t, baseFeeds)
	ctx := t.Context()
	e.write(ioc("domain-name", "a.example", iocOpts{}))
	if _, err := e.misp("soc", "soc-secret", "all").Fetch(ctx); err != nil {
		t.Fatal(err)
	}
	// A runtime device may not take a configured username.
	if _, err := e.svc.AddDevice(ctx, "x", []string{"all"}, 0); err != nil {
		t.Fatal(err)
	}
	// New limit and username in the file: same device, same state.
	e.cfg = parseFeeds(t, strings.Replace(strings.Replace(baseFeeds, "username: soc\n", "username: soc2\n", 1), "groups: [all, phish, high]", "groups: [all]\n        limit: 7", 1))
	e.restart()
	d := e.device("SOC MISP")
	if d.Username != "soc2" || d.Limit != 7 || !d.LastPull.Equal(t0) || strings.Join(d.Groups, ",") != "all" {
		t.Fatalf("%+v", d)
	}
	if resp, _ := get(t, e.srv.URL+"/misp/all/manifest.json", "soc2", "soc-secret"); resp.StatusCode != 200 {
		t.Fatalf("%d", resp.StatusCode)
	}
	// Removed from the file: gone, with its events.
	e.cfg = parseFeeds(t, strings.Replace(baseFeeds, "      - name: SOC MISP\n        username: soc\n        password: ${SOC_PW}\n        groups: [all, phish, high]\n", "", 1))
	e.restart()
	if _, err := e.db.MISP().DeviceByName(ctx, "SOC MISP"); !errors.Is(err, mispfeed.ErrNotFound) {
		t.Fatalf("%v", err)
	}
	if _, err := e.db.MISP().DeviceByName(ctx, "x"); err != nil {
		t.Fatalf("runtime device lost: %v", err)
	}
	// A configured device named like a runtime one stops the start.
	e.cfg = parseFeeds(t, baseFeeds+"      - {name: x, username: xx, password: p, groups: [all]}\n")
	e.close()
	db := openDB(t, e)
	svc := &mispfeed.Service{Store: db.MISP(), Live: db, Config: e.cfg, Clock: e.clock}
	if err := svc.Sync(ctx); !errors.Is(err, mispfeed.ErrExists) || !strings.Contains(err.Error(), `configured device "x"`) {
		t.Fatalf("%v", err)
	}
	db.Close()
}

// TestStatusAndWarnings walks a device from red to green, through 48 hours
// without a pull (one warning), a pull, and a second silence.
func TestStatusAndWarnings(t *testing.T) {
	for _, withOutbox := range []bool{false, true} {
		name := "no outbox"
		if withOutbox {
			name = "outbox"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, baseFeeds)
			ctx := t.Context()
			var logs bytes.Buffer
			e.svc.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			// The warnings go through the store's own outbox.
			if withOutbox {
				e.svc.Outbox, e.svc.Connectors = e.db, []string{"webhook", "email"}
			}
			status := func() mispfeed.DeviceStatus {
				t.Helper()
				list, err := e.svc.Devices(ctx)
				if err != nil || len(list) != 2 {
					t.Fatalf("%+v %v", list, err)
				}
				return list[0]
			}
			check := func(want int) {
				t.Helper()
				n, err := e.svc.CheckDevices(ctx)
				if err != nil || n != want {
					t.Fatalf("raised %d, want %d: %v", n, want, err)
				}
			}
			if s := status(); s.Status != "red" || s.LastPull != "" || s.Warning != "" {
				t.Fatalf("%+v", s)
			}
			// Never synced: silent since it was configured (t0).
			e.clock.set(t0.Add(47 * time.Hour))
			check(0)
			e.clock.set(t0.Add(48 * time.Hour))
			check(2) // both configured devices
			if s := status(); s.Status != "red" || !strings.Contains(s.Warning, "never pulled in the 48h0m0s since it was added (2025-03-14T09:30:00Z)") {
				t.Fatalf("%+v", s)
			}
			e.clock.add(time.Hour)
			check(0) // once per silence
			e.restart()
			e.svc.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			if withOutbox {
				e.svc.Outbox, e.svc.Connectors = e.db, []string{"webhook", "email"}
			}
			check(0) // the raised warning survives a restart
			// A pull: green, no warning.
			e.write(ioc("domain-name", "a.example", iocOpts{ts: e.clock.Now()}))
			pulled := e.clock.Now()
			if resp, _ := get(t, e.srv.URL+"/misp/all/manifest.json", "soc", "soc-secret"); resp.StatusCode != 200 {
				t.Fatal(resp.StatusCode)
			}
			if s := status(); s.Status != "green" || s.LastPull != pulled.Format(time.RFC3339) || s.Warning != "" {
				t.Fatalf("%+v", s)
			}
			e.clock.add(47 * time.Hour)
			check(0)
			e.clock.add(time.Hour)
			check(1)
			if s := status(); s.Status != "green" || !strings.Contains(s.Warning, "no pull for 48h0m0s (last pull "+pulled.Format(time.RFC3339)+")") {
				t.Fatalf("%+v", s)
			}
			if n := strings.Count(logs.String(), "misp device silent"); n != 3 {
				t.Errorf("%d warnings logged:\n%s", n, logs.String())
			}
			d := e.device("SOC MISP")
			if !d.WarnedFor.Equal(pulled) {
				t.Fatalf("warned for %v", d.WarnedFor)
			}
			if !withOutbox {
				return
			}
			// One delivery per connector per warning, with a stable key,
			// queued in the outbox for serve to deliver.
			queued, err := e.db.DueDeliveries(ctx, e.clock.Now().Add(time.Hour), 100)
			if err != nil || len(queued) != 6 {
				t.Fatalf("%d deliveries queued: %+v %v", len(queued), queued, err)
			}
			ob := struct{ ds []vigil.Delivery }{queued}
			last := ob.ds[4]
			var w mispfeed.Warning
			if err := json.Unmarshal(last.Body, &w); err != nil {
				t.Fatal(err)
			}
			if last.Connector != "webhook" || ob.ds[5].Connector != "email" || last.Key != ob.ds[5].Key ||
				last.Key != "misp-device-silent:SOC MISP:"+itoa(pulled.UnixMilli()) || w.Vigil.MISPDevice.Name != "SOC MISP" ||
				w.Event.ID != last.Key || !strings.HasPrefix(last.Subject, `vigil: MISP device "SOC MISP": no pull for 48h`) {
				t.Fatalf("%+v %+v", last, w)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// dbBytes is everything the store wrote to disk.
func dbBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var out []byte
	files, _ := filepath.Glob(filepath.Join(dir, sqlite.FileName+"*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func openDB(t *testing.T, e *env) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), e.dir, sqlite.Options{Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	return db
}
