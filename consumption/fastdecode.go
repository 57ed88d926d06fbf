package consumption

import (
	"strconv"
	"unicode/utf8"
)

// decodeFast decodes the bodies SDKs send almost always: one flat JSON
// object whose keys are this package's field names exactly, with plain
// strings and integers. It reports false, having perhaps written part of
// the request, for anything else (an escape in a string, a key in other
// case, an unknown key, null, a fraction, an array, bad JSON), which the
// caller then decodes with encoding/json from scratch. It must never accept
// a body that encoding/json decodes differently or refuses:
// FuzzDecodeFast checks exactly that. It exists because reflection took
// about 13 µs of each request, more than any other part of the handler.
//
// c and feature are nil when the request has no such fields; their keys
// then count as unknown.
func decodeFast(body []byte, r *LicenseRequest, c *LicenseConsumptionRequest, feature *string) bool {
	d := fastDecoder{b: body}
	if !d.byte('{') {
		return false
	}
	if d.byte('}') {
		return d.end()
	}
	for {
		k, ok := d.plainString()
		if !ok || !d.byte(':') {
			return false
		}
		switch {
		case k == "hardware_id":
			r.HardwareID, ok = d.plainString()
		case k == "product":
			r.Product, ok = d.plainString()
		case k == "license_key":
			r.LicenseKey, ok = d.plainString()
		case k == "username":
			r.Username, ok = d.plainString()
		case k == "password":
			r.Password, ok = d.plainString()
		case k == "bundle_code":
			r.BundleCode, ok = d.plainString()
		case k == "sdk_ver":
			r.SDKVersion, ok = d.plainString()
		case k == "license_id":
			r.LicenseID, ok = d.integer()
		case k == "consumptions" && c != nil:
			c.Consumptions, ok = d.integer()
		case k == "feature" && feature != nil:
			*feature, ok = d.plainString()
		default:
			return false
		}
		if !ok {
			return false
		}
		if d.byte('}') {
			return d.end()
		}
		if !d.byte(',') {
			return false
		}
	}
}

// fastDecoder reads body from i on.
type fastDecoder struct {
	b []byte
	i int
}

func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space, if it comes next.
func (d *fastDecoder) byte(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (d *fastDecoder) end() bool {
	d.space()
	return d.i == len(d.b)
}

// plainString reads a string without escapes, of valid UTF-8 and without
// control characters, which is the same to JSON and to Go.
func (d *fastDecoder) plainString() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	for ; d.i < len(d.b); d.i++ {
		switch c := d.b[d.i]; {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return string(s), utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// integer reads an integer in JSON's syntax (no leading zeros, no fraction
// or exponent) that fits an int64.
func (d *fastDecoder) integer() (*int64, bool) {
	d.space()
	start := d.i
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	switch n := d.i - digits; {
	case n == 0, n > 1 && d.b[digits] == '0':
		return nil, false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return nil, false
	}
	v, err := strconv.ParseInt(string(d.b[start:d.i]), 10, 64)
	if err != nil {
		return nil, false
	}
	return &v, true
}
