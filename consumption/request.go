package consumption

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edgelicense/caddy-license-api/apierror"
)

// The activity-log labels a client may put in a request's "event" field.
const (
	EventConsumptionAdd = "consumption_add"
	EventOfflineSync    = "offline_floating_consumptions_sync"
)

// LicenseRequest addresses a license from a device: the fields every
// endpoint shares.
type LicenseRequest struct {
	HardwareID string `json:"hardware_id"`
	Product    string `json:"product"`
	// LicenseKey addresses a key-based product's license.
	LicenseKey string `json:"license_key"`
	// Username addresses a user-based product's license; it is matched
	// case-insensitively.
	Username string `json:"username"`
	// Password authenticates Username at activation.
	Password string `json:"password"`
	// LicenseID, when set, restricts the request to that license.
	LicenseID  *int64 `json:"license_id"`
	BundleCode string `json:"bundle_code"`
	SDKVersion string `json:"sdk_ver"`
	// IncludeExpiredFeatures is check_license's query flag.
	IncludeExpiredFeatures bool `json:"-"`
}

// LicenseConsumptionRequest is the body of POST add_consumption.
type LicenseConsumptionRequest struct {
	LicenseRequest
	// Consumptions is the amount to add; nil means the default of 1.
	Consumptions *int64   `json:"consumptions"`
	Event        []string `json:"event"`
}

// FeatureConsumptionRequest is the body of POST add_feature_consumption.
type FeatureConsumptionRequest struct {
	LicenseConsumptionRequest
	Feature string `json:"feature"`
}

// Amount returns the requested consumption, 1 when the client sent none.
func (r *LicenseConsumptionRequest) Amount() int64 {
	if r.Consumptions == nil {
		return 1
	}
	return *r.Consumptions
}

// EventLabel returns the activity label the ledger records for the request.
func (r *LicenseConsumptionRequest) EventLabel() string {
	if len(r.Event) == 1 {
		return r.Event[0]
	}
	return EventConsumptionAdd
}

// fieldTypes says what each field must hold, for error messages that tell a
// developer exactly what to send.
var fieldTypes = map[string]string{
	"hardware_id":  "a string",
	"product":      "a string",
	"feature":      "a string",
	"license_key":  "a string",
	"username":     "a string",
	"password":     "a string",
	"license_id":   "an integer",
	"consumptions": "an integer",
	"bundle_code":  "a string",
	"sdk_ver":      "a string",
	"event":        "an array of strings",
}

// DecodeFeatureConsumption parses and validates an add_feature_consumption
// body. Every failure is an *apierror.Error naming the field at fault. Fields that
// depend on the product (license_key or username) are checked by the Service,
// which knows the product's authorization method.
func DecodeFeatureConsumption(body []byte) (*FeatureConsumptionRequest, error) {
	var r FeatureConsumptionRequest
	if !decodeFast(body, &r.LicenseRequest, &r.LicenseConsumptionRequest, &r.Feature) {
		r = FeatureConsumptionRequest{}
		if err := decodeObject(body, &r); err != nil {
			return nil, err
		}
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	if r.Feature == "" {
		return nil, missingField("feature")
	}
	if err := textFields("feature", r.Feature); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeLicenseConsumption parses and validates an add_consumption body.
func DecodeLicenseConsumption(body []byte) (*LicenseConsumptionRequest, error) {
	var r LicenseConsumptionRequest
	if !decodeFast(body, &r.LicenseRequest, &r, nil) {
		r = LicenseConsumptionRequest{}
		if err := decodeObject(body, &r); err != nil {
			return nil, err
		}
	}
	return &r, r.validate()
}

// DecodeLicenseRequest parses and validates an activate_license or
// deactivate_license body.
func DecodeLicenseRequest(body []byte) (*LicenseRequest, error) {
	var r LicenseRequest
	if !decodeFast(body, &r, nil, nil) {
		r = LicenseRequest{}
		if err := decodeObject(body, &r); err != nil {
			return nil, err
		}
	}
	return &r, r.validate()
}

// ParseLicenseQuery reads a check_license or check_license_feature query.
func ParseLicenseQuery(q url.Values) (*LicenseRequest, error) {
	r := &LicenseRequest{
		HardwareID: q.Get("hardware_id"), Product: q.Get("product"), LicenseKey: q.Get("license_key"),
		Username: q.Get("username"), BundleCode: q.Get("bundle_code"), SDKVersion: q.Get("sdk_ver"),
	}
	if v := q.Get("license_id"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalidField("license_id", "an integer")
		}
		r.LicenseID = &id
	}
	if v := q.Get("include_expired_features"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, invalidField("include_expired_features", "true or false")
		}
		r.IncludeExpiredFeatures = b
	}
	return r, r.validate()
}

func (r *LicenseRequest) validate() error {
	switch {
	case r.HardwareID == "":
		return missingField("hardware_id")
	case r.Product == "":
		return missingField("product")
	}
	return textFields("hardware_id", r.HardwareID, "product", r.Product,
		"license_key", r.LicenseKey, "username", r.Username)
}

// textFields checks name/value pairs for text a store can keep: no NUL
// bytes (PostgreSQL refuses them) and valid UTF-8 (a query string may hold
// anything; JSON bodies are already valid).
func textFields(pairs ...string) error {
	for i := 0; i < len(pairs); i += 2 {
		if v := pairs[i+1]; strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
			return invalidField(pairs[i], "UTF-8 text without NUL characters")
		}
	}
	return nil
}

func (r *LicenseConsumptionRequest) validate() error {
	if err := r.LicenseRequest.validate(); err != nil {
		return err
	}
	if r.Consumptions != nil && (*r.Consumptions > MaxSafeInteger || *r.Consumptions < -MaxSafeInteger) {
		return invalidField("consumptions", "within ±9007199254740991")
	}
	return validateEvent(r.Event)
}

func validateEvent(events []string) error {
	if len(events) > 1 {
		return invalidField("event", `one of "consumption_add" or "offline_floating_consumptions_sync", not both`)
	}
	for _, e := range events {
		if e != EventConsumptionAdd && e != EventOfflineSync {
			return invalidField("event", `"consumption_add" or "offline_floating_consumptions_sync"`)
		}
	}
	return nil
}

// decodeObject unmarshals a JSON object into v and turns the decoder's errors
// into documented *apierror.Error answers.
func decodeObject(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return apierror.New(http.StatusBadRequest, CodeInvalidJSON, "request body must be a JSON object")
		}
		// Field is a dotted path that names embedded structs and nested
		// values too (LicenseConsumptionRequest.event.0); the wire field in
		// it is what a developer recognises.
		field, want := typeErr.Field, "of another type"
		for _, part := range strings.Split(typeErr.Field, ".") {
			if w, ok := fieldTypes[part]; ok {
				field, want = part, w
				break
			}
		}
		return invalidField(field, want)
	}
	return apierror.New(http.StatusBadRequest, CodeInvalidJSON, "request body is not valid JSON")
}
