package seed

import (
	"crypto/sha256"
	"fmt"

	"github.com/edgelicense/caddy-license-api/consumption"
)

// Plan is a validated seed, resolved into what a backend writes. An import
// upserts: products by short code, product features by (product, code),
// licenses by id or else by (product, license key) or (product, first user),
// license features by (license, code), devices by (license, hardware id),
// blacklist entries by (product, hardware id). It never deletes, and it sets a
// counter only when the seed gives total_consumptions for it and that value
// differs from the one the previous import gave: importing the same
// definitions again leaves counters alone. (The same bytes again are not
// imported at all; see Digest.)
//
// A plan does not hold its licenses: a seed may have hundreds of thousands,
// and holding them planned took several times the memory of the seed's
// text. Apply plans them again from the text, which Parse has checked,
// and writes each as it is planned.
type Plan struct {
	Products  []Product
	Blacklist []BlacklistEntry
	// Licenses is how many licenses the seed has.
	Licenses int

	file string
	data []byte
	// maxLicenseID and maxFeatureID are the largest ids the seed gives.
	maxLicenseID, maxFeatureID int64
}

// Product is a product with its feature defaults.
type Product struct {
	consumption.Product
	Features []consumption.LicenseFeature // LicenseID and ID unused
}

// License is a license with its effective features and its devices.
type License struct {
	consumption.License // ID 0 means "assign one"
	Product             string
	// Users are lower-cased, for case-insensitive matching; Passwords holds
	// the password the seed gives each, "" for none.
	Users     []string
	Passwords []string
	// Total is the license-level counter value the seed sets, or nil.
	Total    *int64
	Features []LicenseFeature
	Devices  []consumption.Device
}

// LicenseFeature is a license feature with its overrides applied.
type LicenseFeature struct {
	consumption.LicenseFeature // ID 0 means "assign one"
	// Total is the counter value the seed sets, or nil to keep the counter.
	Total *int64
}

// BlacklistEntry bars a hardware id from one product, or from all when
// Product is empty.
type BlacklistEntry struct {
	HardwareID string
	Product    string
}

// File returns the name the seed was parsed under: its path, for messages.
func (p *Plan) File() string { return p.file }

// MaxIDs returns the largest license and license feature ids the plan
// gives. Backends assign new rows ids above these and above every stored
// id, so that a generated id is never one the plan names for a later row.
func (p *Plan) MaxIDs() (license, feature int64) {
	return p.maxLicenseID, p.maxFeatureID
}

// planFormat is hashed into every Plan.Digest. A build that plans the same
// seed text into different rows (a new field, a changed default) must
// change it, so that the files its predecessor imported are applied again
// after an upgrade rather than skipped.
const planFormat = "caddy-license-api seed plan 1\n"

// Digest identifies the seed's text as this build plans it. A backend
// records the digest of each import it commits and skips an import whose
// digest is the one recorded: every start and reload imports its seed,
// usually the same file, and re-applying it would change nothing that an
// import set (the counters and activation flags it leaves alone change
// only at run time). Only edits made to the database by hand would be
// undone, and those a byte-identical file no longer overwrites.
func (p *Plan) Digest() []byte {
	h := sha256.New()
	h.Write([]byte(planFormat))
	h.Write(p.data)
	return h.Sum(nil)
}

// Writer writes the parts of a plan inside a backend's import
// transaction. BlacklistEntry gets the product's id (0: every product).
type Writer interface {
	Product(p *Product) (id int64, err error)
	License(l *License, productID int64) error
	BlacklistEntry(e BlacklistEntry, productID int64) error
}

// Apply writes the plan through w in the order its references need
// (products before the licenses and blacklist entries that name them),
// naming the part of the plan that failed.
func (p *Plan) Apply(w Writer) error {
	products := make(map[string]int64, len(p.Products))
	for i := range p.Products {
		id, err := w.Product(&p.Products[i])
		if err != nil {
			return fmt.Errorf("product %q: %w", p.Products[i].ShortCode, err)
		}
		products[p.Products[i].ShortCode] = id
	}
	// The seed's text passed Parse, so planning it again fails only
	// if w does.
	again := newPlanner(p.file, p.data)
	again.emit = func(i int, l *License) error {
		if err := w.License(l, products[l.Product]); err != nil {
			return fmt.Errorf("licenses[%d]: %w", i, err)
		}
		return nil
	}
	if err := again.parse(); err != nil {
		return err
	}
	for i, e := range p.Blacklist {
		if err := w.BlacklistEntry(e, products[e.Product]); err != nil {
			return fmt.Errorf("blacklist[%d]: %w", i, err)
		}
	}
	return nil
}
