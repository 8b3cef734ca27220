package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/vigil-ti/vigil/internal/mispfeed"
)

// MISPStore is the MISP feed state of a store: devices, what each device
// was given of each group, and the published events (mispfeed.Store).
type MISPStore struct {
	rw  *sql.DB // nil when read-only
	ro  *sql.DB
	own bool // the connections are the MISPStore's own (OpenMISPStore)
}

var _ mispfeed.Store = (*MISPStore)(nil)

// MISP returns the MISP feed state of the store, on the store's
// connections. It is read-only when the store is.
func (db *DB) MISP() *MISPStore { return &MISPStore{rw: db.rw, ro: db.ro} }

// OpenMISPStore opens the MISP feed state of the database in dir for
// reading and writing, beside a writer that holds the data directory's
// lock (`vigil device add` while `vigil serve` runs). It neither migrates
// the database nor touches the raw store and the live views, whose writer
// keeps state in memory; SQLite serializes its writes with the writer's.
// The database must exist at this vigil's schema version.
func OpenMISPStore(ctx context.Context, dir string) (*MISPStore, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("store: %s: %w (run `vigil pull` or `vigil serve` first)", path, ErrNoData)
	}
	ro := sql.OpenDB(connector{dsn: dsn(path, true), readOnly: true})
	ro.SetMaxOpenConns(2)
	check := &DB{ro: ro, path: path}
	if err := check.checkVersion(ctx); err != nil {
		ro.Close()
		return nil, err
	}
	rw := sql.OpenDB(connector{dsn: dsn(path, false)})
	rw.SetMaxOpenConns(1)
	return &MISPStore{rw: rw, ro: ro, own: true}, nil
}

// Close closes the connections OpenMISPStore opened; for the MISPStore of
// a DB it does nothing (close the DB).
func (s *MISPStore) Close() error {
	if !s.own {
		return nil
	}
	return errors.Join(s.rw.Close(), s.ro.Close())
}

func (s *MISPStore) begin(ctx context.Context) (*sql.Tx, error) {
	if s.rw == nil {
		return nil, errors.New("store: opened read-only")
	}
	tx, err := s.rw.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: begin: %w", err)
	}
	return tx, nil
}

// msOrNull is t in Unix milliseconds, or NULL for the zero time.
func msOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func timeOf(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return time.UnixMilli(ms.Int64).UTC()
}

