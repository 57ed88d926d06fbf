package consumption

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// The activity-log labels a client may put in a request's "event" field.
const (
	EventConsumptionAdd = "consumption_add"
	EventOfflineSync    = "offline_floating_consumptions_sync"
)

// FeatureConsumptionRequest is the body of POST add_feature_consumption.
type FeatureConsumptionRequest struct {
	HardwareID string `json:"hardware_id"`
	Product    string `json:"product"`
	Feature    string `json:"feature"`
	// LicenseKey addresses a key-based product's license.
	LicenseKey string `json:"license_key"`
	// Username addresses a user-based product's license; it is matched
	// case-insensitively.
	Username string `json:"username"`
	// LicenseID, when set, restricts the request to that license.
	LicenseID *int64 `json:"license_id"`
	// Consumptions is the amount to add; nil means the default of 1.
	Consumptions *int64   `json:"consumptions"`
	BundleCode   string   `json:"bundle_code"`
	SDKVersion   string   `json:"sdk_ver"`
	Event        []string `json:"event"`
}

// Amount returns the requested consumption, 1 when the client sent none.
func (r *FeatureConsumptionRequest) Amount() int64 {
	if r.Consumptions == nil {
		return 1
	}
	return *r.Consumptions
}

// EventLabel returns the activity label the ledger records for the request.
func (r *FeatureConsumptionRequest) EventLabel() string {
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
	"license_id":   "an integer",
	"consumptions": "an integer",
	"bundle_code":  "a string",
	"sdk_ver":      "a string",
	"event":        "an array of strings",
}

// DecodeFeatureConsumption parses and validates an add_feature_consumption
// body. Every failure is an *Error naming the field at fault. Fields that
// depend on the product (license_key or username) are checked by the Service,
// which knows the product's authorization method.
func DecodeFeatureConsumption(body []byte) (*FeatureConsumptionRequest, error) {
	var r FeatureConsumptionRequest
	if err := decodeObject(body, &r); err != nil {
		return nil, err
	}
	switch {
	case r.HardwareID == "":
		return nil, missingField("hardware_id")
	case r.Product == "":
		return nil, missingField("product")
	case r.Feature == "":
		return nil, missingField("feature")
	}
	if r.Consumptions != nil && (*r.Consumptions > MaxSafeInteger || *r.Consumptions < -MaxSafeInteger) {
		return nil, invalidField("consumptions", "within ±9007199254740991")
	}
	if err := validateEvent(r.Event); err != nil {
		return nil, err
	}
	return &r, nil
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
// into documented *Error answers.
func decodeObject(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return &Error{http.StatusBadRequest, CodeInvalidJSON, "request body must be a JSON object"}
		}
		// Field is a dotted path for nested values (event.0); the top-level
		// name is what a developer recognises.
		if i := strings.IndexByte(field, '.'); i >= 0 {
			field = field[:i]
		}
		want, ok := fieldTypes[field]
		if !ok {
			want = "of another type"
		}
		return invalidField(field, want)
	}
	return &Error{http.StatusBadRequest, CodeInvalidJSON, "request body is not valid JSON"}
}
