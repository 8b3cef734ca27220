package main

import (
	"fmt"
	"time"

	"github.com/vigil-ti/vigil"
	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/httpx"
	"github.com/vigil-ti/vigil/internal/misp"
)

// newMISP builds the MISP collector on the app's store: the instance when
// one is configured, and the feeds.
func newMISP(m *config.MISP, a *app, progress func(vigil.Progress)) (vigil.Collector, error) {
	log := a.log.With("source", misp.SourceName)
	opts := httpx.Options{
		Timeout:     time.Duration(m.HTTPClientTimeout),
		MaxAttempts: m.Retry.MaxAttempts,
		MaxDelay:    time.Duration(m.Retry.MaxBackoff),
		Logger:      log,
	}
	col := &misp.Collector{
		Store:  a.store,
		Clock:  a.clock,
		Logger: log,
		Settings: misp.Settings{
			Interval:           time.Duration(m.Interval),
			InitialInterval:    time.Duration(m.InitialInterval),
			Limit:              m.Limit,
			ToIDs:              m.ToIDs,
			Published:          m.Published,
			Tags:               m.Tags,
			EnforceWarningList: m.EnforceWarningList,
			ExpirationDuration: m.IOCExpirationDuration,
		},
		Progress: progress,
	}
	if m.HasInstance() {
		client, err := misp.NewClient(misp.ClientConfig{URL: m.URL, APIKey: m.APIToken.Value(), HTTP: opts, Logger: log})
		if err != nil {
			return nil, err
		}
		col.Client = client
	}
	hc := httpx.New(opts)
	for i, f := range m.Feeds {
		feed, err := misp.NewFeed(misp.FeedConfig{
			Name: f.Name, Key: fmt.Sprintf("sources.misp.feeds[%d]", i), URL: f.URL, Dir: f.Path,
			Username: f.Username, Password: f.Password.Value(), HTTP: hc, MaxEventAge: time.Duration(f.MaxEventAge),
		})
		if err != nil {
			return nil, err
		}
		col.Feeds = append(col.Feeds, feed)
	}
	return col, nil
}
