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

// seedProduct is an element of the seed's products list.
type seedProduct struct {
	ShortCode           string               `json:"short_code"`
	Name                string               `json:"name"`
	AuthorizationMethod string               `json:"authorization_method"`
	Features            []seedProductFeature `json:"features"`
}

type seedProductFeature struct {
	Code string `json:"code"`
	seedFeatureFields
}

// seedLicense is an element of the seed's licenses list.
type seedLicense struct {
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
	MaxConsumptions   opt[int64]           `json:"max_consumptions"`
	AllowUnlimited    opt[bool]            `json:"allow_unlimited_consumptions"`
	AllowOverages     opt[bool]            `json:"allow_overages"`
	MaxOverages       opt[int64]           `json:"max_overages"`
	AllowNegative     opt[bool]            `json:"allow_negative_consumptions"`
	ResetConsumption  opt[bool]            `json:"reset_consumption"`
	ConsumptionPeriod opt[string]          `json:"consumption_period"`
	TotalConsumptions opt[int64]           `json:"total_consumptions"`
	Features          []seedLicenseFeature `json:"features"`
	Devices           []seedDevice         `json:"devices"`
}

type seedLicenseFeature struct {
	Code              string     `json:"code"`
	ID                opt[int64] `json:"id"`
	TotalConsumptions opt[int64] `json:"total_consumptions"`
	seedFeatureFields
}

type seedDevice struct {
	HardwareID string    `json:"hardware_id"`
	Active     opt[bool] `json:"active"`
}

