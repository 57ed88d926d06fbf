package caddymodule

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"go.uber.org/zap"

	"github.com/edgelicense/caddy-license-api/apierror"
	"github.com/edgelicense/caddy-license-api/consumption"
)

// Errors of this server's own, beyond those LicenseSpring documents.
var (
	errRequestTooLarge = &apierror.Error{Status: http.StatusRequestEntityTooLarge, Code: consumption.CodeRequestTooLarge,
		Message: "request body exceeds " + strconv.Itoa(consumption.MaxBodyBytes) + " bytes"}
	errUnreadableBody = &apierror.Error{Status: http.StatusBadRequest, Code: consumption.CodeInvalidJSON,
		Message: "request body could not be read"}
	errStoreUnavailable = &apierror.Error{Status: http.StatusServiceUnavailable, Code: "service_unavailable",
		Message: "the license store is unavailable; retry later"}
	errSigning = &apierror.Error{Status: http.StatusInternalServerError, Code: "internal_server_error",
		Message: "the response could not be signed"}
)

// bufPool recycles request and response buffers, which are small and made
// for every request.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readBody reads at most MaxBodyBytes of the request body into buf.
func readBody(w http.ResponseWriter, r *http.Request, buf []byte) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, consumption.MaxBodyBytes)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return buf, errRequestTooLarge
			}
			return buf, errUnreadableBody
		}
	}
}

// writeError answers with the error's documented status, code and message.
// Anything that is not an API error is a store failure: it is logged and
// answered 503, so clients retry rather than treat it as a refusal.
func (h *Handler) writeError(w http.ResponseWriter, endpoint string, err error) {
	e := apierror.As(err)
	if e == nil {
		h.logger.Error("license store failed", zap.Error(err))
		e = errStoreUnavailable
	}
	status, code, message := e.Status, e.Code, e.Message
	metrics.responses.WithLabelValues(endpoint, code).Inc()
	body, sig, err := h.errSigs.get(h, status, code, message)
	if err != nil {
		h.logger.Error("signing an error response", zap.Error(err))
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	writeJSON(w, status, body, sig)
}

// signatureCache keeps error bodies with their signatures. Error bodies are
// made only from fixed codes and messages, so the set is small and bounded,
// and signing each once takes the signature off the error path.
type signatureCache struct {
	m sync.Map // code+"\x00"+message -> *signedBody
}

type signedBody struct {
	body []byte
	sig  string
}

func (c *signatureCache) get(h *Handler, status int, code, message string) ([]byte, string, error) {
	k := code + "\x00" + message
	if v, ok := c.m.Load(k); ok {
		sb := v.(*signedBody)
		return sb.body, sb.sig, nil
	}
	body := consumption.AppendErrorJSON(nil, status, code, message)
	sig, err := h.sign(body)
	if err != nil {
		return nil, "", err
	}
	c.m.Store(k, &signedBody{body, sig})
	return body, sig, nil
}

// sign signs body with the handler's key, counting the signature.
func (h *Handler) sign(body []byte) (string, error) {
	metrics.signatures.Inc()
	return h.signer.Sign(body)
}

func writeText(w http.ResponseWriter, body []byte) {
	hdr := w.Header()
	hdr["Content-Type"] = []string{"text/plain; charset=utf-8"}
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func writeJSON(w http.ResponseWriter, status int, body []byte, signature string) {
	hdr := w.Header()
	hdr["Content-Type"] = []string{"application/json"}
	hdr["Licensesignature"] = []string{signature}
	hdr["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}
