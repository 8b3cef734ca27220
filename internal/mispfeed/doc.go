// Package mispfeed publishes IOC groups as MISP feeds that MISP instances
// pull, as Rapid7 Threat Command's "MISP device" does.
//
// A group (feeds.misp.groups) selects live indicators by type, provider,
// dataset, confidence and tag. A device (feeds.misp.devices, or added at
// run time) is a MISP instance, known by its HTTP basic auth credentials,
// that may pull some groups. Each group is one MISP feed of format "MISP
// Feed" at /misp/{group}/: manifest.json, one {uuid}.json per event, and
// hashes.csv (see Wrap).
//
// # What a pull is
//
// MISP pulls a feed by requesting manifest.json, then the events it lists
// that it does not have, or has with an older timestamp (Feed.php). vigil
// takes the device's GET of manifest.json as its pull; the state moves
// then, in one store transaction, and never on an event download:
//
//  1. The group's live IOCs are read and mapped to MISP values; the
//     device's seen set (the group's IOC set at its previous pull) says
//     which are new. Before the first pull, all are.
//  2. The new IOCs, most severe and most recently updated first, are
//     appended to the device's event of the group for the current UTC day
//     ("<group> - YYYY-MM-DD", UUIDv5 of device, group and day), up to
//     the device's limit for that event; its timestamp grows. The event is
//     created with its first attribute, so an empty event never exists.
//  3. The seen set becomes the group's current IOC set, and the device's
//     last pull is now. New IOCs past the limit are in the seen set too:
//     the limit caps what a device is given, as Threat Command's does.
//  4. Events past the limit (the newest ones whose attributes add up to at
//     most the limit stay) are dropped from the store: no manifest lists
//     them again, and MISP keeps its copies.
//
// The manifest then lists the device's events of the group. A device that
// dies after the manifest and before the events loses nothing: the IOCs
// are in an event that the next manifest lists again, with a timestamp
// newer than MISP's copy (or no copy), so MISP downloads it then. A device
// that asks twice gets nothing twice: the second pull finds no new IOC.
//
// An IOC that leaves the group (it expired, or no longer passes the
// filters) and comes back is new again: it goes into that day's event with
// an attribute UUID of that event, so an IOC deleted in MISP comes back
// with it, as MISP's blocklist and attribute UUID rules allow. IOCs that
// stay in the group are not sent again.
//
// # Identity and state
//
// UUIDs are UUIDv5 under Namespace, so they are the same after a restart
// and never random: an event's from "device|group|day", an attribute's
// from the event's UUID and "type|value". Devices, seen sets and events
// (with their attributes as published) are in the store (Store), so they
// survive restarts.
//
// # Device status
//
// A device is red until its first pull, then green with the time of its
// last pull. One that has not pulled for 48 hours (one that never pulled:
// since it was added, or since a writer first ran with it configured) is
// warned about once per silence (CheckDevices).
package mispfeed
