package jsonjs

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is how deeply Canonical lets arrays and objects nest. JSON.parse
// itself accepts any depth, but node's JSON.stringify overflows its stack at
// about 4,000 levels (node 20, default stack), so a deeper document could not
// be verified by the SDK anyway; 1000 leaves a wide margin and is far beyond
// any real metadata. The limit also bounds Canonical's own recursion.
const maxDepth = 1000

// errTooDeep is wrapped by the error Canonical returns for a document nested
// more than maxDepth levels, so tests can tell it from a syntax error.
var errTooDeep = errors.New("nested too deeply")

// Canonical returns the bytes JavaScript's JSON.stringify(JSON.parse(raw))
// produces for raw, or an error if raw is not valid JSON (one value,
// surrounding whitespace allowed) or nests arrays and objects more than 1000
// levels deep.
//
// The server embeds operator-supplied JSON (license and customer metadata)
// in signed response bodies, and the SDK verifies the signature over
// JSON.stringify(JSON.parse(body)); embedding Canonical's output instead of
// the operator's bytes keeps the body in that form. What JavaScript does,
// and Canonical reproduces:
//
//   - Insignificant whitespace is dropped.
//   - Strings are decoded (\u003c, \/, surrogate-pair escapes) and written
//     back as AppendString writes them. An escaped lone surrogate such as
//     \uD800 stays a lone UTF-16 code unit in JavaScript, which
//     JSON.stringify writes as the lowercase escape \ud800, and so does
//     Canonical.
//   - Numbers become IEEE doubles and are written as Number::toString writes
//     them: shortest round-trip digits, fixed notation for 1e-6 <= |x| <
//     1e21 and exponent form ("1e+21", "1.5e-7") otherwise; -0 becomes 0,
//     integers beyond 2^53 lose precision (9007199254740993 becomes
//     9007199254740992), and overflow such as 1e400, which JSON.parse reads
//     as Infinity, becomes null.
//   - Object keys are ordered as JavaScript orders own properties: array
//     index keys ("0" to "4294967294" in canonical decimal form) first in
//     ascending numeric order, then the others in order of first insertion.
//     A duplicated key keeps the position of its first occurrence and the
//     value of its last. "__proto__" is an ordinary key, as JSON.parse
//     creates it as an own data property.
//   - Array order is kept.
//
// raw should be UTF-8. Invalid UTF-8 inside strings is replaced by U+FFFD by
// the same rule as AppendString, one per maximal ill-formed subsequence,
// which is what JSON.parse sees after a JavaScript client has decoded the
// bytes; anywhere else it is a syntax error, as U+FFFD would be for
// JSON.parse. A leading byte order mark is rejected like any other
// character that is not JSON whitespace.
func Canonical(raw []byte) ([]byte, error) {
	out, err := AppendCanonical(nil, raw)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendCanonical appends Canonical(raw) to dst. On error it returns dst
// with its original length (bytes past it may have been overwritten) and
// the error.
func AppendCanonical(dst, raw []byte) ([]byte, error) {
	// One copy of the input as a string lets string values without escapes
	// go to AppendString as substrings, with no further allocation.
	c := canonicalizer{s: string(raw)}
	c.skipSpace()
	out, err := c.value(dst, 0)
	if err != nil {
		return dst, err
	}
	c.skipSpace()
	if c.pos < len(c.s) {
		return dst, c.unexpected("after top-level value")
	}
	return out, nil
}

// canonicalizer is a recursive-descent JSON parser that writes the canonical
// form of each value as it reads it; only objects are buffered, because
// their keys may need reordering.
type canonicalizer struct {
	s       string   // the whole input
	pos     int      // offset of the next unread byte of s
	scratch []byte   // reused buffer for the decoded text of escaped strings
	members []member // stack of the members of the objects being read
}

// member is one key/value pair of an object, as offsets into a buffer that
// holds the key already encoded (quotes included) and the value already in
// canonical form.
type member struct {
	keyStart, keyEnd int
	valStart, valEnd int
	index            uint32 // the key's value, if isIndex
	isIndex          bool   // whether the key is an array index
}

// smallObject is how many members an object may have before Canonical
// looks keys up in a map rather than by a linear search.
const smallObject = 16

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.s) {
		switch c.s[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

// errorf reports a syntax error at the current offset.
func (c *canonicalizer) errorf(format string, args ...any) error {
	return fmt.Errorf("jsonjs: invalid JSON at offset %d: %s", c.pos, fmt.Sprintf(format, args...))
}

// unexpected reports the byte at the current offset, or the end of input.
func (c *canonicalizer) unexpected(context string) error {
	if c.pos >= len(c.s) {
		return c.errorf("unexpected end of input %s", context)
	}
	r, _ := utf8.DecodeRuneInString(c.s[c.pos:])
	if r == utf8.RuneError {
		return c.errorf("unexpected byte 0x%02x %s", c.s[c.pos], context)
	}
	return c.errorf("unexpected %q %s", r, context)
}

// value appends the canonical form of the value at c.pos, which is nested
// inside depth arrays and objects.
func (c *canonicalizer) value(dst []byte, depth int) ([]byte, error) {
	if c.pos >= len(c.s) {
		return dst, c.unexpected("looking for a value")
	}
	switch b := c.s[c.pos]; {
	case b == '{':
		return c.object(dst, depth+1)
	case b == '[':
		return c.array(dst, depth+1)
	case b == '"':
		return c.str(dst)
	case b == '-' || b >= '0' && b <= '9':
		return c.number(dst)
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(c.s)-c.pos >= len(lit) && c.s[c.pos:c.pos+len(lit)] == lit {
			c.pos += len(lit)
			return append(dst, lit...), nil
		}
	}
	return dst, c.unexpected("looking for a value")
}

// array appends the canonical form of the array at c.pos; depth counts it.
func (c *canonicalizer) array(dst []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, fmt.Errorf("jsonjs: invalid JSON at offset %d: %w (more than %d levels)", c.pos, errTooDeep, maxDepth)
	}
	c.pos++ // '['
	dst = append(dst, '[')
	c.skipSpace()
	if c.pos < len(c.s) && c.s[c.pos] == ']' {
		c.pos++
		return append(dst, ']'), nil
	}
	for {
		var err error
		if dst, err = c.value(dst, depth); err != nil {
			return dst, err
		}
		c.skipSpace()
		if c.pos >= len(c.s) {
			return dst, c.unexpected("in array")
		}
		switch c.s[c.pos] {
		case ',':
			c.pos++
			dst = append(dst, ',')
			c.skipSpace()
		case ']':
			c.pos++
			return append(dst, ']'), nil
		default:
			return dst, c.unexpected("after array element")
		}
	}
}

// object appends the canonical form of the object at c.pos; depth counts
// it. Members are first written in input order, which is already the final
// form when no key is an array index or a duplicate (the usual case);
// otherwise they are rewritten in JavaScript's order.
func (c *canonicalizer) object(dst []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, fmt.Errorf("jsonjs: invalid JSON at offset %d: %w (more than %d levels)", c.pos, errTooDeep, maxDepth)
	}
	c.pos++ // '{'
	start := len(dst)
	dst = append(dst, '{')
	c.skipSpace()
	if c.pos < len(c.s) && c.s[c.pos] == '}' {
		c.pos++
		return append(dst, '}'), nil
	}
	base := len(c.members) // this object's members are c.members[base:]
	defer func() { c.members = c.members[:base] }()
	var (
		byKey    map[string]int // encoded key → index in c.members[base:]; large objects only
		reorder  bool
		hasIndex bool
	)
	for {
		if c.pos >= len(c.s) || c.s[c.pos] != '"' {
			return dst, c.unexpected("looking for an object key")
		}
		var m member
		var err error
		m.keyStart = len(dst) - start
		if dst, err = c.str(dst); err != nil {
			return dst, err
		}
		m.keyEnd = len(dst) - start
		c.skipSpace()
		if c.pos >= len(c.s) || c.s[c.pos] != ':' {
			return dst, c.unexpected("after object key")
		}
		c.pos++
		dst = append(dst, ':')
		c.skipSpace()
		m.valStart = len(dst) - start
		if dst, err = c.value(dst, depth); err != nil {
			return dst, err
		}
		m.valEnd = len(dst) - start

		// Keys are compared in encoded form: encoding is one-to-one on the
		// strings JavaScript sees, so equal encodings mean equal keys. Small
		// objects are searched linearly, which allocates nothing; large
		// ones get a map so that a huge object is not quadratic.
		key := dst[start+m.keyStart : start+m.keyEnd]
		own := c.members[base:] // nested values have popped theirs by now
		dup := -1
		if byKey != nil {
			if i, ok := byKey[string(key)]; ok {
				dup = i
			}
		} else {
			for i, o := range own {
				if string(dst[start+o.keyStart:start+o.keyEnd]) == string(key) {
					dup = i
					break
				}
			}
		}
		if dup >= 0 {
			own[dup].valStart, own[dup].valEnd = m.valStart, m.valEnd
			reorder = true
		} else {
			m.index, m.isIndex = arrayIndex(key)
			hasIndex = hasIndex || m.isIndex
			reorder = reorder || m.isIndex
			c.members = append(c.members, m)
			switch {
			case byKey != nil:
				byKey[string(key)] = len(own)
			case len(own)+1 > smallObject:
				byKey = make(map[string]int, 2*smallObject)
				for i, o := range c.members[base:] {
					byKey[string(dst[start+o.keyStart:start+o.keyEnd])] = i
				}
			}
		}

		c.skipSpace()
		if c.pos < len(c.s) && c.s[c.pos] == '}' {
			c.pos++
			dst = append(dst, '}')
			break
		}
		if c.pos >= len(c.s) || c.s[c.pos] != ',' {
			return dst, c.unexpected("after object member")
		}
		c.pos++
		dst = append(dst, ',')
		c.skipSpace()
	}
	if !reorder {
		return dst, nil
	}

	members := c.members[base:]
	if hasIndex {
		// Array index keys first, ascending; the stable sort keeps the
		// others in insertion order after them.
		slices.SortStableFunc(members, func(a, b member) int {
			switch {
			case a.isIndex && b.isIndex:
				return cmp.Compare(a.index, b.index)
			case a.isIndex:
				return -1
			case b.isIndex:
				return 1
			}
			return 0
		})
	}
	buf := slices.Clone(dst[start:])
	dst = append(dst[:start], '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, buf[m.keyStart:m.keyEnd]...)
		dst = append(dst, ':')
		dst = append(dst, buf[m.valStart:m.valEnd]...)
	}
	return append(dst, '}'), nil
}

