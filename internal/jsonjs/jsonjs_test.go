package jsonjs

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgelicense/caddy-license-api/internal/nodetest"
)

func TestAppendString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", `""`},
		{"ascii", "hello world", `"hello world"`},
		{"quote", `say "hi"`, `"say \"hi\""`},
		{"backslash", `C:\dir`, `"C:\\dir"`},
		{"slash not escaped", "a/b</script>", `"a/b</script>"`},
		{"html not escaped", "<a href='x'>&amp;</a>", `"<a href='x'>&amp;</a>"`},
		{"short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"nul", "\x00", `"\u0000"`},
		{"lowercase hex", "\x1a\x1b\x1f", `"\u001a\u001b\u001f"`},
		{"vertical tab", "\v", `"\u000b"`},
		{"del literal", "\x7f", "\"\x7f\""},
		{"space literal", " ", `" "`},
		{"line separators literal", "\u2028\u2029", "\"\u2028\u2029\""},
		{"latin1", "ünïcödé", `"ünïcödé"`},
		{"cjk", "日本語", `"日本語"`},
		{"emoji", "😀👍🏽", `"😀👍🏽"`},
		{"combining", "e\u0301", "\"e\u0301\""},
		{"bom", "\ufeff", "\"\ufeff\""},
		{"valid replacement char kept", "\ufffd", "\"\ufffd\""},
		{"max code point", "\U0010ffff", "\"\U0010ffff\""},
		{"mixed", "a\"b\\c\nd\x01é", `"a\"b\\c\nd\u0001é"`},
		// Invalid UTF-8: one U+FFFD per maximal ill-formed subsequence, as
		// the WHATWG decoder (TextDecoder) produces.
		{"lone continuation", "a\x80b", "\"a\ufffdb\""},
		{"two continuations", "\x80\xbf", "\"\ufffd\ufffd\""},
		{"lone ff", "\xff", "\"\ufffd\""},
		{"overlong c0", "\xc0\xaf", "\"\ufffd\ufffd\""},
		{"overlong e0", "\xe0\x80\xaf", "\"\ufffd\ufffd\ufffd\""},
		{"truncated 2-byte at end", "a\xc3", "\"a\ufffd\""},
		{"truncated 3-byte", "\xe2\x82x", "\"\ufffdx\""},
		{"truncated 4-byte", "\xf0\x9f\x98x", "\"\ufffdx\""},
		{"truncated 4-byte at end", "\xf0\x9f\x98", "\"\ufffd\""},
		{"surrogate", "\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""},
		{"above max", "\xf4\x90\x80\x80", "\"\ufffd\ufffd\ufffd\ufffd\""},
		{"f5 lead", "\xf5\x80", "\"\ufffd\ufffd\""},
		{"truncated then escape", "\xe2\x82\n", "\"\ufffd\\n\""},
		{"invalid between valid", "日\xe6\x97本", "\"日\ufffd本\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendString(nil, tt.in))
			if got != tt.want {
				t.Errorf("AppendString(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("AppendString(%q) = %q is not valid UTF-8", tt.in, got)
			}
		})
	}
}

