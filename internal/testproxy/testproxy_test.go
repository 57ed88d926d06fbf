package testproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// echoServer answers each line it reads with the same line, until the test
// ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	return ln.Addr().String()
}

// client is a connection through the proxy.
type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, p *Proxy) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// roundTrip sends line and returns what comes back within wait.
func (c *client) roundTrip(line string, wait time.Duration) (string, error) {
	c.t.Helper()
	c.c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c.c, line+"\n"); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

func (c *client) echoes(line string) {
	c.t.Helper()
	got, err := c.roundTrip(line, 5*time.Second)
	if err != nil || got != line {
		c.t.Fatalf("round trip of %q: got %q, %v", line, got, err)
	}
}

// TestForwardCutFreezeRestore drives the proxy through each of its states
// and checks what a client sees in each.
func TestForwardCutFreezeRestore(t *testing.T) {
	p := Start(t, echoServer(t))
	a := dial(t, p)
	a.echoes("hello")

	// Cut: the open connection ends, a new one is closed at once.
	p.Cut()
	if _, err := a.roundTrip("after cut", 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection that was cut: got %v, want it closed", err)
	}
	if _, err := dial(t, p).roundTrip("refused", 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a new connection while cut: got %v, want it closed", err)
	}

	p.Restore()
	b := dial(t, p)
	b.echoes("restored")

	// Freeze: nothing comes back, on the open connection or a new one, and
	// what was held arrives after the restore.
	p.Freeze()
	if got, err := b.roundTrip("held", 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a frozen connection answered %q, %v", got, err)
	}
	c := dial(t, p)
	if got, err := c.roundTrip("new while frozen", 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection made while frozen answered %q, %v", got, err)
	}
	p.Restore()
	for _, cl := range []struct {
		c    *client
		want string
	}{{b, "held"}, {c, "new while frozen"}} {
		cl.c.c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := cl.c.r.ReadString('\n')
		if err != nil || got != cl.want+"\n" {
			t.Fatalf("after the restore: got %q, %v; want the held %q", got, err, cl.want)
		}
	}
	b.echoes("flowing again")

	// Cut while frozen: the held connections end rather than hang.
	p.Freeze()
	d := dial(t, p)
	if _, err := d.roundTrip("held then cut", 200*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a frozen connection answered: %v", err)
	}
	p.Cut()
	d.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := d.r.ReadString('\n'); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a frozen connection that was cut: got %v, want it closed", err)
	}
}

// TestUnreachableTarget checks that a client of a proxy whose target is
// gone sees its connection closed, not hung.
func TestUnreachableTarget(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	p := Start(t, target)
	if _, err := dial(t, p).roundTrip("anyone?", 5*time.Second); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want the connection closed", err)
	}
}