// uniqueErr maps a UNIQUE constraint failure to mispfeed.ErrExists.
func uniqueErr(err error, what string) error {
	var se sqlite3.Error
	if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique {
		return fmt.Errorf("%s: %w", what, mispfeed.ErrExists)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

const deviceCols = `id, name, source, username, lim, groups, created_at, last_pull, warned_for`

type scanner interface{ Scan(...any) error }

func scanDevice(r scanner, extra ...any) (mispfeed.Device, error) {
	var d mispfeed.Device
	var groups string
	var created int64
	var last, warned sql.NullInt64
	dest := append([]any{&d.ID, &d.Name, &d.Source, &d.Username, &d.Limit, &groups, &created, &last, &warned}, extra...)
	if err := r.Scan(dest...); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(groups), &d.Groups); err != nil {
		return d, fmt.Errorf("device %q: groups are not a JSON list: %w", d.Name, err)
	}
	d.CreatedAt = time.UnixMilli(created).UTC()
	d.LastPull, d.WarnedFor = timeOf(last), timeOf(warned)
	return d, nil
}

func groupsJSON(groups []string) string {
	if groups == nil {
		groups = []string{}
	}
	b, _ := json.Marshal(groups)
	return string(b)
}

// SyncConfigDevices makes the configured devices those of the store.
func (s *MISPStore) SyncConfigDevices(ctx context.Context, devs []mispfeed.Device, at time.Time) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	keep := make([]any, 0, len(devs))
	for _, d := range devs {
		var source string
		err := tx.QueryRowContext(ctx, `SELECT source FROM misp_devices WHERE name = ? OR username = ? ORDER BY source = 'runtime' DESC LIMIT 1`, d.Name, d.Username).Scan(&source)
		if err == nil && source == mispfeed.SourceRuntime {
			return fmt.Errorf("configured device %q (username %q): a device added at run time has that name or username; remove one of them: %w", d.Name, d.Username, mispfeed.ErrExists)
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: sync devices: %w", err)
		}
		// The username may move from one configured device to another:
		// free it first.
		if _, err := tx.ExecContext(ctx, `UPDATE misp_devices SET username = '#' || id WHERE username = ? AND name <> ?`, d.Username, d.Name); err != nil {
			return fmt.Errorf("store: sync devices: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO misp_devices (name, source, username, lim, groups, created_at) VALUES (?, 'config', ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET username = excluded.username, lim = excluded.lim, groups = excluded.groups`,
			d.Name, d.Username, d.Limit, groupsJSON(d.Groups), at.UnixMilli()); err != nil {
			return uniqueErr(err, "sync devices")
		}
		keep = append(keep, d.Name)
	}
	q := `DELETE FROM misp_devices WHERE source = 'config'`
	if len(keep) > 0 {
		q += ` AND name NOT IN (?` + strings.Repeat(`, ?`, len(keep)-1) + `)`
	}
	if _, err := tx.ExecContext(ctx, q, keep...); err != nil {
		return fmt.Errorf("store: sync devices: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: sync devices: %w", err)
	}
	return nil
}

// AddDevice stores a runtime device with the hash of its key.
func (s *MISPStore) AddDevice(ctx context.Context, d mispfeed.Device, keyHash []byte) (mispfeed.Device, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return d, err
	}
	defer tx.Rollback()
	d.Source = mispfeed.SourceRuntime
	res, err := tx.ExecContext(ctx, `INSERT INTO misp_devices (name, source, username, key_hash, lim, groups, created_at) VALUES (?, 'runtime', ?, ?, ?, ?, ?)`,
		d.Name, d.Username, keyHash, d.Limit, groupsJSON(d.Groups), d.CreatedAt.UnixMilli())
	if err != nil {
		return d, uniqueErr(err, fmt.Sprintf("device %q", d.Name))
	}
	if d.ID, err = res.LastInsertId(); err != nil {
		return d, fmt.Errorf("store: add device: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return d, fmt.Errorf("store: add device: %w", err)
	}
	return d, nil
}

// RemoveDevice removes a runtime device and its state.
func (s *MISPStore) RemoveDevice(ctx context.Context, name string) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM misp_devices WHERE name = ? AND source = 'runtime'`, name)
	if err != nil {
		return fmt.Errorf("store: remove device: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("runtime device %q: %w", name, mispfeed.ErrNotFound)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: remove device: %w", err)
	}
	return nil
}

// Devices lists the stored devices by name.
func (s *MISPStore) Devices(ctx context.Context) ([]mispfeed.Device, error) {
	rows, err := s.ro.QueryContext(ctx, `SELECT `+deviceCols+` FROM misp_devices ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	defer rows.Close()
	var out []mispfeed.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("store: devices: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: devices: %w", err)
	}
	return out, nil
}

// DeviceByName returns a stored device.
func (s *MISPStore) DeviceByName(ctx context.Context, name string) (mispfeed.Device, error) {
	d, err := scanDevice(s.ro.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM misp_devices WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("device %q: %w", name, mispfeed.ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("store: device: %w", err)
	}
	return d, nil
}

// DeviceByUsername returns a stored device and its key hash.
func (s *MISPStore) DeviceByUsername(ctx context.Context, username string) (mispfeed.Device, []byte, error) {
	var hash []byte
	d, err := scanDevice(s.ro.QueryRowContext(ctx, `SELECT `+deviceCols+`, key_hash FROM misp_devices WHERE username = ?`, username), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return d, nil, fmt.Errorf("device with username %q: %w", username, mispfeed.ErrNotFound)
	}
	if err != nil {
		return d, nil, fmt.Errorf("store: device: %w", err)
	}
	return d, hash, nil
}

// GroupSeen returns the IOC set of the device's previous pull of the group.
func (s *MISPStore) GroupSeen(ctx context.Context, device int64, group string) ([]uint64, bool, error) {
	var b []byte
	err := s.ro.QueryRowContext(ctx, `SELECT seen FROM misp_group_state WHERE device = ? AND grp = ?`, device, group).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: group state: %w", err)
	}
	if len(b)%8 != 0 {
		return nil, false, fmt.Errorf("store: group state of %q: %d bytes is not a list of 8-byte hashes", group, len(b))
	}
	seen := make([]uint64, len(b)/8)
	for i := range seen {
		seen[i] = binary.BigEndian.Uint64(b[i*8:])
	}
	return seen, true, nil
}

