package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// body builds an add_feature_consumption body from a base request that the
// seed grants, with fields replaced (a nil value removes the field).
func body(edits map[string]any) string {
	m := map[string]any{"product": "cad", "license_key": "KEY-GOOD", "hardware_id": "hw-1", "feature": "render", "consumptions": 1}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestErrors sends one request per documented error and checks the status,
// the code, that the body is exactly {status, code, message} with the HTTP
// status, and that it is signed. Afterwards nothing may have changed.
func TestErrors(t *testing.T) {
	n := startNode(t, nodeConfig{})
	stale := time.Now().Add(-16 * time.Minute).UTC().Format(http.TimeFormat)
	type c = signedRequest
	tests := []struct {
		name   string
		req    signedRequest
		status int
		code   string
	}{
		// Authentication.
		{"no Date", c{body: body(nil), omit: []string{"Date"}}, 400, "missing_headers"},
		{"no Authorization", c{body: body(nil), omit: []string{"Authorization"}}, 400, "missing_headers"},
		{"no signature field", c{body: body(nil), header: map[string]string{"Authorization": `algorithm="hmac-sha256",headers="date",apikey="test-api-key"`}}, 400, "authorization_missing_params"},
		{"another algorithm", c{body: body(nil), header: map[string]string{"Authorization": `algorithm="hmac-sha1",headers="date",signature="abc=",apikey="test-api-key"`}}, 400, "hmac_required"},
		{"other signed headers", c{body: body(nil), header: map[string]string{"Authorization": `algorithm="hmac-sha256",headers="date host",signature="abc=",apikey="test-api-key"`}}, 400, "authorization_invalid_headers"},
		{"unknown api key", c{body: body(nil), apiKey: "nobody"}, 400, "invalid_api_key"},
		{"wrong shared key", c{body: body(nil), shared: "guessed"}, 401, "signature_mismatch"},
		{"stale date", c{body: body(nil), date: stale}, 400, "date_header_diff"},
		// Bodies.
		{"not JSON", c{body: "hardware_id=hw-1"}, 400, "invalid_json"},
		{"truncated JSON", c{body: `{"product":"cad"`}, 400, "invalid_json"},
		{"consumptions as a string", c{body: body(map[string]any{"consumptions": "5"})}, 400, "invalid_field"},
		{"fractional consumptions", c{body: body(map[string]any{"consumptions": 1.5})}, 400, "invalid_field"},
		{"hardware_id as a number", c{body: body(map[string]any{"hardware_id": 7})}, 400, "invalid_field"},
		{"no hardware_id", c{body: body(map[string]any{"hardware_id": nil})}, 400, "missing_field"},
		{"no feature", c{body: body(map[string]any{"feature": nil})}, 400, "missing_field"},
		{"no license_key for a key-based product", c{body: body(map[string]any{"license_key": nil})}, 400, "missing_field"},
		{"no username for a user-based product", c{body: body(map[string]any{"product": "team"})}, 400, "missing_field"},
		{"body over 64 KiB", c{body: body(map[string]any{"sdk_ver": strings.Repeat("x", 70<<10)})}, 413, "request_too_large"},
		{"GET", c{method: http.MethodGet}, 405, "method_not_allowed"},
		// The documented consumption errors.
		{"unknown_product", c{body: body(map[string]any{"product": "nope"})}, 400, "unknown_product"},
		{"license_not_found: key", c{body: body(map[string]any{"license_key": "KEY-NOPE"})}, 400, "license_not_found"},
		{"license_not_found: license_id", c{body: body(map[string]any{"license_id": 1002})}, 400, "license_not_found"},
		{"license_not_found: user", c{body: body(map[string]any{"product": "team", "license_key": nil, "username": "eve@example.com"})}, 400, "license_not_found"},
		{"license_not_enabled", c{body: body(map[string]any{"license_key": "KEY-DISABLED"})}, 400, "license_not_enabled"},
		{"license_not_active", c{body: body(map[string]any{"license_key": "KEY-INACTIVE"})}, 400, "license_not_active"},
		{"license_expired", c{body: body(map[string]any{"license_key": "KEY-EXPIRED"})}, 400, "license_expired"},
		{"blacklisted", c{body: body(map[string]any{"hardware_id": "hw-bad"})}, 400, "blacklisted"},
		{"device_not_found: inactive", c{body: body(map[string]any{"hardware_id": "hw-off"})}, 400, "device_not_found"},
		{"device_not_found: unknown", c{body: body(map[string]any{"hardware_id": "hw-new"})}, 400, "device_not_found"},
		{"unsupported_product_feature: unknown", c{body: body(map[string]any{"feature": "nope"})}, 400, "unsupported_product_feature"},
		{"unsupported_product_feature: not assigned", c{body: body(map[string]any{"feature": "unassigned"})}, 400, "unsupported_product_feature"},
		{"unsupported_product_feature: activation feature", c{body: body(map[string]any{"feature": "act"})}, 400, "unsupported_product_feature"},
		{"unsupported_product_feature: expired", c{body: body(map[string]any{"feature": "old"})}, 400, "unsupported_product_feature"},
		{"negative_consumptions_not_allowed", c{body: body(map[string]any{"feature": "noneg", "consumptions": -1})}, 400, "negative_consumptions_not_allowed"},
		{"feature_not_enough_consumptions", c{body: body(map[string]any{"consumptions": 101})}, 400, "feature_not_enough_consumptions"},
		{"feature_not_enough_consumptions past overages", c{body: body(map[string]any{"feature": "over", "consumptions": 8})}, 400, "feature_not_enough_consumptions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.t = t
			if tt.req.endpoint == "" {
				tt.req.endpoint = "add_feature_consumption"
			}
			r := n.verified(n.do(tt.req))
			var got map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("error body is not JSON: %s", r.body)
			}
			if r.status != tt.status || got["code"] != tt.code || got["status"] != float64(tt.status) {
				t.Fatalf("got %d %s, want %d with code %s", r.status, r.body, tt.status, tt.code)
			}
			if msg, _ := got["message"].(string); msg == "" || len(got) != 3 {
				t.Errorf("error body must be exactly status, code and a message: %s", r.body)
			}
		})
	}
	n.t = t
	if rows := n.query(`SELECT COUNT(*) FROM consumption_ledger`); rows != 0 {
		t.Errorf("refused requests wrote %d ledger rows", rows)
	}
	if sum := n.query(`SELECT SUM(total) FROM feature_counters`); sum != 0 {
		t.Errorf("refused requests changed counters (sum %d)", sum)
	}
}

