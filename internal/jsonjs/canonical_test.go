package jsonjs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgelicense/caddy-license-api/internal/nodetest"
)

// canonicalCases are hand-written documents with the output JavaScript
// gives for them; TestNodeCanonical also runs every one through node, so
// each expectation here is proven, not just asserted.
var canonicalCases = []struct {
	name string
	in   string
	want string
}{
	// Whitespace and scalars.
	{"whitespace dropped", " \t\n\r{ \"a\" :\n[ 1 , 2 ] ,\"b\"\t:\r{ } } \n", `{"a":[1,2],"b":{}}`},
	{"top-level string", `"x"`, `"x"`},
	{"top-level number", ` 12 `, `12`},
	{"literals", `[true,false,null]`, `[true,false,null]`},
	{"empty containers", `[[],{},[{}],{"":[]}]`, `[[],{},[{}],{"":[]}]`},
	{"empty key", `{"":1}`, `{"":1}`},

	// Strings are decoded and re-escaped the JSON.stringify way.
	{"html and slash escapes decoded", `"\u003c\u003e\u0026\/"`, `"<>&/"`},
	{"uppercase hex escapes", `"\u00E9\u001F\u000B"`, `"é\u001f\u000b"`},
	{"short escapes kept", `"\b\f\n\r\t\"\\"`, `"\b\f\n\r\t\"\\"`},
	{"escaped short forms", `"\u0008\u000c\u000a\u000d\u0009\u0022\u005c"`, `"\b\f\n\r\t\"\\"`},
	{"nul", `"\u0000"`, `"\u0000"`},
	{"del literal", `"\u007f"`, "\"\x7f\""},
	{"line separators literal", `"\u2028\u2029"`, "\"\u2028\u2029\""},
	{"raw line separators", "\"\u2028\u2029\"", "\"\u2028\u2029\""},
	{"raw unicode", `"ünïcödé 日本語 😀"`, `"ünïcödé 日本語 😀"`},
	{"surrogate pair escape", `"\ud83d\ude00"`, `"😀"`},
	{"surrogate pair uppercase", `"\uD83D\uDE00"`, `"😀"`},
	{"max code point", `"\udbff\udfff"`, "\"\U0010ffff\""},
	{"bom escape", `"\ufeff"`, "\"\ufeff\""},
	{"noncharacter", `"\uffff"`, "\"\uffff\""},

	// Lone surrogates stay escapes, in lowercase hex.
	{"lone high", `"\ud800"`, `"\ud800"`},
	{"lone high uppercase", `"\uD800"`, `"\ud800"`},
	{"lone low", `"\uDC00"`, `"\udc00"`},
	{"lone high then text", `"a\uDBFFb"`, `"a\udbffb"`},
	{"high then high then low", `"\ud83d\ud83d\ude00"`, `"\ud83d😀"`},
	{"low then high", `"\ude00\ud83d"`, `"\ude00\ud83d"`},
	{"high then escaped non-surrogate", `"\ud800\u0041"`, `"\ud800A"`},
	{"high then short escape", `"\ud800\n"`, `"\ud800\n"`},
	{"lone surrogates around escapes", `"\n\udfff\"\ud800\\"`, `"\n\udfff\"\ud800\\"`},
	{"lone surrogate key", `{"\ud800":1}`, `{"\ud800":1}`},

	// Invalid UTF-8 inside strings: one U+FFFD per maximal ill-formed
	// subsequence, as after TextDecoder.
	{"invalid utf8", "\"a\xffb\"", "\"a\ufffdb\""},
	{"truncated sequence", "\"\xe2\x82x\"", "\"\ufffdx\""},
	{"truncated sequence before escape", "\"\xe2\x82\\u00e9\"", "\"\ufffdé\""},
	{"encoded surrogate", "\"\xed\xa0\x80\"", "\"\ufffd\ufffd\ufffd\""},
	{"invalid utf8 then lone surrogate", "\"\xf0\x9f\\ud800\"", "\"\ufffd\\ud800\""},
	{"invalid key equals replacement key", "{\"\xff\":1,\"\ufffd\":2}", "{\"\ufffd\":2}"},

	// Numbers, as Number::toString writes the double JSON.parse makes.
	{"integers", `[0,1,-1,123,1000000]`, `[0,1,-1,123,1000000]`},
	{"negative zero", `[-0,-0.0,-0e5,0.0,0e-10]`, `[0,0,0,0,0]`},
	{"trailing zeros", `[123.0,1.50,100.000e0]`, `[123,1.5,100]`},
	{"exponent forms", `[1E5,1e+5,1e-0,2E-1,12e1]`, `[100000,100000,1,0.2,120]`},
	{"fixed up to 1e21", `[1e20,123456789012345678000,1e21,1.5e21]`, `[100000000000000000000,123456789012345680000,1e+21,1.5e+21]`},
	{"fixed down to 1e-6", `[0.000001,1e-6,0.0000015,1e-7,1.5e-7,2e-7]`, `[0.000001,0.000001,0.0000015,1e-7,1.5e-7,2e-7]`},
	{"small exponents", `[1.2345e-8,123e-20,-4.5e-100]`, `[1.2345e-8,1.23e-18,-4.5e-100]`},
	{"shortest digits", `[0.1,0.30000000000000004,0.3,1.1,3.141592653589793238]`, `[0.1,0.30000000000000004,0.3,1.1,3.141592653589793]`},
	{"big integers lose precision", `[9007199254740991,9007199254740993,123456789012345678901234567890]`, `[9007199254740991,9007199254740992,1.2345678901234568e+29]`},
	{"extremes", `[5e-324,4.9e-324,1.7976931348623157e308,2.2250738585072014e-308]`, `[5e-324,5e-324,1.7976931348623157e+308,2.2250738585072014e-308]`},
	{"overflow to null", `[1e400,-1e400,1.8e308,1e309]`, `[null,null,null,null]`},
	{"underflow to zero", `[1e-400,-1e-400,2e-324]`, `[0,0,0]`},
	{"long fraction", `0.` + strings.Repeat("0", 300) + `1`, `1e-301`},
	{"long integer", `1` + strings.Repeat("0", 400), `null`},

	// Object key order: array indices ascending, then insertion order.
	{"index keys first", `{"b":1,"a":2,"10":3,"2":4,"0":5}`, `{"0":5,"2":4,"10":3,"b":1,"a":2}`},
	{"non-index numeric keys", `{"z":0,"01":1,"-1":2,"1.0":3,"1e1":4," 1":5,"+1":6,"00":7,"-0":8}`, `{"z":0,"01":1,"-1":2,"1.0":3,"1e1":4," 1":5,"+1":6,"00":7,"-0":8}`},
	{"index bounds", `{"4294967295":1,"x":2,"4294967294":3,"9007199254740991":4,"99999999999":5,"0":6}`, `{"0":6,"4294967294":3,"4294967295":1,"x":2,"9007199254740991":4,"99999999999":5}`},
	{"escaped index key", `{"a":1,"\u0031":2}`, `{"1":2,"a":1}`},

	// Duplicates: last value, first position.
	{"duplicate keeps first position", `{"a":1,"b":2,"a":3}`, `{"a":3,"b":2}`},
	{"duplicate index", `{"x":0,"1":1,"0":2,"1":3}`, `{"0":2,"1":3,"x":0}`},
	{"duplicate via escape", `{"a":1,"b":2,"\u0061":3}`, `{"a":3,"b":2}`},
	{"duplicate of container", `{"a":{"x":[1,2]},"a":[{"y":1}]}`, `{"a":[{"y":1}]}`},
	{"many duplicates", `{"k":1,"k":2,"k":3,"j":4,"k":5}`, `{"k":5,"j":4}`},
	{"duplicate in nested object", `[{"b":1,"b":2},{"c":{"d":1,"d":{"2":0,"1":0}}}]`, `[{"b":2},{"c":{"d":{"1":0,"2":0}}}]`},

	// __proto__ is an ordinary own property for JSON.parse.
	{"proto", `{"__proto__":1}`, `{"__proto__":1}`},
	{"proto object", `{"a":0,"__proto__":{"x":1},"b":2}`, `{"a":0,"__proto__":{"x":1},"b":2}`},
	{"proto duplicate", `{"__proto__":1,"z":0,"__proto__":[2]}`, `{"__proto__":[2],"z":0}`},
	{"proto null", `{"__proto__":null}`, `{"__proto__":null}`},
	{"large object with duplicates", largeObjectIn(), largeObjectWant()},
	{"prototype-ish keys", `{"constructor":1,"toString":2,"hasOwnProperty":3,"prototype":4}`, `{"constructor":1,"toString":2,"hasOwnProperty":3,"prototype":4}`},
}

