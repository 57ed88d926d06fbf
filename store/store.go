// Package store defines what a backend store of the license API provides:
// the contract every backend implements and the conformance suite
// (store/storetest) checks. Backends live in sub-packages (store/sqlite,
// store/postgres), each registered as a Caddy module in the
// license_api.stores namespace; the seed format is store/seed, and the
// read cache in front of a backend is store/cache.
package store

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store/seed"
)

// Backend is a store of definitions and counters. It is safe for concurrent
// use. Its reads (Source) are uncached; callers put a cache.Cache in front.
// Every method has a caller outside tests: a backend implements what the
// server uses and nothing more, and the conformance suite (store/storetest)
// reads the rest through the same methods.
type Backend interface {
	Source
	consumption.Recorder
	// Import applies a validated seed as one transaction: all of it or, on
	// error, nothing. See seed.Plan for what an import changes. It applies
	// nothing, and returns false, when the last import committed to the
	// database had the same seed.Plan.Digest.
	Import(ctx context.Context, p *seed.Plan) (applied bool, err error)
	// WriteStats reports what the backend's group commit has done since
	// it opened.
	WriteStats() WriteStats
	// Close finishes writes already accepted and releases the store.
	Close() error
}

// WriteStats counts a backend's writes (consumptions, activations,
// deactivations, refused ones included) and the transactions that committed
// them: their ratio is how many writes group commit puts in one
// transaction.
type WriteStats struct {
	Writes  uint64
	Commits uint64
	// Syncs are the flushes to disk the backend makes itself: SQLite's
	// fsyncs of its write-ahead log. PostgreSQL flushes its own log, and
	// its backend reports none.
	Syncs uint64
}

// WriteCounters is what backends count WriteStats with. It is safe for
// concurrent use; its zero value is ready.
type WriteCounters struct {
	writes, commits, syncs atomic.Uint64
}

// Committed counts a transaction of n writes.
func (c *WriteCounters) Committed(n int) {
	c.writes.Add(uint64(n))
	c.commits.Add(1)
}

// Synced counts a flush to disk.
func (c *WriteCounters) Synced() { c.syncs.Add(1) }

// Stats returns the counts so far.
func (c *WriteCounters) Stats() WriteStats {
	return WriteStats{Writes: c.writes.Load(), Commits: c.commits.Load(), Syncs: c.syncs.Load()}
}

// Source is what the definitions cache reads through: a product, a user's
// licenses and a password hash one at a time, and the grouped reads that let
// the cache hold a license, or a product's blacklist, as one entry loaded by
// one call. A lookup that finds nothing returns false and a nil error.
type Source interface {
	Product(ctx context.Context, shortCode string) (consumption.Product, bool, error)
	// LicensesByUser returns the product's licenses that list the user, in
	// ascending id order. username is already lower-cased.
	LicensesByUser(ctx context.Context, productID int64, username string) ([]consumption.License, error)
	// PasswordHash returns the stored hash of a license user's password, ""
	// when the user has none.
	PasswordHash(ctx context.Context, licenseID int64, username string) (string, error)
	// LicenseBundle returns a license with its features and its devices.
	LicenseBundle(ctx context.Context, licenseID int64) (LicenseBundle, bool, error)
	// LicenseBundleByKey returns the product's license with the key, with
	// its features and its devices: what a key-based request reads first.
	LicenseBundleByKey(ctx context.Context, productID int64, key string) (LicenseBundle, bool, error)
	// LicenseBundles returns the bundles of up to limit licenses whose ids
	// are above afterID, in ascending id order: one page of a scan of all
	// licenses.
	LicenseBundles(ctx context.Context, afterID int64, limit int) ([]LicenseBundle, error)
	// Blacklist returns the hardware ids barred from the product: its own
	// entries and those barring every product, in no particular order.
	Blacklist(ctx context.Context, productID int64) ([]string, error)
}

// LicenseBundle is a license with what a request about it reads besides:
// its features and its devices. Features are sorted by code and Devices by
// hardware id (byte order), so that a lookup is a binary search.
type LicenseBundle struct {
	License  consumption.License
	Features []consumption.LicenseFeature
	Devices  []consumption.Device
}

// Feature returns the bundle's feature with code.
func (b *LicenseBundle) Feature(code string) (consumption.LicenseFeature, bool) {
	i, ok := slices.BinarySearchFunc(b.Features, code, func(f consumption.LicenseFeature, code string) int {
		return strings.Compare(f.Code, code)
	})
	if !ok {
		return consumption.LicenseFeature{}, false
	}
	return b.Features[i], true
}

// Device returns the bundle's device with hardwareID.
func (b *LicenseBundle) Device(hardwareID string) (consumption.Device, bool) {
	i, ok := slices.BinarySearchFunc(b.Devices, hardwareID, func(d consumption.Device, hw string) int {
		return strings.Compare(d.HardwareID, hw)
	})
	if !ok {
		return consumption.Device{}, false
	}
	return b.Devices[i], true
}

// GroupBundles makes the bundles of licenses (a page, in any order) from
// their features and devices, each already sorted as LicenseBundle promises;
// features and devices of other licenses are left out. It is LicenseBundles'
// last step in every backend.
func GroupBundles(licenses []consumption.License, features []consumption.LicenseFeature, devices []consumption.Device) []LicenseBundle {
	out := make([]LicenseBundle, len(licenses))
	at := make(map[int64]*LicenseBundle, len(licenses))
	for i, l := range licenses {
		out[i].License = l
		at[l.ID] = &out[i]
	}
	for _, f := range features {
		if lb := at[f.LicenseID]; lb != nil {
			lb.Features = append(lb.Features, f)
		}
	}
	for _, d := range devices {
		if lb := at[d.LicenseID]; lb != nil {
			lb.Devices = append(lb.Devices, d)
		}
	}
	return out
}

// Opener is implemented by store modules: it opens the Backend the module's
// configuration describes. Key identifies that backend, so that handlers
// (and successive configurations during a reload) share one open store.
type Opener interface {
	Key() string
	Open(logger *zap.Logger) (Backend, error)
}

// Change is a change of definitions announced by another node (or this
// one): everything (All), or one license, whose cached entry holds its
// features and devices.
type Change struct {
	All       bool
	LicenseID int64
}

// ChangeFeed is implemented by backends that several nodes share. Watch
// calls onChange for each change any node makes, and onReconnect whenever it
// (re)connects to the feed, since changes made while it was away are lost
// and a cache must then be dropped whole. It returns at once; watching stops
// when ctx ends.
type ChangeFeed interface {
	Watch(ctx context.Context, onChange func(Change), onReconnect func())
}
