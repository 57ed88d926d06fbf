package seed_test

import (
	"testing"

	"github.com/edgelicense/caddy-license-api/store/seed"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

// BenchmarkParse100k parses licensebench's seed of 100,000 licenses.
func BenchmarkParse100k(b *testing.B) {
	data := storetest.LargeSeed(100_000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	stop := storetest.ReportPeakMemory(b)
	for b.Loop() {
		if _, err := seed.Parse("seed.json", data); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}
