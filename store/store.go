// Package store defines what a backend store of the license API provides, the
// seed format that loads definitions into it, and the read cache in front of
// it. Backends live in sub-packages (store/sqlite, ...), each registered as a
// Caddy module in the license_api.stores namespace.
package store

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/consumption"
)

// Backend is a store of definitions and counters. It is safe for concurrent
// use. Its Definitions are uncached reads; callers put a Cache in front.
type Backend interface {
	consumption.Definitions
	consumption.Counters
	// Import applies a validated seed as one transaction: all of it or, on
	// error, nothing. See Plan for what an import changes.
	Import(ctx context.Context, p *Plan) error
	// Ledger returns the consumption ledger of one license feature, oldest
	// first.
	Ledger(ctx context.Context, licenseFeatureID int64) ([]LedgerEntry, error)
	// Close finishes writes already accepted and releases the store.
	Close() error
}

// Opener is implemented by store modules: it opens the Backend the module's
// configuration describes. Key identifies that backend, so that handlers
// (and successive configurations during a reload) share one open store.
type Opener interface {
	Key() string
	Open(logger *zap.Logger) (Backend, error)
}

// LedgerEntry is one accepted consumption as the ledger keeps it.
type LedgerEntry struct {
	ID               int64
	Time             time.Time
	LicenseID        int64
	LicenseFeatureID int64
	Feature          string
	HardwareID       string
	Requested        int64
	Applied          int64
	Total            int64
	APIKey           string
	Event            string
}
