package postgres

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/edgelicense/caddy-license-api/apierror"
	"github.com/edgelicense/caddy-license-api/consumption"
	"github.com/edgelicense/caddy-license-api/internal/testproxy"
	"github.com/edgelicense/caddy-license-api/store/storetest"
)

// call is one store call made during TestUnreachableDatabase.
type call struct {
	consume    bool // else a read
	hw         string
	start, end time.Time
	out        consumption.FeatureOutcome
	err        error
}

// callLog records calls as workers finish them.
type callLog struct {
	mu    sync.Mutex
	calls []call
}

func (l *callLog) add(c call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// count returns how many calls that started at or after since match.
func (l *callLog) count(since time.Time, match func(*call) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for i := range l.calls {
		if c := &l.calls[i]; !c.start.Before(since) && match(c) {
			n++
		}
	}
	return n
}

// firstSuccess returns when the first successful consumption that started at
// or after since ended.
func (l *callLog) firstSuccess(since time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, c := range l.calls {
		if c.consume && c.err == nil && !c.start.Before(since) && (first.IsZero() || c.end.Before(first)) {
			first = c.end
		}
	}
	return first, !first.IsZero()
}

// TestUnreachableDatabase loses the database under load, by dropping the
// connections ("cut") or by letting them hang ("freeze"), and restores it.
// Every call must end within the timeout, fail while the database is away,
// succeed again soon after it is back, and every success must be in the
// ledger, whose totals must add up.
func TestUnreachableDatabase(t *testing.T) {
	for _, mode := range []string{"cut", "freeze"} {
		t.Run(mode, func(t *testing.T) { testOutage(t, mode) })
	}
}

func testOutage(t *testing.T, mode string) {
	const (
		timeout = time.Second
		// margin covers the scheduler under -race and noticing a dead
		// socket; it is far below a second timeout.
		margin  = 500 * time.Millisecond
		workers = 16
	)
	dsn := freshSchema(t)
	p := testproxy.Start(t, hostOf(t, dsn))
	b := open(t, Config{DSN: withHost(t, dsn, p.Addr()), MaxConns: 8, Timeout: timeout})
	importJSON(t, b, storetest.Seed)
	importJSON(t, b, raiseRender(1_000_000_000))

	var log callLog
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := seq.Add(1)
				c := call{consume: i%4 != 0, hw: "call-" + strconv.FormatInt(i, 10), start: time.Now()}
				if c.consume {
					c.out, c.err = storetest.ConsumeFeature(context.Background(), b, consumption.FeatureConsumption{
						Time: c.start, LicenseID: 1001, LicenseFeatureID: 5001, Feature: "render",
						HardwareID: c.hw, Requested: 1, APIKey: "key-1", Event: consumption.EventConsumptionAdd,
					})
				} else {
					_, _, c.err = b.feature(context.Background(), 1001, "render")
				}
				c.end = time.Now()
				log.add(c)
			}
		})
	}
	stopped := false
	stopWorkers := func() {
		if stopped {
			return
		}
		stopped = true
		close(stop)
		done := make(chan struct{})
		go func() {
			wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(2 * (timeout + margin)):
			t.Fatal("calls are still running long after their timeout")
		}
	}
	defer stopWorkers()
	defer p.Restore() // first: a failed check must not leave the workers' calls without a database

	ok := func(c *call) bool { return c.err == nil }
	failed := func(c *call) bool { return c.err != nil }
	began := time.Now()
	waitFor(t, 10*time.Second, "100 successful calls", func() bool { return log.count(began, ok) >= 100 })

	cutAt := time.Now()
	if mode == "cut" {
		p.Cut()
	} else {
		p.Freeze()
	}
	waitFor(t, 15*time.Second, "calls to fail during the outage", func() bool { return log.count(cutAt, failed) >= 4*workers })
	restoredAt := time.Now()
	p.Restore()
	waitFor(t, 10*time.Second, "a consumption to succeed after the restore", func() bool {
		_, ok := log.firstSuccess(restoredAt)
		return ok
	})
	waitFor(t, 10*time.Second, "100 successful calls after the restore", func() bool { return log.count(restoredAt, ok) >= 100 })
	stopWorkers()

	recovered, _ := log.firstSuccess(restoredAt)
	var slowest, slowestFailure time.Duration
	succeeded, failures := 0, 0
	for _, c := range log.calls {
		d := c.end.Sub(c.start)
		slowest = max(slowest, d)
		if d > timeout+margin {
			t.Errorf("a call took %s (timeout %s): %v", d, timeout, c.err)
		}
		if c.err == nil {
			succeeded++
			if c.start.After(cutAt) && c.end.Before(restoredAt) {
				t.Errorf("a call started after the %s succeeded before the restore", mode)
			}
			continue
		}
		failures++
		slowestFailure = max(slowestFailure, d)
		if ce := (*apierror.Error)(nil); errors.As(c.err, &ce) {
			t.Errorf("an outage was reported as the API error %v", ce)
		}
	}
	t.Logf("%s: %d calls succeeded, %d failed; slowest call %s, slowest failure %s; outage %s; "+
		"first success %s after the restore",
		mode, succeeded, failures, slowest, slowestFailure, restoredAt.Sub(cutAt), recovered.Sub(restoredAt))
	if d := recovered.Sub(restoredAt); d > 5*time.Second {
		t.Errorf("service took %s to resume after the restore", d)
	}

	// Every success is in the ledger as reported, and the ledger is a
	// chain: each row's total is the previous plus what it applied, the
	// last is the counter.
	ledger, err := b.ledger(context.Background(), 1001, 5001)
	if err != nil {
		t.Fatal(err)
	}
	byHW := map[string]int{}
	var total int64
	for i, e := range ledger {
		byHW[e.HardwareID] = i
		total += e.Applied
		if e.Total != total {
			t.Fatalf("ledger row %d: total %d, want %d", i, e.Total, total)
		}
	}
	for _, c := range log.calls {
		if !c.consume || c.err != nil {
			continue
		}
		i, found := byHW[c.hw]
		if !found {
			t.Errorf("successful consumption %s is not in the ledger", c.hw)
			continue
		}
		if e := ledger[i]; e.Total != c.out.Total || e.Applied != c.out.Applied {
			t.Errorf("consumption %s: ledger has total %d applied %d, caller was told %d and %d",
				c.hw, e.Total, e.Applied, c.out.Total, c.out.Applied)
		}
	}
	if got := counter(t, b, 5001); got != total {
		t.Errorf("counter is %d, the ledger adds up to %d", got, total)
	}
}

