// Package apierror is the one error type of the License API's answers:
// authentication failures, malformed requests and the refusals of the
// licensing rules alike. Whatever is not an *Error is a failure of the
// server (a store, a disk) rather than an answer about the request.
package apierror

import "errors"

// Error is an answer the License API documents: an HTTP status, a
// snake_case code that clients switch on, and a human message. It is sent
// as the JSON body {"status":...,"code":...,"message":...}. The fields go
// to clients verbatim, which is why no Error carries request data such as
// keys, passwords or signatures.
type Error struct {
	Status  int
	Code    string
	Message string
}

// Error returns the code and message, so that logs carry the stable code
// first.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// As returns the *Error in err's chain, or nil when there is none.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// New returns an Error of the status, code and message.
func New(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}