// largeObjectIn has more members than smallObject, so that duplicates are
// found both by the linear search and by the map that replaces it.
func largeObjectIn() string {
	var b strings.Builder
	b.WriteString("{")
	for i := range 2 * smallObject {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	fmt.Fprintf(&b, `"k3":"a","5":"b","k%d":"c","k0":"d","k%d":0}`, 2*smallObject-1, 2*smallObject)
	return b.String()
}

func largeObjectWant() string {
	var b strings.Builder
	b.WriteString(`{"5":"b","k0":"d",`)
	for i := 1; i < 2*smallObject-1; i++ {
		if i == 3 {
			b.WriteString(`"k3":"a",`)
			continue
		}
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	fmt.Fprintf(&b, `"k%d":"c","k%d":0}`, 2*smallObject-1, 2*smallObject)
	return b.String()
}

func TestCanonical(t *testing.T) {
	for _, tt := range canonicalCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical([]byte(tt.in))
			if err != nil {
				t.Fatalf("Canonical(%q): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
			again, err := Canonical(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Canonical not idempotent: %q then %q, %v", got, again, err)
			}
		})
	}
}

// invalidDocs are rejected by JSON.parse (TestNodeCanonical checks that)
// and must be rejected by Canonical.
var invalidDocs = []string{
	"", " ", "\n", "x", "01", "-01", "00", "+1", ".5", "1.", "1.e5", "1e", "1e+", "-", "--1",
	"0x10", "1_000", "NaN", "Infinity", "-Infinity", "undefined", "tru", "nul", "True", "nulll",
	"[", "]", "[1,]", "[,1]", "[1 2]", "[1,,2]", "{", "}", `{"a":1,}`, `{,}`, `{"a" 1}`,
	`{"a":}`, `{a:1}`, `{'a':1}`, `{"a":1 "b":2}`, `{1:2}`, `{"a":1}}`, `[1]]`, `[1]x`, "1 2",
	`'a'`, `"abc`, `"\x"`, `"\u12"`, `"\u12G4"`, `"\U0041"`, `"\ud800`, `"\`, "\"\t\"",
	"\"\n\"", "\"\x00\"", "\"\x1f\"", "\ufeff[]", "\u00a0[]", "[\u00a0]", "\v[]", "\f[]",
	"[\xff]", "\xef\xbb\xbf{}", "/*c*/1", "[1]//", `"a"+"b"`,
}

func TestCanonicalInvalid(t *testing.T) {
	for _, in := range invalidDocs {
		got, err := Canonical([]byte(in))
		if err == nil {
			t.Errorf("Canonical(%q) = %q, want an error", in, got)
			continue
		}
		if got != nil {
			t.Errorf("Canonical(%q) = %q with error %v, want nil", in, got, err)
		}
		if !strings.HasPrefix(err.Error(), "jsonjs: invalid JSON at offset ") {
			t.Errorf("Canonical(%q) error %q lacks the offset prefix", in, err)
		}
	}
}

func TestAppendCanonical(t *testing.T) {
	got, err := AppendCanonical([]byte(`{"metadata":`), []byte(` {"b": 1, "a": [ "\u003c" ]} `))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"metadata":{"b":1,"a":["<"]}`; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// On error dst keeps its length and contents, even when the failure
	// comes after output has been written, including in a reordered object.
	for _, bad := range []string{`[1,2,`, `{"1":1,"0":[2,3,}`, `{"a":"\ud800",`, `[1]]`} {
		dst := []byte("prefix")
		got, err := AppendCanonical(dst, []byte(bad))
		if err == nil {
			t.Fatalf("AppendCanonical(%q) succeeded", bad)
		}
		if string(got) != "prefix" {
			t.Errorf("AppendCanonical(%q) returned %q on error, want %q", bad, got, "prefix")
		}
	}
}

func TestCanonicalDepth(t *testing.T) {
	nest := func(open, inner, close string, n int) []byte {
		return []byte(strings.Repeat(open, n) + inner + strings.Repeat(close, n))
	}
	for _, tc := range []struct {
		name              string
		open, inner, shut string
	}{
		{"arrays", "[", "", "]"},
		{"objects", `{"k":`, "1", "}"},
		{"mixed", `[{"k":`, "1", "}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			per := 1
			if tc.name == "mixed" {
				per = 2
			}
			ok := nest(tc.open, tc.inner, tc.shut, maxDepth/per)
			got, err := Canonical(ok)
			if err != nil {
				t.Fatalf("depth %d: %v", maxDepth, err)
			}
			if !bytes.Equal(got, ok) {
				t.Errorf("depth %d: output differs from the canonical input", maxDepth)
			}
			deep := nest(tc.open, tc.inner, tc.shut, maxDepth/per+1)
			if _, err := Canonical(deep); !errors.Is(err, errTooDeep) {
				t.Errorf("depth %d: error %v, want errTooDeep", maxDepth+per, err)
			}
			// Far deeper input fails as fast, without exhausting the stack.
			if _, err := Canonical(nest(tc.open, tc.inner, tc.shut, 1_000_000)); !errors.Is(err, errTooDeep) {
				t.Errorf("depth 1e6: error %v, want errTooDeep", err)
			}
		})
	}
}

// TestAppendNumber covers Number::toString's layouts directly, including
// values that no JSON literal in the other tests spells.
func TestAppendNumber(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{math.NaN(), "null"},
		{math.Inf(1), "null"},
		{math.Inf(-1), "null"},
		{1, "1"},
		{-1.5, "-1.5"},
		{123.456, "123.456"},
		{1e20, "100000000000000000000"},
		{-1e20, "-100000000000000000000"},
		{1e21, "1e+21"},
		{1.2345e21, "1.2345e+21"},
		{999999999999999900000, "999999999999999900000"},
		{1e-6, "0.000001"},
		{1.23e-6, "0.00000123"},
		{1e-7, "1e-7"},
		{9.99e-7, "9.99e-7"},
		{0.30000000000000004, "0.30000000000000004"}, // 0.1+0.2 at run time
		{1 << 53, "9007199254740992"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{math.SmallestNonzeroFloat64, "5e-324"},
		{-math.SmallestNonzeroFloat64, "-5e-324"},
		{2.2250738585072014e-308, "2.2250738585072014e-308"},
		{100, "100"},
		{1e100, "1e+100"},
		{12345678.9, "12345678.9"},
	}
	for _, tt := range tests {
		if got := string(appendNumber(nil, tt.in)); got != tt.want {
			t.Errorf("appendNumber(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// docGen writes random JSON documents that stress what Canonical must get
// right: key order and duplicates, every numeric form, escapes, surrogates
// and invalid UTF-8.
type docGen struct {
	r *rand.Rand
	b []byte
}

func (g *docGen) pick(choices ...string) string { return choices[g.r.IntN(len(choices))] }

func (g *docGen) ws() {
	for g.r.IntN(4) == 0 {
		g.b = append(g.b, g.pick(" ", "\t", "\n", "\r", "  ")...)
	}
}

func (g *docGen) value(depth int) {
	g.ws()
	n := g.r.IntN(100)
	switch {
	case n < 20 && depth < 6:
		g.object(depth + 1)
	case n < 35 && depth < 6:
		g.array(depth + 1)
	case n < 60:
		g.str()
	case n < 92:
		g.b = append(g.b, g.number()...)
	default:
		g.b = append(g.b, g.pick("true", "false", "null")...)
	}
	g.ws()
}

func (g *docGen) array(depth int) {
	g.b = append(g.b, '[')
	n := g.r.IntN(6)
	for i := range n {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		g.value(depth)
	}
	if n == 0 {
		g.ws()
	}
	g.b = append(g.b, ']')
}

func (g *docGen) object(depth int) {
	g.b = append(g.b, '{')
	n := g.r.IntN(8)
	if g.r.IntN(10) == 0 {
		n = smallObject + g.r.IntN(2*smallObject) // past the switch to a map
	}
	for i := range n {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		g.ws()
		if g.r.IntN(4) == 0 {
			g.str()
		} else {
			// A small pool makes duplicates frequent and mixes array
			// indices, near-indices and names, some spelled with escapes.
			g.b = append(g.b, g.pick(`"0"`, `"1"`, `"2"`, `"10"`, `"9"`, `"4294967294"`, `"4294967295"`,
				`"01"`, `"-1"`, `"1.0"`, `"a"`, `"b"`, `"__proto__"`, `"constructor"`, `""`,
				`"\u0031"`, `"\u0061"`, `"\ud800"`, `"é"`, `"\u00e9"`, `"9007199254740993"`)...)
		}
		g.ws()
		g.b = append(g.b, ':')
		g.value(depth)
	}
	if n == 0 {
		g.ws()
	}
	g.b = append(g.b, '}')
}

func (g *docGen) digits(n int) string {
	var s strings.Builder
	for range n {
		s.WriteByte(byte('0' + g.r.IntN(10)))
	}
	return s.String()
}

// intPart returns a JSON integer part: "0" or digits without a leading zero.
func (g *docGen) intPart() string {
	if g.r.IntN(4) == 0 {
		return "0"
	}
	return string(byte('1'+g.r.IntN(9))) + g.digits(g.r.IntN(25))
}

func (g *docGen) number() string {
	sign := g.pick("", "", "-")
	switch g.r.IntN(7) {
	case 0:
		return g.pick("0", "-0", "-0.0", "0e0", "-0E-0", "1E5", "1e+5", "5e-324", "4.9e-324", "2e-324",
			"1.7976931348623157e308", "1.7976931348623159e308", "1e400", "-1e400", "1e-400",
			"123456789012345678901234567890", "9007199254740993", "9007199254740992.5", "1e21", "1e20",
			"999999999999999999999", "1e-7", "1.5e-7", "0.000001", "0.0000001", "123.0", "0.1", "1.1e-6")
	case 1:
		return sign + g.intPart()
	case 2:
		return sign + g.intPart() + "." + g.digits(1+g.r.IntN(20))
	case 3, 4:
		frac := ""
		if g.r.IntN(2) == 0 {
			frac = "." + g.digits(1+g.r.IntN(18))
		}
		return sign + g.intPart() + frac + g.pick("e", "E") + g.pick("", "+", "-") + strconv.Itoa(g.r.IntN(340))
	default:
		// A random finite double in one of Go's layouts.
		f := math.Float64frombits(g.r.Uint64())
		for math.IsNaN(f) || math.IsInf(f, 0) {
			f = math.Float64frombits(g.r.Uint64())
		}
		switch g.r.IntN(3) {
		case 0:
			return strconv.FormatFloat(f, 'g', -1, 64)
		case 1:
			return strconv.FormatFloat(f, 'e', 16+g.r.IntN(4), 64)
		default:
			return strconv.FormatFloat(f, 'E', g.r.IntN(20), 64)
		}
	}
}

func (g *docGen) hexEscape(r rune) string {
	s := fmt.Sprintf(`\u%04x`, r)
	if g.r.IntN(2) == 0 {
		s = `\u` + strings.ToUpper(s[2:])
	}
	return s
}

func (g *docGen) str() {
	g.b = append(g.b, '"')
	for range g.r.IntN(8) {
		switch g.r.IntN(16) {
		case 0, 1:
			g.b = append(g.b, g.pick("a", "key", "Hello World", "<>&", "'", "/", "\x7f", "12", " ")...)
		case 2, 3:
			g.b = append(g.b, g.pick("é", "日本語", "😀", "\u2028", "\u2029", "\ufeff", "\uffff", "\U0010ffff", "\ufffd", "e\u0301")...)
		case 4, 5:
			g.b = append(g.b, g.pick(`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`)...)
		case 6, 7:
			g.b = append(g.b, g.hexEscape(rune(g.r.IntN(0xd800)))...)
		case 8:
			g.b = append(g.b, g.hexEscape(rune(g.r.IntN(0x20)))...)
		case 9:
			g.b = append(g.b, g.hexEscape(rune(0xe000+g.r.IntN(0x2000)))...)
		case 10, 11:
			// A surrogate pair.
			r := rune(0x10000 + g.r.IntN(0x100000))
			hi, lo := 0xd800+(r-0x10000)>>10, 0xdc00+(r-0x10000)&0x3ff
			g.b = append(g.b, g.hexEscape(hi)+g.hexEscape(lo)...)
		case 12, 13:
			// A lone high or low surrogate.
			g.b = append(g.b, g.hexEscape(rune(0xd800+g.r.IntN(0x800)))...)
		case 14:
			// Two high surrogates, or a low before a high.
			g.b = append(g.b, g.hexEscape(rune(0xd800+g.r.IntN(0x400)))+g.pick(g.hexEscape(0xdbff), g.hexEscape(0xdc00)+g.hexEscape(0xd800))...)
		default:
			// Invalid UTF-8.
			g.b = append(g.b, g.pick("\xff", "\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80")...)
		}
	}
	g.b = append(g.b, '"')
}

// canonicalCorpus is what TestNodeCanonical checks and FuzzCanonical starts
// from: the hand-written cases, the invalid documents, and documents from a
// seeded generator (so failures reproduce).
func canonicalCorpus() [][]byte {
	var docs [][]byte
	for _, tt := range canonicalCases {
		docs = append(docs, []byte(tt.in))
	}
	for _, s := range invalidDocs {
		docs = append(docs, []byte(s))
	}
	r := rand.New(rand.NewPCG(2024, 6))
	for i := range 200 {
		g := &docGen{r: r}
		switch i % 4 {
		case 0:
			g.object(1)
		case 1:
			g.array(1)
		default:
			g.value(0)
		}
		docs = append(docs, g.b)
	}
	// Many numbers at once: random doubles in every layout, which is where
	// shortest-digit and Number::toString layout bugs would show.
	g := &docGen{r: r}
	g.b = append(g.b, '[')
	for i := range 5000 {
		if i > 0 {
			g.b = append(g.b, ',')
		}
		g.b = append(g.b, g.number()...)
	}
	g.b = append(g.b, ']')
	docs = append(docs, g.b)
	// Deep but within node's limits.
	docs = append(docs, []byte(strings.Repeat(`[{"1":0,"0":`, maxDepth/2)+"1"+strings.Repeat("}]", maxDepth/2)))
	return docs
}

// TestNodeCanonical proves with real JavaScript that Canonical gives
// exactly JSON.stringify(JSON.parse(doc)) for every corpus document, where
// doc is the bytes decoded as a JavaScript client decodes them (TextDecoder,
// invalid UTF-8 replaced), and that it rejects what JSON.parse rejects.
func TestNodeCanonical(t *testing.T) {
	nodetest.Node(t) // skip before building the corpus

	docs := canonicalCorpus()
	encoded := make([]string, len(docs))
	for i, d := range docs {
		encoded[i] = base64.StdEncoding.EncodeToString(d)
	}
	const script = `
const docs = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
// ignoreBOM keeps a leading U+FEFF as text, which JSON.parse then rejects.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const results = docs.map((b64) => {
  const text = decoder.decode(Buffer.from(b64, 'base64'));
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { ok: false, err: e.message };
  }
  // JSON.stringify escapes lone surrogates, so its result is well-formed
  // UTF-16 and its UTF-8 bytes are exact.
  return { ok: true, out: Buffer.from(JSON.stringify(v), 'utf8').toString('base64') };
});
process.stdout.write(JSON.stringify(results));
`
	var results []struct {
		OK  bool   `json:"ok"`
		Out []byte `json:"out"` // base64 in JSON
		Err string `json:"err"`
	}
	nodetest.RunJSON(t, script, encoded, &results)
	if len(results) != len(docs) {
		t.Fatalf("node returned %d results for %d documents", len(results), len(docs))
	}
	var valid int
	for i, res := range results {
		got, err := Canonical(docs[i])
		switch {
		case !res.OK && err == nil:
			t.Errorf("doc %d %q: Canonical = %q, but JSON.parse throws %s", i, docs[i], got, res.Err)
		case res.OK && err != nil:
			t.Errorf("doc %d %q: Canonical: %v, but node gives %q", i, docs[i], err, res.Out)
		case res.OK && !bytes.Equal(got, res.Out):
			t.Errorf("doc %d %q:\nCanonical = %q\nnode      = %q", i, docs[i], got, res.Out)
		}
		if res.OK {
			valid++
		}
	}
	if valid < 250 {
		t.Errorf("only %d corpus documents are valid JSON; the generator has gone wrong", valid)
	}
	t.Logf("checked %d documents (%d valid) against node", len(docs), valid)
}

func FuzzCanonical(f *testing.F) {
	for _, d := range canonicalCorpus() {
		if len(d) < 4096 {
			f.Add(d)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonical(in)
		if valid := json.Valid(in); valid != (err == nil) {
			// encoding/json allows 10000 levels; Canonical stops at 1000.
			if !(valid && errors.Is(err, errTooDeep)) {
				t.Fatalf("Canonical(%q): error %v, but json.Valid = %v", in, err, valid)
			}
		}
		if err != nil {
			return
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("Canonical(%q) = %q is not valid UTF-8 JSON", in, out)
		}
		again, err := Canonical(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Canonical not idempotent: %q gives %q, then %q (%v)", in, out, again, err)
		}
		// The value is unchanged, as far as Go can see: key order is lost
		// in a map, -0 equals 0, and a lone surrogate decodes to U+FFFD
		// either way. Go replaces invalid UTF-8 byte by byte rather than
		// per maximal subsequence, and cannot hold overflowing numbers, so
		// those inputs are left to the node test.
		var before, after any
		if !utf8.Valid(in) || json.Unmarshal(in, &before) != nil {
			return
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("decoding Canonical(%q) = %q: %v", in, out, err)
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("Canonical(%q) = %q changes the value: %#v, want %#v", in, out, after, before)
		}
	})
}

func BenchmarkCanonical(b *testing.B) {
	doc := []byte(`{"customer": {"name": "Ünïcödé GmbH", "tier": 3, "tags": ["a", "b\u00e9"]},
		"limits": {"10": 5, "2": 1.5e-7, "seats": 250, "ratio": 0.30000000000000004},
		"notes": "line1\nline2 <b>&amp;</b> \ud83d\ude00", "enabled": true, "parent": null}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	var buf []byte
	for b.Loop() {
		var err error
		if buf, err = AppendCanonical(buf[:0], doc); err != nil {
			b.Fatal(err)
		}
	}
}
