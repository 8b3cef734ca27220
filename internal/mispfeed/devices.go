package mispfeed

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
)

// StaleAfter is how long a device may go without pulling before vigil
// warns about it.
const StaleAfter = 48 * time.Hour

// configDevices returns the configured devices, without their passwords.
func (s *Service) configDevices() []Device {
	out := make([]Device, len(s.Config.Devices))
	for i, d := range s.Config.Devices {
		out[i] = Device{Name: d.Name, Source: SourceConfig, Username: d.Username, Limit: d.Limit, Groups: d.Groups}
	}
	return out
}

func (s *Service) configured(name string) (config.MISPDevice, bool) {
	for _, d := range s.Config.Devices {
		if d.Name == name {
			return d, true
		}
	}
	return config.MISPDevice{}, false
}

// Sync makes the configured devices those of the store (a writer calls it
// when it starts): new ones are silent from now, the others keep their
// state, and those that left the configuration are removed.
func (s *Service) Sync(ctx context.Context) error {
	if err := s.Store.SyncConfigDevices(ctx, s.configDevices(), s.clock().Now()); err != nil {
		return fmt.Errorf("misp: devices of feeds.misp.devices: %w", err)
	}
	return nil
}

// hashKey is how a runtime device's key is kept: SHA-256. The key is 32
// random bytes, so a slow password hash would add nothing but its cost, on
// every request MISP makes.
func hashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// Authenticate returns the device whose basic auth credentials these are.
// ok is false for unknown credentials.
func (s *Service) Authenticate(ctx context.Context, username, password string) (dev Device, ok bool, err error) {
	got := hashKey(password)
	for _, d := range s.Config.Devices {
		if d.Username != username {
			continue
		}
		if subtle.ConstantTimeCompare(got, hashKey(d.Password.Value())) != 1 {
			return dev, false, nil
		}
		dev, err := s.Store.DeviceByName(ctx, d.Name)
		if err != nil {
			return dev, false, fmt.Errorf("misp: configured device %q is not in the store yet: %w", d.Name, err)
		}
		return dev, true, nil
	}
	dev, hash, err := s.Store.DeviceByUsername(ctx, username)
	if errors.Is(err, ErrNotFound) {
		return dev, false, nil
	}
	if err != nil {
		return dev, false, err
	}
	if dev.Source != SourceRuntime || subtle.ConstantTimeCompare(got, hash) != 1 {
		return dev, false, nil
	}
	return dev, true, nil
}

// NewDevice is a device added at run time, with its credentials: the key
// is shown this once; the store keeps only its hash.
type NewDevice struct {
	Device
	Key string
}

// AddDevice adds a runtime device that may pull groups, with a generated
// username and key. limit 0 means the default.
func (s *Service) AddDevice(ctx context.Context, name string, groups []string, limit int) (NewDevice, error) {
	if err := config.CheckMISPDeviceName(name); err != nil {
		return NewDevice{}, fmt.Errorf("misp: %w", err)
	}
	if _, ok := s.configured(name); ok {
		return NewDevice{}, fmt.Errorf("misp: device %q is configured in feeds.misp.devices: %w", name, ErrExists)
	}
	if limit == 0 {
		limit = config.DefaultMISPLimit
	}
	if limit < 0 {
		return NewDevice{}, fmt.Errorf("misp: limit %d is not allowed: the most IOCs a manifest lists must be positive (default %d)", limit, config.DefaultMISPLimit)
	}
	if len(groups) == 0 {
		return NewDevice{}, fmt.Errorf("misp: a device needs the groups it may pull (defined: %s)", strings.Join(s.Config.GroupNames(), ", "))
	}
	for i, g := range groups {
		if _, ok := s.Config.Group(g); !ok {
			return NewDevice{}, fmt.Errorf("misp: no group %q is defined under feeds.misp.groups (defined: %s)", g, strings.Join(s.Config.GroupNames(), ", "))
		}
		if slices.Contains(groups[:i], g) {
			return NewDevice{}, fmt.Errorf("misp: group %q is listed twice", g)
		}
	}
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [36]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return NewDevice{}, fmt.Errorf("misp: generate a key: %w", err)
	}
	key := base64.RawURLEncoding.EncodeToString(b[:32])
	user := strings.ToLower(strings.ReplaceAll(name, " ", "_")) + "-" + hex.EncodeToString(b[32:])
	if _, ok := s.configUser(user); ok {
		return NewDevice{}, fmt.Errorf("misp: generated username %q is a configured device's; try again: %w", user, ErrExists)
	}
	d := Device{Name: name, Source: SourceRuntime, Username: user, Limit: limit, Groups: slices.Clone(groups), CreatedAt: s.clock().Now()}
	d, err := s.Store.AddDevice(ctx, d, hashKey(key))
	if err != nil {
		return NewDevice{}, fmt.Errorf("misp: add device: %w", err)
	}
	s.log().Info("misp device added", "device", name, "username", user, "groups", groups, "limit", limit)
	return NewDevice{Device: d, Key: key}, nil
}

