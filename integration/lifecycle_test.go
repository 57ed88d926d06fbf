package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgelicense/caddy-license-api/signing"
)

// TestReload reloads the config with a changed seed and checks that the
// store, its counters and the generated signing key carry over: the store
// is opened once, the counter continues, the new limit applies.
func TestReload(t *testing.T) {
	n := startNode(t, nodeConfig{defaultKey: true})
	sdk := map[string]any{"license_key": "KEY-SDK", "hardware_id": "sdk-hw"}
	sdk["consumptions"] = 10
	if r := n.consume(body(sdk)); r.status != 200 {
		t.Fatalf("before the reload: %d %s", r.status, r.body)
	}
	if r := n.consume(body(sdk)); r.status != 400 {
		t.Fatalf("past the seed's limit of 10: %d %s", r.status, r.body)
	}
	seed, err := os.ReadFile("testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	raised := strings.Replace(string(seed), `"id": 5051, "max_consumption": 10`, `"id": 5051, "max_consumption": 25`, 1)
	if raised == string(seed) {
		t.Fatal("the test seed no longer has the line this test edits")
	}
	newSeed := filepath.Join(n.dir, "raised.json")
	if err := os.WriteFile(newSeed, []byte(raised), 0o600); err != nil {
		t.Fatal(err)
	}
	oldSeed, _ := filepath.Abs("testdata/seed.json")
	n.reload(strings.Replace(n.caddyfile, oldSeed, newSeed, 1))

	r := n.consume(body(sdk)) // verified with the key generated before the reload
	if r.status != 200 || !strings.Contains(string(r.body), `"total_consumptions":20,"max_consumptions":25`) {
		t.Errorf("after the reload: %d %s; want total 20 of 25", r.status, r.body)
	}
	if opened := strings.Count(n.logs.String(), "opened sqlite license store"); opened != 1 {
		t.Errorf("the store was opened %d times; a reload must reuse it", opened)
	}
	if rows := n.ledgerRows(5051); rows != 2 {
		t.Errorf("ledger has %d rows, want 2", rows)
	}

	// Reloading with the same file skips its import, so the cache is kept:
	// the next request reads nothing from the store.
	misses := n.metric("caddy_license_api_cache_misses_total")
	n.reload(n.caddyfile)
	sdk["consumptions"] = 5
	if r := n.consume(body(sdk)); r.status != 200 || !strings.Contains(string(r.body), `"total_consumptions":25`) {
		t.Errorf("after reloading the same seed: %d %s; want total 25", r.status, r.body)
	}
	if m := n.metric("caddy_license_api_cache_misses_total"); m != misses {
		t.Errorf("%d cache misses after reloading an unchanged seed; want none (the cache kept)", m-misses)
	}
}

// TestCommands runs `caddy license-api keygen` and `consume` as a user
// would, and checks their output and exit status.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "ec.pem")
	run := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(caddyBin, append([]string{"license-api"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	if out, code := run(nil, "keygen", "--type", "ecdsa-p256", "--out", key); code != 0 {
		t.Fatalf("keygen: %d %s", code, out)
	}
	pem, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := signing.ParsePrivateKeyPEM(pem)
	if err != nil || s.Algorithm() != "ECDSA-P256" {
		t.Fatalf("keygen wrote %v, %v", s, err)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(key + ".pub"); err != nil {
		t.Errorf("no public key beside the private key: %v", err)
	}
	if out, code := run(nil, "keygen", "--out", key); code == 0 {
		t.Errorf("keygen overwrote an existing key: %s", out)
	}

	n := startNode(t, nodeConfig{})
	pub := filepath.Join(dir, "server.pub")
	if err := os.WriteFile(pub, n.publicKey, 0o600); err != nil {
		t.Fatal(err)
	}
	consume := []string{"consume", "--url", n.base + "/api/v4", "--api-key", apiKey, "--public-key", pub,
		"--product", "cad", "--feature", "render", "--hardware-id", "sdk-hw", "--license-key", "KEY-SDK"}
	env := []string{"LICENSE_API_SHARED_KEY=" + sharedKey}
	out, code := run(env, append(consume, "--consumptions", "4")...)
	if code != 0 || !strings.Contains(out, "HTTP 200") || !strings.Contains(out, `"total_consumptions":4`) || !strings.Contains(out, "signature: valid") {
		t.Errorf("consume 4: exit %d\n%s", code, out)
	}
	out, code = run(env, append(consume, "--consumptions", "40")...)
	if code != 1 || !strings.Contains(out, "feature_not_enough_consumptions") || !strings.Contains(out, "signature: valid") {
		t.Errorf("consume past the limit: exit %d, want 1\n%s", code, out)
	}
	out, code = run(env, append(consume[:len(consume):len(consume)], "--public-key", key+".pub")...)
	if code != 2 || !strings.Contains(out, "signature: INVALID") {
		t.Errorf("consume verified with another key: exit %d, want 2\n%s", code, out)
	}
	if out, code = run(nil, consume...); code != 1 || !strings.Contains(out, "LICENSE_API_SHARED_KEY") {
		t.Errorf("consume without a shared key: exit %d, want 1 and a hint\n%s", code, out)
	}
	if strings.Contains(n.logs.String(), sharedKey) {
		t.Error("the shared key appears in Caddy's logs")
	}
}

// TestMetrics reads the plugin's Prometheus metrics from the admin
// endpoint after known traffic.
func TestMetrics(t *testing.T) {
	n := startNode(t, nodeConfig{})
	for range 3 {
		n.consume(body(nil))
	}
	n.consume(body(map[string]any{"consumptions": 1000}))
	n.consume(body(map[string]any{"product": "nope"}))
	text := n.metrics()
	for _, want := range []string{
		`caddy_license_api_responses_total{code="ok",endpoint="add_feature_consumption"} 3`,
		`caddy_license_api_responses_total{code="feature_not_enough_consumptions",endpoint="add_feature_consumption"} 1`,
		`caddy_license_api_responses_total{code="unknown_product",endpoint="add_feature_consumption"} 1`,
		// One after the other, the four consumptions that reached the store
		// (the refused one included) took a transaction each.
		"caddy_license_api_store_writes_total 4\n",
		"caddy_license_api_store_commits_total 4\n",
		// The three 200s, and the three errors once each: the two above
		// and the harness's readiness probe's missing_headers, however
		// often it was sent.
		"caddy_license_api_signatures_total 6\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if hits, misses := n.metric("caddy_license_api_cache_hits_total"), n.metric("caddy_license_api_cache_misses_total"); hits == 0 || misses == 0 {
		t.Errorf("cache metrics missing or zero: hits %d misses %d", hits, misses)
	}
	// Each commit was synced (and the seed's import too).
	if syncs := n.metric("caddy_license_api_store_syncs_total"); syncs < 4 {
		t.Errorf("%d write-ahead log syncs for 4 commits", syncs)
	}
}

// TestErrorSignaturesCached checks that an error body is signed once,
// while every 200 is signed afresh: the counter of signatures Caddy
// computes grows by one for two identical errors, and by two for two 200s.
func TestErrorSignaturesCached(t *testing.T) {
	n := startNode(t, nodeConfig{keyType: signing.ECDSAP256})
	signed := func() int64 { return n.metric("caddy_license_api_signatures_total") }
	s0 := signed()
	refused := body(map[string]any{"product": "nope"})
	a, b := n.consume(refused), n.consume(refused)
	if a.status != 400 || string(a.body) != string(b.body) || a.signature != b.signature {
		t.Errorf("identical errors: %d %s / %s, signatures %q and %q; want one signature", a.status, a.body, b.body, a.signature, b.signature)
	}
	s1 := signed()
	if s1-s0 != 1 {
		t.Errorf("two identical errors were signed %d times, want once", s1-s0)
	}
	granted := body(map[string]any{"consumptions": 0})
	if c, d := n.consume(granted), n.consume(granted); c.status != 200 || d.status != 200 {
		t.Fatalf("consumptions of 0: %d %s / %d %s", c.status, c.body, d.status, d.body)
	}
	if s2 := signed(); s2-s1 != 2 {
		t.Errorf("two 200s were signed %d times, want twice", s2-s1)
	}
}
