package seed

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/internal/jsonjs"
)

func (p *planner) planProducts(products []fileProduct) error {
	for i, sp := range products {
		p.place = place{list: "products", i: i}
		if sp.ShortCode == "" {
			return p.fail("short_code is required")
		}
		if p.products[sp.ShortCode] != nil {
			return p.fail("product %q is defined twice", sp.ShortCode)
		}
		method, ok := consumption.ParseAuthMethod(sp.AuthorizationMethod)
		if !ok {
			return p.fail(`authorization_method %q is not "license-key" or "user"`, sp.AuthorizationMethod)
		}
		pp := Product{Product: consumption.Product{ShortCode: sp.ShortCode, Name: sp.Name, AuthMethod: method}}
		defaults := &productDefaults{method: method, features: map[string]consumption.LicenseFeature{}}
		for j, sf := range sp.Features {
			p.place = place{list: "products", i: i, sub: "features", j: j}
			if sf.Code == "" {
				return p.fail("code is required")
			}
			if _, dup := defaults.features[sf.Code]; dup {
				return p.fail("feature %q is defined twice", sf.Code)
			}
			base := consumption.LicenseFeature{Code: sf.Code, Name: sf.Code, Type: consumption.ConsumptionFeature}
			feat, err := p.applyFields(base, &sf.fileFeatureFields)
			if err != nil {
				return err
			}
			defaults.features[sf.Code] = feat
			pp.Features = append(pp.Features, feat)
		}
		p.out.Products = append(p.out.Products, pp)
		p.products[sp.ShortCode] = defaults
	}
	return nil
}

// planLicense plans licenses[i].
func (p *planner) planLicense(i int, sl *fileLicense) error {
	p.place = place{list: "licenses", i: i}
	prod := p.products[sl.Product]
	if prod == nil {
		return p.fail("unknown product %q", sl.Product)
	}
	pl := &License{
		License: consumption.License{Key: sl.LicenseKey, Enabled: boolOr(sl.Enabled, true), Active: boolOr(sl.Active, true),
			Type: consumption.Perpetual, IsTrial: boolOr(sl.IsTrial, false), MaxActivations: 1,
			AllowUnlimitedActivations: boolOr(sl.AllowUnlimitedActivations, false)},
		Product: sl.Product,
	}
	if err := p.licenseFields(pl, sl.LicenseType, sl.MaxActivations, sl.Customer, sl.Metadata); err != nil {
		return err
	}
	counter := fileFeatureFields{MaxConsumption: sl.MaxConsumptions, AllowUnlimited: sl.AllowUnlimited,
		AllowOverages: sl.AllowOverages, MaxOverages: sl.MaxOverages, AllowNegative: sl.AllowNegative,
		ResetConsumption: sl.ResetConsumption, ConsumptionPeriod: sl.ConsumptionPeriod}
	lc, err := p.applyFields(consumption.LicenseFeature{}, &counter)
	if err != nil {
		return err
	}
	pl.Consumption = lc.Settings
	if pl.Total, err = p.optTotal(sl.TotalConsumptions); err != nil {
		return err
	}
	if sl.ID.Set && !sl.ID.Null {
		if sl.ID.Value <= 0 || sl.ID.Value > consumption.MaxSafeInteger {
			return p.fail("id must be a positive integer up to 2^53-1")
		}
		if prev, dup := p.ids[sl.ID.Value]; dup {
			return p.fail("id %d is also used by %s", sl.ID.Value, place{list: "licenses", i: prev})
		}
		p.ids[sl.ID.Value] = i
		pl.ID = sl.ID.Value
	}
	if prod.method == consumption.KeyBased {
		if sl.LicenseKey == "" {
			return p.fail("license_key is required for key-based product %q", sl.Product)
		}
		k := productKey{sl.Product, sl.LicenseKey}
		if p.keys[k] {
			return p.fail("license_key is used twice for product %q", sl.Product)
		}
		p.keys[k] = true
	} else {
		if len(sl.Users) == 0 {
			return p.fail("users is required for user-based product %q", sl.Product)
		}
		clear(p.users)
		for _, u := range sl.Users {
			name := strings.ToLower(u.Username)
			if name == "" {
				return p.fail("users has an empty name")
			}
			if p.users[name] {
				return p.fail("user %q is listed twice", u.Username)
			}
			p.users[name] = true
			pl.Users = append(pl.Users, name)
			pl.Passwords = append(pl.Passwords, u.Password)
		}
	}
	vp, err := p.optTime(sl.ValidityPeriod, "validity_period")
	if err != nil {
		return err
	}
	pl.ValidityPeriod = vp
	clear(p.codes)
	for j, sf := range sl.Features {
		p.place = place{list: "licenses", i: i, sub: "features", j: j}
		base, ok := prod.features[sf.Code]
		if !ok {
			return p.fail("unknown feature %q of product %q", sf.Code, sl.Product)
		}
		if p.codes[sf.Code] {
			return p.fail("feature %q is listed twice", sf.Code)
		}
		p.codes[sf.Code] = true
		feat, err := p.applyFields(base, &sf.fileFeatureFields)
		if err != nil {
			return err
		}
		plf := LicenseFeature{LicenseFeature: feat}
		if sf.ID.Set && !sf.ID.Null {
			if sf.ID.Value <= 0 || sf.ID.Value > consumption.MaxSafeInteger {
				return p.fail("id must be a positive integer up to 2^53-1")
			}
			plf.ID = sf.ID.Value
		}
		if plf.Total, err = p.optTotal(sf.TotalConsumptions); err != nil {
			return err
		}
		pl.Features = append(pl.Features, plf)
	}
	clear(p.hardware)
	for j, sd := range sl.Devices {
		p.place = place{list: "licenses", i: i, sub: "devices", j: j}
		if sd.HardwareID == "" {
			return p.fail("hardware_id is required")
		}
		if p.hardware[sd.HardwareID] {
			return p.fail("device %q is listed twice", sd.HardwareID)
		}
		p.hardware[sd.HardwareID] = true
		pl.Devices = append(pl.Devices, consumption.Device{HardwareID: sd.HardwareID, Active: boolOr(sd.Active, true)})
	}
	p.out.Licenses++
	p.out.maxLicenseID = max(p.out.maxLicenseID, pl.ID)
	for _, f := range pl.Features {
		p.out.maxFeatureID = max(p.out.maxFeatureID, f.ID)
	}
	if p.emit != nil {
		return p.emit(i, pl)
	}
	return nil
}

