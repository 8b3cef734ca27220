package mispfeed

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/vigil-ti/vigil"
)

// Warning is the document of a "no pull for 48 hours" warning, as the
// connectors deliver it.
type Warning struct {
	Timestamp time.Time    `json:"@timestamp"`
	Event     WarningEvent `json:"event"`
	Message   string       `json:"message"`
	Vigil     struct {
		MISPDevice WarningDevice `json:"misp_device"`
	} `json:"vigil"`
}

// WarningEvent is the warning's ECS event fields.
type WarningEvent struct {
	Kind     string `json:"kind"`     // "alert"
	Dataset  string `json:"dataset"`  // "vigil.misp_device"
	Action   string `json:"action"`   // "misp-device-silent"
	ID       string `json:"id"`       // the delivery key
	Severity int    `json:"severity"` // 2: a warning
}

// WarningDevice describes the silent device.
type WarningDevice struct {
	Name        string    `json:"name"`
	Source      string    `json:"source"`
	Groups      []string  `json:"groups"`
	SilentSince time.Time `json:"silent_since"`
	LastPull    string    `json:"last_pull,omitempty"`
}

// CheckDevices raises the warning of each device that has not pulled for
// StaleAfter (a device that never pulled counts from when it was added, or
// first configured), once per silence: it is logged, queued to the outbox
// for each connector, and recorded, so a restart does not raise it again.
// A device that pulls again ends its silence; the next one is warned about
// anew. It returns how many warnings it raised.
func (s *Service) CheckDevices(ctx context.Context) (int, error) {
	stored, err := s.Store.Devices(ctx)
	if err != nil {
		return 0, err
	}
	now := s.clock().Now()
	raised := 0
	for _, d := range stored {
		if d.Source == SourceConfig {
			if _, ok := s.configured(d.Name); !ok {
				continue
			}
		}
		since := d.SilentSince()
		if !stale(&d, now) || d.WarnedFor.Equal(since) {
			continue
		}
		if err := s.raise(ctx, &d, now); err != nil {
			return raised, err
		}
		if err := s.Store.MarkWarned(ctx, d.ID, since); err != nil {
			return raised, err
		}
		raised++
	}
	return raised, nil
}

// warningKey is the stable key of the warning of one silence of a device.
func warningKey(d *Device) string {
	return "misp-device-silent:" + d.Name + ":" + strconv.FormatInt(d.SilentSince().UnixMilli(), 10)
}

func (s *Service) raise(ctx context.Context, d *Device, now time.Time) error {
	msg := fmt.Sprintf("MISP device %q: %s", d.Name, warningText(d, now))
	s.log().Warn("misp device silent", "device", d.Name, "source", d.Source, "silent_since", d.SilentSince(), "warning", msg)
	if s.Outbox == nil || len(s.Connectors) == 0 {
		return nil
	}
	w := Warning{Timestamp: now, Message: msg,
		Event: WarningEvent{Kind: "alert", Dataset: "vigil.misp_device", Action: "misp-device-silent", ID: warningKey(d), Severity: 2}}
	w.Vigil.MISPDevice = WarningDevice{Name: d.Name, Source: d.Source, Groups: d.Groups, SilentSince: d.SilentSince()}
	if d.Synced() {
		w.Vigil.MISPDevice.LastPull = d.LastPull.UTC().Format(time.RFC3339)
	}
	body, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("misp: encode warning: %w", err)
	}
	ds := make([]vigil.Delivery, len(s.Connectors))
	for i, c := range s.Connectors {
		ds[i] = vigil.Delivery{Key: warningKey(d), Connector: c, Subject: "vigil: " + msg, Body: body}
	}
	if err := s.Outbox.Enqueue(ctx, ds); err != nil {
		return fmt.Errorf("misp: queue the warning of device %q: %w", d.Name, err)
	}
	return nil
}

// RunChecks calls CheckDevices every interval until ctx ends, logging its
// errors.
func (s *Service) RunChecks(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.CheckDevices(ctx); err != nil && ctx.Err() == nil {
			s.log().Error("misp: check devices", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
