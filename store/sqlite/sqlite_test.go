package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/edgelicense/caddy-license-api/store"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		b, err := Open(filepath.Join(t.TempDir(), "license_api.db"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