// attrBatch is how many attributes one INSERT statement writes.
const attrBatch = 200

// RecordPull writes one pull in one transaction.
func (s *MISPStore) RecordPull(ctx context.Context, r mispfeed.PullRecord) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	at := r.At.Unix()
	if len(r.Attributes) > 0 {
		if err := recordAttributes(ctx, tx, &r, at); err != nil {
			return err
		}
	}
	seen := make([]byte, 8*len(r.Seen))
	for i, h := range r.Seen {
		binary.BigEndian.PutUint64(seen[i*8:], h)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO misp_group_state (device, grp, seen, pulled_at) VALUES (?, ?, ?, ?)
ON CONFLICT (device, grp) DO UPDATE SET seen = excluded.seen, pulled_at = excluded.pulled_at`, r.Device, r.Group, seen, r.At.UnixMilli()); err != nil {
		return fmt.Errorf("store: record pull: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE misp_devices SET last_pull = ? WHERE id = ?`, r.At.UnixMilli(), r.Device)
	if err != nil {
		return fmt.Errorf("store: record pull: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record pull: device %d: %w", r.Device, mispfeed.ErrNotFound)
	}
	if r.Limit > 0 {
		if err := pruneEvents(ctx, tx, r.Device, r.Group, r.Limit); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: record pull: %w", err)
	}
	return nil
}

// recordAttributes appends the pull's attributes to the day's event,
// creating it, and moves its timestamp on when any was new.
func recordAttributes(ctx context.Context, tx *sql.Tx, r *mispfeed.PullRecord, at int64) error {
	e := r.Event
	if _, err := tx.ExecContext(ctx, `INSERT INTO misp_events (device, grp, day, uuid, attributes, threat_level, tlp, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 4, 0, ?, 0)
ON CONFLICT (device, grp, day) DO NOTHING`, r.Device, r.Group, e.Day, e.UUID, at); err != nil {
		return uniqueErr(err, "record pull: event "+e.UUID)
	}
	var id, added int64
	if err := tx.QueryRowContext(ctx, `SELECT id FROM misp_events WHERE device = ? AND grp = ? AND day = ?`, r.Device, r.Group, e.Day).Scan(&id); err != nil {
		return fmt.Errorf("store: record pull: %w", err)
	}
	// In key order, the rows of a new event are appended to the table's
	// B-tree; in the pull's order (by rank) every row landed on a random
	// leaf, and the inserts of a 50,000-IOC pull took 1.5 s instead of 0.2.
	// mispfeed hands them sorted already.
	attrs := r.Attributes
	if !slices.IsSortedFunc(attrs, mispfeed.CompareAttributes) {
		attrs = slices.SortedFunc(slices.Values(attrs), mispfeed.CompareAttributes)
	}
	insert := func(rows int) string {
		return `INSERT INTO misp_attributes (event, type, value, body) VALUES (?, ?, ?, ?)` + strings.Repeat(`, (?, ?, ?, ?)`, rows-1) + ` ON CONFLICT DO NOTHING`
	}
	var full *sql.Stmt // a full batch's statement, prepared once
	if len(attrs) >= attrBatch {
		var err error
		if full, err = tx.PrepareContext(ctx, insert(attrBatch)); err != nil {
			return fmt.Errorf("store: record pull: attributes: %w", err)
		}
		defer full.Close()
	}
	args := make([]any, 0, 4*attrBatch)
	for start := 0; start < len(attrs); start += attrBatch {
		batch := attrs[start:min(start+attrBatch, len(attrs))]
		args = args[:0]
		for _, a := range batch {
			args = append(args, id, a.Type, a.Value, a.Body)
		}
		var res sql.Result
		var err error
		if len(batch) == attrBatch {
			res, err = full.ExecContext(ctx, args...)
		} else {
			res, err = tx.ExecContext(ctx, insert(len(batch)), args...)
		}
		if err != nil {
			return fmt.Errorf("store: record pull: attributes: %w", err)
		}
		n, _ := res.RowsAffected()
		added += n
	}
	if added == 0 {
		// Nothing new: an event created above stays without attributes
		// only until this DELETE.
		_, err := tx.ExecContext(ctx, `DELETE FROM misp_events WHERE id = ? AND attributes = 0`, id)
		if err != nil {
			return fmt.Errorf("store: record pull: %w", err)
		}
		return nil
	}
	// MISP downloads an event again only if its timestamp grew.
	if _, err := tx.ExecContext(ctx, `UPDATE misp_events SET attributes = attributes + ?, updated_at = MAX(?, updated_at + 1),
    threat_level = MIN(threat_level, ?), tlp = MAX(tlp, ?) WHERE id = ?`, added, at, e.ThreatLevel, e.TLP, id); err != nil {
		return fmt.Errorf("store: record pull: %w", err)
	}
	return nil
}

