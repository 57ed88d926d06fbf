package sqlite

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/edgelicense/caddy-license-api/store/seed"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

// BenchmarkImport100k is what Caddy does at start-up with licensebench's
// seed: parse 100,000 licenses and import them into a new database.
func BenchmarkImport100k(b *testing.B) {
	data := storetest.LargeSeed(100_000)
	dir := b.TempDir()
	b.ReportAllocs()
	stop := storetest.ReportPeakMemory(b)
	n := 0
	for b.Loop() {
		n++
		db, err := Open(filepath.Join(dir, strconv.Itoa(n)+".db"))
		if err != nil {
			b.Fatal(err)
		}
		p, err := seed.Parse("seed.json", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Import(context.Background(), p); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}
