package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/internal/jsonjs"
)

// opt is a seed field that distinguishes "absent" (inherit or keep) from an
// explicit value, including an explicit null.
type opt[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// UnmarshalJSON is only called when the key is present, which is what Set
// records.
func (o *opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(b, []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// seedFeatureFields are the fields of a product feature, which a license
// feature may override one by one.
type seedFeatureFields struct {
	Name              opt[string] `json:"name"`
	FeatureType       opt[string] `json:"feature_type"`
	MaxConsumption    opt[int64]  `json:"max_consumption"`
	AllowUnlimited    opt[bool]   `json:"allow_unlimited_consumptions"`
	AllowOverages     opt[bool]   `json:"allow_overages"`
	MaxOverages       opt[int64]  `json:"max_overages"`
	AllowNegative     opt[bool]   `json:"allow_negative_consumptions"`
	ResetConsumption  opt[bool]   `json:"reset_consumption"`
	ConsumptionPeriod opt[string] `json:"consumption_period"`
	ExpiryDate        opt[string] `json:"expiry_date"`
	IsFloating        opt[bool]   `json:"is_floating"`
	IsFloatingCloud   opt[bool]   `json:"is_floating_cloud"`
}

type seedFile struct {
	Products []struct {
		ShortCode           string `json:"short_code"`
		Name                string `json:"name"`
		AuthorizationMethod string `json:"authorization_method"`
		Features            []struct {
			Code string `json:"code"`
			seedFeatureFields
		} `json:"features"`
	} `json:"products"`
	Licenses []struct {
		ID                        opt[int64]      `json:"id"`
		Product                   string          `json:"product"`
		LicenseKey                string          `json:"license_key"`
		Users                     []seedUser      `json:"users"`
		Enabled                   opt[bool]       `json:"enabled"`
		Active                    opt[bool]       `json:"active"`
		ValidityPeriod            opt[string]     `json:"validity_period"`
		LicenseType               opt[string]     `json:"license_type"`
		IsTrial                   opt[bool]       `json:"is_trial"`
		MaxActivations            opt[int64]      `json:"max_activations"`
		AllowUnlimitedActivations opt[bool]       `json:"allow_unlimited_activations"`
		Customer                  json.RawMessage `json:"customer"`
		Metadata                  json.RawMessage `json:"metadata"`
		// The license-level counter of a consumption license; LicenseSpring
		// says max_consumptions here and max_consumption on features.
		MaxConsumptions   opt[int64]  `json:"max_consumptions"`
		AllowUnlimited    opt[bool]   `json:"allow_unlimited_consumptions"`
		AllowOverages     opt[bool]   `json:"allow_overages"`
		MaxOverages       opt[int64]  `json:"max_overages"`
		AllowNegative     opt[bool]   `json:"allow_negative_consumptions"`
		ResetConsumption  opt[bool]   `json:"reset_consumption"`
		ConsumptionPeriod opt[string] `json:"consumption_period"`
		TotalConsumptions opt[int64]  `json:"total_consumptions"`
		Features          []struct {
			Code              string     `json:"code"`
			ID                opt[int64] `json:"id"`
			TotalConsumptions opt[int64] `json:"total_consumptions"`
			seedFeatureFields
		} `json:"features"`
		Devices []struct {
			HardwareID string    `json:"hardware_id"`
			Active     opt[bool] `json:"active"`
		} `json:"devices"`
	} `json:"licenses"`
	Blacklist []struct {
		HardwareID string `json:"hardware_id"`
		Product    string `json:"product"`
	} `json:"blacklist"`
}

// seedUser is a license user: a name, or {"username": ..., "password": ...}.
type seedUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// UnmarshalJSON accepts the plain-name form as well as the object.
func (u *seedUser) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &u.Username)
	}
	type plain seedUser // without this method, so no recursion
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(u))
}

