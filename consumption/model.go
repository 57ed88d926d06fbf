package consumption

import "time"

// AuthMethod is how a product's licenses are addressed by clients.
type AuthMethod uint8

const (
	// KeyBased licenses are addressed by their license key.
	KeyBased AuthMethod = iota
	// UserBased licenses are addressed by one of their users' names.
	UserBased
)

// ParseAuthMethod maps the seed and wire spelling of an authorization method
// ("license-key" or "user") to an AuthMethod.
func ParseAuthMethod(s string) (AuthMethod, bool) {
	switch s {
	case "license-key", "":
		return KeyBased, true
	case "user":
		return UserBased, true
	}
	return 0, false
}

// String returns the seed and wire spelling of m.
func (m AuthMethod) String() string {
	if m == UserBased {
		return "user"
	}
	return "license-key"
}

// Product is a licensed product, identified on the wire by its short code.
type Product struct {
	ID         int64
	ShortCode  string
	Name       string
	AuthMethod AuthMethod
}

// LicenseType is LicenseSpring's license type.
type LicenseType string

// The license types; only consumption licenses have a license-level counter.
const (
	Perpetual        LicenseType = "perpetual"
	TimeLimited      LicenseType = "time-limited"
	ConsumptionType  LicenseType = "consumption"
	SubscriptionType LicenseType = "subscription"
)

// License is a product license. Its booleans come last, where they pack
// into one word: a cache holds one License per license in use.
type License struct {
	ID        int64
	ProductID int64
	// Key is the license key of a key-based license; empty for user-based ones.
	Key string
	// ValidityPeriod is when the license expires; the zero time means never.
	ValidityPeriod time.Time
	Type           LicenseType
	MaxActivations int64
	// Consumption holds the license-level counter's rules, which apply to
	// consumption licenses only.
	Consumption Settings
	// Customer and Metadata are JSON objects, already in the form
	// JavaScript's JSON.stringify writes, so they are sent as they are.
	Customer string
	Metadata string

	Enabled bool
	// Active is false until the first activation (or the seed says so).
	Active                    bool
	IsTrial                   bool
	AllowUnlimitedActivations bool
}

// Expired reports whether the license's validity period has passed at now.
func (l *License) Expired(now time.Time) bool {
	return !l.ValidityPeriod.IsZero() && !now.Before(l.ValidityPeriod)
}

// Device is a hardware id bound to a license.
type Device struct {
	ID         int64
	LicenseID  int64
	HardwareID string
	Active     bool
}

// FeatureType says how a feature is used; only consumption features count.
type FeatureType string

const (
	// ConsumptionFeature is a metered feature with a counter.
	ConsumptionFeature FeatureType = "consumption"
	// ActivationFeature is an on/off feature without a counter.
	ActivationFeature FeatureType = "activation"
)

// Settings are the rules of one license feature's counter: the product
// feature's values with the license's overrides applied. Its booleans come
// last, where they pack into one word.
type Settings struct {
	MaxConsumption int64
	MaxOverages    int64
	// Period is when the counter returns to 0; it applies only with
	// ResetConsumption.
	Period Period

	AllowUnlimited   bool
	AllowOverages    bool
	AllowNegative    bool
	ResetConsumption bool
	IsFloating       bool
	IsFloatingCloud  bool
}

// LicenseFeature is a feature as assigned to one license.
type LicenseFeature struct {
	ID        int64
	LicenseID int64
	Code      string
	Name      string
	Type      FeatureType
	// ExpiryDate is when the feature stops being usable; zero means never.
	ExpiryDate time.Time
	Settings
}

// Expired reports whether the feature's expiry date has passed at now.
func (f *LicenseFeature) Expired(now time.Time) bool {
	return !f.ExpiryDate.IsZero() && !now.Before(f.ExpiryDate)
}
