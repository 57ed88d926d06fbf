package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"

	"github.com/edgelicense/caddy-license-api/store/cache"
	"github.com/edgelicense/caddy-license-api/store/seed"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

// BenchmarkCacheWarm100k warms a definitions cache with licensebench's
// 100,000 licenses, read from SQLite as requests would read them, and
// reports the live heap each cached license costs (heap-B/license): what
// decides whether a data set fits in memory once all of it is in use.
func BenchmarkCacheWarm100k(b *testing.B) {
	const n = 100_000
	db, err := Open(filepath.Join(b.TempDir(), "warm.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	p, err := seed.Parse("seed.json", storetest.LargeSeed(n))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Import(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	p = nil
	var perLicense float64
	for b.Loop() {
		before := liveHeap()
		c, err := cache.New(db, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		loaded, err := c.Warm(context.Background())
		if err != nil || loaded != n {
			b.Fatalf("warmed %d licenses of %d: %v", loaded, n, err)
		}
		perLicense = float64(liveHeap()-before) / n
		runtime.KeepAlive(c)
		c.Close()
	}
	b.ReportMetric(perLicense, "heap-B/license")
}

// liveHeap returns the bytes of heap objects alive after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
