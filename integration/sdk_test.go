package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/edgelicense/caddy-license-api/internal/nodetest"
	"github.com/edgelicense/caddy-license-api/signing"
)

// sdkCall is one call test/sdk/client.js makes on the official SDK.
type sdkCall struct {
	Target string `json:"target"`
	Method string `json:"method"`
	Args   []any  `json:"args,omitempty"`
}

// sdkResult is what one call returned or threw.
type sdkResult struct {
	OK    bool            `json:"ok"`
	Value json.RawMessage `json:"value"`
	Error struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// runSDK runs calls through the official Node SDK against n. The SDK must be
// installed (npm ci --prefix test/sdk, which the README's test command does):
// without it the test fails under CI and is skipped elsewhere.
func runSDK(t *testing.T, n *node, config map[string]any, calls []sdkCall) []sdkResult {
	t.Helper()
	node := nodetest.Node(t)
	client, err := filepath.Abs("../test/sdk/client.js")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(client), "node_modules", "@licensespring", "node-sdk")); err != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatalf("the LicenseSpring SDK is not installed (run npm ci --prefix test/sdk): %v", err)
		}
		t.Skipf("skipping: the LicenseSpring SDK is not installed; run npm ci --prefix test/sdk (%v)", err)
	}
	cfg := map[string]any{
		"apiPath": n.base + "/api/v4", "apiKey": apiKey, "sharedKey": sharedKey,
		"publicKey": string(n.publicKey), "appName": "integration", "appVersion": "1.0.0",
	}
	for k, v := range config {
		cfg[k] = v
	}
	in, err := json.Marshal(map[string]any{"config": cfg, "calls": calls})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, client)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client.js: %v\n%s", err, stderr.String())
	}
	var doc struct{ Results []sdkResult }
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Results) != len(calls) {
		t.Fatalf("client.js answered %s (%v)\n%s", out, err, stderr.String())
	}
	return doc.Results
}

// featureTotals is the part of an add_feature_consumption answer the SDK
// hands to the application.
type featureTotals struct {
	ID                int64 `json:"id"`
	LicenseID         int64 `json:"license_id"`
	TotalConsumptions int64 `json:"total_consumptions"`
	MaxConsumptions   int64 `json:"max_consumptions"`
}

// TestNodeSDK drives LicenseAPI.addFeatureConsumption of the official SDK,
// which verifies every response's LicenseSignature, with RSA and ECDSA keys.
func TestNodeSDK(t *testing.T) {
	for _, kt := range []signing.KeyType{signing.RSA2048, signing.ECDSAP256} {
		t.Run(string(kt), func(t *testing.T) {
			n := startNode(t, nodeConfig{keyType: kt})
			consume := func(payload map[string]any) sdkCall {
				return sdkCall{Target: "api", Method: "addFeatureConsumption", Args: []any{payload}}
			}
			key := func(n int) map[string]any {
				return map[string]any{"license_key": "KEY-SDK", "hardware_id": "sdk-hw", "product": "cad", "feature": "render", "consumptions": n}
			}
			results := runSDK(t, n, nil, []sdkCall{
				consume(key(4)),
				consume(key(6)),
				consume(key(1)),
				consume(key(-3)),
				consume(map[string]any{"username": "ana@example.com", "license_id": 2001, "hardware_id": "sdk-hw", "product": "team", "feature": "render", "consumptions": 5}),
			})
			want := []struct {
				totals featureTotals
				code   string
			}{
				{featureTotals{5051, 1006, 4, 10}, ""},
				{featureTotals{5051, 1006, 10, 10}, ""},
				{featureTotals{}, "feature_not_enough_consumptions"},
				{featureTotals{5051, 1006, 7, 10}, ""},
				{featureTotals{6001, 2001, 5, 50}, ""},
			}
			for i, r := range results {
				if want[i].code != "" {
					if r.OK || r.Error.Code != want[i].code {
						t.Errorf("call %d: ok %v, error %+v; want the SDK to throw %s", i, r.OK, r.Error, want[i].code)
					}
					continue
				}
				var got featureTotals
				if !r.OK || json.Unmarshal(r.Value, &got) != nil || got != want[i].totals {
					t.Errorf("call %d: ok %v value %s error %+v; want %+v", i, r.OK, r.Value, r.Error, want[i].totals)
				}
			}
			if rows := n.ledgerRows(5051); rows != 3 {
				t.Errorf("ledger has %d rows for the SDK's 3 granted calls", rows)
			}
		})
	}
}

