package integration

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/edgelicense/caddy-license-api/signing"
)

// lifecycle starts a node on the device lifecycle seed.
func lifecycle(t *testing.T) *node {
	return startNode(t, nodeConfig{seed: "testdata/lifecycle.json"})
}

func jsonBody(m map[string]any) string {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// post sends a lifecycle POST with the key-based LM-KEY defaults.
func (n *node) post(endpoint string, edits map[string]any) response {
	n.t.Helper()
	m := map[string]any{"product": "app", "license_key": "LM-KEY", "hardware_id": "hw-a"}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return n.do(signedRequest{endpoint: endpoint, body: jsonBody(m)})
}

// get sends a lifecycle GET with the same defaults as query parameters.
func (n *node) get(endpoint string, edits map[string]string) response {
	n.t.Helper()
	q := url.Values{"product": {"app"}, "license_key": {"LM-KEY"}, "hardware_id": {"hw-a"}}
	for k, v := range edits {
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
	}
	return n.do(signedRequest{method: http.MethodGet, endpoint: endpoint + "?" + q.Encode()})
}

func code(t *testing.T, r response) string {
	t.Helper()
	var e struct{ Code string }
	json.Unmarshal(r.body, &e)
	return e.Code
}

// TestLifecycleErrors sends each lifecycle endpoint each error it documents.
// Errors are signed like every JSON answer.
func TestLifecycleErrors(t *testing.T) {
	n := lifecycle(t)
	// Bind hw-a to LM-KEY and hw-b to the user license, for the checks below.
	if r := n.verified(n.post("activate_license", nil)); r.status != 200 {
		t.Fatalf("activating: %d %s", r.status, r.body)
	}
	user := map[string]any{"product": "teamapp", "license_key": nil, "username": "zoë@example.com", "password": "pässwörd"}
	if r := n.verified(n.post("activate_license", user)); r.status != 200 {
		t.Fatalf("activating the user license: %d %s", r.status, r.body)
	}
	type p = map[string]any
	type q = map[string]string
	tests := []struct {
		name string
		send func() response
		want string
	}{
		{"activate: unknown_product", func() response { return n.post("activate_license", p{"product": "nope"}) }, "unknown_product"},
		{"activate: license_not_found", func() response { return n.post("activate_license", p{"license_key": "NOPE"}) }, "license_not_found"},
		{"activate: invalid_credentials", func() response {
			return n.post("activate_license", p{"product": "teamapp", "license_key": nil, "username": "zoë@example.com", "password": "wrong"})
		}, "invalid_credentials"},
		{"activate: no password", func() response {
			return n.post("activate_license", p{"product": "teamapp", "license_key": nil, "username": "zoë@example.com"})
		}, "invalid_credentials"},
		{"activate: license_not_enabled", func() response { return n.post("activate_license", p{"license_key": "DISABLED-KEY"}) }, "license_not_enabled"},
		{"activate: license_expired", func() response { return n.post("activate_license", p{"license_key": "EXPIRED-KEY"}) }, "license_expired"},
		{"activate: blacklisted", func() response { return n.post("activate_license", p{"hardware_id": "hw-bad"}) }, "blacklisted"},
		{"activate: missing hardware_id", func() response { return n.post("activate_license", p{"hardware_id": nil}) }, "missing_field"},
		{"activate: wrong method", func() response { return n.get("activate_license", nil) }, "method_not_allowed"},
		{"check: unknown_product", func() response { return n.get("check_license", q{"product": "nope"}) }, "unknown_product"},
		{"check: license_not_found", func() response { return n.get("check_license", q{"license_key": "NOPE"}) }, "license_not_found"},
		{"check: device_not_found", func() response { return n.get("check_license", q{"hardware_id": "hw-z"}) }, "device_not_found"},
		{"check: blacklisted", func() response { return n.get("check_license", q{"hardware_id": "hw-bad"}) }, "blacklisted"},
		{"check: bad license_id", func() response { return n.get("check_license", q{"license_id": "abc"}) }, "invalid_field"},
		{"check: missing product", func() response { return n.get("check_license", q{"product": ""}) }, "missing_field"},
		{"check: wrong method", func() response { return n.post("check_license", nil) }, "method_not_allowed"},
		{"feature: invalid_license_feature_code", func() response { return n.get("check_license_feature", q{"feature": "nope"}) }, "invalid_license_feature_code"},
		{"feature: device_not_found", func() response {
			return n.get("check_license_feature", q{"feature": "render", "hardware_id": "hw-z"})
		}, "device_not_found"},
		{"feature: missing feature", func() response { return n.get("check_license_feature", nil) }, "missing_field"},
		{"consume: license_not_consumption", func() response {
			return n.post("add_consumption", p{"license_key": "PERP-KEY", "hardware_id": "hw-1"})
		}, "license_not_consumption"},
		{"consume: negative_consumptions_not_allowed", func() response {
			return n.post("add_consumption", p{"license_key": "NONEG-KEY", "hardware_id": "hw-1", "consumptions": -1})
		}, "negative_consumptions_not_allowed"},
		{"consume: license_not_enough_consumptions", func() response {
			return n.post("add_consumption", p{"license_key": "NONEG-KEY", "hardware_id": "hw-1", "consumptions": 6})
		}, "license_not_enough_consumptions"},
		{"consume: device_not_found", func() response { return n.post("add_consumption", p{"hardware_id": "hw-z"}) }, "device_not_found"},
		{"consume: license_not_enabled", func() response { return n.post("add_consumption", p{"license_key": "DISABLED-KEY"}) }, "license_not_enabled"},
		{"consume: consumptions as text", func() response { return n.post("add_consumption", p{"consumptions": "1"}) }, "invalid_field"},
		{"deactivate: unknown_product", func() response { return n.post("deactivate_license", p{"product": "nope"}) }, "unknown_product"},
		{"deactivate: license_not_found", func() response { return n.post("deactivate_license", p{"license_key": "NOPE"}) }, "license_not_found"},
		{"deactivate: device_not_found", func() response { return n.post("deactivate_license", p{"hardware_id": "hw-z"}) }, "device_not_found"},
		{"deactivate: not JSON", func() response {
			return n.do(signedRequest{endpoint: "deactivate_license", body: "license_key=LM-KEY"})
		}, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.t = t
			r := n.verified(tt.send())
			if got := code(t, r); got != tt.want || r.status < 400 {
				t.Errorf("got %d %s, want code %s", r.status, r.body, tt.want)
			}
		})
	}
	n.t = t
	if rows := n.query(`SELECT COUNT(*) FROM consumption_ledger`); rows != 0 {
		t.Errorf("refused requests wrote %d ledger rows", rows)
	}
}

