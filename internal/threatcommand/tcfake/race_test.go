//go:build race

package tcfake

func init() { raceEnabled = true }
