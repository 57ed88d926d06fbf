// Package testproxy is test support for checks that lose a network peer: a
// TCP proxy on the loopback interface that a test puts between a client and
// its server (a database, typically) and then cuts, freezes and restores.
//
// An outage is hard to make with the real server: stopping PostgreSQL would
// take every other test down with it, and a stopped server refuses
// connections at once, while the failure that hurts most in production is
// the one that answers nothing at all. The proxy makes both kinds on demand,
// for the connections of one test only:
//
//   - Cut drops every connection and refuses new ones, as a crashed or
//     restarting server does: clients see errors at once.
//   - Freeze keeps connections open but forwards nothing, on them or on new
//     ones, as a network black hole does: clients see nothing, and only
//     their own timeouts end their waits.
//   - Restore forwards again, including what was held while frozen.
//
// The proxy listens on 127.0.0.1 only, and is closed, with every connection,
// when the test that started it ends.
package testproxy

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a target address until a test cuts or
// freezes it. Its methods may be called from any goroutine.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	mode   mode
	gate   chan struct{} // closed while data may flow
	conns  map[net.Conn]bool
	active sync.WaitGroup
}

type mode int

const (
	forwarding mode = iota
	refusing
	frozen
)

// Start starts a proxy on a free port of 127.0.0.1 that forwards to target
// (host:port). It is closed, with all its connections, when t's test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, gate: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.gate)
	p.active.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.active.Wait()
	})
	return p
}

// Addr returns the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
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
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == refusing {
		return false
	}
	p.conns[c] = true
	return true
}

func (p *Proxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		p.drop(c)
		return
	}
	if !p.track(up) {
		p.drop(c)
		up.Close()
		return
	}
	p.active.Go(func() { p.pipe(up, c) })
	p.pipe(c, up)
}

// pipe copies src to dst, holding each chunk while the proxy is frozen.
func (p *Proxy) pipe(dst, src net.Conn) {
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

func (p *Proxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// Cut drops every connection and refuses new ones until Restore. Data held
// by a freeze is discarded.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = refusing
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	p.openGate() // after closing, so that what a freeze held goes nowhere
}

// Freeze stops all traffic, on open connections and new ones, until Restore
// (or Cut). New connections are still accepted but carry nothing: a
// client's connect succeeds and its handshake hangs (in a real black hole
// the connect itself would hang; either way only the client's own timeout
// ends the wait).
func (p *Proxy) Freeze() {
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
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = forwarding
	p.openGate()
}

func (p *Proxy) openGate() {
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}