// license is the part of a license object these tests read.
type license struct {
	ID               int64  `json:"id"`
	LicenseKey       string `json:"license_key"`
	LicenseActive    bool   `json:"license_active"`
	LicenseEnabled   bool   `json:"license_enabled"`
	IsExpired        bool   `json:"is_expired"`
	ValidityPeriod   string `json:"validity_period"`
	TimesActivated   int64  `json:"times_activated"`
	MaxActivations   int64  `json:"max_activations"`
	DeviceID         int64  `json:"device_id"`
	LicenseSignature string `json:"license_signature"`
	TotalConsump     int64  `json:"total_consumptions"`
	ProductFeatures  []struct {
		Code              string `json:"code"`
		TotalConsumptions int64  `json:"total_consumptions"`
	} `json:"product_features"`
	Metadata json.RawMessage `json:"metadata"`
}

func (n *node) license(r response) license {
	n.t.Helper()
	n.verified(r)
	if r.status != 200 {
		n.t.Fatalf("got %d %s", r.status, r.body)
	}
	var l license
	if err := json.Unmarshal(r.body, &l); err != nil {
		n.t.Fatal(err)
	}
	return l
}

// TestActivationLimit binds two devices to a license that allows two, is
// refused a third, frees a slot by deactivating, and checks the v1
// license_signature of each answer.
func TestActivationLimit(t *testing.T) {
	n := lifecycle(t)
	for i, hw := range []string{"hw-a", "hw-b"} {
		l := n.license(n.post("activate_license", map[string]any{"hardware_id": hw}))
		if l.TimesActivated != int64(i+1) || !l.LicenseActive || l.DeviceID == 0 {
			t.Errorf("activating %s: times_activated %d, active %v, device %d", hw, l.TimesActivated, l.LicenseActive, l.DeviceID)
		}
		if err := signing.Verify(n.publicKey, []byte(hw+"#lm-key#"), l.LicenseSignature); err != nil {
			t.Errorf("v1 license_signature of %s: %v", hw, err)
		}
	}
	again := n.license(n.post("activate_license", map[string]any{"hardware_id": "hw-a"}))
	if again.TimesActivated != 2 {
		t.Errorf("re-activating hw-a changed times_activated to %d", again.TimesActivated)
	}
	if r := n.verified(n.post("activate_license", map[string]any{"hardware_id": "hw-c"})); code(t, r) != "license_activated_max_times" {
		t.Fatalf("third device: %d %s", r.status, r.body)
	}
	r := n.post("deactivate_license", map[string]any{"hardware_id": "hw-a"})
	if r.status != 200 || string(r.body) != "license_deactivated" {
		t.Fatalf("deactivating: %d %s", r.status, r.body)
	}
	if l := n.license(n.post("activate_license", map[string]any{"hardware_id": "hw-c"})); l.TimesActivated != 2 {
		t.Errorf("after freeing a slot: times_activated %d", l.TimesActivated)
	}
	if r := n.verified(n.post("add_feature_consumption", map[string]any{"hardware_id": "hw-a", "feature": "render"})); code(t, r) != "device_not_found" {
		t.Errorf("a deactivated device consumed: %d %s", r.status, r.body)
	}

	// A license with a validity period signs it, as ISO 8601 with
	// milliseconds, lower-cased.
	l := n.license(n.post("activate_license", map[string]any{"license_key": "VALID-KEY", "hardware_id": "HW-Mixed"}))
	if l.ValidityPeriod != "2031-05-01T12:30:00.000Z" || l.IsExpired {
		t.Errorf("validity_period %q, expired %v", l.ValidityPeriod, l.IsExpired)
	}
	if err := signing.Verify(n.publicKey, []byte("hw-mixed#valid-key#2031-05-01t12:30:00.000z"), l.LicenseSignature); err != nil {
		t.Errorf("v1 license_signature with a validity period: %v", err)
	}
}

