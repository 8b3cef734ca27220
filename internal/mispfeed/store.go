package mispfeed

import (
	"context"
	"errors"
	"time"
)

// Where a device comes from.
const (
	SourceConfig  = "config"  // feeds.misp.devices in the configuration file
	SourceRuntime = "runtime" // added with `vigil device add` or the API
)

// Device is a MISP instance that pulls IOC groups, with its pull state.
type Device struct {
	ID       int64 // the store's id; 0 until stored
	Name     string
	Source   string // SourceConfig or SourceRuntime
	Username string
	Limit    int
	Groups   []string
	// CreatedAt is when vigil first knew the device: when it was added,
	// or when a writer first started with it configured. A device that
	// never pulled is silent since then.
	CreatedAt time.Time
	// LastPull is the device's last authenticated manifest.json request;
	// zero if it never pulled.
	LastPull time.Time
	// WarnedFor is the start of the silence (LastPull, or CreatedAt) that
	// the last "no pull for 48 hours" warning was raised for; zero if none.
	WarnedFor time.Time
}

// Synced reports whether the device ever pulled.
func (d *Device) Synced() bool { return !d.LastPull.IsZero() }

// SilentSince is when the device last pulled, or was created if it never did.
func (d *Device) SilentSince() time.Time {
	if d.Synced() {
		return d.LastPull
	}
	return d.CreatedAt
}

// EventMeta is a published event without its attributes: one per
// (device, group, UTC day).
type EventMeta struct {
	ID          int64
	UUID        string
	Group       string
	Day         string // YYYY-MM-DD, UTC
	Attributes  int
	ThreatLevel int   // MISP threat_level_id: 1 high, 2 medium, 3 low, 4 undefined
	TLP         int   // the most restrictive TLP of the attributes (tlpRank)
	Timestamp   int64 // Unix seconds of the last change: Event.timestamp
}

// StoredAttribute is one attribute of an event, as the store keeps it:
// the MISP type and value that identify it within the event, and its JSON.
type StoredAttribute struct {
	Type  string
	Value string
	Body  []byte
}

// PullRecord is what one pull of a group by a device changes, written in
// one transaction.
type PullRecord struct {
	Device int64
	Group  string
	At     time.Time
	// Seen is the group's IOC set at this pull, as sorted, distinct
	// hashes (see iocHash): the next pull delivers the IOCs not in it.
	Seen []uint64
	// Event names the day's event the attributes go to (UUID, Day) and
	// what they add to its metadata (ThreatLevel and TLP).
	Event EventMeta
	// Attributes are appended to the event; those it already holds (same
	// type and value) are skipped. The event is created with the first
	// one and never exists without attributes. Pull hands them in
	// CompareAttributes order.
	Attributes []StoredAttribute
	// Limit bounds the attributes of the device's events of this group:
	// events beyond it, oldest first, are removed (they have left the
	// manifest for good).
	Limit int
}

// Errors of a Store.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConfigured is returned for a change to a configured device
	// that only the configuration file can make.
	ErrConfigured = errors.New("configured in the file")
)

// Store keeps the MISP feed state: devices, what each device was given of
// each group, and the published events. internal/sqlite implements it.
type Store interface {
	// SyncConfigDevices makes the configured devices those of the
	// store: it adds the new ones (CreatedAt = at), updates the username,
	// limit and groups of the others, keeping their state, and removes
	// configured devices that left the configuration, with their state.
	// A configured name or username that a runtime device holds is
	// ErrExists.
	SyncConfigDevices(ctx context.Context, devs []Device, at time.Time) error
	// AddDevice stores a runtime device with the hash of its key.
	// A name or username already used is ErrExists.
	AddDevice(ctx context.Context, d Device, keyHash []byte) (Device, error)
	// RemoveDevice removes a runtime device and its state (ErrNotFound if
	// there is no runtime device of that name).
	RemoveDevice(ctx context.Context, name string) error
	// Devices lists the stored devices by name.
	Devices(ctx context.Context) ([]Device, error)
	// DeviceByName returns a stored device (ErrNotFound).
	DeviceByName(ctx context.Context, name string) (Device, error)
	// DeviceByUsername returns a stored device and its key hash (nil for
	// a configured device) (ErrNotFound).
	DeviceByUsername(ctx context.Context, username string) (Device, []byte, error)
	// GroupSeen returns the IOC set of the device's previous pull of the
	// group; ok is false before the first pull.
	GroupSeen(ctx context.Context, device int64, group string) (seen []uint64, ok bool, err error)
	// RecordPull writes a pull: the attributes into the day's event, the
	// seen set, the device's LastPull, and removes the events beyond the
	// limit, in one transaction.
	RecordPull(ctx context.Context, r PullRecord) error
	// Event returns the device's event of the group on day, if any.
	DayEvent(ctx context.Context, device int64, group, day string) (EventMeta, bool, error)
	// Events lists the device's events of the group, newest day first.
	Events(ctx context.Context, device int64, group string) ([]EventMeta, error)
	// EventByUUID returns the device's event of the group with that UUID.
	EventByUUID(ctx context.Context, device int64, group, uuid string) (EventMeta, bool, error)
	// EventAttributes calls fn with each attribute of an event, by type
	// and value. Body is only valid during the call.
	EventAttributes(ctx context.Context, event int64, fn func(StoredAttribute) error) error
	// MarkWarned records that the warning for the silence that began at
	// silence was raised.
	MarkWarned(ctx context.Context, device int64, silence time.Time) error
}