func (s *Service) configUser(username string) (config.MISPDevice, bool) {
	for _, d := range s.Config.Devices {
		if d.Username == username {
			return d, true
		}
	}
	return config.MISPDevice{}, false
}

// RemoveDevice removes a runtime device and its state. A configured device
// is removed from the configuration file instead.
func (s *Service) RemoveDevice(ctx context.Context, name string) error {
	if _, ok := s.configured(name); ok {
		return fmt.Errorf("misp: device %q is configured in feeds.misp.devices: remove it there (and restart) instead: %w", name, ErrConfigured)
	}
	if err := s.Store.RemoveDevice(ctx, name); err != nil {
		return fmt.Errorf("misp: remove device: %w", err)
	}
	s.log().Info("misp device removed", "device", name)
	return nil
}

// DeviceStatus is a device as `vigil get devices` and the API show it.
type DeviceStatus struct {
	Name     string   `json:"name"`
	Source   string   `json:"source"`
	Username string   `json:"username"`
	Groups   []string `json:"groups"`
	Limit    int      `json:"limit"`
	// Status is "green" once the device has pulled, "red" before.
	Status   string `json:"status"`
	LastPull string `json:"last_pull,omitempty"` // RFC 3339
	// Warning is set while the device has not pulled for StaleAfter.
	Warning string `json:"warning,omitempty"`
}

// Devices lists the devices: the configured ones (in configuration order),
// then those added at run time (by name), with their status.
func (s *Service) Devices(ctx context.Context) ([]DeviceStatus, error) {
	stored, err := s.Store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]Device{}
	for _, d := range stored {
		byName[d.Name] = d
	}
	now := s.clock().Now()
	var out []DeviceStatus
	for _, c := range s.configDevices() {
		d, ok := byName[c.Name]
		if !ok || d.Source != SourceConfig {
			d = c // not stored yet: no writer ran with it
		}
		d.Username, d.Limit, d.Groups = c.Username, c.Limit, c.Groups
		out = append(out, status(d, now))
	}
	for _, d := range stored {
		if d.Source == SourceRuntime {
			out = append(out, status(d, now))
		}
	}
	return out, nil
}

func status(d Device, now time.Time) DeviceStatus {
	st := DeviceStatus{Name: d.Name, Source: d.Source, Username: d.Username, Groups: d.Groups, Limit: d.Limit, Status: "red"}
	if st.Groups == nil {
		st.Groups = []string{}
	}
	if d.Synced() {
		st.Status = "green"
		st.LastPull = d.LastPull.UTC().Format(time.RFC3339)
	}
	if stale(&d, now) {
		st.Warning = warningText(&d, now)
	}
	return st
}

// stale reports whether a device has not pulled for StaleAfter.
func stale(d *Device, now time.Time) bool {
	since := d.SilentSince()
	return !since.IsZero() && now.Sub(since) >= StaleAfter
}

func warningText(d *Device, now time.Time) string {
	silent := now.Sub(d.SilentSince()).Truncate(time.Hour)
	if d.Synced() {
		return fmt.Sprintf("no pull for %s (last pull %s)", silent, d.LastPull.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("never pulled in the %s since it was added (%s)", silent, d.CreatedAt.UTC().Format(time.RFC3339))
}
