package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
)

func TestImportBlock(t *testing.T) {
	cases := []struct {
		name     string
		yaml     string
		provider string
		exp      time.Duration
		warning  string
		err      string
	}{
		{name: "defaults", yaml: "", provider: "vigil import", exp: 90 * 24 * time.Hour},
		{name: "every key", yaml: "import:\n  ioc_expiration_duration: 12h\n  provider: ${P}\n", provider: "corp list", exp: 12 * time.Hour},
		{name: "minutes", yaml: "import:\n  ioc_expiration_duration: 30m\n", provider: "vigil import", exp: 30 * time.Minute},
		{name: "unknown unit", yaml: "import:\n  ioc_expiration_duration: 2w\n", provider: "vigil import", exp: 90 * 24 * time.Hour,
			warning: `import.ioc_expiration_duration: unit of "2w" is not d, h or m`},
		{name: "not a number", yaml: "import:\n  ioc_expiration_duration: 1.5d\n", err: `import.ioc_expiration_duration: invalid expiration duration "1.5d"`},
		{name: "empty provider", yaml: "import:\n  provider: \"  \"\n", err: `import.provider: must not be empty (default "vigil import")`},
		{name: "provider on two lines", yaml: "import:\n  provider: \"a\\nb\"\n", err: "import.provider: has a control character"},
		{name: "unknown key", yaml: "import:\n  expire: 5d\n", err: "import.expire"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parse(t, c.yaml, map[string]string{"P": "corp list"})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Import.Provider != c.provider || cfg.Import.ExpirationDuration() != c.exp {
				t.Errorf("import %+v (expiration %v), want provider %q and %v", cfg.Import, cfg.Import.ExpirationDuration(), c.provider, c.exp)
			}
			if got := strings.Join(cfg.Warnings, "\n"); !strings.Contains(got, c.warning) || c.warning == "" && got != "" {
				t.Errorf("warnings %q, want %q", got, c.warning)
			}
		})
	}
	if d := config.Default().Import; d.IOCExpirationDuration != "90d" || d.Provider != config.DefaultImportProvider {
		t.Errorf("Default().Import = %+v", d)
	}
}
