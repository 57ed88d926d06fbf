package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/apierror"
)

const (
	testAPIKey    = "a3e2e2b1-1f6c-4c57-9d1e-6a7c3c1f0b11"
	testSharedKey = "kw4qSnpSwXzgiv5yxYpZZmFEd9QAeiKTQ6OuyMja"
	testDate      = "Tue, 07 Jun 2011 20:51:35 GMT"
	testSignature = "UDysfR6MndUZReo07Y9r+vErn8vSxrnQ5ulit18iJ/Q="
	testTolerance = 15 * time.Minute
)

var testNow = time.Date(2011, time.June, 7, 20, 51, 35, 0, time.UTC)

func testVerifier() *Verifier {
	return NewVerifier(map[string]string{
		testAPIKey: testSharedKey,
		"other":    "another-shared-key",
	}, testTolerance).WithClock(func() time.Time { return testNow })
}

func authz(alg, headers, sig, apiKey string) string {
	return fmt.Sprintf(`algorithm="%s",headers="%s",signature="%s",apikey="%s"`, alg, headers, sig, apiKey)
}

func TestSignVector(t *testing.T) {
	if got := Sign(testSharedKey, testDate); got != testSignature {
		t.Fatalf("Sign(vector) = %q, want %q", got, testSignature)
	}
}

func TestHeader(t *testing.T) {
	want := `algorithm="hmac-sha256",headers="date",signature="` + testSignature + `",apikey="` + testAPIKey + `"`
	if got := Header(testAPIKey, testSharedKey, testDate); got != want {
		t.Fatalf("Header() = %q, want %q", got, want)
	}
}

