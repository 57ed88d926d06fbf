// Package auth authenticates requests made with the LicenseSpring License
// API request signing scheme, so that stock LicenseSpring SDKs can talk to
// this server without modification.
//
// Every request carries two headers:
//
//	Date: Tue, 07 Jun 2011 20:51:35 GMT
//	Authorization: algorithm="hmac-sha256",headers="date",signature="<base64>",apikey="<api key>"
//
// The signature is the standard (padded) base64 encoding of
// HMAC-SHA256(sharedKey, "licenseSpring\ndate: " + Date), where Date is the
// Date header value exactly as it was sent. The API key is public and only
// selects which shared key the signature must have been made with; the shared
// key never travels over the wire.
//
// Because only the Date header is signed, the signature proves possession of
// the shared key at roughly that moment and nothing about the request body or
// path. The Date is therefore checked against a caller-chosen tolerance to
// bound how long a captured header pair can be replayed.
//
// The SDKs do not agree on the exact spelling of the Authorization header
// (separator spacing, "apikey" versus "apiKey", an optional leading scheme
// token such as "Signature"), so the parser is deliberately lenient about
// syntax while staying strict about the values that matter for security.
// The HMAC is always computed over the raw Date header, never a re-formatted
// one, because any normalization would break signatures made by clients that
// format the date slightly differently (for example without a zero-padded day).
//
// Errors returned by this package are *apierror.Error values whose Status, Code and
// Message are meant to be sent to the client verbatim. They never contain the
// shared key, the signature or the Authorization header.
package auth
