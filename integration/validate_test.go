package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateTouchesNothing runs `caddy validate` and `caddy adapt` on a
// Caddyfile whose store and seed live in an empty directory, and whose
// signing key is the default one in an empty data directory: both commands
// must succeed and leave both directories empty (no database file, no
// generated key, nothing imported), and a bad configuration must be
// refused without opening anything either.
func TestValidateTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	stores, data := filepath.Join(dir, "stores"), filepath.Join(dir, "data")
	for _, d := range []string{stores, data} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	seed, err := filepath.Abs("testdata/seed.json")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	site := func(extra string) string {
		return `{
	admin off
}
http://127.0.0.1:0 {
	license_api {
		api_key test-key {env.TEST_SHARED_KEY}
		store sqlite ` + filepath.Join(stores, "license_api.db") + `
		seed ` + seed + `
		cache {
			warm on
		}
		` + extra + `
	}
}
`
	}
	good := write("Caddyfile", site(""))
	bad := write("bad.Caddyfile", site("date_tolerance -5m"))
	caddy := func(args ...string) (string, error) {
		cmd := exec.Command(caddyBin, args...)
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+data, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
			"TEST_SHARED_KEY=s3cr3t")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	empty := func(when string) {
		t.Helper()
		for _, d := range []string{stores, filepath.Join(data, "caddy", "license_api")} {
			entries, err := os.ReadDir(d)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, e := range entries {
				t.Errorf("after %s, %s holds %s", when, d, e.Name())
			}
		}
	}

	if out, err := caddy("validate", "--config", good, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	empty("validate")
	if out, err := caddy("adapt", "--config", good, "--adapter", "caddyfile"); err != nil {
		t.Fatalf("adapt: %v\n%s", err, out)
	}
	empty("adapt")
	out, err := caddy("validate", "--config", bad, "--adapter", "caddyfile")
	if err == nil || !strings.Contains(out, "date_tolerance") {
		t.Errorf("validate of a negative date_tolerance: %v\n%s", err, out)
	}
	empty("a failed validate")
	if strings.Contains(out, "s3cr3t") {
		t.Errorf("validate printed the shared key:\n%s", out)
	}
}
