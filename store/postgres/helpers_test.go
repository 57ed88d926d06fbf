package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edgelicense/caddy-license-api/store"
)

// testDSN returns the DSN of the test database, a postgres:// URL, from
// LICENSE_API_TEST_POSTGRES. Without it the test is skipped, except in CI,
// where PostgreSQL must be tested.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("LICENSE_API_TEST_POSTGRES")
	if dsn == "" {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal("LICENSE_API_TEST_POSTGRES must be set in CI")
		}
		t.Skip("LICENSE_API_TEST_POSTGRES is not set; set it to a PostgreSQL URL such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the PostgreSQL tests")
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatal("LICENSE_API_TEST_POSTGRES must be a postgres:// URL")
	}
	return dsn
}

// freshSchema creates an empty schema, dropped when the test ends, and
// returns the DSN of the test database with its search_path set to it: a
// Backend opened on that DSN creates its tables there, apart from every
// other test's.
func freshSchema(t *testing.T) string {
	t.Helper()
	base := testDSN(t)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "lat_" + hex.EncodeToString(b)
	admin := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := admin(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := admin(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema) // pgx passes unknown settings on as run-time parameters
	u.RawQuery = q.Encode()
	return u.String()
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

func importJSON(t *testing.T, b *Backend, seed string) {
	t.Helper()
	p, err := store.ParseSeed("seed.json", []byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Import(ctx, p); err != nil {
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

// proxy is a TCP proxy to the database that a test can cut (drop every
// connection and refuse new ones) or freeze (keep connections open but
// forward nothing, as a network black hole does), and then restore.
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	mode   proxyMode
	gate   chan struct{} // closed while data may flow
	conns  map[net.Conn]bool
	active sync.WaitGroup
}

type proxyMode int

const (
	forwarding proxyMode = iota
	refusing
	frozen
)

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, gate: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.gate)
	p.active.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.active.Wait()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.active.Go(func() { p.serve(c) })
	}
}

// track registers c for Cut, unless the proxy is refusing connections.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == refusing {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(up) {
		c.Close()
		up.Close()
		return
	}
	p.active.Go(func() { p.pipe(up, c) })
	p.pipe(c, up)
}

// pipe copies src to dst, holding each chunk while the proxy is frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.drop(dst)
	defer p.drop(src)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// Cut drops every connection and refuses new ones until Restore.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = refusing
	p.openGate()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Freeze stops all traffic, on open connections and new ones, until Restore.
func (p *proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = frozen
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

// Restore forwards again, including what was held while frozen.
func (p *proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = forwarding
	p.openGate()
}

func (p *proxy) openGate() {
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}
