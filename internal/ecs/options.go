package ecs

import "time"

// NormalizeOptions configure a source's normalizer: what every document it
// writes gets besides the record's own fields.
type NormalizeOptions struct {
	// Dataset is the event.dataset to write; "" omits it. Document.Dataset
	// is Dataset, or the source's own dataset when it is empty.
	Dataset string
	// Tags are the configured tags, written first in the top-level tags.
	Tags []string
	// ExpirationDuration is ioc_expiration_duration as configured, e.g.
	// "90d" (see ParseExpiration). "" disables the deleted_at rule.
	ExpirationDuration string
	// Ingested is written as event.ingested; the zero time omits it. It is
	// also @timestamp when a record has no usable update date.
	Ingested time.Time
	// Arena, when set, holds the documents the normalizer returns (see
	// Arena): they stay valid until the arena's next Reset. Nil allocates
	// each document.
	Arena *Arena
}
