package consumption

import (
	"context"
	"strings"
	"time"
)

// Definitions reads the licensing model: products, licenses, devices,
// features and the blacklist. Implementations may cache: nothing read here
// decides a limit, because Counters re-reads a feature's settings inside its
// atomic step. A lookup that finds nothing returns false and a nil error.
type Definitions interface {
	Product(ctx context.Context, shortCode string) (Product, bool, error)
	LicenseByKey(ctx context.Context, productID int64, key string) (License, bool, error)
	// LicenseByID returns a license by its id.
	LicenseByID(ctx context.Context, id int64) (License, bool, error)
	// LicensesByUser returns the product's licenses that list the user, in
	// ascending id order. username is already lower-cased.
	LicensesByUser(ctx context.Context, productID int64, username string) ([]License, error)
	// PasswordHash returns the stored hash of a license user's password, ""
	// when the user has none.
	PasswordHash(ctx context.Context, licenseID int64, username string) (string, error)
	Device(ctx context.Context, licenseID int64, hardwareID string) (Device, bool, error)
	// Blacklisted reports whether hardwareID is barred from the product,
	// either for that product or for all products.
	Blacklisted(ctx context.Context, productID int64, hardwareID string) (bool, error)
	Feature(ctx context.Context, licenseID int64, code string) (LicenseFeature, bool, error)
}

// FeatureConsumption is one consumption to record.
type FeatureConsumption struct {
	Time             time.Time
	LicenseID        int64
	LicenseFeatureID int64
	Feature          string
	HardwareID       string
	Requested        int64
	APIKey           string
	Event            string
}

// FeatureOutcome is a recorded consumption: the feature as it stood when the
// counter was changed, and the counter's new total.
type FeatureOutcome struct {
	Feature LicenseFeature
	Total   int64
	Applied int64
}

// Recorder makes the durable changes: counters, their ledger, and device
// bindings. Each method is one atomic step of the store that reads what it
// decides on (settings, counters, active devices) inside that step, decides
// with this package's rules (Apply, ApplyLicense, License.ActivationAllowed),
// writes, and returns only once the step is durable. A refusal is returned as
// its *apierror.Error and writes nothing.
//
// The consumptions, the hot path, may return as soon as they are decided and
// committed, with a Durable to wait for: the caller can then prepare its
// answer (sign it) while the store makes the change durable, instead of
// after. An error is final: it comes with a nil Durable.
type Recorder interface {
	ConsumeFeature(ctx context.Context, c FeatureConsumption) (FeatureOutcome, Durable, error)
	ConsumeLicense(ctx context.Context, c LicenseConsumption) (LicenseOutcome, Durable, error)
	// Activate binds the device to the license, or confirms that it is
	// bound, and makes the license active.
	Activate(ctx context.Context, a DeviceChange) (Activation, error)
	// Deactivate unbinds an active device; ErrDeviceNotFound otherwise.
	Deactivate(ctx context.Context, d DeviceChange) error
	// LicenseStatus reads the parts of a license that change with use:
	// counters and activations. It is never cached.
	LicenseStatus(ctx context.Context, licenseID int64, hardwareID string) (LicenseStatus, error)
}

// Durable waits until a decided change is durable. It returns nil once the
// change will survive a crash, or the store's error when it may not (the
// change must then be treated as not made). Nothing may be acknowledged
// before its Durable has returned nil. A nil Durable means the change was
// durable when decided.
type Durable func() error

// Wait waits for d; a nil d returns at once.
func (d Durable) Wait() error {
	if d == nil {
		return nil
	}
	return d()
}

// Service answers License API requests.
type Service struct {
	Definitions Definitions
	Recorder    Recorder
	// Forget, when set, is told about a license whose activation state
	// changed, so that caches of Definitions drop what they hold of it,
	// its devices included.
	Forget func(licenseID int64)
	// Clock is the time source; nil means time.Now. Tests set it to cross
	// period boundaries.
	Clock func() time.Time
}

// Now returns the service's clock reading.
func (s *Service) Now() time.Time {
	if s.Clock != nil {
		return s.Clock()
	}
	return time.Now()
}