// Plan is a validated seed, resolved into what a backend writes. An import
// upserts: products by short code, product features by (product, code),
// licenses by id or else by (product, license key) or (product, first user),
// license features by (license, code), devices by (license, hardware id),
// blacklist entries by (product, hardware id). It never deletes, and it sets a
// counter only when the seed gives total_consumptions for it and that value
// differs from the one the previous import gave: re-importing a file (which
// every Caddy reload does) leaves counters alone.
type Plan struct {
	Products  []PlanProduct
	Licenses  []PlanLicense
	Blacklist []PlanBlacklistEntry
}

// PlanProduct is a product with its feature defaults.
type PlanProduct struct {
	consumption.Product
	Features []consumption.LicenseFeature // LicenseID and ID unused
}

// PlanLicense is a license with its effective features and its devices.
type PlanLicense struct {
	consumption.License // ID 0 means "assign one"
	Product             string
	// Users are lower-cased, for case-insensitive matching; Passwords holds
	// the password the seed gives each, "" for none.
	Users     []string
	Passwords []string
	// Total is the license-level counter value the seed sets, or nil.
	Total    *int64
	Features []PlanLicenseFeature
	Devices  []consumption.Device
}

// PlanLicenseFeature is a license feature with its overrides applied.
type PlanLicenseFeature struct {
	consumption.LicenseFeature // ID 0 means "assign one"
	// Total is the counter value the seed sets, or nil to keep the counter.
	Total *int64
}

// PlanBlacklistEntry bars a hardware id from one product, or from all when
// Product is empty.
type PlanBlacklistEntry struct {
	HardwareID string
	Product    string
}

// SeedError locates a problem in a seed file: a line and column for JSON
// syntax, a path such as licenses[2].features[0].code for content.
type SeedError struct {
	File  string
	Place string
	Err   error
}

func (e *SeedError) Error() string {
	return fmt.Sprintf("seed %s: %s: %v", e.File, e.Place, e.Err)
}

func (e *SeedError) Unwrap() error { return e.Err }

// ParseSeed validates a seed file's contents and resolves it into a Plan.
// name is used in errors only.
func ParseSeed(name string, data []byte) (*Plan, error) {
	var f seedFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, &SeedError{File: name, Place: jsonPlace(data, err, dec.InputOffset()), Err: jsonReason(err)}
	}
	if dec.More() {
		return nil, &SeedError{File: name, Place: lineCol(data, dec.InputOffset()), Err: errors.New("content after the seed object")}
	}
	p := &planner{file: name}
	return p.plan(&f)
}

type planner struct {
	file  string
	place string
}

func (p *planner) fail(format string, args ...any) error {
	return &SeedError{File: p.file, Place: p.place, Err: fmt.Errorf(format, args...)}
}