// TestNodeSDKRejectsForeignKey checks that the test can fail: the SDK,
// configured with another public key, must refuse the server's answers.
func TestNodeSDKRejectsForeignKey(t *testing.T) {
	n := startNode(t, nodeConfig{})
	other, err := signing.GenerateKeyPEM(signing.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.ParsePrivateKeyPEM(other)
	if err != nil {
		t.Fatal(err)
	}
	results := runSDK(t, n, map[string]any{"publicKey": string(s.PublicKeyPEM())}, []sdkCall{{
		Target: "api", Method: "addFeatureConsumption",
		Args: []any{map[string]any{"license_key": "KEY-SDK", "hardware_id": "sdk-hw", "product": "cad", "feature": "render", "consumptions": 1}},
	}})
	if results[0].OK || results[0].Error.Code != "signature_v2_mismatch" {
		t.Errorf("with a foreign public key the SDK answered ok=%v %+v; want signature_v2_mismatch", results[0].OK, results[0].Error)
	}
}

// TestLicenseManager runs the device lifecycle an app runs, through the
// official SDK's LicenseManager (which verifies v1 license_signature and v2
// LicenseSignature on every answer and keeps a local license file):
// activate, check, feature and license consumptions, check the feature,
// deactivate, and see the next consumption refused. The licenses' metadata,
// customer and product name hold non-ASCII text, <>& and U+2028.
func TestLicenseManager(t *testing.T) {
	tests := []struct {
		name, product string
		id            map[string]any // how the app names its license
		licenseID     int64
	}{
		{"key-based", "app", map[string]any{"license_key": "LM-KEY"}, 3001},
		{"user-based with password", "teamapp", map[string]any{"username": "Zoë@example.com", "password": "pässwörd"}, 4001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := lifecycle(t)
			with := func(extra map[string]any) map[string]any {
				m := map[string]any{}
				for k, v := range tt.id {
					if k != "password" {
						m[k] = v
					}
				}
				for k, v := range extra {
					m[k] = v
				}
				return m
			}
			call := func(method string, arg map[string]any) sdkCall {
				return sdkCall{Target: "manager", Method: method, Args: []any{arg}}
			}
			calls := []sdkCall{
				call("activateLicense", tt.id),
				call("checkLicense", with(nil)),
				call("addFeatureConsumption", with(map[string]any{"feature": "render", "consumptions": 3})),
				call("addConsumption", with(map[string]any{"consumptions": 5})),
				call("checkLicenseFeature", with(map[string]any{"feature": "render"})),
				{Target: "manager", Method: "loadLicense"},
				{Target: "result:5", Method: "check"},
				call("deactivateLicense", with(nil)),
				call("addFeatureConsumption", with(map[string]any{"feature": "render", "consumptions": 1})),
			}
			results := runSDK(t, n, map[string]any{"productCode": tt.product, "hardwareID": "sdk-device-1", "gracePeriod": 0}, calls)
			for i, r := range results[:8] {
				if !r.OK {
					t.Fatalf("call %d (%s): %+v", i, calls[i].Method, r.Error)
				}
			}
			var activated struct {
				ID             int64           `json:"id"`
				LicenseActive  bool            `json:"license_active"`
				TimesActivated int64           `json:"times_activated"`
				Metadata       json.RawMessage `json:"metadata"`
				Customer       json.RawMessage `json:"customer"`
			}
			if err := json.Unmarshal(results[0].Value, &activated); err != nil || activated.ID != tt.licenseID ||
				!activated.LicenseActive || activated.TimesActivated != 1 {
				t.Errorf("activateLicense gave %s", results[0].Value)
			}
			var consumed struct {
				TotalConsumptions int64 `json:"total_consumptions"`
			}
			if json.Unmarshal(results[2].Value, &consumed); consumed.TotalConsumptions != 3 {
				t.Errorf("addFeatureConsumption gave %s", results[2].Value)
			}
			if json.Unmarshal(results[3].Value, &consumed); consumed.TotalConsumptions != 5 {
				t.Errorf("addConsumption gave %s", results[3].Value)
			}
			if json.Unmarshal(results[4].Value, &consumed); consumed.TotalConsumptions != 3 {
				t.Errorf("checkLicenseFeature gave %s", results[4].Value)
			}
			if string(results[7].Value) != "true" {
				t.Errorf("deactivateLicense gave %s", results[7].Value)
			}
			if last := results[8]; last.OK || last.Error.Code != "device_not_found" {
				t.Errorf("a consumption after deactivation: ok %v, %+v; want device_not_found", last.OK, last.Error)
			}
			if active := n.query(`SELECT COUNT(*) FROM devices WHERE license_id = ? AND active = 1`, tt.licenseID); active != 0 {
				t.Errorf("%d devices still active after deactivation", active)
			}
		})
	}
}
