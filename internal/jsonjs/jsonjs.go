// Package jsonjs appends JSON tokens exactly as JavaScript's JSON.stringify
// writes them.
//
// Response bodies are signed, and the LicenseSpring SDK verifies the signature
// over JSON.stringify(JSON.parse(body)) rather than over the bytes it
// received. A body therefore verifies only if JavaScript reproduces it byte
// for byte, which encoding/json does not guarantee: it escapes <, >, &,
// U+2028 and U+2029, and writes \u001F where JavaScript writes \u001f.
// Building bodies from these helpers (with no insignificant whitespace and
// keys in the intended order) keeps them in JavaScript's canonical form.
// Canonical does the same for a whole JSON value supplied as bytes, such as
// operator-written metadata, by computing what JSON.stringify(JSON.parse(raw))
// gives.
package jsonjs

import (
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// hexDigits is lowercase because JSON.stringify writes \u001f, not \u001F.
const hexDigits = "0123456789abcdef"

// literal reports which ASCII bytes JSON.stringify writes unescaped: every
// byte from 0x20 up except '"' and '\\'. DEL (0x7f) and '/' are literal.
var literal = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// AppendString appends s to dst as a quoted JSON string, escaped exactly as
// JSON.stringify escapes it: '"' and '\\' are backslash-escaped, \b \f \n \r
// \t use their short forms, other code points below U+0020 become \u00xx in
// lowercase hex, and everything else (including '/', '<', '>', '&', U+2028,
// U+2029 and all non-ASCII text) is written literally as UTF-8.
//
// Invalid UTF-8 in s is replaced by U+FFFD, one per maximal ill-formed
// subsequence, which is exactly the text a JavaScript client decoding the
// raw bytes with the WHATWG UTF-8 decoder (TextDecoder, Buffer, fetch) would
// have seen; writing the replacement ourselves keeps the body valid UTF-8 so
// that it survives the client's parse/stringify round trip unchanged.
//
// Strings that need no escaping are copied with a single append, so the
// only allocation is dst's growth.
func AppendString(dst []byte, s string) []byte {
	dst = slices.Grow(dst, len(s)+2)
	dst = append(dst, '"')
	dst = appendStringBody(dst, s)
	return append(dst, '"')
}

// appendStringBody appends s escaped as AppendString escapes it, without the
// quotes, so that Canonical can write a string that holds lone surrogates
// (which a Go string cannot) as valid text pieces with \udxxx escapes
// between them.
func appendStringBody(dst []byte, s string) []byte {
	start := 0 // s[start:i] is pending literal text not yet copied to dst
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if literal[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i += illFormedLen(s[i:])
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// illFormedLen returns the length of the maximal ill-formed subsequence at
// the start of s, which must begin with bytes that do not form a valid UTF-8
// sequence. It follows the WHATWG Encoding Standard's UTF-8 decoder (the
// Unicode "maximal subpart" practice), which JavaScript runtimes use: a lead
// byte and the continuation bytes that could still have completed it count
// as one error; any other byte is an error on its own.
func illFormedLen(s string) int {
	var need int
	lo, hi := byte(0x80), byte(0xbf) // allowed range of the next byte
	switch b := s[0]; {
	case b >= 0xc2 && b <= 0xdf:
		need = 1
	case b == 0xe0:
		need, lo = 2, 0xa0 // excludes overlong forms
	case b == 0xed:
		need, hi = 2, 0x9f // excludes surrogates
	case b >= 0xe1 && b <= 0xef:
		need = 2
	case b == 0xf0:
		need, lo = 3, 0x90 // excludes overlong forms
	case b == 0xf4:
		need, hi = 3, 0x8f // excludes code points above U+10FFFF
	case b >= 0xf1 && b <= 0xf3:
		need = 3
	default:
		return 1
	}
	n := 1
	for n <= need && n < len(s) && s[n] >= lo && s[n] <= hi {
		n++
		lo, hi = 0x80, 0xbf
	}
	return n
}

// AppendInt appends n in plain decimal, as JSON.stringify writes an integral
// Number.
//
// Callers must keep n within ±(2^53−1) (Number.MAX_SAFE_INTEGER): beyond it
// a JavaScript client parses the value to a nearby double and writes back
// different digits, so the body would no longer verify.
func AppendInt(dst []byte, n int64) []byte {
	return strconv.AppendInt(dst, n, 10)
}

// AppendBool appends true or false.
func AppendBool(dst []byte, b bool) []byte {
	return strconv.AppendBool(dst, b)
}

// AppendTime appends t as a quoted string in the form JavaScript's
// Date.prototype.toISOString gives, which is also what JSON.stringify writes
// for a Date: UTC, millisecond precision (truncated, as a Date holds whole
// milliseconds) and a Z suffix, e.g. "2019-06-15T00:00:00.000Z". Years
// outside 0000–9999 use the expanded form with a sign and six digits
// ("+010000-01-01T00:00:00.000Z"), as toISOString does.
//
// Callers must keep t within the range of a JavaScript Date (±8.64e15 ms
// around 1970, about ±275760 years), where toISOString would throw.
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		dst = append(dst, '"')
		if y < 0 {
			dst = append(dst, '-')
			y = -y
		} else {
			dst = append(dst, '+')
		}
		for d := 100000; d > 1 && y < d; d /= 10 {
			dst = append(dst, '0')
		}
		dst = strconv.AppendInt(dst, int64(y), 10)
		return t.AppendFormat(dst, `-01-02T15:04:05.000Z"`)
	}
	return t.AppendFormat(dst, `"2006-01-02T15:04:05.000Z"`)
}