func (p *planner) plan(f *seedFile) (*Plan, error) {
	out := &Plan{}
	products := map[string]*PlanProduct{}
	for i, sp := range f.Products {
		p.place = fmt.Sprintf("products[%d]", i)
		if sp.ShortCode == "" {
			return nil, p.fail("short_code is required")
		}
		if products[sp.ShortCode] != nil {
			return nil, p.fail("product %q is defined twice", sp.ShortCode)
		}
		method, ok := consumption.ParseAuthMethod(sp.AuthorizationMethod)
		if !ok {
			return nil, p.fail(`authorization_method %q is not "license-key" or "user"`, sp.AuthorizationMethod)
		}
		pp := PlanProduct{Product: consumption.Product{ShortCode: sp.ShortCode, Name: sp.Name, AuthMethod: method}}
		codes := map[string]bool{}
		for j, sf := range sp.Features {
			p.place = fmt.Sprintf("products[%d].features[%d]", i, j)
			if sf.Code == "" {
				return nil, p.fail("code is required")
			}
			if codes[sf.Code] {
				return nil, p.fail("feature %q is defined twice", sf.Code)
			}
			codes[sf.Code] = true
			base := consumption.LicenseFeature{Code: sf.Code, Name: sf.Code, Type: consumption.ConsumptionFeature}
			feat, err := p.applyFields(base, &sf.seedFeatureFields)
			if err != nil {
				return nil, err
			}
			pp.Features = append(pp.Features, feat)
		}
		out.Products = append(out.Products, pp)
		products[sp.ShortCode] = &out.Products[len(out.Products)-1]
	}

	ids := map[int64]string{}
	keys := map[string]bool{}
	for i, sl := range f.Licenses {
		p.place = fmt.Sprintf("licenses[%d]", i)
		prod := products[sl.Product]
		if prod == nil {
			return nil, p.fail("unknown product %q", sl.Product)
		}
		pl := PlanLicense{
			License: consumption.License{Key: sl.LicenseKey, Enabled: boolOr(sl.Enabled, true), Active: boolOr(sl.Active, true),
				Type: consumption.Perpetual, IsTrial: boolOr(sl.IsTrial, false), MaxActivations: 1,
				AllowUnlimitedActivations: boolOr(sl.AllowUnlimitedActivations, false)},
			Product: sl.Product,
		}
		if err := p.licenseFields(&pl, sl.LicenseType, sl.MaxActivations, sl.Customer, sl.Metadata); err != nil {
			return nil, err
		}
		counter := seedFeatureFields{MaxConsumption: sl.MaxConsumptions, AllowUnlimited: sl.AllowUnlimited,
			AllowOverages: sl.AllowOverages, MaxOverages: sl.MaxOverages, AllowNegative: sl.AllowNegative,
			ResetConsumption: sl.ResetConsumption, ConsumptionPeriod: sl.ConsumptionPeriod}
		lc, err := p.applyFields(consumption.LicenseFeature{}, &counter)
		if err != nil {
			return nil, err
		}
		pl.Consumption = lc.Settings
		if pl.Total, err = p.optTotal(sl.TotalConsumptions); err != nil {
			return nil, err
		}
		if sl.ID.Set && !sl.ID.Null {
			if sl.ID.Value <= 0 || sl.ID.Value > consumption.MaxSafeInteger {
				return nil, p.fail("id must be a positive integer up to 2^53-1")
			}
			if prev, dup := ids[sl.ID.Value]; dup {
				return nil, p.fail("id %d is also used by %s", sl.ID.Value, prev)
			}
			ids[sl.ID.Value] = p.place
			pl.ID = sl.ID.Value
		}
		if prod.AuthMethod == consumption.KeyBased {
			if sl.LicenseKey == "" {
				return nil, p.fail("license_key is required for key-based product %q", sl.Product)
			}
			k := sl.Product + "\x00" + sl.LicenseKey
			if keys[k] {
				return nil, p.fail("license_key is used twice for product %q", sl.Product)
			}
			keys[k] = true
		} else {
			if len(sl.Users) == 0 {
				return nil, p.fail("users is required for user-based product %q", sl.Product)
			}
			seenUser := map[string]bool{}
			for _, u := range sl.Users {
				name := strings.ToLower(u.Username)
				if name == "" {
					return nil, p.fail("users has an empty name")
				}
				if seenUser[name] {
					return nil, p.fail("user %q is listed twice", u.Username)
				}
				seenUser[name] = true
				pl.Users = append(pl.Users, name)
				pl.Passwords = append(pl.Passwords, u.Password)
			}
		}
		vp, err := p.optTime(sl.ValidityPeriod, "validity_period")
		if err != nil {
			return nil, err
		}
		pl.ValidityPeriod = vp
		defaults := map[string]consumption.LicenseFeature{}
		for _, f := range prod.Features {
			defaults[f.Code] = f
		}
		seen := map[string]bool{}
		for j, sf := range sl.Features {
			p.place = fmt.Sprintf("licenses[%d].features[%d]", i, j)
			base, ok := defaults[sf.Code]
			if !ok {
				return nil, p.fail("unknown feature %q of product %q", sf.Code, sl.Product)
			}
			if seen[sf.Code] {
				return nil, p.fail("feature %q is listed twice", sf.Code)
			}
			seen[sf.Code] = true
			feat, err := p.applyFields(base, &sf.seedFeatureFields)
			if err != nil {
				return nil, err
			}
			plf := PlanLicenseFeature{LicenseFeature: feat}
			if sf.ID.Set && !sf.ID.Null {
				if sf.ID.Value <= 0 || sf.ID.Value > consumption.MaxSafeInteger {
					return nil, p.fail("id must be a positive integer up to 2^53-1")
				}
				plf.ID = sf.ID.Value
			}
			if plf.Total, err = p.optTotal(sf.TotalConsumptions); err != nil {
				return nil, err
			}
			pl.Features = append(pl.Features, plf)
		}
		hw := map[string]bool{}
		for j, sd := range sl.Devices {
			p.place = fmt.Sprintf("licenses[%d].devices[%d]", i, j)
			if sd.HardwareID == "" {
				return nil, p.fail("hardware_id is required")
			}
			if hw[sd.HardwareID] {
				return nil, p.fail("device %q is listed twice", sd.HardwareID)
			}
			hw[sd.HardwareID] = true
			pl.Devices = append(pl.Devices, consumption.Device{HardwareID: sd.HardwareID, Active: boolOr(sd.Active, true)})
		}
		out.Licenses = append(out.Licenses, pl)
	}

	for i, sb := range f.Blacklist {
		p.place = fmt.Sprintf("blacklist[%d]", i)
		if sb.HardwareID == "" {
			return nil, p.fail("hardware_id is required")
		}
		if sb.Product != "" && products[sb.Product] == nil {
			return nil, p.fail("unknown product %q", sb.Product)
		}
		out.Blacklist = append(out.Blacklist, PlanBlacklistEntry{HardwareID: sb.HardwareID, Product: sb.Product})
	}
	return out, nil
}

