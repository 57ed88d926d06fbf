package caddymodule

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/edgelicense/caddy-license-api/store/postgres"
)

// TestValidate runs Caddy's own validation of configurations with one
// license_api handler: the bad ones are refused with the option named, and
// none of them, good or bad, creates anything in the data directory or
// where the store would be.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("TEST_EMPTY", "")
	db := filepath.Join(dir, "stores", "license_api.db")
	sqlite := `{"backend": "sqlite", "path": "` + db + `"}`
	tests := []struct {
		name    string
		handler string // the handler's JSON fields besides "handler"
		want    string // a substring of the error; "" for a valid configuration
	}{
		{"defaults", `"store": ` + sqlite, ""},
		{"everything set", `"prefix": "/api/v5", "api_keys": [{"api_key": "k", "shared_key": "s"}],
			"date_tolerance": "1m", "store": ` + sqlite + `, "cache": {"max_entries": 10, "ttl": "1m", "warm": true},
			"seed": "../integration/testdata/seed.json"`, ""},
		{"relative prefix", `"prefix": "api", "store": ` + sqlite, `prefix "api" must start with /`},
		{"empty shared key", `"api_keys": [{"api_key": "k", "shared_key": "{env.TEST_EMPTY}"}], "store": ` + sqlite,
			"api_keys: 1 of 1"},
		{"negative date tolerance", `"date_tolerance": "-1m", "store": ` + sqlite, "date_tolerance"},
		{"negative cache ttl", `"cache": {"ttl": "-1s"}, "store": ` + sqlite, "cache"},
		{"bad seed", `"seed": "testdata/no-such-seed.json", "store": ` + sqlite, "seed"},
		{"postgres without dsn", `"store": {"backend": "postgres"}`, "dsn is required"},
		{"postgres negative max_conns", `"store": {"backend": "postgres", "dsn": "postgres://u@127.0.0.1:1/db",
			"max_conns": -1}`, "max_conns"},
		{"postgres bad dsn", `"store": {"backend": "postgres", "dsn": "postgres://u@127.0.0.1:port/db"}`, "dsn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := `{"apps": {"http": {"servers": {"s": {"listen": [":0"], "routes": [{"handle": [
				{"handler": "license_api", ` + tt.handler + `}]}]}}}}}`
			var cfg caddy.Config
			if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
				t.Fatalf("%v in %s", err, raw)
			}
			err := caddy.Validate(&cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("valid configuration refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v; want one that says %q", err, tt.want)
			}
			for _, d := range []string{filepath.Join(dir, "data"), filepath.Dir(db)} {
				if entries, err := os.ReadDir(d); err == nil && len(entries) > 0 {
					t.Errorf("validation created %s in %s", entries[0].Name(), d)
				}
			}
		})
	}
}
