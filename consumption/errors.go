package consumption

import (
	"net/http"

	"github.com/edgelicense/caddy-license-api/apierror"
)

// The documented errors of add_feature_consumption, with LicenseSpring's own
// messages, plus license_expired (which the SDK expects past a license's
// validity period). Service.AddFeatureConsumption reports the first that
// applies, in the order they are listed here.
var (
	ErrUnknownProduct                 = apierror.New(http.StatusBadRequest, "unknown_product", "Provided product was not found")
	ErrLicenseNotFound                = apierror.New(http.StatusBadRequest, "license_not_found", "License with the provided license user not found")
	ErrLicenseNotEnabled              = apierror.New(http.StatusBadRequest, "license_not_enabled", "The license is not enabled")
	ErrLicenseNotActive               = apierror.New(http.StatusBadRequest, "license_not_active", "The license is not active")
	ErrLicenseExpired                 = apierror.New(http.StatusBadRequest, "license_expired", "The license has expired")
	ErrBlacklisted                    = apierror.New(http.StatusBadRequest, "blacklisted", "This device is blacklisted")
	ErrDeviceNotFound                 = apierror.New(http.StatusBadRequest, "device_not_found", "An active device matching the hardware_id not found")
	ErrUnsupportedProductFeature      = apierror.New(http.StatusBadRequest, "unsupported_product_feature", "One or more of requested product features do not exists or they are not enabled on the product")
	ErrNegativeConsumptionsNotAllowed = apierror.New(http.StatusBadRequest, "negative_consumptions_not_allowed", "Negative consumptions not allowed")
	ErrFeatureNotEnoughConsumptions   = apierror.New(http.StatusBadRequest, "feature_not_enough_consumptions", "Not enough consumptions left")
)

// The errors of the device lifecycle endpoints (activate_license,
// check_license, check_license_feature, add_consumption, deactivate_license).
var (
	ErrLicenseActivatedMaxTimes     = apierror.New(http.StatusBadRequest, "license_activated_max_times", "License is already activated max number of times")
	ErrInvalidLicenseFeatureCode    = apierror.New(http.StatusBadRequest, "invalid_license_feature_code", "License feature with the provided code not found")
	ErrLicenseNotConsumption        = apierror.New(http.StatusBadRequest, "license_not_consumption", "The license is not a consumption license")
	ErrLicenseNotEnoughConsumptions = apierror.New(http.StatusBadRequest, "license_not_enough_consumptions", "Not enough consumptions left")
	ErrInvalidCredentials           = apierror.New(http.StatusBadRequest, "invalid_credentials", "The username or password is not valid")
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

func missingField(name string) *apierror.Error {
	return apierror.New(http.StatusBadRequest, CodeMissingField, name+" is required")
}

func invalidField(name, want string) *apierror.Error {
	return apierror.New(http.StatusBadRequest, CodeInvalidField, name+" must be "+want)
}