// pruneEvents removes the device's events of the group that no manifest
// lists any more: those past mispfeed.WithinLimit.
func pruneEvents(ctx context.Context, tx *sql.Tx, device int64, group string, limit int) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, attributes FROM misp_events WHERE device = ? AND grp = ? ORDER BY day DESC`, device, group)
	if err != nil {
		return fmt.Errorf("store: prune events: %w", err)
	}
	var events []mispfeed.EventMeta
	for rows.Next() {
		var e mispfeed.EventMeta
		if err := rows.Scan(&e.ID, &e.Attributes); err != nil {
			rows.Close()
			return fmt.Errorf("store: prune events: %w", err)
		}
		events = append(events, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: prune events: %w", err)
	}
	drop := events[mispfeed.WithinLimit(events, limit):]
	if len(drop) == 0 {
		return nil
	}
	ids := make([]any, len(drop))
	for i, e := range drop {
		ids[i] = e.ID
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM misp_events WHERE id IN (?`+strings.Repeat(`, ?`, len(ids)-1)+`)`, ids...); err != nil {
		return fmt.Errorf("store: prune events: %w", err)
	}
	return nil
}

const eventCols = `id, uuid, grp, day, attributes, threat_level, tlp, updated_at`

func scanEvent(r scanner) (mispfeed.EventMeta, error) {
	var e mispfeed.EventMeta
	err := r.Scan(&e.ID, &e.UUID, &e.Group, &e.Day, &e.Attributes, &e.ThreatLevel, &e.TLP, &e.Timestamp)
	return e, err
}

func (s *MISPStore) oneEvent(ctx context.Context, where string, args ...any) (mispfeed.EventMeta, bool, error) {
	e, err := scanEvent(s.ro.QueryRowContext(ctx, `SELECT `+eventCols+` FROM misp_events WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("store: event: %w", err)
	}
	return e, true, nil
}

// DayEvent returns the device's event of the group on day.
func (s *MISPStore) DayEvent(ctx context.Context, device int64, group, day string) (mispfeed.EventMeta, bool, error) {
	return s.oneEvent(ctx, `device = ? AND grp = ? AND day = ?`, device, group, day)
}

// EventByUUID returns the device's event of the group with that UUID.
func (s *MISPStore) EventByUUID(ctx context.Context, device int64, group, uuid string) (mispfeed.EventMeta, bool, error) {
	return s.oneEvent(ctx, `uuid = ? AND device = ? AND grp = ?`, uuid, device, group)
}

// Events lists the device's events of the group, newest day first.
func (s *MISPStore) Events(ctx context.Context, device int64, group string) ([]mispfeed.EventMeta, error) {
	rows, err := s.ro.QueryContext(ctx, `SELECT `+eventCols+` FROM misp_events WHERE device = ? AND grp = ? ORDER BY day DESC`, device, group)
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []mispfeed.EventMeta
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return out, nil
}

// EventAttributes calls fn with each attribute of an event, by type and
// value.
func (s *MISPStore) EventAttributes(ctx context.Context, event int64, fn func(mispfeed.StoredAttribute) error) error {
	rows, err := s.ro.QueryContext(ctx, `SELECT type, value, body FROM misp_attributes WHERE event = ? ORDER BY type, value`, event)
	if err != nil {
		return fmt.Errorf("store: attributes: %w", err)
	}
	defer rows.Close()
	var a mispfeed.StoredAttribute
	var body sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&a.Type, &a.Value, &body); err != nil {
			return fmt.Errorf("store: attributes: %w", err)
		}
		a.Body = body
		if err := fn(a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: attributes: %w", err)
	}
	return nil
}

// MarkWarned records that the warning for a silence was raised.
func (s *MISPStore) MarkWarned(ctx context.Context, device int64, silence time.Time) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE misp_devices SET warned_for = ? WHERE id = ?`, msOrNull(silence), device); err != nil {
		return fmt.Errorf("store: mark warned: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: mark warned: %w", err)
	}
	return nil
}
