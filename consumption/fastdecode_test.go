package consumption

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fastCases are bodies for FuzzDecodeFast's corpus and TestDecodeFast.
// accept says whether the fast decoder is meant to take the body itself;
// the others are left to encoding/json.
var fastCases = []struct {
	body   string
	accept bool
}{
	{`{"hardware_id":"hw-1","product":"cad","feature":"render","license_key":"K-1","consumptions":1,"sdk_ver":"1.4.17"}`, true},
	{` { "hardware_id" : "hw" , "product":"p", "license_id": -0, "consumptions": -9007199254740991 } ` + "\n", true},
	{`{"username":"Ana@Example.com","password":"pä` + "\u2028" + `ss","bundle_code":"","license_id":9223372036854775807}`, true},
	{`{}`, true},
	{`{"product":"a","product":"b"}`, true},
	{`{"hardware_id":"h\"w"}`, false},               // escape
	{`{"Product":"cad"}`, false},                    // case-insensitive match
	{`{"os_ver":"14"}`, false},                      // unknown key
	{`{"product":null}`, false},                     // null keeps the zero value
	{`{"consumptions":1.0}`, false},                 // fraction: a type error
	{`{"consumptions":1e3}`, false},                 // exponent: a type error
	{`{"consumptions":01}`, false},                  // leading zero: a syntax error
	{`{"consumptions":9223372036854775808}`, false}, // overflows int64
	{`{"consumptions":"1"}`, false},                 // wrong type
	{`{"event":["consumption_add"]}`, false},        // arrays
	{`{"product":"cad"} x`, false},                  // trailing data
	{`{"product":"cad",}`, false},                   // trailing comma
	{`{"product":"c` + "\x01" + `"}`, false},        // control character
	{`{"product":"` + "\xff" + `"}`, false},         // invalid UTF-8, which encoding/json replaces
	{`[]`, false},
	{``, false},
}

// TestDecodeFast checks that the fast decoder takes the bodies SDKs send
// and leaves the rest to encoding/json, for every request type.
func TestDecodeFast(t *testing.T) {
	for _, tc := range fastCases {
		var r FeatureConsumptionRequest
		got := decodeFast([]byte(tc.body), &r.LicenseRequest, &r.LicenseConsumptionRequest, &r.Feature)
		if got != tc.accept {
			t.Errorf("decodeFast(%q) = %v, want %v", tc.body, got, tc.accept)
		}
	}
	// Keys of fields a request type does not have are unknown to it.
	var r LicenseRequest
	if decodeFast([]byte(`{"product":"p","consumptions":1}`), &r, nil, nil) {
		t.Error("a license request took consumptions")
	}
	var lc LicenseConsumptionRequest
	if decodeFast([]byte(`{"product":"p","feature":"f"}`), &lc.LicenseRequest, &lc, nil) {
		t.Error("a license consumption request took feature")
	}
}

// FuzzDecodeFast checks that whatever body the fast decoder takes,
// encoding/json takes too and decodes to the same request, for each
// request type.
func FuzzDecodeFast(f *testing.F) {
	for _, tc := range fastCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fr, jr FeatureConsumptionRequest
		if decodeFast(body, &fr.LicenseRequest, &fr.LicenseConsumptionRequest, &fr.Feature) {
			if err := json.Unmarshal(body, &jr); err != nil || !reflect.DeepEqual(fr, jr) {
				t.Fatalf("%q: fast %+v, encoding/json %+v (%v)", body, fr, jr, err)
			}
		}
		var fl, jl LicenseConsumptionRequest
		if decodeFast(body, &fl.LicenseRequest, &fl, nil) {
			if err := json.Unmarshal(body, &jl); err != nil || !reflect.DeepEqual(fl, jl) {
				t.Fatalf("%q: fast %+v, encoding/json %+v (%v)", body, fl, jl, err)
			}
		}
		var f1, j1 LicenseRequest
		if decodeFast(body, &f1, nil, nil) {
			if err := json.Unmarshal(body, &j1); err != nil || !reflect.DeepEqual(f1, j1) {
				t.Fatalf("%q: fast %+v, encoding/json %+v (%v)", body, f1, j1, err)
			}
		}
	})
}
