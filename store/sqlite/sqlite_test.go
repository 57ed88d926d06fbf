package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/consumption"
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

// TestTwoWriters opens one database file twice, as two processes (or two
// configurations during a reload) do, and interleaves their consumptions:
// each store must decide on the counter the other wrote, not on what it
// last wrote itself.
func TestTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "license_api.db")
	var stores [2]*Backend
	for i := range stores {
		b, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		stores[i] = b
	}
	plan, err := store.ParseSeed("seed.json", []byte(storetest.Seed))
	if err != nil {
		t.Fatal(err)
	}
	if err := stores[0].Import(context.Background(), plan); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	var total int64
	for i, n := range []int64{3, 4, 1, 2, 5} {
		b := stores[i%2]
		out, err := b.ConsumeFeature(context.Background(), consumption.FeatureConsumption{
			Time: at, LicenseID: 1001, LicenseFeatureID: 5001, Feature: "render", HardwareID: "hw-1",
			Requested: n, APIKey: "key-1", Event: consumption.EventConsumptionAdd,
		})
		total += n
		if err != nil || out.Total != total {
			t.Fatalf("consumption %d (%d, store %d): total %d, %v; want %d", i, n, i%2, out.Total, err, total)
		}
	}
}
