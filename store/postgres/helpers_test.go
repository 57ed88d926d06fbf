package postgres

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/edgelicense/caddy-license-api/internal/pgtest"
	"github.com/edgelicense/caddy-license-api/store/seed"
)

// testDSN returns the test database's URL (see pgtest.DSN).
func testDSN(t *testing.T) string { return pgtest.DSN(t) }

// freshSchema returns the test database's URL with search_path set to an
// empty schema of the test's own: a Backend opened on it creates its tables
// there, apart from every other test's.
func freshSchema(t *testing.T) string {
	_, dsn := pgtest.Schema(t, "lat")
	return dsn
}

// withHost returns dsn with its host and port replaced by addr.
func withHost(t *testing.T, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// hostOf returns the host:port of dsn.
func hostOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}

// open opens a Backend that is closed when the test ends.
func open(t *testing.T, cfg Config) *Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return b
}

func importJSON(t *testing.T, b *Backend, text string) {
	t.Helper()
	p, err := seed.Parse("seed.json", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Import(ctx, p); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