func (p *planner) optTotal(o opt[int64]) (*int64, error) {
	if !o.Set || o.Null {
		return nil, nil
	}
	if o.Value < 0 || o.Value > consumption.MaxSafeInteger {
		return nil, p.fail("total_consumptions must be between 0 and 2^53-1")
	}
	return &o.Value, nil
}

// licenseFields validates the license type, activation limit, customer and
// metadata. Customer and metadata are stored as JavaScript writes them, so
// that responses carrying them verify in the SDK whatever they hold.
func (p *planner) licenseFields(pl *PlanLicense, typ opt[string], maxActivations opt[int64], customer, metadata json.RawMessage) error {
	if typ.Set && !typ.Null {
		switch t := consumption.LicenseType(typ.Value); t {
		case consumption.Perpetual, consumption.TimeLimited, consumption.ConsumptionType, consumption.SubscriptionType:
			pl.Type = t
		default:
			return p.fail(`license_type %q is not "perpetual", "time-limited", "consumption" or "subscription"`, typ.Value)
		}
	}
	if maxActivations.Set && !maxActivations.Null {
		if maxActivations.Value < 0 || maxActivations.Value > consumption.MaxSafeInteger {
			return p.fail("max_activations must be between 0 and 2^53-1")
		}
		pl.MaxActivations = maxActivations.Value
	}
	for _, o := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{{"customer", customer, &pl.Customer}, {"metadata", metadata, &pl.Metadata}} {
		raw := bytes.TrimSpace(o.raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue
		}
		if raw[0] != '{' {
			return p.fail("%s must be a JSON object", o.name)
		}
		c, err := jsonjs.Canonical(raw)
		if err != nil {
			return p.fail("%s: %v", o.name, err)
		}
		*o.dst = string(c)
	}
	return nil
}

