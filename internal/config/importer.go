package config

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-ti/vigil/internal/ecs"
)

// Import configures `vigil import`, which loads local indicator lists into
// the vigil.import dataset. The block is optional: every key has a default.
type Import struct {
	// IOCExpirationDuration is how long an imported indicator stays live
	// after its timestamp, with the sources' rule and parser.
	IOCExpirationDuration string `yaml:"ioc_expiration_duration"`
	// Provider is threat.indicator.provider and threat.feed.name of the
	// records that name none.
	Provider   string `yaml:"provider"`
	expiration time.Duration
}

// DefaultImportProvider is the default provider of imported indicators.
const DefaultImportProvider = "vigil import"

// DefaultImport returns the import block's defaults.
func DefaultImport() Import {
	return Import{IOCExpirationDuration: "90d", Provider: DefaultImportProvider, expiration: ecs.DefaultExpiration}
}

// ExpirationDuration is the parsed ioc_expiration_duration (90 days when the
// unit was not one of d, h, m).
func (im *Import) ExpirationDuration() time.Duration { return im.expiration }

func (im *Import) validate(c *Config, errs *[]string) {
	const p = "import"
	add := func(format string, args ...any) { *errs = append(*errs, fmt.Sprintf(format, args...)) }
	d, fallback, err := ecs.ParseExpiration(im.IOCExpirationDuration)
	switch {
	case err != nil:
		add("%s.ioc_expiration_duration: %v", p, err)
	case fallback:
		c.Warnings = append(c.Warnings, fmt.Sprintf("%s.ioc_expiration_duration: unit of %q is not d, h or m; imported indicators expire 90d after their timestamp instead", p, im.IOCExpirationDuration))
	}
	im.expiration = d
	switch {
	case strings.TrimSpace(im.Provider) == "":
		add("%s.provider: must not be empty (default %q)", p, DefaultImportProvider)
	case strings.IndexFunc(im.Provider, unicode.IsControl) >= 0:
		add("%s.provider: has a control character; write the name on one line", p)
	}
}