// TestMessages checks the documented messages of the documented codes.
func TestMessages(t *testing.T) {
	n := startNode(t, nodeConfig{})
	for _, tt := range []struct {
		edits map[string]any
		want  string
	}{
		{map[string]any{"product": "nope"}, `{"status":400,"code":"unknown_product","message":"Provided product was not found"}`},
		{map[string]any{"hardware_id": "hw-off"}, `{"status":400,"code":"device_not_found","message":"An active device matching the hardware_id not found"}`},
		{map[string]any{"consumptions": 101}, `{"status":400,"code":"feature_not_enough_consumptions","message":"Not enough consumptions left"}`},
		{map[string]any{"feature": "noneg", "consumptions": -1}, `{"status":400,"code":"negative_consumptions_not_allowed","message":"Negative consumptions not allowed"}`},
	} {
		if r := n.consume(body(tt.edits)); string(r.body) != tt.want {
			t.Errorf("got %s\nwant %s", r.body, tt.want)
		}
	}
}

// TestConsumptions walks key-based, user-based and license_id requests and
// checks each whole 200 body, field order included.
func TestConsumptions(t *testing.T) {
	n := startNode(t, nodeConfig{})
	const render = `{"id":%d,"license_id":%d,"company":{"id":276},"total_consumptions":%d,"max_consumptions":%d,` +
		`"allow_negative_consumptions":%t,"allow_unlimited_consumptions":false,"allow_overages":false,"max_overages":0,` +
		`"reset_consumption":false,"consumption_period":null,"is_floating":false,"is_floating_cloud":false}`
	steps := []struct {
		name  string
		edits map[string]any
		want  string
	}{
		{"key-based", map[string]any{"consumptions": 3}, fmt.Sprintf(render, 5001, 1001, 3, 100, true)},
		{"default of 1", map[string]any{"consumptions": nil}, fmt.Sprintf(render, 5001, 1001, 4, 100, true)},
		{"with its license_id", map[string]any{"license_id": 1001, "consumptions": 6}, fmt.Sprintf(render, 5001, 1001, 10, 100, true)},
		{"negative", map[string]any{"consumptions": -4}, fmt.Sprintf(render, 5001, 1001, 6, 100, true)},
		{"negative stops at 0", map[string]any{"consumptions": -50}, fmt.Sprintf(render, 5001, 1001, 0, 100, true)},
		{"up to the limit", map[string]any{"consumptions": 100}, fmt.Sprintf(render, 5001, 1001, 100, 100, true)},
		{"user-based, name in other case, newest license", map[string]any{"product": "team", "license_key": nil, "username": "ANA@example.COM", "consumptions": 2},
			fmt.Sprintf(render, 6002, 2002, 2, 50, false)},
		{"user-based with license_id", map[string]any{"product": "team", "license_key": nil, "username": "ana@example.com", "license_id": 2001},
			fmt.Sprintf(render, 6001, 2001, 1, 50, false)},
		{"overages and a period", map[string]any{"feature": "over", "consumptions": 7},
			`{"id":5005,"license_id":1001,"company":{"id":276},"total_consumptions":7,"max_consumptions":5,` +
				`"allow_negative_consumptions":false,"allow_unlimited_consumptions":false,"allow_overages":true,"max_overages":2,` +
				`"reset_consumption":true,"consumption_period":"monthly","is_floating":false,"is_floating_cloud":false}`},
	}
	for _, s := range steps {
		r := n.consume(body(s.edits))
		if r.status != 200 || string(r.body) != s.want {
			t.Errorf("%s: got %d %s\nwant %s", s.name, r.status, r.body, s.want)
		}
	}
	if got := n.ledgerRows(5001); got != 6 {
		t.Errorf("ledger of 5001 has %d rows, want 6", got)
	}
	if applied := n.query(`SELECT applied FROM consumption_ledger WHERE license_feature_id = 5001 AND requested = -50`); applied != -6 {
		t.Errorf("the clamped negative consumption is recorded as applying %d, want -6", applied)
	}
	if got := n.query(`SELECT SUM(applied) FROM consumption_ledger WHERE license_feature_id = 5001`); got != n.total(5001) {
		t.Errorf("ledger sums to %d, total is %d", got, n.total(5001))
	}

	// Paths that are not the API's endpoints go to the next handler.
	for _, path := range []string{"/api/v4/get_product_details", "/api/v4/", "/other/add_feature_consumption"} {
		resp, err := http.Post(n.base+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("POST %s: %d, want the next handler's 418", path, resp.StatusCode)
		}
	}
}