func TestLicensePayload(t *testing.T) {
	for _, tc := range []struct {
		payload string
		id      int64
		ok      bool
	}{
		{LicensePayload(1003), 1003, true},
		{LicensePayload(7), 7, true},
		{PayloadAll, 0, false},
		{"license:x", 0, false},
		{"license:", 0, false},
		{"device:12:hw", 0, false}, // an older node's payload: taken as "all"
	} {
		id, ok := ParseLicensePayload(tc.payload)
		if id != tc.id || ok != tc.ok {
			t.Errorf("ParseLicensePayload(%q) = %d, %v; want %d, %v", tc.payload, id, ok, tc.id, tc.ok)
		}
	}
}

// TestSubscribe checks that an import on one node reaches another node's
// subscriber, that an unchanged import announces nothing, that activations
// announce themselves, and that the subscriber reconnects, telling its
// caller, after its connection is dropped or silently hangs.
func TestSubscribe(t *testing.T) {
	dsn := freshSchema(t)
	p := testproxy.Start(t, hostOf(t, dsn))
	a := open(t, Config{DSN: dsn})
	core, logs := observer.New(zap.WarnLevel)
	b := open(t, Config{DSN: withHost(t, dsn, p.Addr()), Timeout: 500 * time.Millisecond, Logger: zap.New(core)})
	b.listenPing = 100 * time.Millisecond // so that a hung connection is found out quickly

	payloads := make(chan string, 100)
	var reconnects atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Subscribe(ctx, func(payload string) { payloads <- payload }, func() { reconnects.Add(1) })
	waitFor(t, 5*time.Second, "the subscriber to connect", func() bool { return reconnects.Load() == 1 })

	expect := func(want string) {
		t.Helper()
		select {
		case got := <-payloads:
			if got != want {
				t.Fatalf("got notification %q, want %q", got, want)
			}
		case <-time.After(time.Second):
			t.Fatalf("notification %q did not arrive within 1s", want)
		}
	}
	notify := func(payload string) {
		t.Helper()
		if err := a.Notify(context.Background(), payload); err != nil {
			t.Fatal(err)
		}
	}
	importJSON(t, a, storetest.Seed)
	expect(PayloadAll)
	notify("marker-1")
	expect("marker-1")
	// Notifications arrive in commit order, so "all" would come first.
	importJSON(t, a, storetest.Seed)
	notify("marker-2")
	expect("marker-2")

	// Activations announce themselves, so that other nodes drop what they
	// cached of the license and its devices.
	if _, err := a.Activate(context.Background(), consumption.DeviceChange{Time: time.Now(), LicenseID: 1003,
		HardwareID: "hw:with:colons", APIKey: "key-1"}); err != nil {
		t.Fatal(err)
	}
	expect(LicensePayload(1003))
	if err := a.Deactivate(context.Background(), consumption.DeviceChange{Time: time.Now(), LicenseID: 1003,
		HardwareID: "hw:with:colons", APIKey: "key-1"}); err != nil {
		t.Fatal(err)
	}
	expect(LicensePayload(1003))

	p.Cut()
	p.Restore()
	waitFor(t, 5*time.Second, "the subscriber to reconnect after a cut", func() bool { return reconnects.Load() == 2 })
	notify("marker-3")
	expect("marker-3")

	lost := func() int { return logs.FilterMessageSnippet("lost the license store's change notifications").Len() }
	before := lost()
	p.Freeze()
	waitFor(t, 5*time.Second, "the subscriber to notice the hung connection", func() bool { return lost() > before })
	p.Restore()
	waitFor(t, 10*time.Second, "the subscriber to reconnect after a freeze", func() bool { return reconnects.Load() == 3 })
	notify("marker-4")
	expect("marker-4")
}
