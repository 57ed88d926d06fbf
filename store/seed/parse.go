package seed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/edgelicense/caddy-license-api/consumption"
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

// fileFeatureFields are the fields of a product feature, which a license
// feature may override one by one.
type fileFeatureFields struct {
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

// fileProduct is an element of the seed's products list.
type fileProduct struct {
	ShortCode           string               `json:"short_code"`
	Name                string               `json:"name"`
	AuthorizationMethod string               `json:"authorization_method"`
	Features            []fileProductFeature `json:"features"`
}

type fileProductFeature struct {
	Code string `json:"code"`
	fileFeatureFields
}

// fileLicense is an element of the seed's licenses list.
type fileLicense struct {
	ID                        opt[int64]      `json:"id"`
	Product                   string          `json:"product"`
	LicenseKey                string          `json:"license_key"`
	Users                     []fileUser      `json:"users"`
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
	Features          []fileLicenseFeature `json:"features"`
	Devices           []fileDevice         `json:"devices"`
}

type fileLicenseFeature struct {
	Code              string     `json:"code"`
	ID                opt[int64] `json:"id"`
	TotalConsumptions opt[int64] `json:"total_consumptions"`
	fileFeatureFields
}

type fileDevice struct {
	HardwareID string    `json:"hardware_id"`
	Active     opt[bool] `json:"active"`
}

// fileBlacklistEntry is an element of the seed's blacklist.
type fileBlacklistEntry struct {
	HardwareID string `json:"hardware_id"`
	Product    string `json:"product"`
}

// fileUser is a license user: a name, or {"username": ..., "password": ...}.
type fileUser struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// UnmarshalJSON accepts the plain-name form as well as the object.
func (u *fileUser) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &u.Username)
	}
	type plain fileUser // without this method, so no recursion
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode((*plain)(u))
}

// Error locates a problem in a seed file: a line and column for JSON
// syntax, a path such as licenses[2].features[0].code for content.
type Error struct {
	File  string
	Place string
	Err   error
}

// Error returns the file, the place and the reason.
func (e *Error) Error() string {
	return fmt.Sprintf("seed %s: %s: %v", e.File, e.Place, e.Err)
}

// Unwrap returns the reason, so that errors.Is sees through the place.
func (e *Error) Unwrap() error { return e.Err }

// Parse validates a seed file's contents and resolves it into a Plan.
// name is used in errors only.
//
// Licenses are decoded and planned one at a time: a seed of 100,000
// licenses held whole as decoded JSON beside its plan made start-up peak
// at several times the memory the plan needs. A file that is not valid
// JSON is refused before anything else, at its first syntax error; past
// that, the error reported is the first the planner meets, in file order
// (except that licenses listed before their products are planned after
// them).
func Parse(name string, data []byte) (*Plan, error) {
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
		return &Error{File: name, Place: lineCol(data, at), Err: jsonReason(err)}
	}
	dec.More() // moves to the content after the object
	return &Error{File: name, Place: lineCol(data, dec.InputOffset()), Err: errors.New("content after the seed object")}
}

// planner walks a seed that is valid JSON, checking its content and
// resolving it into out.
type planner struct {
	file  string
	data  []byte
	dec   *json.Decoder
	place place
	out   *Plan
	// emit receives each license as it is planned, in Apply; Parse
	// only checks them.
	emit func(i int, l *License) error

	products map[string]*productDefaults
	ids      map[int64]int // license id → index of the license that gives it
	keys     map[productKey]bool
	// license is the decoding target of every license in turn, and codes,
	// hardware and users the names seen in the one being planned: reused,
	// so that a license costs little beyond its plan.
	license                fileLicense
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
	return &Error{File: p.file, Place: p.place.String(), Err: fmt.Errorf(format, args...)}
}

// failAt reports a problem with the JSON itself just before offset.
func (p *planner) failAt(offset int64, format string, args ...any) error {
	return &Error{File: p.file, Place: lineCol(p.data, offset), Err: fmt.Errorf(format, args...)}
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
	var blacklist []fileBlacklistEntry
	var early []fileLicense // licenses listed before the products
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
			var products []fileProduct
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
func (p *planner) licenses(early bool, kept *[]fileLicense) error {
	tok, _ := p.dec.Token()
	switch tok {
	case nil:
		return nil
	case json.Delim('['):
	default:
		return &Error{File: p.file, Place: "licenses (" + lineCol(p.data, p.dec.InputOffset()) + ")",
			Err: fmt.Errorf("a JSON %s cannot be a list of licenses", jsonKind(tok))}
	}
	for i := 0; p.dec.More(); i++ {
		p.license = fileLicense{}
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
		return &Error{File: p.file, Place: field + " (" + lineCol(p.data, base+typ.Offset) + ")", Err: jsonReason(err)}
	}
	return &Error{File: p.file, Place: lineCol(p.data, p.dec.InputOffset()), Err: jsonReason(err)}
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
