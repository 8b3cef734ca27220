package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
)

func TestRetrohunt(t *testing.T) {
	cases := []struct {
		name, yaml string
		enabled    bool
		window     time.Duration
		err        []string
	}{
		{"defaults", "", true, 7 * 24 * time.Hour, nil},
		{"other keys only", "detection:\n  suppression_window: 5m\n", true, 7 * 24 * time.Hour, nil},
		{"off", "detection:\n  retrohunt:\n    enabled: false\n", false, 7 * 24 * time.Hour, nil},
		{"days", "detection:\n  retrohunt:\n    window: 30d\n", true, 30 * 24 * time.Hour, nil},
		{"hours", "detection:\n  retrohunt:\n    window: 36h\n", true, 36 * time.Hour, nil},
		{"too short", "detection:\n  retrohunt:\n    window: 30m\n", false, 0, []string{"detection.retrohunt.window: 30m0s is out of range: from 1h to 365d (default 7d)"}},
		{"too long", "detection:\n  retrohunt:\n    window: 400d\n", false, 0, []string{"detection.retrohunt.window", "out of range"}},
		{"not a duration", "detection:\n  retrohunt:\n    window: a week\n", false, 0, []string{"line 3: detection.retrohunt.window", `"a week" is not a duration`}},
		{"unknown key", "detection:\n  retrohunt:\n    windows: 7d\n", false, 0, []string{"detection.retrohunt.windows: unknown key", "enabled, window"}},
		{"bad enabled", "detection:\n  retrohunt:\n    enabled: sometimes\n", false, 0, []string{"detection.retrohunt.enabled", "not a boolean"}},
		{"unknown detection key", "detection:\n  retro_hunt: {}\n", false, 0, []string{"detection.retro_hunt: unknown key", "retrohunt"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse(t, c.yaml, nil)
			if c.err != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := cfg.Detection.Retrohunt
			if r.Enabled != c.enabled || time.Duration(r.Window) != c.window {
				t.Errorf("retrohunt %+v, want enabled %v window %s", r, c.enabled, c.window)
			}
		})
	}
	if d := config.DefaultRetrohunt(); !d.Enabled || time.Duration(d.Window) != config.DefaultRetrohuntWindow {
		t.Errorf("DefaultRetrohunt() = %+v", d)
	}
}