// TestLicenseConsumptionAndChecks walks check_license, add_consumption and
// check_license_feature with the Go client, checking totals.
func TestLicenseConsumptionAndChecks(t *testing.T) {
	n := lifecycle(t)
	n.license(n.post("activate_license", nil))
	if r := n.verified(n.post("add_feature_consumption", map[string]any{"feature": "render", "consumptions": 4})); r.status != 200 {
		t.Fatalf("feature consumption: %d %s", r.status, r.body)
	}
	r := n.verified(n.post("add_consumption", map[string]any{"consumptions": 55}))
	want := `{"id":3001,"max_consumptions":50,"allow_unlimited_consumptions":false,"allow_negative_consumptions":false,` +
		`"allow_overages":true,"max_overages":5,"reset_consumption":false,"consumption_period":null,"total_consumptions":55,"company":{"id":276}}`
	if r.status != 200 || string(r.body) != want {
		t.Errorf("add_consumption: %d %s\nwant %s", r.status, r.body, want)
	}
	if r := n.verified(n.post("add_consumption", nil)); code(t, r) != "license_not_enough_consumptions" {
		t.Errorf("past max + overages: %d %s", r.status, r.body)
	}
	l := n.license(n.get("check_license", nil))
	if !l.LicenseActive || !l.LicenseEnabled || l.TotalConsump != 55 || l.TimesActivated != 1 || len(l.ProductFeatures) != 3 ||
		l.ProductFeatures[0].Code != "render" || l.ProductFeatures[0].TotalConsumptions != 4 {
		t.Errorf("check_license: %+v", l)
	}
	if err := signing.Verify(n.publicKey, []byte("hw-a#lm-key#"), l.LicenseSignature); err != nil {
		t.Errorf("check_license v1 signature: %v", err)
	}
	fr := n.verified(n.get("check_license_feature", map[string]string{"feature": "render"}))
	var f struct {
		ID                int64  `json:"id"`
		LicenseID         int64  `json:"license_id"`
		Code              string `json:"code"`
		MaxConsumption    int64  `json:"max_consumption"`
		TotalConsumptions int64  `json:"total_consumptions"`
	}
	if err := json.Unmarshal(fr.body, &f); err != nil || f.ID != 7001 || f.LicenseID != 3001 || f.MaxConsumption != 100 || f.TotalConsumptions != 4 {
		t.Errorf("check_license_feature: %s", fr.body)
	}
	if rows := n.query(`SELECT COUNT(*) FROM consumption_ledger WHERE license_id = 3001 AND license_feature_id = 0`); rows != 1 {
		t.Errorf("license ledger has %d rows, want 1", rows)
	}
	// The metadata is sent as JavaScript would re-serialise it.
	if !strings.HasPrefix(string(l.Metadata), `{"2":"two","10":"ten","note":"line`) || !strings.Contains(string(l.Metadata), `[1,2.5,1e+21]`) {
		t.Errorf("metadata not in JavaScript's form: %s", l.Metadata)
	}
}