func TestParseAuthorization(t *testing.T) {
	full := Params{Algorithm: "hmac-sha256", Headers: "date", Signature: testSignature, APIKey: "key-1"}
	for i, tc := range []struct {
		name    string
		header  string
		want    Params
		wantErr bool
	}{
		{name: "node sdk, no spaces", header: `algorithm="hmac-sha256",headers="date",signature="` + testSignature + `",apikey="key-1"`, want: full},
		{name: "docs, comma space", header: `algorithm="hmac-sha256", headers="date", signature="` + testSignature + `", apikey="key-1"`, want: full},
		{name: "python apiKey", header: `algorithm="hmac-sha256", headers="date", signature="` + testSignature + `", apiKey="key-1"`, want: full},
		{name: "upper APIKEY and ALGORITHM", header: `ALGORITHM="hmac-sha256",Headers="date",SIGNATURE="` + testSignature + `",APIKEY="key-1"`, want: full},
		{name: "whitespace around = and commas", header: " algorithm = \"hmac-sha256\" ,\theaders\t=\t\"date\" , signature= \"" + testSignature + "\" ,apikey =\"key-1\" ", want: full},
		{name: "field order irrelevant", header: `apikey="key-1",signature="` + testSignature + `",headers="date",algorithm="hmac-sha256"`, want: full},
		{name: "Signature scheme prefix", header: `Signature algorithm="hmac-sha256",headers="date",signature="` + testSignature + `",apikey="key-1"`, want: full},
		{name: "hmac scheme prefix, extra spaces", header: `hmac   algorithm="hmac-sha256", headers="date", signature="` + testSignature + `", apikey="key-1"`, want: full},
		{name: "unknown fields ignored", header: `keyId="x",algorithm="hmac-sha256",headers="date",nonce="a,b=c",signature="` + testSignature + `",apikey="key-1",extra=bare`, want: full},
		{name: "comma inside quotes is data", header: `algorithm="hmac-sha256",headers="date",signature="` + testSignature + `",apikey="key,1=2"`, want: Params{"hmac-sha256", "date", testSignature, "key,1=2"}},
		{name: "bare values keep base64 padding", header: `algorithm=hmac-sha256,headers=date,signature=` + testSignature + `,apikey=key-1`, want: full},
		{name: "empty list elements and trailing comma", header: `,algorithm="hmac-sha256",,headers="date",signature="` + testSignature + `",apikey="key-1",`, want: full},
		{name: "values kept verbatim", header: `algorithm=" HMAC-SHA256 ",headers="Date",signature="s",apikey="k"`, want: Params{" HMAC-SHA256 ", "Date", "s", "k"}},

		{name: "empty header", header: "", wantErr: true},
		{name: "blank header", header: " \t ", wantErr: true},
		{name: "scheme only", header: "Signature", wantErr: true},
		{name: "missing algorithm", header: `headers="date",signature="s",apikey="k"`, wantErr: true},
		{name: "missing headers", header: `algorithm="hmac-sha256",signature="s",apikey="k"`, wantErr: true},
		{name: "missing signature", header: `algorithm="hmac-sha256",headers="date",apikey="k"`, wantErr: true},
		{name: "missing apikey", header: `algorithm="hmac-sha256",headers="date",signature="s"`, wantErr: true},
		{name: "empty apikey value", header: `algorithm="hmac-sha256",headers="date",signature="s",apikey=""`, wantErr: true},
		{name: "empty bare value", header: `algorithm="hmac-sha256",headers="date",signature="s",apikey=`, wantErr: true},
		{name: "unterminated quote", header: `algorithm="hmac-sha256",headers="date",signature="s,apikey="k`, wantErr: true},
		{name: "unterminated final quote", header: `algorithm="hmac-sha256",headers="date",signature="s",apikey="k`, wantErr: true},
		{name: "duplicate apikey", header: `algorithm="hmac-sha256",headers="date",signature="s",apikey="k",apikey="k2"`, wantErr: true},
		{name: "duplicate differing case", header: `algorithm="hmac-sha256",headers="date",signature="s",apikey="k",apiKey="k"`, wantErr: true},
		{name: "duplicate signature", header: `algorithm="hmac-sha256",headers="date",signature="s",signature="t",apikey="k"`, wantErr: true},
		{name: "field without =", header: `algorithm="hmac-sha256",headers,signature="s",apikey="k"`, wantErr: true},
		{name: "missing separator", header: `algorithm="hmac-sha256" headers="date",signature="s",apikey="k"`, wantErr: true},
		{name: "garbage after quoted value", header: `algorithm="hmac-sha256"x,headers="date",signature="s",apikey="k"`, wantErr: true},
		{name: "quote inside bare value", header: `algorithm=hmac"-sha256",headers="date",signature="s",apikey="k"`, wantErr: true},
		{name: "empty field name", header: `="x",algorithm="hmac-sha256",headers="date",signature="s",apikey="k"`, wantErr: true},
		{name: "two leading tokens", header: `Signature hmac algorithm="hmac-sha256",headers="date",signature="s",apikey="k"`, wantErr: true},
	} {
		got, err := ParseAuthorization(tc.header)
		if tc.wantErr {
			if err != ErrMissingParams {
				t.Errorf("Test %d (%s): err = %v, want ErrMissingParams", i, tc.name, err)
			}
			if got != (Params{}) {
				t.Errorf("Test %d (%s): got %+v on error, want zero Params", i, tc.name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("Test %d (%s): unexpected error: %v", i, tc.name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Test %d (%s): got %+v, want %+v", i, tc.name, got, tc.want)
		}
	}
}

func TestErrorSentinels(t *testing.T) {
	for i, tc := range []struct {
		err    *apierror.Error
		status int
		code   string
	}{
		{ErrMissingHeaders, http.StatusBadRequest, "missing_headers"},
		{ErrMissingParams, http.StatusBadRequest, "authorization_missing_params"},
		{ErrInvalidHeaders, http.StatusBadRequest, "authorization_invalid_headers"},
		{ErrHMACRequired, http.StatusBadRequest, "hmac_required"},
		{ErrInvalidAPIKey, http.StatusBadRequest, "invalid_api_key"},
		{ErrSignatureMismatch, http.StatusUnauthorized, "signature_mismatch"},
		{ErrDateHeaderDiff, http.StatusBadRequest, "date_header_diff"},
	} {
		if tc.err.Status != tc.status || tc.err.Code != tc.code {
			t.Errorf("Test %d: got %d %q, want %d %q", i, tc.err.Status, tc.err.Code, tc.status, tc.code)
		}
		if tc.err.Message == "" {
			t.Errorf("Test %d (%s): empty message", i, tc.code)
		}
		if want := tc.code + ": " + tc.err.Message; tc.err.Error() != want {
			t.Errorf("Test %d: Error() = %q, want %q", i, tc.err.Error(), want)
		}
	}
	if ErrInvalidAPIKey.Message != "Provided API key is not valid" {
		t.Errorf("invalid_api_key message = %q", ErrInvalidAPIKey.Message)
	}
	if ErrMissingHeaders.Message != "Some headers are missing" {
		t.Errorf("missing_headers message = %q", ErrMissingHeaders.Message)
	}
}

func TestVerify(t *testing.T) {
	imf := func(tm time.Time) string { return tm.UTC().Format(http.TimeFormat) }
	wrongSig := Sign("not-the-shared-key", testDate)

	for i, tc := range []struct {
		name    string
		date    string
		authz   string
		wantErr *apierror.Error
	}{
		// Success paths and accepted spellings.
		{name: "test vector", date: testDate, authz: authz("hmac-sha256", "date", testSignature, testAPIKey)},
		{name: "python spelling", date: testDate, authz: `algorithm="hmac-sha256", headers="date", signature="` + testSignature + `", apiKey="` + testAPIKey + `"`},
		{name: "scheme prefix", date: testDate, authz: `Signature algorithm="hmac-sha256",headers="date",signature="` + testSignature + `",apikey="` + testAPIKey + `"`},
		{name: "algorithm and headers case-insensitive and trimmed", date: testDate, authz: authz(" HMAC-SHA256 ", " DATE ", testSignature, testAPIKey)},
		{name: "non-zero-padded day", date: "Tue, 7 Jun 2011 20:51:35 GMT", authz: Header(testAPIKey, testSharedKey, "Tue, 7 Jun 2011 20:51:35 GMT")},
		{name: "RFC 850 date", date: "Tuesday, 07-Jun-11 20:51:35 GMT", authz: Header(testAPIKey, testSharedKey, "Tuesday, 07-Jun-11 20:51:35 GMT")},
		{name: "ANSI C date", date: "Tue Jun  7 20:51:35 2011", authz: Header(testAPIKey, testSharedKey, "Tue Jun  7 20:51:35 2011")},

		// Date window, both sides.
		{name: "exactly tolerance in the past", date: imf(testNow.Add(-testTolerance)), authz: Header(testAPIKey, testSharedKey, imf(testNow.Add(-testTolerance)))},
		{name: "exactly tolerance in the future", date: imf(testNow.Add(testTolerance)), authz: Header(testAPIKey, testSharedKey, imf(testNow.Add(testTolerance)))},
		{name: "just outside past", date: imf(testNow.Add(-testTolerance - time.Second)), authz: Header(testAPIKey, testSharedKey, imf(testNow.Add(-testTolerance-time.Second))), wantErr: ErrDateHeaderDiff},
		{name: "just outside future", date: imf(testNow.Add(testTolerance + time.Second)), authz: Header(testAPIKey, testSharedKey, imf(testNow.Add(testTolerance+time.Second))), wantErr: ErrDateHeaderDiff},
		{name: "far future does not overflow", date: "Fri, 31 Dec 9999 23:59:59 GMT", authz: Header(testAPIKey, testSharedKey, "Fri, 31 Dec 9999 23:59:59 GMT"), wantErr: ErrDateHeaderDiff},
		{name: "far past does not overflow", date: "Mon, 01 Jan 0001 00:00:00 GMT", authz: Header(testAPIKey, testSharedKey, "Mon, 01 Jan 0001 00:00:00 GMT"), wantErr: ErrDateHeaderDiff},
		{name: "garbage date, correctly signed", date: "yesterday", authz: Header(testAPIKey, testSharedKey, "yesterday"), wantErr: ErrDateHeaderDiff},
		{name: "non-GMT IMF-fixdate", date: "Tue, 07 Jun 2011 20:51:35 UTC", authz: Header(testAPIKey, testSharedKey, "Tue, 07 Jun 2011 20:51:35 UTC"), wantErr: ErrDateHeaderDiff},
		{name: "oversized date, correctly signed", date: strings.Repeat("x", 4096), authz: Header(testAPIKey, testSharedKey, strings.Repeat("x", 4096)), wantErr: ErrDateHeaderDiff},

		// missing_headers.
		{name: "no date", date: "", authz: authz("hmac-sha256", "date", testSignature, testAPIKey), wantErr: ErrMissingHeaders},
		{name: "blank date", date: "  ", authz: authz("hmac-sha256", "date", testSignature, testAPIKey), wantErr: ErrMissingHeaders},
		{name: "no authorization", date: testDate, authz: "", wantErr: ErrMissingHeaders},
		{name: "both missing", date: "", authz: "", wantErr: ErrMissingHeaders},
		{name: "missing date beats malformed auth", date: "", authz: "garbage", wantErr: ErrMissingHeaders},

		// authorization_missing_params.
		{name: "malformed", date: testDate, authz: `algorithm="hmac-sha256`, wantErr: ErrMissingParams},
		{name: "no apikey", date: testDate, authz: `algorithm="hmac-sha256",headers="date",signature="` + testSignature + `"`, wantErr: ErrMissingParams},
		{name: "missing params beats bad algorithm", date: "garbage", authz: `algorithm="md5",headers="host"`, wantErr: ErrMissingParams},

		// hmac_required.
		{name: "sha1", date: testDate, authz: authz("hmac-sha1", "date", testSignature, testAPIKey), wantErr: ErrHMACRequired},
		{name: "bad algorithm beats bad headers", date: "garbage", authz: authz("none", "host", "x", "unknown"), wantErr: ErrHMACRequired},

		// authorization_invalid_headers.
		{name: "more headers", date: testDate, authz: authz("hmac-sha256", "date host", testSignature, testAPIKey), wantErr: ErrInvalidHeaders},
		{name: "bad headers beats unknown key", date: "garbage", authz: authz("hmac-sha256", "x-date", "x", "unknown"), wantErr: ErrInvalidHeaders},

		// invalid_api_key.
		{name: "unknown key", date: testDate, authz: authz("hmac-sha256", "date", testSignature, "unknown"), wantErr: ErrInvalidAPIKey},
		{name: "api key is case-sensitive", date: testDate, authz: authz("hmac-sha256", "date", testSignature, strings.ToUpper(testAPIKey)), wantErr: ErrInvalidAPIKey},
		{name: "unknown key beats bad signature", date: "garbage", authz: authz("hmac-sha256", "date", "x", "unknown"), wantErr: ErrInvalidAPIKey},

		// signature_mismatch.
		{name: "wrong shared key", date: testDate, authz: authz("hmac-sha256", "date", wrongSig, testAPIKey), wantErr: ErrSignatureMismatch},
		{name: "signature of other key's secret", date: testDate, authz: authz("hmac-sha256", "date", testSignature, "other"), wantErr: ErrSignatureMismatch},
		{name: "raw date is signed, not the parsed time", date: "Tue, 7 Jun 2011 20:51:35 GMT", authz: authz("hmac-sha256", "date", testSignature, testAPIKey), wantErr: ErrSignatureMismatch},
		{name: "invalid base64", date: testDate, authz: authz("hmac-sha256", "date", strings.Repeat("!", len(testSignature)), testAPIKey), wantErr: ErrSignatureMismatch},
		{name: "unpadded base64", date: testDate, authz: authz("hmac-sha256", "date", strings.TrimRight(testSignature, "="), testAPIKey), wantErr: ErrSignatureMismatch},
		{name: "url-safe base64", date: testDate, authz: authz("hmac-sha256", "date", strings.NewReplacer("+", "-", "/", "_").Replace(testSignature), testAPIKey), wantErr: ErrSignatureMismatch},
		{name: "non-canonical base64", date: testDate, authz: authz("hmac-sha256", "date", strings.Replace(testSignature, "Q=", "R=", 1), testAPIKey), wantErr: ErrSignatureMismatch},
		{name: "truncated signature", date: testDate, authz: authz("hmac-sha256", "date", testSignature[:20], testAPIKey), wantErr: ErrSignatureMismatch},
		{name: "overlong signature", date: testDate, authz: authz("hmac-sha256", "date", testSignature+testSignature, testAPIKey), wantErr: ErrSignatureMismatch},
		{name: "bad signature beats bad date", date: "garbage", authz: authz("hmac-sha256", "date", testSignature, testAPIKey), wantErr: ErrSignatureMismatch},
	} {
		got, err := testVerifier().Verify(tc.date, tc.authz)
		if tc.wantErr != nil {
			if err != tc.wantErr {
				t.Errorf("Test %d (%s): err = %v, want %v", i, tc.name, err, tc.wantErr)
			}
			if got != "" {
				t.Errorf("Test %d (%s): api key %q returned with error", i, tc.name, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("Test %d (%s): unexpected error: %v", i, tc.name, err)
			continue
		}
		if got != testAPIKey {
			t.Errorf("Test %d (%s): api key = %q, want %q", i, tc.name, got, testAPIKey)
		}
	}
}

func TestVerifyErrorsAreTyped(t *testing.T) {
	_, err := testVerifier().Verify(testDate, authz("hmac-sha256", "date", testSignature, "unknown"))
	var ae *apierror.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != "invalid_api_key" {
		t.Fatalf("err = %#v, want *apierror.Error invalid_api_key", err)
	}
	if !errors.Is(err, ErrInvalidAPIKey) {
		t.Fatalf("errors.Is(%v, ErrInvalidAPIKey) = false", err)
	}
}

func TestErrorsDoNotLeakSecrets(t *testing.T) {
	v := testVerifier()
	wrongSig := Sign("not-the-shared-key", testDate)
	stale := "Mon, 06 Jun 2011 20:51:35 GMT"
	for i, tc := range []struct{ date, authz string }{
		{"", authz("hmac-sha256", "date", testSignature, testAPIKey)},
		{testDate, `algorithm="hmac-sha256",signature="` + testSignature + `",apikey="` + testSharedKey + `"`},
		{testDate, authz("hmac-sha1", "date", testSignature, testAPIKey)},
		{testDate, authz("hmac-sha256", "host", testSignature, testAPIKey)},
		{testDate, authz("hmac-sha256", "date", testSignature, testSharedKey)},
		{testDate, authz("hmac-sha256", "date", wrongSig, testAPIKey)},
		{stale, Header(testAPIKey, testSharedKey, stale)},
	} {
		_, err := v.Verify(tc.date, tc.authz)
		if err == nil {
			t.Fatalf("Test %d: expected an error", i)
		}
		ae, ok := err.(*apierror.Error)
		if !ok {
			t.Fatalf("Test %d: err is %T, want *apierror.Error", i, err)
		}
		_, parseErr := ParseAuthorization(tc.authz)
		for _, text := range []string{err.Error(), ae.Message, ae.Code, fmt.Sprintf("%+v", err), fmt.Sprint(parseErr)} {
			for _, secret := range []string{testSharedKey, testSignature, wrongSig, tc.authz, Sign(testSharedKey, stale)} {
				if strings.Contains(text, secret) {
					t.Errorf("Test %d: error text %q leaks a secret", i, text)
				}
			}
		}
	}
}

func TestNewVerifierDropsEmptyKeys(t *testing.T) {
	v := NewVerifier(map[string]string{"empty-secret": "", "": "secret"}, testTolerance).
		WithClock(func() time.Time { return testNow })
	if _, err := v.Verify(testDate, Header("empty-secret", "", testDate)); err != ErrInvalidAPIKey {
		t.Errorf("empty shared key: err = %v, want ErrInvalidAPIKey", err)
	}
}

func TestNegativeToleranceIsZero(t *testing.T) {
	v := NewVerifier(map[string]string{testAPIKey: testSharedKey}, -time.Hour).
		WithClock(func() time.Time { return testNow })
	if _, err := v.Verify(testDate, Header(testAPIKey, testSharedKey, testDate)); err != nil {
		t.Errorf("date equal to now: unexpected error %v", err)
	}
	later := "Tue, 07 Jun 2011 20:51:36 GMT"
	if _, err := v.Verify(later, Header(testAPIKey, testSharedKey, later)); err != ErrDateHeaderDiff {
		t.Errorf("date one second ahead: err = %v, want ErrDateHeaderDiff", err)
	}
}

func TestWithClockCopies(t *testing.T) {
	base := NewVerifier(map[string]string{testAPIKey: testSharedKey}, testTolerance)
	fixed := base.WithClock(func() time.Time { return testNow })
	h := Header(testAPIKey, testSharedKey, testDate)
	if _, err := fixed.Verify(testDate, h); err != nil {
		t.Fatalf("fixed clock: unexpected error %v", err)
	}
	// The original keeps the wall clock, against which 2011 is stale.
	if _, err := base.Verify(testDate, h); err != ErrDateHeaderDiff {
		t.Fatalf("original verifier: err = %v, want ErrDateHeaderDiff", err)
	}
	if _, err := fixed.WithClock(nil).Verify(testDate, h); err != ErrDateHeaderDiff {
		t.Fatalf("nil clock: err = %v, want ErrDateHeaderDiff (time.Now)", err)
	}
}

// TestVerifyConcurrent exercises the pooled MAC states from many goroutines,
// interleaving good and bad signatures so that a state leaking between calls
// (missing Reset, shared scratch buffer) shows up as a wrong result or a race.
func TestVerifyConcurrent(t *testing.T) {
	v := testVerifier()
	dates := make([]string, 16)
	for i := range dates {
		dates[i] = testNow.Add(time.Duration(i-8) * time.Second).Format(http.TimeFormat)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				date := dates[(g+i)%len(dates)]
				good := (g+i)%3 != 0
				h := Header(testAPIKey, testSharedKey, date)
				if !good {
					h = Header(testAPIKey, "wrong", date)
				}
				key, err := v.Verify(date, h)
				if good && (err != nil || key != testAPIKey) {
					errs <- fmt.Sprintf("good request %d/%d: key %q err %v", g, i, key, err)
					return
				}
				if !good && err != ErrSignatureMismatch {
					errs <- fmt.Sprintf("bad request %d/%d: err %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(Header(testAPIKey, testSharedKey, testDate))
	f.Add(`Signature algorithm = "hmac-sha256", headers="date", signature="x", apiKey="y"`)
	f.Add(`algorithm="a,b",headers=date,,signature="=",apikey="k`)
	f.Fuzz(func(t *testing.T, header string) {
		p, err := ParseAuthorization(header)
		if err != nil {
			if err != ErrMissingParams || p != (Params{}) {
				t.Fatalf("ParseAuthorization(%q) = %+v, %v", header, p, err)
			}
			return
		}
		for _, v := range []string{p.Algorithm, p.Headers, p.Signature, p.APIKey} {
			if v == "" || !strings.Contains(header, v) {
				t.Fatalf("ParseAuthorization(%q): field %q empty or not from header", header, v)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v := testVerifier()
	h := Header(testAPIKey, testSharedKey, testDate)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(testDate, h); err != nil {
			b.Fatal(err)
		}
	}
}
