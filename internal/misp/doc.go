// Package misp reads MISP: the attributes of a MISP instance, with
// POST /attributes/restSearch, and the events of MISP feeds, by URL or
// from a local directory, driven by each feed's manifest. Both are
// normalized to the ECS documents Elastic's ti_misp integration writes.
package misp

// SourceName is the source's name in the configuration, the CLI and the
// cursor table.
const SourceName = "misp"
