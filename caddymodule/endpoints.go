package caddymodule

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/apierror"
	"github.com/edgelicense/caddy-license-api/consumption"
)

// An endpoint answers one License API path. Its answer appends the 200 body
// to out, with the wait for what it recorded to be durable (nil when
// nothing waits); the handler authenticates, reads the body, signs, waits
// and writes.
type endpoint struct {
	method string
	answer answerFunc
	// unsigned answers are plain text (deactivate_license's
	// "license_deactivated"), which the SDKs do not verify.
	unsigned bool
}

// answerFunc is an endpoint's answer (see endpoint).
type answerFunc func(h *Handler, r *http.Request, apiKey string, body, out []byte) ([]byte, consumption.Durable, error)

// settled adapts an answer whose changes are durable by the time it
// returns: those of everything but the consumptions.
func settled(f func(h *Handler, r *http.Request, apiKey string, body, out []byte) ([]byte, error)) answerFunc {
	return func(h *Handler, r *http.Request, apiKey string, body, out []byte) ([]byte, consumption.Durable, error) {
		out, err := f(h, r, apiKey, body, out)
		return out, nil, err
	}
}

// endpoints are the License API paths under the prefix.
var endpoints = map[string]endpoint{
	"add_feature_consumption": {method: http.MethodPost, answer: (*Handler).addFeatureConsumption},
	"add_consumption":         {method: http.MethodPost, answer: (*Handler).addConsumption},
	"activate_license":        {method: http.MethodPost, answer: settled((*Handler).activateLicense)},
	"deactivate_license":      {method: http.MethodPost, answer: settled((*Handler).deactivateLicense), unsigned: true},
	"check_license":           {method: http.MethodGet, answer: settled((*Handler).checkLicense)},
	"check_license_feature":   {method: http.MethodGet, answer: settled((*Handler).checkLicenseFeature)},
}

// serve runs an endpoint: authentication, then the body, then the answer.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string, ep endpoint) {
	if r.Method != ep.method {
		w.Header().Set("Allow", ep.method)
		h.writeError(w, name, &apierror.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
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
	out, durable, err := ep.answer(h, r, apiKey, body, *bp)
	if err != nil {
		h.writeError(w, name, err)
		return
	}
	*bp = out
	answer := out[start:]
	var sig string
	if !ep.unsigned {
		// Signed while the store makes the change durable, so that the
		// signature overlaps the disk's flush instead of following it.
		if sig, err = h.sign(answer); err != nil {
			h.logger.Error("signing a response", zap.Error(err))
			// The change stands, durable or not: answer once the store
			// has settled it, as for any other answer.
			durable.Wait()
			h.writeError(w, name, errSigning)
			return
		}
	}
	// Nothing is acknowledged before it is durable: a change the store
	// could not make durable is answered as a store failure.
	if err := durable.Wait(); err != nil {
		h.writeError(w, name, err)
		return
	}
	metrics.ok[name].Inc()
	if ep.unsigned {
		writeText(w, answer)
		return
	}
	writeJSON(w, http.StatusOK, answer, sig)
}

func (h *Handler) addFeatureConsumption(r *http.Request, apiKey string, body, out []byte) ([]byte, consumption.Durable, error) {
	req, err := consumption.DecodeFeatureConsumption(body)
	if err != nil {
		return out, nil, err
	}
	o, durable, err := h.state.service.AddFeatureConsumption(r.Context(), apiKey, req)
	if err != nil {
		return out, nil, err
	}
	return consumption.AppendFeatureConsumptionJSON(out, h.CompanyID, &o), durable, nil
}

func (h *Handler) addConsumption(r *http.Request, apiKey string, body, out []byte) ([]byte, consumption.Durable, error) {
	req, err := consumption.DecodeLicenseConsumption(body)
	if err != nil {
		return out, nil, err
	}
	o, durable, err := h.state.service.AddConsumption(r.Context(), apiKey, req)
	if err != nil {
		return out, nil, err
	}
	return consumption.AppendLicenseConsumptionJSON(out, h.CompanyID, &o), durable, nil
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
		return out, &apierror.Error{Status: http.StatusBadRequest, Code: consumption.CodeMissingField, Message: "feature is required"}
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