func TestAppendStringAppends(t *testing.T) {
	got := string(AppendString([]byte(`{"k":`), "v"))
	if want := `{"k":"v"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAppendStringNoAllocs(t *testing.T) {
	for _, s := range []string{
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789",
		"ünïcödé 日本語 😀 \u2028",
		"line\nbreak \"quoted\" \x01",
		"bad \xff utf8",
	} {
		buf := make([]byte, 0, 256)
		allocs := testing.AllocsPerRun(100, func() {
			buf = AppendString(buf[:0], s)
		})
		if allocs != 0 {
			t.Errorf("AppendString(%q) with spare capacity: %v allocs, want 0", s, allocs)
		}
	}
}

func TestAppendInt(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{-1, "-1"},
		{42, "42"},
		{1<<53 - 1, "9007199254740991"},
		{-(1<<53 - 1), "-9007199254740991"},
	}
	for _, tt := range tests {
		if got := string(AppendInt(nil, tt.in)); got != tt.want {
			t.Errorf("AppendInt(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAppendBool(t *testing.T) {
	if got := string(AppendBool([]byte("["), true)); got != "[true" {
		t.Errorf("AppendBool(true) = %q", got)
	}
	if got := string(AppendBool(nil, false)); got != "false" {
		t.Errorf("AppendBool(false) = %q", got)
	}
}

// timeCases covers the formats toISOString produces, including expanded
// years and the limits of a JavaScript Date.
var timeCases = []struct {
	in   time.Time
	want string
}{
	{time.Date(2019, 6, 15, 0, 0, 0, 0, time.UTC), `"2019-06-15T00:00:00.000Z"`},
	{time.Unix(0, 0), `"1970-01-01T00:00:00.000Z"`},
	{time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC), `"2024-02-29T23:59:59.999Z"`},
	{time.Date(2020, 1, 1, 12, 30, 0, 1_500_000, time.FixedZone("x", 5*3600+1800)), `"2020-01-01T07:00:00.001Z"`},
	{time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC), `"1969-12-31T23:59:59.999Z"`},
	{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), `"0001-01-01T00:00:00.000Z"`},
	{time.Date(0, 3, 1, 0, 0, 0, 0, time.UTC), `"0000-03-01T00:00:00.000Z"`},
	{time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), `"-000001-01-01T00:00:00.000Z"`},
	{time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC), `"9999-12-31T23:59:59.999Z"`},
	{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), `"+010000-01-01T00:00:00.000Z"`},
	{time.UnixMilli(8.64e15), `"+275760-09-13T00:00:00.000Z"`},
	{time.UnixMilli(-8.64e15), `"-271821-04-20T00:00:00.000Z"`},
}

func TestAppendTime(t *testing.T) {
	for _, tt := range timeCases {
		if got := string(AppendTime(nil, tt.in)); got != tt.want {
			t.Errorf("AppendTime(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// trickyStrings is the corpus checked against real JavaScript.
func trickyStrings() []string {
	var ss []string
	for b := 0; b < 0x20; b++ {
		ss = append(ss, string(rune(b)), "x"+string(rune(b))+"y")
	}
	var all strings.Builder
	for b := 0; b < 0x80; b++ {
		all.WriteByte(byte(b))
	}
	ss = append(ss,
		all.String(),
		"\x7f", `<>&'"\/`, "</script><!--", "\u2028", "\u2029", "a\u2028b\u2029c",
		"😀", "👩‍👩‍👧‍👦", "🇯🇵", "日本語のテキスト", "中文", "한국어",
		"e\u0301\u0302", "\u0300 leading combining", "\ufffd", "\ufeffbom", "\u00a0nbsp",
		"\U0010ffff", "\u07ff\u0800\uffff\U00010000",
		"", " ", "\\u0041 not an escape", `\"`,
		// Invalid UTF-8.
		"\xff", "\xfe\xff", "a\x80b", "\xc0\xaf", "\xc3", "\xe2\x82", "\xe2\x82x",
		"\xf0\x9f\x98", "\xf0\x9f\x98x", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80",
		"\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x88\x80\x80\x80", "日\xe6\x97本", "\xe2\x82\n\"",
	)
	return ss
}

