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
