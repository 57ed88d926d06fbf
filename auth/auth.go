package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/edgelicense/caddy-license-api/apierror"
)

// algorithm is the only signing algorithm LicenseSpring clients use; anything
// else is rejected rather than negotiated so a client cannot downgrade.
const algorithm = "hmac-sha256"

// signingPrefix precedes the raw Date header value in the signed string. The
// "date: " part mirrors the single entry of the headers field.
const signingPrefix = "licenseSpring\ndate: "

// signatureLen is the length of a padded base64 SHA-256 MAC; any other length
// can be rejected before doing cryptographic work.
var signatureLen = base64.StdEncoding.EncodedLen(sha256.Size)

// strictBase64 refuses non-canonical encodings so that exactly one signature
// string is accepted per MAC, which keeps replay caches keyed on the string
// honest.
var strictBase64 = base64.StdEncoding.Strict()

// The sentinels below are the only errors Verify returns, so callers can
// compare with errors.Is or == and render Status, Code and Message directly.
var (
	// ErrMissingHeaders reports that the Date or Authorization header is
	// absent or empty.
	ErrMissingHeaders = apierror.New(http.StatusBadRequest, "missing_headers", "Some headers are missing")
	// ErrMissingParams reports an Authorization header that cannot be parsed
	// or lacks one of algorithm, headers, signature or apikey.
	ErrMissingParams = apierror.New(http.StatusBadRequest, "authorization_missing_params", "Authorization header is malformed or missing algorithm, headers, signature or apikey")
	// ErrInvalidHeaders reports a headers field other than "date"; signing
	// other header sets is not supported by LicenseSpring.
	ErrInvalidHeaders = apierror.New(http.StatusBadRequest, "authorization_invalid_headers", `Authorization headers field must be "date"`)
	// ErrHMACRequired reports an algorithm other than hmac-sha256.
	ErrHMACRequired = apierror.New(http.StatusBadRequest, "hmac_required", "HMAC-SHA256 signature algorithm is required")
	// ErrInvalidAPIKey reports an API key that is not configured.
	ErrInvalidAPIKey = apierror.New(http.StatusBadRequest, "invalid_api_key", "Provided API key is not valid")
	// ErrSignatureMismatch reports a signature that was not made with the
	// shared key belonging to the API key.
	ErrSignatureMismatch = apierror.New(http.StatusUnauthorized, "signature_mismatch", "Signature does not match")
	// ErrDateHeaderDiff reports a Date header that cannot be parsed or lies
	// outside the accepted clock skew.
	ErrDateHeaderDiff = apierror.New(http.StatusBadRequest, "date_header_diff", "Date header is invalid or too far from server time")
)

// Params holds the parsed Authorization fields. Values are substrings of the
// header, exactly as sent inside the quotes, so parsing does not allocate.
type Params struct {
	Algorithm string
	Headers   string
	Signature string
	APIKey    string
}

// ParseAuthorization parses an Authorization header in any of the spellings
// used by LicenseSpring clients: comma separators with or without spaces,
// case-insensitive field names ("apikey", "apiKey"), optional whitespace
// around "=", quoted or bare values and an optional leading scheme token such
// as "Signature". Unknown fields are ignored so newer clients keep working;
// a repeated known field is rejected because it is ambiguous which one a
// signature was meant for. Any failure is ErrMissingParams.
func ParseAuthorization(header string) (Params, error) {
	var p Params
	s := skipOWS(header)

	// A leading token followed by whitespace and then something other than
	// "=" is an auth-scheme, which carries no information here.
	if n := nameLen(s); n > 0 && n < len(s) && isOWS(s[n]) {
		if rest := skipOWS(s[n:]); rest != "" && rest[0] != '=' && rest[0] != ',' {
			s = rest
		}
	}

	var seen uint8
	for {
		s = skipOWS(s)
		if s == "" {
			break
		}
		if s[0] == ',' { // tolerate empty list elements, as HTTP lists do
			s = s[1:]
			continue
		}

		n := nameLen(s)
		if n == 0 {
			return Params{}, ErrMissingParams
		}
		name := s[:n]
		s = skipOWS(s[n:])
		if s == "" || s[0] != '=' {
			return Params{}, ErrMissingParams
		}
		s = skipOWS(s[1:])

		var value string
		if s != "" && s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return Params{}, ErrMissingParams
			}
			value, s = s[1:1+end], s[2+end:]
		} else {
			n := valueLen(s)
			value, s = s[:n], s[n:]
		}

		s = skipOWS(s)
		if s != "" && s[0] != ',' {
			return Params{}, ErrMissingParams
		}

		var dst *string
		var bit uint8
		switch {
		case strings.EqualFold(name, "algorithm"):
			dst, bit = &p.Algorithm, 1
		case strings.EqualFold(name, "headers"):
			dst, bit = &p.Headers, 2
		case strings.EqualFold(name, "signature"):
			dst, bit = &p.Signature, 4
		case strings.EqualFold(name, "apikey"):
			dst, bit = &p.APIKey, 8
		default:
			continue
		}
		if seen&bit != 0 {
			return Params{}, ErrMissingParams
		}
		seen |= bit
		*dst = value
	}

	if p.Algorithm == "" || p.Headers == "" || p.Signature == "" || p.APIKey == "" {
		return Params{}, ErrMissingParams
	}
	return p, nil
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func skipOWS(s string) string {
	for s != "" && isOWS(s[0]) {
		s = s[1:]
	}
	return s
}

// nameLen returns the length of the field name at the start of s.
func nameLen(s string) int {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isOWS(c), c == ',', c == '=', c == '"':
			return i
		}
	}
	return len(s)
}

