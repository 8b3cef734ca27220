package config

import (
	"fmt"
	"time"
)

// Retrohunt configures retro-hunts (detection.retrohunt): what vigil keeps
// of the events it matches (the values of the rules' fields that matched
// nothing, per day) and how far back new indicators are checked against
// them.
type Retrohunt struct {
	// Enabled turns the recording of sightings and the retro-hunts after
	// pulls and imports on.
	Enabled bool `yaml:"enabled"`
	// Window is how far back sightings are kept and checked.
	Window Duration `yaml:"window"`
}

// Bounds and default of detection.retrohunt.window.
const (
	DefaultRetrohuntWindow = 7 * 24 * time.Hour
	MinRetrohuntWindow     = time.Hour
	MaxRetrohuntWindow     = 365 * 24 * time.Hour
)

// DefaultRetrohunt returns the retrohunt block's defaults: on, 7 days.
func DefaultRetrohunt() Retrohunt {
	return Retrohunt{Enabled: true, Window: Duration(DefaultRetrohuntWindow)}
}

func (r *Retrohunt) validate(errs *[]string) {
	if w := time.Duration(r.Window); w < MinRetrohuntWindow || w > MaxRetrohuntWindow {
		*errs = append(*errs, fmt.Sprintf("detection.retrohunt.window: %s is out of range: from 1h to 365d (default 7d)", w))
	}
}