// TestNodeRoundTrip proves with real JavaScript that JSON.stringify(
// JSON.parse(body)) reproduces our output byte for byte, which is what the
// SDK's signature check relies on, and that our U+FFFD replacement of
// invalid UTF-8 matches what TextDecoder makes of the raw bytes.
func TestNodeRoundTrip(t *testing.T) {
	nodetest.Node(t) // skip before building the cases

	type nodeCase struct {
		Name string `json:"name"`
		Doc  string `json:"doc"`           // base64 of the JSON document bytes
		Raw  string `json:"raw,omitempty"` // base64 of the raw input string
		Ms   *int64 `json:"ms,omitempty"`  // Date value for AppendTime cases
	}
	var cases []nodeCase
	for i, s := range trickyStrings() {
		doc := []byte(`{"s":`)
		doc = AppendString(doc, s)
		doc = append(doc, `,"k":`...)
		doc = AppendString(doc, "key")
		doc = append(doc, '}')
		cases = append(cases, nodeCase{
			Name: fmt.Sprintf("string %d %+q", i, s),
			Doc:  base64.StdEncoding.EncodeToString(doc),
			Raw:  base64.StdEncoding.EncodeToString([]byte(s)),
		})
	}
	for _, n := range []int64{0, -1, 42, 1<<53 - 1, -(1<<53 - 1)} {
		// The keys are fixed, so only the values are under test here.
		doc := AppendInt([]byte(`{"n":`), n)
		doc = append(doc, `,"b":`...)
		doc = AppendBool(doc, n > 0)
		doc = append(doc, '}')
		cases = append(cases, nodeCase{Name: "int " + string(AppendInt(nil, n)), Doc: base64.StdEncoding.EncodeToString(doc)})
	}
	for _, tc := range timeCases {
		ms := tc.in.UnixMilli()
		cases = append(cases, nodeCase{
			Name: "time " + tc.want,
			Doc:  base64.StdEncoding.EncodeToString(AppendTime(nil, tc.in)),
			Ms:   &ms,
		})
	}

	const script = `
const cases = JSON.parse(require('node:fs').readFileSync(process.argv[2], 'utf8'));
// ignoreBOM keeps a leading U+FEFF as text instead of stripping it.
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder('utf-8', { ignoreBOM: true });
const failures = [];
for (const c of cases) {
  let s;
  try {
    s = strict.decode(Buffer.from(c.doc, 'base64'));
  } catch (e) {
    failures.push(c.name + ': output is not valid UTF-8');
    continue;
  }
  let v;
  try {
    v = JSON.parse(s);
  } catch (e) {
    failures.push(c.name + ': JSON.parse failed: ' + e.message);
    continue;
  }
  if (JSON.stringify(v) !== s) {
    failures.push(c.name + ': JSON.stringify(JSON.parse(s)) = ' + JSON.stringify(JSON.stringify(v)) + ', want ' + JSON.stringify(s));
  }
  if (c.raw !== undefined) {
    const want = lenient.decode(Buffer.from(c.raw, 'base64'));
    if (v.s !== want) {
      failures.push(c.name + ': parsed ' + JSON.stringify(v.s) + ', TextDecoder gives ' + JSON.stringify(want));
    }
  }
  if (c.ms !== undefined) {
    const want = JSON.stringify(new Date(c.ms));
    if (s !== want) {
      failures.push(c.name + ': JSON.stringify(new Date(' + c.ms + ')) = ' + want);
    }
  }
}
process.stdout.write(JSON.stringify({ checked: cases.length, failures }));
`
	var res struct {
		Checked  int      `json:"checked"`
		Failures []string `json:"failures"`
	}
	nodetest.RunJSON(t, script, cases, &res)
	if res.Checked != len(cases) {
		t.Errorf("node checked %d cases, want %d", res.Checked, len(cases))
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
}

// sanitize is an independent reference for AppendString's treatment of
// invalid UTF-8: a byte-at-a-time transcription of the WHATWG Encoding
// Standard's UTF-8 decoder, which emits one U+FFFD per error.
func sanitize(in string) string {
	var out strings.Builder
	var cp rune
	var seen, needed int
	lower, upper := byte(0x80), byte(0xbf)
	for i := 0; i < len(in); {
		b := in[i]
		if needed == 0 {
			i++
			switch {
			case b <= 0x7f:
				out.WriteByte(b)
			case b >= 0xc2 && b <= 0xdf:
				needed, cp = 1, rune(b&0x1f)
			case b >= 0xe0 && b <= 0xef:
				needed, cp = 2, rune(b&0xf)
			case b >= 0xf0 && b <= 0xf4:
				needed, cp = 3, rune(b&0x7)
			default:
				out.WriteRune(utf8.RuneError)
			}
			// The spec's narrower range for the byte after these leads,
			// which rules out overlong forms (E0, F0), surrogates (ED)
			// and code points above U+10FFFF (F4).
			switch b {
			case 0xe0:
				lower = 0xa0
			case 0xed:
				upper = 0x9f
			case 0xf0:
				lower = 0x90
			case 0xf4:
				upper = 0x8f
			}
			continue
		}
		if b < lower || b > upper {
			// Error; the byte is reprocessed as the start of a sequence.
			cp, needed, seen, lower, upper = 0, 0, 0, 0x80, 0xbf
			out.WriteRune(utf8.RuneError)
			continue
		}
		i++
		lower, upper = 0x80, 0xbf
		cp = cp<<6 | rune(b&0x3f)
		seen++
		if seen == needed {
			out.WriteRune(cp)
			cp, needed, seen = 0, 0, 0
		}
	}
	if needed != 0 {
		out.WriteRune(utf8.RuneError)
	}
	return out.String()
}

func TestSanitizeReference(t *testing.T) {
	// The reference must agree with Go's decoder on valid input.
	for _, s := range trickyStrings() {
		if utf8.ValidString(s) && sanitize(s) != s {
			t.Errorf("sanitize(%q) = %q, want unchanged", s, sanitize(s))
		}
	}
	if got, want := sanitize("\xe2\x82x\xed\xa0\x80"), "\ufffdx\ufffd\ufffd\ufffd"; got != want {
		t.Errorf("sanitize = %q, want %q", got, want)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range trickyStrings() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		if !utf8.Valid(out) {
			t.Fatalf("AppendString(%q) = %q is not valid UTF-8", s, out)
		}
		if !json.Valid(out) {
			t.Fatalf("AppendString(%q) = %q is not valid JSON", s, out)
		}
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("decoding AppendString(%q) = %q: %v", s, out, err)
		}
		if want := sanitize(s); got != want {
			t.Fatalf("AppendString(%q) = %q decodes to %q, want %q", s, out, got, want)
		}
		// Canonical form: re-encoding the decoded value gives the same
		// bytes, the Go analogue of JSON.stringify(JSON.parse(s)) === s.
		if again := AppendString(nil, got); string(again) != string(out) {
			t.Fatalf("AppendString not idempotent: %q then %q", out, again)
		}
		// Only the escapes JSON.stringify uses may appear.
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 {
				t.Fatalf("AppendString(%q) = %q has a raw control byte", s, out)
			}
			if out[i] == '\\' {
				i++
				if strings.IndexByte(`"\bfnrtu`, out[i]) < 0 {
					t.Fatalf("AppendString(%q) = %q has escape \\%c", s, out, out[i])
				}
				if out[i] == 'u' {
					esc := string(out[i+1 : i+5])
					if esc[:2] != "00" || strings.ToLower(esc) != esc || strings.Contains("0008 0009 000a 000c 000d", esc) {
						t.Fatalf("AppendString(%q) = %q has non-JS escape \\u%s", s, out, esc)
					}
				}
			}
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	for _, bc := range []struct{ name, s string }{
		{"ascii", "4f3c2a1b-license-key-ABCD-EFGH-IJKL-MNOP"},
		{"unicode", "Ünïcödé prödüct 日本語 😀"},
		{"escapes", "line1\nline2\t\"quoted\"\\"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.s)))
			for b.Loop() {
				buf = AppendString(buf[:0], bc.s)
			}
		})
	}
}
