package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/store/seed"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

// BenchmarkConsumeFeature is the committer under licensebench's load alone:
// 32 writers at once, 80% of consumptions to the hottest 1% of the
// licenses and the rest to any, durable commits. It isolates what the
// number of licenses costs the store, which licensebench's end-to-end runs
// show only through noise of a few percent:
//
//	go test ./store/sqlite -run '^$' -bench ConsumeFeature -cpuprofile cpu.out
func BenchmarkConsumeFeature(parent *testing.B) {
	for _, n := range []int{100, 100_000} {
		// Set up once per case, not once per b.N tried, and only for a
		// case that runs.
		var (
			db      *Backend
			targets []consumeTarget
		)
		parent.Run(fmt.Sprintf("licenses=%d", n), func(b *testing.B) {
			if db == nil {
				db, targets = consumeBenchStore(parent, n)
			}
			hot := max(1, n/100)
			before := db.w.stats.Stats()
			b.SetParallelism(16)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 0))
				for pb.Next() {
					k := n
					if rng.Float64() < 0.8 {
						k = hot
					}
					t := targets[rng.IntN(k)]
					_, err := storetest.ConsumeFeature(context.Background(), db, consumption.FeatureConsumption{
						Time: time.Now(), LicenseID: t.license, LicenseFeatureID: t.feature, Feature: "calls",
						HardwareID: "hw", Requested: 1, APIKey: "bench", Event: "",
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
			st := db.w.stats.Stats()
			b.ReportMetric(float64(st.Writes-before.Writes)/float64(st.Commits-before.Commits), "writes/commit")
		})
	}
}

// consumeTarget is a license feature to consume.
type consumeTarget struct{ license, feature int64 }

// consumeBenchStore opens a store with licensebench's seed of n licenses and
// returns it with its license features, by license id.
func consumeBenchStore(b *testing.B, n int) (*Backend, []consumeTarget) {
	db, err := Open(filepath.Join(b.TempDir(), fmt.Sprintf("bench-%d.db", n)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	p, err := seed.Parse("seed.json", storetest.LargeSeed(n))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Import(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	var targets []consumeTarget
	rows, err := db.read.Query(`SELECT license_id, id FROM license_features ORDER BY license_id`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var t consumeTarget
		if err := rows.Scan(&t.license, &t.feature); err != nil {
			b.Fatal(err)
		}
		targets = append(targets, t)
	}
	if err := rows.Err(); err != nil || len(targets) != n {
		b.Fatalf("%d features (%v)", len(targets), err)
	}
	return db, targets
}
