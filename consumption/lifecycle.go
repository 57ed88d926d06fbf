package consumption

import (
	"context"
	"strings"
	"time"

	"github.com/edgelicense/caddy-license-api/auth"
)

// DeviceChange is an activation or deactivation to record.
type DeviceChange struct {
	Time       time.Time
	LicenseID  int64
	HardwareID string
	APIKey     string
}

// Activation is a recorded activation.
type Activation struct {
	DeviceID       int64
	TimesActivated int64
	// Changed is false when the device was already active: re-activating is
	// idempotent and changes nothing.
	Changed bool
}

// LicenseConsumption is one license-level consumption to record.
type LicenseConsumption struct {
	Time       time.Time
	LicenseID  int64
	HardwareID string
	Requested  int64
	APIKey     string
	Event      string
}

// LicenseOutcome is a recorded license-level consumption: the license's
// counter rules as they stood, and the new total.
type LicenseOutcome struct {
	LicenseID int64
	Settings  Settings
	Total     int64
	Applied   int64
}

// LicenseStatus is the part of a license that changes with use.
type LicenseStatus struct {
	// TimesActivated counts the devices bound to the license now.
	TimesActivated int64
	// DeviceID is the id of the requesting device's binding, 0 if none.
	DeviceID int64
	// Counter is the license-level consumption counter.
	Counter  Counter
	Features []FeatureState
}

// FeatureState is a license feature with its counter.
type FeatureState struct {
	LicenseFeature
	Counter Counter
}

// LicenseView is everything a license answer (activate_license,
// check_license) shows.
type LicenseView struct {
	Product Product
	License License
	Status  LicenseStatus
	// HardwareID and SignatureID are the request's, which the v1
	// license_signature covers.
	HardwareID  string
	SignatureID string
	// UserEmail is the user a user-based license was addressed by,
	// lower-cased as stored.
	UserEmail string
	Now       time.Time
	// IncludeExpiredFeatures keeps features past their expiry date in the
	// answer.
	IncludeExpiredFeatures bool
}

// signatureID is what the v1 license_signature names the license by: the
// username up to its first "|", else the license key.
func signatureID(r *LicenseRequest) string {
	if r.Username != "" {
		name, _, _ := strings.Cut(r.Username, "|")
		return name
	}
	return r.LicenseKey
}

// ActivateLicense binds the request's device to its license. Errors, first
// applicable first: unknown_product, license_not_found, invalid_credentials,
// license_not_enabled, license_expired, blacklisted,
// license_activated_max_times.
func (s *Service) ActivateLicense(ctx context.Context, apiKey string, r *LicenseRequest) (LicenseView, error) {
	now := s.Now()
	p, lic, err := s.license(ctx, r.Product, r.LicenseKey, r.Username, r.LicenseID)
	if err != nil {
		return LicenseView{}, err
	}
	if p.AuthMethod == UserBased {
		if err := s.checkPassword(ctx, lic.ID, r.Username, r.Password); err != nil {
			return LicenseView{}, err
		}
	}
	switch {
	case !lic.Enabled:
		return LicenseView{}, ErrLicenseNotEnabled
	case lic.Expired(now):
		return LicenseView{}, ErrLicenseExpired
	}
	if err := s.notBlacklisted(ctx, p.ID, r.HardwareID); err != nil {
		return LicenseView{}, err
	}
	act, err := s.Recorder.Activate(ctx, DeviceChange{Time: now, LicenseID: lic.ID, HardwareID: r.HardwareID, APIKey: apiKey})
	if err != nil {
		return LicenseView{}, err
	}
	if act.Changed && s.Forget != nil {
		s.Forget(lic.ID)
	}
	lic.Active = true
	return s.view(ctx, p, lic, r, now)
}

// CheckLicense reports the license of an activated device. Errors:
// unknown_product, license_not_found, blacklisted, device_not_found. A
// disabled, inactive or expired license is reported by its flags, which the
// SDKs act on.
func (s *Service) CheckLicense(ctx context.Context, r *LicenseRequest) (LicenseView, error) {
	now := s.Now()
	p, lic, err := s.boundLicense(ctx, r)
	if err != nil {
		return LicenseView{}, err
	}
	return s.view(ctx, p, lic, r, now)
}