// AddFeatureConsumption decides and records one add_feature_consumption
// request made with apiKey. When several errors apply, it reports the first in
// this order: unknown_product, license_not_found, license_not_enabled,
// license_not_active, license_expired, blacklisted, device_not_found,
// unsupported_product_feature, negative_consumptions_not_allowed,
// feature_not_enough_consumptions. The outcome must not be acknowledged
// before the returned Durable has returned nil (see Recorder).
func (s *Service) AddFeatureConsumption(ctx context.Context, apiKey string, r *FeatureConsumptionRequest) (FeatureOutcome, Durable, error) {
	now := s.Now()
	lic, err := s.usableLicense(ctx, &r.LicenseRequest, now)
	if err != nil {
		return FeatureOutcome{}, nil, err
	}
	f, ok, err := s.Definitions.Feature(ctx, lic.ID, r.Feature)
	if err != nil {
		return FeatureOutcome{}, nil, err
	}
	if !ok || f.Type != ConsumptionFeature || f.Expired(now) {
		return FeatureOutcome{}, nil, ErrUnsupportedProductFeature
	}
	return s.Recorder.ConsumeFeature(ctx, FeatureConsumption{
		Time:             now,
		LicenseID:        lic.ID,
		LicenseFeatureID: f.ID,
		Feature:          f.Code,
		HardwareID:       r.HardwareID,
		Requested:        r.Amount(),
		APIKey:           apiKey,
		Event:            r.EventLabel(),
	})
}

// usableLicense finds the license a request addresses and checks that the
// device may use it, in the documented error order up to device_not_found.
func (s *Service) usableLicense(ctx context.Context, r *LicenseRequest, now time.Time) (License, error) {
	p, lic, err := s.license(ctx, r.Product, r.LicenseKey, r.Username, r.LicenseID)
	if err != nil {
		return License{}, err
	}
	switch {
	case !lic.Enabled:
		return License{}, ErrLicenseNotEnabled
	case !lic.Active:
		return License{}, ErrLicenseNotActive
	case lic.Expired(now):
		return License{}, ErrLicenseExpired
	}
	if err := s.deviceBound(ctx, p.ID, lic.ID, r.HardwareID); err != nil {
		return License{}, err
	}
	return lic, nil
}

// deviceBound checks that the device is not blacklisted from the product and
// is bound, active, to the license: blacklisted, then device_not_found.
func (s *Service) deviceBound(ctx context.Context, productID, licenseID int64, hardwareID string) error {
	if err := s.notBlacklisted(ctx, productID, hardwareID); err != nil {
		return err
	}
	d, ok, err := s.Definitions.Device(ctx, licenseID, hardwareID)
	if err != nil {
		return err
	}
	if !ok || !d.Active {
		return ErrDeviceNotFound
	}
	return nil
}

// license finds the product and the license a request addresses.
func (s *Service) license(ctx context.Context, product, key, username string, licenseID *int64) (Product, License, error) {
	p, ok, err := s.Definitions.Product(ctx, product)
	if err != nil {
		return p, License{}, err
	}
	if !ok {
		return p, License{}, ErrUnknownProduct
	}
	lic, err := s.findLicense(ctx, &p, key, username, licenseID)
	return p, lic, err
}

// findLicense resolves the license by key or user. A user with several
// licenses of one product gets the most recently created one (the highest
// id), as LicenseSpring does, unless license_id picks another.
func (s *Service) findLicense(ctx context.Context, p *Product, key, username string, licenseID *int64) (License, error) {
	if p.AuthMethod == UserBased {
		if username == "" {
			return License{}, missingField("username")
		}
		lics, err := s.Definitions.LicensesByUser(ctx, p.ID, strings.ToLower(username))
		if err != nil {
			return License{}, err
		}
		for i := len(lics) - 1; i >= 0; i-- {
			if licenseID == nil || lics[i].ID == *licenseID {
				return lics[i], nil
			}
		}
		return License{}, ErrLicenseNotFound
	}
	if key == "" {
		return License{}, missingField("license_key")
	}
	lic, ok, err := s.Definitions.LicenseByKey(ctx, p.ID, key)
	if err != nil {
		return License{}, err
	}
	if !ok || (licenseID != nil && lic.ID != *licenseID) {
		return License{}, ErrLicenseNotFound
	}
	return lic, nil
}
