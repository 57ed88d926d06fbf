package caddymodule

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/consumption"
)

// An endpoint answers one License API path. Its answer appends the 200 body
// to out; the handler authenticates, reads the body, signs and writes.
type endpoint struct {
	method string
	answer func(h *Handler, r *http.Request, apiKey string, body, out []byte) ([]byte, error)
	// unsigned answers are plain text (deactivate_license's
	// "license_deactivated"), which the SDKs do not verify.
	unsigned bool
}

// endpoints are the License API paths under the prefix.
var endpoints = map[string]endpoint{
	"add_feature_consumption": {method: http.MethodPost, answer: (*Handler).addFeatureConsumption},
	"add_consumption":         {method: http.MethodPost, answer: (*Handler).addConsumption},
	"activate_license":        {method: http.MethodPost, answer: (*Handler).activateLicense},
	"deactivate_license":      {method: http.MethodPost, answer: (*Handler).deactivateLicense, unsigned: true},
	"check_license":           {method: http.MethodGet, answer: (*Handler).checkLicense},
	"check_license_feature":   {method: http.MethodGet, answer: (*Handler).checkLicenseFeature},
}

// serve runs an endpoint: authentication, then the body, then the answer.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string, ep endpoint) {
	if r.Method != ep.method {
		w.Header().Set("Allow", ep.method)
		h.writeError(w, name, &consumption.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: "this endpoint takes " + ep.method})
		return
	}
	apiKey, err := h.verifier.Verify(r.Header.Get("Date"), r.Header.Get("Authorization"))
	if err != nil {
		h.writeError(w, name, err)
		return
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var body []byte
	if ep.method == http.MethodPost {
		body, err = readBody(w, r, (*bp)[:0])
		*bp = body
		if err != nil {
			h.writeError(w, name, err)
			return
		}
	}
	// The answer is appended after the body it may still be reading from.
	start := len(*bp)
	out, err := ep.answer(h, r, apiKey, body, *bp)
	if err != nil {
		h.writeError(w, name, err)
		return
	}
	*bp = out
	answer := out[start:]
	metrics.ok[name].Inc()
	if ep.unsigned {
		writeText(w, answer)
		return
	}
	sig, err := h.sign(answer)
	if err != nil {
		h.logger.Error("signing a response", zap.Error(err))
		h.writeError(w, name, errSigning)
		return
	}
	writeJSON(w, http.StatusOK, answer, sig)
}

func (h *Handler) addFeatureConsumption(r *http.Request, apiKey string, body, out []byte) ([]byte, error) {
	req, err := consumption.DecodeFeatureConsumption(body)
	if err != nil {
		return out, err
	}
	o, err := h.state.service.AddFeatureConsumption(r.Context(), apiKey, req)
	if err != nil {
		return out, err
	}
	return consumption.AppendFeatureConsumptionJSON(out, h.CompanyID, &o), nil
}

func (h *Handler) addConsumption(r *http.Request, apiKey string, body, out []byte) ([]byte, error) {
	req, err := consumption.DecodeLicenseConsumption(body)
	if err != nil {
		return out, err
	}
	o, err := h.state.service.AddConsumption(r.Context(), apiKey, req)
	if err != nil {
		return out, err
	}
	return consumption.AppendLicenseConsumptionJSON(out, h.CompanyID, &o), nil
}

func (h *Handler) activateLicense(r *http.Request, apiKey string, body, out []byte) ([]byte, error) {
	req, err := consumption.DecodeLicenseRequest(body)
	if err != nil {
		return out, err
	}
	v, err := h.state.service.ActivateLicense(r.Context(), apiKey, req)
	if err != nil {
		return out, err
	}
	return h.appendLicense(out, &v, true)
}

func (h *Handler) checkLicense(r *http.Request, _ string, _, out []byte) ([]byte, error) {
	req, err := consumption.ParseLicenseQuery(r.URL.Query())
	if err != nil {
		return out, err
	}
	v, err := h.state.service.CheckLicense(r.Context(), req)
	if err != nil {
		return out, err
	}
	return h.appendLicense(out, &v, false)
}

// appendLicense appends a license object with its v1 license_signature.
func (h *Handler) appendLicense(out []byte, v *consumption.LicenseView, activation bool) ([]byte, error) {
	sig, err := h.sign(v.SignatureV1Message())
	if err != nil {
		h.logger.Error("signing a license", zap.Error(err))
		return out, errSigning
	}
	return consumption.AppendLicenseJSON(out, v, h.CompanyID, activation, sig), nil
}

func (h *Handler) checkLicenseFeature(r *http.Request, _ string, _, out []byte) ([]byte, error) {
	q := r.URL.Query()
	req, err := consumption.ParseLicenseQuery(q)
	if err != nil {
		return out, err
	}
	code := q.Get("feature")
	if code == "" {
		return out, &consumption.Error{Status: http.StatusBadRequest, Code: consumption.CodeMissingField, Message: "feature is required"}
	}
	f, err := h.state.service.CheckLicenseFeature(r.Context(), req, code)
	if err != nil {
		return out, err
	}
	return consumption.AppendFeatureJSON(out, &f, h.state.service.Now()), nil
}

func (h *Handler) deactivateLicense(r *http.Request, apiKey string, body, out []byte) ([]byte, error) {
	req, err := consumption.DecodeLicenseRequest(body)
	if err != nil {
		return out, err
	}
	if err := h.state.service.DeactivateLicense(r.Context(), apiKey, req); err != nil {
		return out, err
	}
	return append(out, "license_deactivated"...), nil
}