func (p *planner) planBlacklist(blacklist []fileBlacklistEntry) error {
	for i, sb := range blacklist {
		p.place = place{list: "blacklist", i: i}
		if sb.HardwareID == "" {
			return p.fail("hardware_id is required")
		}
		if sb.Product != "" && p.products[sb.Product] == nil {
			return p.fail("unknown product %q", sb.Product)
		}
		p.out.Blacklist = append(p.out.Blacklist, BlacklistEntry(sb))
	}
	return nil
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
func (p *planner) licenseFields(pl *License, typ opt[string], maxActivations opt[int64], customer, metadata json.RawMessage) error {
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
func (p *planner) applyFields(f consumption.LicenseFeature, s *fileFeatureFields) (consumption.LicenseFeature, error) {
	setString(&f.Name, s.Name)
	if s.FeatureType.Set {
		switch t := consumption.FeatureType(s.FeatureType.Value); t {
		case consumption.ConsumptionFeature, consumption.ActivationFeature:
			f.Type = t
		default:
			return f, p.fail(`feature_type %q is not "consumption" or "activation"`, s.FeatureType.Value)
		}
	}
	if err := p.setCount(&f.MaxConsumption, s.MaxConsumption, "max_consumption"); err != nil {
		return f, err
	}
	if err := p.setCount(&f.MaxOverages, s.MaxOverages, "max_overages"); err != nil {
		return f, err
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

// setCount sets a count the seed gives: 0 to 2^53-1.
func (p *planner) setCount(dst *int64, o opt[int64], name string) error {
	if o.Set && !o.Null {
		if o.Value < 0 || o.Value > consumption.MaxSafeInteger {
			return p.fail("%s must be between 0 and 2^53-1", name)
		}
		*dst = o.Value
	}
	return nil
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
