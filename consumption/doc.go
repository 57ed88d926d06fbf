// Package consumption decides what a LicenseSpring consumption means: which
// license and feature a request addresses, which of the documented errors
// applies (in the documented order), and how a counter moves within its limit
// and reset period.
//
// It holds the rules only. Definitions are read through the Definitions
// interface and counters are changed through the Counters interface, both
// implemented by a store, so the rules can be tested without a database and
// every backend applies the very same arithmetic (Apply) inside its own
// atomic step.
package consumption