// TestConcurrentLimit sends 200 concurrent consumptions of 1 against a limit
// of 100 with no overages.
func TestConcurrentLimit(t *testing.T) {
	n := startNode(t, nodeConfig{})
	req := signedRequest{endpoint: "add_feature_consumption", body: body(map[string]any{"license_key": "KEY-BURST", "feature": "burst"})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	start := make(chan struct{})
	for range 200 {
		wg.Go(func() {
			<-start
			r, err := n.send(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes["transport: "+err.Error()]++
				return
			}
			var e struct{ Code string }
			json.Unmarshal(r.body, &e)
			codes[fmt.Sprintf("%d %s", r.status, e.Code)]++
		})
	}
	close(start)
	wg.Wait()
	want := map[string]int{"200 ": 100, "400 feature_not_enough_consumptions": 100}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("answers %v, want %v", codes, want)
	}
	if total, rows := n.total(5041), n.ledgerRows(5041); total != 100 || rows != 100 {
		t.Errorf("total %d with %d ledger rows, want 100 and 100", total, rows)
	}
}

// TestSecrets checks that the shared key, given through {env.*}, shows in
// neither the logs nor the config the admin endpoint serves.
func TestSecrets(t *testing.T) {
	n := startNode(t, nodeConfig{})
	n.consume(body(nil))
	n.verified(n.do(signedRequest{endpoint: "add_feature_consumption", body: body(nil), shared: "wrong"}))
	resp, err := http.Get("http://" + n.admin + "/config/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg bytes.Buffer
	if _, err := cfg.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.String(), "{env.TEST_SHARED_KEY}") {
		t.Fatalf("the config does not refer to the shared key by placeholder: %s", cfg.String())
	}
	for name, text := range map[string]string{"logs": n.logs.String(), "admin config": cfg.String()} {
		if strings.Contains(text, sharedKey) {
			t.Errorf("the shared key appears in the %s", name)
		}
	}
}

// TestBadSeed checks that a seed with an error stops Caddy from loading the
// config, with the place of the error in the message.
func TestBadSeed(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ seed, want string }{
		{`{"products": [{"short_code": "cad", "features": []}], "licenses": [{"product": "cad", "license_key": "K",
			"features": [{"code": "nope"}]}]}`, `licenses[0].features[0]: unknown feature "nope"`},
		{`{"products": [], "licenses": [{"product": "ghost", "license_key": "K"}]}`, `licenses[0]: unknown product "ghost"`},
		{"{\"products\": [\n  {\"short_code\": \"cad\",}\n]}", "line 2"},
		{`{"products": [{"short_code": "cad", "features": [{"code": "f", "max_consumptions": 5}]}]}`, `unknown field "max_consumptions"`},
	}
	for i, tt := range tests {
		seed := filepath.Join(dir, fmt.Sprintf("seed%d.json", i))
		if err := os.WriteFile(seed, []byte(tt.seed), 0o600); err != nil {
			t.Fatal(err)
		}
		cf := filepath.Join(dir, fmt.Sprintf("Caddyfile%d", i))
		os.WriteFile(cf, []byte(fmt.Sprintf(":0 {\n\tlicense_api {\n\t\tseed %s\n\t\tstore sqlite %s\n\t}\n}\n",
			seed, filepath.Join(dir, fmt.Sprintf("db%d", i)))), 0o600)
		cmd := exec.Command(caddyBin, "validate", "--config", cf, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("seed %d: caddy validate accepted it", i)
			continue
		}
		// Caddy logs the error as a JSON string, with its quotes escaped.
		if !strings.Contains(strings.ReplaceAll(string(out), `\"`, `"`), tt.want) {
			t.Errorf("seed %d: error does not say %q:\n%s", i, tt.want, out)
		}
	}
}