// applyFields returns base with the fields the seed sets.
func (p *planner) applyFields(f consumption.LicenseFeature, s *seedFeatureFields) (consumption.LicenseFeature, error) {
	setString(&f.Name, s.Name)
	if s.FeatureType.Set {
		switch t := consumption.FeatureType(s.FeatureType.Value); t {
		case consumption.ConsumptionFeature, consumption.ActivationFeature:
			f.Type = t
		default:
			return f, p.fail(`feature_type %q is not "consumption" or "activation"`, s.FeatureType.Value)
		}
	}
	for _, n := range []struct {
		name string
		src  opt[int64]
		dst  *int64
	}{
		{"max_consumption", s.MaxConsumption, &f.MaxConsumption},
		{"max_overages", s.MaxOverages, &f.MaxOverages},
	} {
		if n.src.Set && !n.src.Null {
			if n.src.Value < 0 || n.src.Value > consumption.MaxSafeInteger {
				return f, p.fail("%s must be between 0 and 2^53-1", n.name)
			}
			*n.dst = n.src.Value
		}
	}
	setBool(&f.AllowUnlimited, s.AllowUnlimited)
	setBool(&f.AllowOverages, s.AllowOverages)
	setBool(&f.AllowNegative, s.AllowNegative)
	setBool(&f.ResetConsumption, s.ResetConsumption)
	setBool(&f.IsFloating, s.IsFloating)
	setBool(&f.IsFloatingCloud, s.IsFloatingCloud)
	if s.ConsumptionPeriod.Set {
		period, err := consumption.ParsePeriod(s.ConsumptionPeriod.Value)
		if err != nil {
			return f, p.fail("consumption_period: %v", err)
		}
		f.Period = period
	}
	if s.ExpiryDate.Set {
		t, err := p.optTime(s.ExpiryDate, "expiry_date")
		if err != nil {
			return f, err
		}
		f.ExpiryDate = t
	}
	return f, nil
}

// optTime parses an optional RFC 3339 time; absent and null are the zero time.
func (p *planner) optTime(o opt[string], field string) (time.Time, error) {
	if !o.Set || o.Null || o.Value == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, o.Value)
	if err != nil {
		return time.Time{}, p.fail("%s %q is not an RFC 3339 time such as 2027-01-01T00:00:00Z", field, o.Value)
	}
	return t.UTC(), nil
}

func setString(dst *string, o opt[string]) {
	if o.Set && !o.Null {
		*dst = o.Value
	}
}

func setBool(dst *bool, o opt[bool]) {
	if o.Set && !o.Null {
		*dst = o.Value
	}
}

func boolOr(o opt[bool], def bool) bool {
	if o.Set && !o.Null {
		return o.Value
	}
	return def
}

// jsonPlace says where a decoding error is: the field path of a type error,
// the line and column of a syntax error, else where the decoder stopped.
func jsonPlace(data []byte, err error, stopped int64) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return lineCol(data, syn.Offset)
	case errors.As(err, &typ):
		return typ.Field + " (" + lineCol(data, typ.Offset) + ")"
	}
	return lineCol(data, stopped)
}

func jsonReason(err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("a JSON %s cannot be a %s", typ.Value, typ.Type)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: "))
}

func lineCol(data []byte, offset int64) string {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// MaxIDs returns the largest license and license feature ids the plan
// gives. Backends assign new rows ids above these and above every stored
// id, so that a generated id is never one the plan names for a later row.
func (p *Plan) MaxIDs() (license, feature int64) {
	for i := range p.Licenses {
		l := &p.Licenses[i]
		license = max(license, l.ID)
		for j := range l.Features {
			feature = max(feature, l.Features[j].ID)
		}
	}
	return license, feature
}

// PlanWriter writes the parts of a plan inside a backend's import
// transaction. BlacklistEntry gets the product's id (0: every product).
type PlanWriter interface {
	Product(p *PlanProduct) (id int64, err error)
	License(l *PlanLicense, productID int64) error
	BlacklistEntry(e PlanBlacklistEntry, productID int64) error
}

// Apply writes the plan through w in the order its references need
// (products before the licenses and blacklist entries that name them),
// naming the part of the plan that failed.
func (p *Plan) Apply(w PlanWriter) error {
	products := make(map[string]int64, len(p.Products))
	for i := range p.Products {
		id, err := w.Product(&p.Products[i])
		if err != nil {
			return fmt.Errorf("product %q: %w", p.Products[i].ShortCode, err)
		}
		products[p.Products[i].ShortCode] = id
	}
	for i := range p.Licenses {
		if err := w.License(&p.Licenses[i], products[p.Licenses[i].Product]); err != nil {
			return fmt.Errorf("licenses[%d]: %w", i, err)
		}
	}
	for i, e := range p.Blacklist {
		if err := w.BlacklistEntry(e, products[e.Product]); err != nil {
			return fmt.Errorf("blacklist[%d]: %w", i, err)
		}
	}
	return nil
}
