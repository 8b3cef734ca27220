package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ti/vigil/internal/config"
	"github.com/vigil-ti/vigil/internal/notify"
)

// newConnector builds one configured connector.
func newConnector(cn config.Connector, a *app) (notify.Connector, error) {
	switch cn.Type {
	case config.ConnectorWebhook:
		headers := make(map[string]string, len(cn.Headers))
		for k, v := range cn.Headers {
			headers[k] = v.Value()
		}
		return notify.NewWebhook(notify.WebhookSettings{
			Name: cn.Name, URL: cn.URL, Method: cn.Method, Headers: headers, Body: cn.Body,
			CAFile: cn.CAFile, Clock: a.clock,
		})
	case config.ConnectorEmail:
		return notify.NewEmail(notify.EmailSettings{
			Name: cn.Name, Host: cn.Host, Port: cn.Port, Username: cn.Username, Password: cn.Password.Value(),
			StartTLS: cn.StartTLSOn(), From: cn.From, To: cn.To, CAFile: cn.CAFile, Clock: a.clock,
		})
	}
	return nil, fmt.Errorf("connector %s: unknown type %q", cn.Name, cn.Type)
}

// deliverer returns the deliverer of the outbox of the open store through
// the configured connectors, or nil when none is configured.
//
// serve runs it (Run); a command that raises alerts and then exits calls
// DeliverOnce after storing them, which leaves what failed queued for
// serve.
func (a *app) deliverer() (*notify.Deliverer, error) {
	if len(a.cfg.Connectors) == 0 {
		return nil, nil
	}
	cs := make(map[string]notify.Connector, len(a.cfg.Connectors))
	for _, cn := range a.cfg.Connectors {
		c, err := newConnector(cn, a)
		if err != nil {
			return nil, err
		}
		cs[cn.Name] = c
	}
	return notify.NewDeliverer(a.store, cs, notify.Options{
		Clock:      a.clock,
		Logger:     a.log.With("component", "outbox"),
		MaxBackoff: time.Duration(a.cfg.Outbox.MaxBackoff),
		Timeout:    time.Duration(a.cfg.Outbox.Timeout),
	}), nil
}

// runDeliverer delivers the outbox until stop is closed or ctx is done,
// and closes done when it has returned.
func runDeliverer(ctx context.Context, d *notify.Deliverer, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if d == nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	d.Run(ctx)
}

// pruneOutbox removes the deliveries done more than retention ago: a
// delivered (key, connector) is remembered that long, so that it is not
// queued again.
func (a *app) pruneOutbox(ctx context.Context) (int64, error) {
	return a.store.PruneOutbox(ctx, a.clock.Now().Add(-time.Duration(a.cfg.Retention)))
}