// arrayIndex reports whether the encoded key (with its quotes) names an
// ECMAScript array index, a key that ordinary objects list before all
// others: the canonical decimal form of an integer from 0 to 2^32−2, so
// not "01", "-1", "1.0" or "4294967295". Digits need no escaping, so the
// encoded form is the key itself.
func arrayIndex(key []byte) (uint32, bool) {
	digits := key[1 : len(key)-1]
	if len(digits) == 0 || len(digits) > 10 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(digits); i++ {
		d := digits[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + uint64(d-'0')
	}
	if n > math.MaxUint32-1 {
		return 0, false
	}
	return uint32(n), true
}

// str appends the canonical form of the string at c.pos.
func (c *canonicalizer) str(dst []byte) ([]byte, error) {
	c.pos++ // opening quote
	start := c.pos
	for c.pos < len(c.s) {
		switch b := c.s[c.pos]; {
		case b == '"':
			c.pos++
			// No escapes: the raw text is the string's value.
			return AppendString(dst, c.s[start:c.pos-1]), nil
		case b == '\\':
			return c.escapedStr(dst, start)
		case b < 0x20:
			return dst, c.errorf("control character 0x%02x in string", b)
		}
		c.pos++
	}
	return dst, c.unexpected("in string")
}

// escapedStr appends the canonical form of the string whose text starts at
// start, when an escape has been found at c.pos. The decoded text is
// collected in c.scratch as UTF-8 and written with appendStringBody; a lone
// surrogate, which UTF-8 cannot hold, is written as its escape between
// pieces of text.
func (c *canonicalizer) escapedStr(dst []byte, start int) ([]byte, error) {
	dst = append(dst, '"')
	text := append(c.scratch[:0], c.s[start:c.pos]...)
	defer func() { c.scratch = text[:0] }()
	for c.pos < len(c.s) {
		b := c.s[c.pos]
		if b == '"' {
			c.pos++
			dst = appendStringBody(dst, string(text))
			return append(dst, '"'), nil
		}
		if b < 0x20 {
			return dst, c.errorf("control character 0x%02x in string", b)
		}
		if b != '\\' {
			// Raw bytes, invalid UTF-8 included, are copied as they are;
			// appendStringBody sanitises them. An escape cannot complete
			// an ill-formed sequence (its UTF-8 starts with a lead byte),
			// so sanitising the decoded text gives what a client gets by
			// decoding the bytes first.
			text = append(text, b)
			c.pos++
			continue
		}
		if c.pos+1 >= len(c.s) {
			c.pos++
			return dst, c.unexpected("in string escape")
		}
		e := c.s[c.pos+1]
		switch e {
		case '"', '\\', '/':
			text = append(text, e)
		case 'b':
			text = append(text, '\b')
		case 'f':
			text = append(text, '\f')
		case 'n':
			text = append(text, '\n')
		case 'r':
			text = append(text, '\r')
		case 't':
			text = append(text, '\t')
		case 'u':
			r, ok := hex4(c.s, c.pos+2)
			if !ok {
				c.pos += 2
				return dst, c.errorf(`invalid \u escape`)
			}
			c.pos += 6
			if !utf16.IsSurrogate(r) {
				text = utf8.AppendRune(text, r)
				continue
			}
			if r < 0xdc00 && c.pos+1 < len(c.s) && c.s[c.pos] == '\\' && c.s[c.pos+1] == 'u' {
				if lo, ok := hex4(c.s, c.pos+2); ok && lo >= 0xdc00 && lo <= 0xdfff {
					c.pos += 6
					text = utf8.AppendRune(text, utf16.DecodeRune(r, lo))
					continue
				}
			}
			// A lone surrogate: JSON.stringify writes it as an escape in
			// lowercase hex.
			dst = appendStringBody(dst, string(text))
			text = text[:0]
			dst = append(dst, '\\', 'u',
				hexDigits[r>>12], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
			continue
		default:
			c.pos++
			return dst, c.unexpected("in string escape")
		}
		c.pos += 2
	}
	return dst, c.unexpected("in string")
}

// hex4 decodes the four hex digits (either case) at s[i:].
func hex4(s string, i int) (rune, bool) {
	if len(s)-i < 4 {
		return 0, false
	}
	var r rune
	for _, b := range []byte(s[i : i+4]) {
		var d byte
		switch {
		case b >= '0' && b <= '9':
			d = b - '0'
		case b >= 'a' && b <= 'f':
			d = b - 'a' + 10
		case b >= 'A' && b <= 'F':
			d = b - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// number appends the canonical form of the number at c.pos. The JSON
// grammar is checked here because strconv.ParseFloat accepts more ("+1",
// "Inf", "0x1p3", ".5").
func (c *canonicalizer) number(dst []byte) ([]byte, error) {
	start := c.pos
	digits := func() int {
		n := 0
		for c.pos < len(c.s) && c.s[c.pos] >= '0' && c.s[c.pos] <= '9' {
			c.pos++
			n++
		}
		return n
	}
	if c.s[c.pos] == '-' {
		c.pos++
	}
	switch {
	case c.pos < len(c.s) && c.s[c.pos] == '0':
		c.pos++ // a leading zero stands alone; "01" fails in the caller
	case digits() == 0:
		return dst, c.unexpected("in number")
	}
	if c.pos < len(c.s) && c.s[c.pos] == '.' {
		c.pos++
		if digits() == 0 {
			return dst, c.unexpected("after decimal point")
		}
	}
	if c.pos < len(c.s) && (c.s[c.pos] == 'e' || c.s[c.pos] == 'E') {
		c.pos++
		if c.pos < len(c.s) && (c.s[c.pos] == '+' || c.s[c.pos] == '-') {
			c.pos++
		}
		if digits() == 0 {
			return dst, c.unexpected("in exponent")
		}
	}
	f, err := strconv.ParseFloat(c.s[start:c.pos], 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		// Unreachable: the grammar above is a subset of ParseFloat's.
		return dst, fmt.Errorf("jsonjs: invalid JSON at offset %d: %w", start, err)
	}
	// On overflow ParseFloat returns ±Inf, as JSON.parse does; underflow
	// gives 0 or -0 without an error, again as JSON.parse does.
	return appendNumber(dst, f), nil
}

// appendNumber appends f as JSON.stringify writes a Number: null for NaN
// and ±Infinity, otherwise ECMAScript's Number::toString(10), which uses the
// shortest digits that round-trip (as strconv's -1 precision does) and this
// layout, where the value is 0.d1d2…dk × 10^n:
//
//	k <= n <= 21   digits then n−k zeros          1e20 → 100000000000000000000
//	0 < n <= 21    point after the nth digit      123.456
//	-6 < n <= 0    "0.", −n zeros, then digits    0.000001
//	otherwise      d[.ddd]e±(n−1)                 1e+21, 1.5e-7
//
// -0 is written as 0.
func appendNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±xx
	mark := slices.Index(e, 'e')
	exp, _ := strconv.Atoi(string(e[mark+1:])) // cannot fail: FormatFloat wrote it
	digits := e[:mark]
	if len(digits) > 1 { // drop the point
		copy(digits[1:], digits[2:])
		digits = digits[:len(digits)-1]
	}
	k, n := len(digits), exp+1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
