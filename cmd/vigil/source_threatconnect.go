package main

import (
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/threatconnect"
)

// newThreatConnect builds the ThreatConnect collector on the app's store.
func newThreatConnect(tc *config.ThreatConnect, a *app, progress func(vigil.Progress)) (vigil.Collector, error) {
	log := a.log.With("source", threatconnect.SourceName)
	client, err := threatconnect.NewClient(threatconnect.ClientConfig{
		URL:       tc.URL,
		AccessID:  tc.AccessID,
		SecretKey: tc.SecretKey.Value(),
		Clock:     a.clock,
		Logger:    log,
		HTTP: httpx.Options{
			MaxAttempts: tc.Retry.MaxAttempts,
			MaxDelay:    time.Duration(tc.Retry.MaxBackoff),
			Logger:      log,
		},
	})
	if err != nil {
		return nil, err
	}
	return &threatconnect.Collector{
		Client: client,
		Store:  a.store,
		Clock:  a.clock,
		Logger: log,
		Settings: threatconnect.Settings{
			Interval:                 time.Duration(tc.Interval),
			InitialInterval:          time.Duration(tc.InitialInterval),
			BatchSize:                tc.BatchSize,
			TQL:                      tc.TQL,
			IncludeAttributes:        tc.IncludeAttributes,
			IncludeGroupAssoc:        tc.IncludeGroupAssoc,
			IncludeGroupAssocAttribs: tc.IncludeGroupAssocAttribs,
			IncludeIndicatorAssoc:    tc.IncludeIndicatorAssoc,
			ExpirationDuration:       tc.IOCExpirationDuration,
		},
		Progress: progress,
	}, nil
}