// CheckLicenseFeature reports one feature of an activated device's license,
// with its current total. Errors: those of CheckLicense, then
// invalid_license_feature_code.
func (s *Service) CheckLicenseFeature(ctx context.Context, r *LicenseRequest, code string) (FeatureState, error) {
	now := s.Now()
	_, lic, err := s.boundLicense(ctx, r)
	if err != nil {
		return FeatureState{}, err
	}
	st, err := s.Recorder.LicenseStatus(ctx, lic.ID, r.HardwareID)
	if err != nil {
		return FeatureState{}, err
	}
	for _, f := range st.Features {
		if f.Code == code {
			f.Counter.Total = f.Current(f.Counter, now)
			return f, nil
		}
	}
	return FeatureState{}, ErrInvalidLicenseFeatureCode
}

// AddConsumption records a license-level consumption. Errors, first
// applicable first: those of add_feature_consumption up to device_not_found,
// then license_not_consumption, negative_consumptions_not_allowed,
// license_not_enough_consumptions. The outcome must not be acknowledged
// before the returned Durable has returned nil (see Recorder).
func (s *Service) AddConsumption(ctx context.Context, apiKey string, r *LicenseConsumptionRequest) (LicenseOutcome, Durable, error) {
	now := s.Now()
	lic, err := s.usableLicense(ctx, &r.LicenseRequest, now)
	if err != nil {
		return LicenseOutcome{}, nil, err
	}
	if lic.Type != ConsumptionType {
		return LicenseOutcome{}, nil, ErrLicenseNotConsumption
	}
	return s.Recorder.ConsumeLicense(ctx, LicenseConsumption{
		Time: now, LicenseID: lic.ID, HardwareID: r.HardwareID, Requested: r.Amount(),
		APIKey: apiKey, Event: r.EventLabel(),
	})
}

// DeactivateLicense unbinds the request's device. Errors: unknown_product,
// license_not_found, device_not_found.
func (s *Service) DeactivateLicense(ctx context.Context, apiKey string, r *LicenseRequest) error {
	_, lic, err := s.license(ctx, r.Product, r.LicenseKey, r.Username, r.LicenseID)
	if err != nil {
		return err
	}
	if err := s.Recorder.Deactivate(ctx, DeviceChange{Time: s.Now(), LicenseID: lic.ID, HardwareID: r.HardwareID, APIKey: apiKey}); err != nil {
		return err
	}
	if s.Forget != nil {
		s.Forget(lic.ID)
	}
	return nil
}

// boundLicense finds the license and checks that the device is bound to it.
func (s *Service) boundLicense(ctx context.Context, r *LicenseRequest) (Product, License, error) {
	p, lic, err := s.license(ctx, r.Product, r.LicenseKey, r.Username, r.LicenseID)
	if err == nil {
		err = s.deviceBound(ctx, p.ID, lic.ID, r.HardwareID)
	}
	return p, lic, err
}

func (s *Service) notBlacklisted(ctx context.Context, productID int64, hardwareID string) error {
	barred, err := s.Definitions.Blacklisted(ctx, productID, hardwareID)
	if err != nil {
		return err
	}
	if barred {
		return ErrBlacklisted
	}
	return nil
}

// checkPassword verifies a user's password when the seed gave the user one.
func (s *Service) checkPassword(ctx context.Context, licenseID int64, username, password string) error {
	hash, err := s.Definitions.PasswordHash(ctx, licenseID, strings.ToLower(username))
	if err != nil {
		return err
	}
	if hash != "" && !auth.VerifyPassword(hash, password) {
		return ErrInvalidCredentials
	}
	return nil
}

func (s *Service) view(ctx context.Context, p Product, lic License, r *LicenseRequest, now time.Time) (LicenseView, error) {
	st, err := s.Recorder.LicenseStatus(ctx, lic.ID, r.HardwareID)
	if err != nil {
		return LicenseView{}, err
	}
	return LicenseView{Product: p, License: lic, Status: st, HardwareID: r.HardwareID, SignatureID: signatureID(r),
		UserEmail: strings.ToLower(r.Username), Now: now, IncludeExpiredFeatures: r.IncludeExpiredFeatures}, nil
}