// valueLen returns the length of the bare (unquoted) value at the start of s.
// "=" is allowed so unquoted base64 padding survives.
func valueLen(s string) int {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isOWS(c), c == ',', c == '"':
			return i
		}
	}
	return len(s)
}

// Sign returns the base64 HMAC-SHA256 signature of the signing string for date
// under sharedKey (used by clients and tests). date must be the exact Date
// header value that will be sent, since the server signs the raw bytes.
func Sign(sharedKey, date string) string {
	mac := hmac.New(sha256.New, []byte(sharedKey))
	mac.Write([]byte(signingPrefix + date)) // hash writes never fail
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Header builds the Authorization header value the Node SDK sends, which is
// the most compact spelling and therefore the one every server must accept.
func Header(apiKey, sharedKey, date string) string {
	return `algorithm="` + algorithm + `",headers="date",signature="` +
		Sign(sharedKey, date) + `",apikey="` + apiKey + `"`
}

// Verifier authenticates requests against a fixed set of API keys. It is
// immutable after construction and safe for concurrent use; reloading keys
// means building a new Verifier.
type Verifier struct {
	keys      map[string]*key
	tolerance time.Duration
	now       func() time.Time
}

// key is one configured API key. MAC states are pooled per key because
// hmac.New re-hashes the key and allocates on every call, which would
// dominate the cost of Verify.
type key struct {
	apiKey string
	pool   sync.Pool // of *macState
}

// macState is a keyed HMAC plus scratch space, owned by one goroutine between
// Get and Put.
type macState struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
	sig [sha256.Size + 1]byte // DecodedLen of signatureLen
}

// maxPooledBuf bounds scratch buffers kept in the pool, so one oversized Date
// header cannot pin memory for the life of the process.
const maxPooledBuf = 256

// NewVerifier returns a Verifier for keys, which maps API keys to shared keys,
// accepting Date headers at most tolerance away from the current time in
// either direction. Entries with an empty API key or shared key are dropped:
// an empty HMAC key is public knowledge and must never authenticate anyone.
// A negative tolerance is treated as zero.
func NewVerifier(keys map[string]string, tolerance time.Duration) *Verifier {
	v := &Verifier{
		keys:      make(map[string]*key, len(keys)),
		tolerance: max(tolerance, 0),
		now:       time.Now,
	}
	for apiKey, sharedKey := range keys {
		if apiKey == "" || sharedKey == "" {
			continue
		}
		secret := []byte(sharedKey)
		k := &key{apiKey: apiKey}
		k.pool.New = func() any {
			return &macState{mac: hmac.New(sha256.New, secret), buf: make([]byte, 0, 64)}
		}
		v.keys[apiKey] = k
	}
	return v
}

// WithClock returns a copy using now as the clock (tests). The copy shares
// the key set, which is never mutated. A nil now restores time.Now.
func (v *Verifier) WithClock(now func() time.Time) *Verifier {
	c := *v
	c.now = now
	if c.now == nil {
		c.now = time.Now
	}
	return &c
}

// Verify checks the raw Date and Authorization header values and returns the
// API key on success; errors are *apierror.Error sentinels. Checks run in a fixed
// order, so a given bad request always yields the same code. The date window
// is checked last, after the signature, so an unauthenticated caller cannot
// probe the server clock through error codes.
func (v *Verifier) Verify(date, authorization string) (apiKey string, err error) {
	if isBlank(date) || isBlank(authorization) {
		return "", ErrMissingHeaders
	}
	p, err := ParseAuthorization(authorization)
	if err != nil {
		return "", ErrMissingParams
	}
	if !strings.EqualFold(strings.TrimSpace(p.Algorithm), algorithm) {
		return "", ErrHMACRequired
	}
	if !strings.EqualFold(strings.TrimSpace(p.Headers), "date") {
		return "", ErrInvalidHeaders
	}
	k, ok := v.keys[p.APIKey]
	if !ok {
		return "", ErrInvalidAPIKey
	}
	if !k.verify(date, p.Signature) {
		return "", ErrSignatureMismatch
	}
	t, ok := parseDate(date)
	if !ok {
		return "", ErrDateHeaderDiff
	}
	// Compare instants rather than |now-t|: time.Sub saturates for dates
	// centuries away, and negating the saturated minimum stays negative,
	// which would accept such dates.
	now := v.now()
	if t.Before(now.Add(-v.tolerance)) || t.After(now.Add(v.tolerance)) {
		return "", ErrDateHeaderDiff
	}
	return k.apiKey, nil
}

// verify reports whether sig is the base64 MAC of the signing string for the
// raw date. The comparison is constant-time in the MAC bytes.
func (k *key) verify(date, sig string) bool {
	if len(sig) != signatureLen {
		return false
	}
	st := k.pool.Get().(*macState)
	defer k.put(st)

	st.buf = append(st.buf[:0], sig...)
	n, err := strictBase64.Decode(st.sig[:], st.buf)
	if err != nil {
		return false
	}

	st.buf = append(append(st.buf[:0], signingPrefix...), date...)
	st.mac.Reset()
	st.mac.Write(st.buf)
	return hmac.Equal(st.mac.Sum(st.sum[:0]), st.sig[:n])
}

func (k *key) put(st *macState) {
	if cap(st.buf) > maxPooledBuf {
		st.buf = make([]byte, 0, 64)
	}
	k.pool.Put(st)
}

func isBlank(s string) bool { return strings.TrimSpace(s) == "" }

// dateLayouts are tried in order. The first is IMF-fixdate with a
// one-or-two digit day, because some clients do not zero-pad it; the others
// are the obsolete forms http.ParseTime also accepts.
var dateLayouts = [...]string{
	"Mon, 2 Jan 2006 15:04:05 GMT",
	time.RFC850,
	time.ANSIC,
}

func parseDate(s string) (time.Time, bool) {
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
