package consumption

import "net/http"

// Error is an answer the License API documents: an HTTP status, a snake_case
// code that clients switch on, and a human message. It is sent as the JSON
// body {"status":...,"code":...,"message":...}.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns the code and message; it never carries request data that
// could hold a secret.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The documented errors of add_feature_consumption, with LicenseSpring's own
// messages, plus license_expired (which the SDK expects past a license's
// validity period). Service.AddFeatureConsumption reports the first that
// applies, in the order they are listed here.
var (
	ErrUnknownProduct                 = &Error{http.StatusBadRequest, "unknown_product", "Provided product was not found"}
	ErrLicenseNotFound                = &Error{http.StatusBadRequest, "license_not_found", "License with the provided license user not found"}
	ErrLicenseNotEnabled              = &Error{http.StatusBadRequest, "license_not_enabled", "The license is not enabled"}
	ErrLicenseNotActive               = &Error{http.StatusBadRequest, "license_not_active", "The license is not active"}
	ErrLicenseExpired                 = &Error{http.StatusBadRequest, "license_expired", "The license has expired"}
	ErrBlacklisted                    = &Error{http.StatusBadRequest, "blacklisted", "This device is blacklisted"}
	ErrDeviceNotFound                 = &Error{http.StatusBadRequest, "device_not_found", "An active device matching the hardware_id not found"}
	ErrUnsupportedProductFeature      = &Error{http.StatusBadRequest, "unsupported_product_feature", "One or more of requested product features do not exists or they are not enabled on the product"}
	ErrNegativeConsumptionsNotAllowed = &Error{http.StatusBadRequest, "negative_consumptions_not_allowed", "Negative consumptions not allowed"}
	ErrFeatureNotEnoughConsumptions   = &Error{http.StatusBadRequest, "feature_not_enough_consumptions", "Not enough consumptions left"}
)

// The errors of the device lifecycle endpoints (activate_license,
// check_license, check_license_feature, add_consumption, deactivate_license).
var (
	ErrLicenseActivatedMaxTimes     = &Error{http.StatusBadRequest, "license_activated_max_times", "License is already activated max number of times"}
	ErrInvalidLicenseFeatureCode    = &Error{http.StatusBadRequest, "invalid_license_feature_code", "License feature with the provided code not found"}
	ErrLicenseNotConsumption        = &Error{http.StatusBadRequest, "license_not_consumption", "The license is not a consumption license"}
	ErrLicenseNotEnoughConsumptions = &Error{http.StatusBadRequest, "license_not_enough_consumptions", "Not enough consumptions left"}
	ErrInvalidCredentials           = &Error{http.StatusBadRequest, "invalid_credentials", "The username or password is not valid"}
)

// Request body errors. These codes are this server's own (LicenseSpring does
// not document its answers to malformed bodies); each message names the
// offending field so a developer can fix the call.
const (
	// CodeInvalidJSON is sent when the body is not a JSON object.
	CodeInvalidJSON = "invalid_json"
	// CodeMissingField is sent when a required field is absent or empty.
	CodeMissingField = "missing_field"
	// CodeInvalidField is sent when a field has the wrong type or value.
	CodeInvalidField = "invalid_field"
	// CodeRequestTooLarge is sent (413) when the body exceeds MaxBodyBytes.
	CodeRequestTooLarge = "request_too_large"
)

// MaxBodyBytes is the largest request body accepted (64 KiB); real requests
// are a few hundred bytes, and the bound keeps a hostile client from making
// the server buffer or parse megabytes.
const MaxBodyBytes = 64 << 10

func missingField(name string) *Error {
	return &Error{http.StatusBadRequest, CodeMissingField, name + " is required"}
}

func invalidField(name, want string) *Error {
	return &Error{http.StatusBadRequest, CodeInvalidField, name + " must be " + want}
}