// seedBlacklistEntry is an element of the seed's blacklist.
type seedBlacklistEntry struct {
	HardwareID string `json:"hardware_id"`
	Product    string `json:"product"`
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
//
// A plan does not hold its licenses: a seed may have hundreds of thousands,
// and holding them planned took several times the memory of the seed's
// text. Apply plans them again from the text, which ParseSeed has checked,
// and writes each as it is planned.
type Plan struct {
	Products  []PlanProduct
	Blacklist []PlanBlacklistEntry
	// Licenses is how many licenses the seed has.
	Licenses int

	file string
	data []byte
	// maxLicenseID and maxFeatureID are the largest ids the seed gives.
	maxLicenseID, maxFeatureID int64
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
//
// Licenses are decoded and planned one at a time: a seed of 100,000
// licenses held whole as decoded JSON beside its plan made start-up peak
// at several times the memory the plan needs. A file that is not valid
// JSON is refused before anything else, at its first syntax error; past
// that, the error reported is the first the planner meets, in file order
// (except that licenses listed before their products are planned after
// them).
func ParseSeed(name string, data []byte) (*Plan, error) {
	if !json.Valid(data) {
		return nil, syntaxError(name, data)
	}
	p := newPlanner(name, data)
	if err := p.parse(); err != nil {
		return nil, err
	}
	p.out.file, p.out.data = name, data
	return p.out, nil
}

func newPlanner(name string, data []byte) *planner {
	p := &planner{
		file:     name,
		data:     data,
		dec:      json.NewDecoder(bytes.NewReader(data)),
		out:      &Plan{},
		products: map[string]*productDefaults{},
		ids:      map[int64]int{},
		keys:     map[productKey]bool{},
		codes:    map[string]bool{},
		hardware: map[string]bool{},
		users:    map[string]bool{},
	}
	p.dec.DisallowUnknownFields()
	return p
}

// syntaxError locates the first thing in data that is not JSON, or the
// content after the seed object.
func syntaxError(name string, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var seed json.RawMessage
	if err := dec.Decode(&seed); err != nil {
		at := dec.InputOffset() // where an unexpected end stopped it
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			at = syn.Offset
		}
		return &SeedError{File: name, Place: lineCol(data, at), Err: jsonReason(err)}
	}
	dec.More() // moves to the content after the object
	return &SeedError{File: name, Place: lineCol(data, dec.InputOffset()), Err: errors.New("content after the seed object")}
}

// planner walks a seed that is valid JSON, checking its content and
// resolving it into out.
type planner struct {
	file  string
	data  []byte
	dec   *json.Decoder
	place place
	out   *Plan
	// emit receives each license as it is planned, in Apply; ParseSeed
	// only checks them.
	emit func(i int, l *PlanLicense) error

	products map[string]*productDefaults
	ids      map[int64]int // license id → index of the license that gives it
	keys     map[productKey]bool
	// license is the decoding target of every license in turn, and codes,
	// hardware and users the names seen in the one being planned: reused,
	// so that a license costs little beyond its plan.
	license                seedLicense
	codes, hardware, users map[string]bool
}

// productDefaults is what planning a license needs of its product.
type productDefaults struct {
	method   consumption.AuthMethod
	features map[string]consumption.LicenseFeature
}

type productKey struct{ product, key string }

// place is the part of the seed being planned, formatted only for an error:
// list[i], or list[i].sub[j] when sub is set.
type place struct {
	list string
	i    int
	sub  string
	j    int
}

func (pl place) String() string {
	if pl.sub == "" {
		return fmt.Sprintf("%s[%d]", pl.list, pl.i)
	}
	return fmt.Sprintf("%s[%d].%s[%d]", pl.list, pl.i, pl.sub, pl.j)
}

func (p *planner) fail(format string, args ...any) error {
	return &SeedError{File: p.file, Place: p.place.String(), Err: fmt.Errorf(format, args...)}
}

// failAt reports a problem with the JSON itself just before offset.
func (p *planner) failAt(offset int64, format string, args ...any) error {
	return &SeedError{File: p.file, Place: lineCol(p.data, offset), Err: fmt.Errorf(format, args...)}
}

// parse walks the seed object. Its lists may come in any order: licenses
// listed before the products they name are kept decoded until the products
// are known, and the blacklist, which is short, is planned last.
func (p *planner) parse() error {
	tok, _ := p.dec.Token() // the data is valid JSON, so a token is there
	if tok == nil {
		return nil // null: an empty seed
	}
	if tok != json.Delim('{') {
		return p.failAt(p.dec.InputOffset(), "the seed must be a JSON object")
	}
	var blacklist []seedBlacklistEntry
	var early []seedLicense // licenses listed before the products
	given := map[string]bool{}
	for p.dec.More() {
		tok, _ := p.dec.Token()
		key := tok.(string) // object keys are strings
		// Keys match field names regardless of case, as the json package
		// matches them.
		list := ""
		for _, name := range []string{"products", "licenses", "blacklist"} {
			if strings.EqualFold(key, name) {
				list = name
			}
		}
		if list == "" {
			return p.failAt(p.dec.InputOffset(), "unknown field %q", key)
		}
		// Merging two lists of licenses, or planning some licenses with
		// products that a later list replaces, would surprise whoever
		// wrote the file either way.
		if given[list] {
			return p.failAt(p.dec.InputOffset(), "%s is given twice", key)
		}
		given[list] = true
		var err error
		switch list {
		case "products":
			var products []seedProduct
			if err = p.decode(&products, "products"); err == nil {
				err = p.planProducts(products)
			}
		case "licenses":
			err = p.licenses(!given["products"], &early)
		case "blacklist":
			err = p.decode(&blacklist, "blacklist")
		}
		if err != nil {
			return err
		}
	}
	for i := range early {
		if err := p.planLicense(i, &early[i]); err != nil {
			return err
		}
	}
	return p.planBlacklist(blacklist)
}

// licenses decodes the licenses list one license at a time and plans each,
// or keeps them in early when the products are still to come.
func (p *planner) licenses(early bool, kept *[]seedLicense) error {
	tok, _ := p.dec.Token()
	switch tok {
	case nil:
		return nil
	case json.Delim('['):
	default:
		return &SeedError{File: p.file, Place: "licenses (" + lineCol(p.data, p.dec.InputOffset()) + ")",
			Err: fmt.Errorf("a JSON %s cannot be a list of licenses", jsonKind(tok))}
	}
	for i := 0; p.dec.More(); i++ {
		p.license = seedLicense{}
		if err := p.decode(&p.license, "licenses"); err != nil {
			return err
		}
		if early {
			*kept = append(*kept, p.license)
		} else if err := p.planLicense(i, &p.license); err != nil {
			return err
		}
	}
	p.dec.Token() // ]
	return nil
}

// decode decodes the next value into v. path names the list the value is
// or is in: the decoder names fields from the value it decodes.
func (p *planner) decode(v any, path string) error {
	// A type error's offset counts from where the decoder starts, which is
	// past the ':' or ',' before the value.
	base := p.dec.InputOffset()
	j := base
	for j < int64(len(p.data)) && isSpace(p.data[j]) {
		j++
	}
	if j < int64(len(p.data)) && (p.data[j] == ':' || p.data[j] == ',') {
		base = j + 1
	}
	err := p.dec.Decode(v)
	if err == nil {
		return nil
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := path
		if typ.Field != "" {
			field += "." + typ.Field
		}
		return &SeedError{File: p.file, Place: field + " (" + lineCol(p.data, base+typ.Offset) + ")", Err: jsonReason(err)}
	}
	return &SeedError{File: p.file, Place: lineCol(p.data, p.dec.InputOffset()), Err: jsonReason(err)}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// jsonKind names the kind of a JSON value other than a list or null, from
// its first token, as the json package's type errors do.
func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "object"
}

func (p *planner) planProducts(products []seedProduct) error {
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
		pp := PlanProduct{Product: consumption.Product{ShortCode: sp.ShortCode, Name: sp.Name, AuthMethod: method}}
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
			feat, err := p.applyFields(base, &sf.seedFeatureFields)
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
func (p *planner) planLicense(i int, sl *seedLicense) error {
	p.place = place{list: "licenses", i: i}
	prod := p.products[sl.Product]
	if prod == nil {
		return p.fail("unknown product %q", sl.Product)
	}
	pl := &PlanLicense{
		License: consumption.License{Key: sl.LicenseKey, Enabled: boolOr(sl.Enabled, true), Active: boolOr(sl.Active, true),
			Type: consumption.Perpetual, IsTrial: boolOr(sl.IsTrial, false), MaxActivations: 1,
			AllowUnlimitedActivations: boolOr(sl.AllowUnlimitedActivations, false)},
		Product: sl.Product,
	}
	if err := p.licenseFields(pl, sl.LicenseType, sl.MaxActivations, sl.Customer, sl.Metadata); err != nil {
		return err
	}
	counter := seedFeatureFields{MaxConsumption: sl.MaxConsumptions, AllowUnlimited: sl.AllowUnlimited,
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
		feat, err := p.applyFields(base, &sf.seedFeatureFields)
		if err != nil {
			return err
		}
		plf := PlanLicenseFeature{LicenseFeature: feat}
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

func (p *planner) planBlacklist(blacklist []seedBlacklistEntry) error {
	for i, sb := range blacklist {
		p.place = place{list: "blacklist", i: i}
		if sb.HardwareID == "" {
			return p.fail("hardware_id is required")
		}
		if sb.Product != "" && p.products[sb.Product] == nil {
			return p.fail("unknown product %q", sb.Product)
		}
		p.out.Blacklist = append(p.out.Blacklist, PlanBlacklistEntry{HardwareID: sb.HardwareID, Product: sb.Product})
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
	return p.maxLicenseID, p.maxFeatureID
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
	// The seed's text passed ParseSeed, so planning it again fails only
	// if w does.
	again := newPlanner(p.file, p.data)
	again.emit = func(i int, l *PlanLicense) error {
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
